//! Text into HTML: escaping, the `_{...}` subscript markers figures and captions share, and
//! an SVG made ready to sit inline in the page.

/// Escapes `&`, `<`, `>` and quotes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Escaped text with `_{x}` set as a subscript.
pub fn text(s: &str) -> String {
    let e = escape(s);
    let mut out = String::with_capacity(e.len());
    let mut rest = e.as_str();
    while let Some(i) = rest.find("_{") {
        let Some(j) = rest[i + 2..].find('}') else {
            break;
        };
        out.push_str(&rest[..i]);
        out.push_str("<sub>");
        out.push_str(&rest[i + 2..i + 2 + j]);
        out.push_str("</sub>");
        rest = &rest[i + 2 + j + 1..];
    }
    out.push_str(rest);
    out
}

/// A standalone SVG document as inline markup: no XML prolog, no namespace declaration
/// (HTML parsers supply it), labelled for screen readers.
pub fn inline_svg(svg: &str, label: &str) -> String {
    let body = match svg.find("<svg") {
        Some(i) => &svg[i..],
        None => svg,
    };
    let body = body.replacen(r#" xmlns="http://www.w3.org/2000/svg""#, "", 1);
    body.replacen(
        "<svg",
        &format!(r#"<svg role="img" aria-label="{}""#, escape(label)),
        1,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_subscripts() {
        assert_eq!(text("a<b & z_{spec}"), "a&lt;b &amp; z<sub>spec</sub>");
        let svg = r#"<svg width="10" height="10" viewBox="0 0 10 10" xmlns="http://www.w3.org/2000/svg"><rect/></svg>"#;
        let inline = inline_svg(svg, "A \"fig\"");
        assert!(!inline.contains("http"), "{inline}");
        assert!(inline.starts_with(r#"<svg role="img" aria-label="A &quot;fig&quot;" width="10""#));
    }
}
