//! Subscripts in SVG text, which plotters cannot set: a label written `z_{spec}` becomes
//! `z<tspan baseline-shift="sub">spec</tspan>`. Applied to the finished SVG string, inside
//! text elements only (the `_{` marker appears nowhere else).

/// Replaces every `_{...}` with a subscript tspan.
pub fn subscripts(svg: &str) -> String {
    let mut out = String::with_capacity(svg.len());
    let mut rest = svg;
    while let Some(i) = rest.find("_{") {
        let Some(j) = rest[i + 2..].find('}') else {
            break;
        };
        out.push_str(&rest[..i]);
        out.push_str(r#"<tspan baseline-shift="sub" font-size="75%">"#);
        out.push_str(&rest[i + 2..i + 2 + j]);
        out.push_str("</tspan>");
        rest = &rest[i + 2 + j + 1..];
    }
    out.push_str(rest);
    out
}

/// Characters a reader sees (the markers do not count), for width estimates.
pub fn visible_chars(text: &str) -> usize {
    text.chars().count() - text.matches("_{").count() * 3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscripts_are_tspans() {
        assert_eq!(
            subscripts("<text>z_{spec} and σ_{NMAD}</text>"),
            r#"<text>z<tspan baseline-shift="sub" font-size="75%">spec</tspan> and σ<tspan baseline-shift="sub" font-size="75%">NMAD</tspan></text>"#
        );
        assert_eq!(subscripts("no markers"), "no markers");
        assert_eq!(visible_chars("z_{spec}"), 5);
    }
}
