//! Decoding an ItemReader object into items: a JSON array, JSON Lines, or delimited
//! text. Each decoder stops after `max` items so MaxItems does not parse the rest.

use serde_json::{Map, Value};

/// Step Functions reads CSV header rows of at most 10 KiB.
const MAX_CSV_HEADER_BYTES: usize = 10 * 1024;

/// The elements of a JSON array.
pub(crate) fn json(text: &str, max: Option<usize>) -> Result<Vec<Value>, String> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| format!("the object is not valid JSON: {e}"))?;
    let Value::Array(mut items) = value else {
        return Err(format!(
            "the object holds a JSON {}, not the JSON array InputType JSON needs",
            kind(&value)
        ));
    };
    if let Some(max) = max {
        items.truncate(max);
    }
    Ok(items)
}

/// One JSON value per non-empty line.
pub(crate) fn jsonl(text: &str, max: Option<usize>) -> Result<Vec<Value>, String> {
    let mut items = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if max.is_some_and(|m| items.len() >= m) {
            break;
        }
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let value = serde_json::from_str(line)
            .map_err(|e| format!("line {} is not valid JSON: {e}", n + 1))?;
        items.push(value);
    }
    Ok(items)
}

/// Each row as an object of header → string value (missing trailing fields are empty
/// strings). `headers` `None` takes them from the first row.
pub(crate) fn csv(
    text: &str,
    headers: Option<&[String]>,
    delimiter: u8,
    max: Option<usize>,
) -> Result<Vec<Value>, String> {
    let mut rows = Records {
        b: text.as_bytes(),
        pos: 0,
        line: 1,
        delimiter,
    };
    let headers: Vec<String> = match headers {
        Some(h) => h.to_vec(),
        None => {
            let start = rows.pos;
            let Some(first) = rows.next() else {
                return Ok(Vec::new());
            };
            let (_, names) = first?;
            if rows.pos - start > MAX_CSV_HEADER_BYTES {
                return Err(format!(
                    "the CSV header row is {} bytes, more than the {MAX_CSV_HEADER_BYTES} bytes Step Functions reads",
                    rows.pos - start
                ));
            }
            if let Some(dup) = names
                .iter()
                .enumerate()
                .find(|(i, n)| names[..*i].contains(n))
            {
                return Err(format!("the CSV header names `{}` twice", dup.1));
            }
            names
        }
    };
    let mut items = Vec::new();
    for row in rows {
        if max.is_some_and(|m| items.len() >= m) {
            break;
        }
        let (line, fields) = row?;
        if fields.len() > headers.len() {
            return Err(format!(
                "the CSV row on line {line} has {} fields but there are {} headers",
                fields.len(),
                headers.len()
            ));
        }
        let mut fields = fields.into_iter();
        let mut obj = Map::with_capacity(headers.len());
        for h in &headers {
            obj.insert(h.clone(), Value::String(fields.next().unwrap_or_default()));
        }
        items.push(Value::Object(obj));
    }
    Ok(items)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Records of delimited text as Step Functions reads them: a field that starts with a
/// quote may hold delimiters and line breaks; `""` is a literal quote in any field; a
/// backslash makes the next character literal. Blank lines are skipped.
struct Records<'a> {
    b: &'a [u8],
    pos: usize,
    /// 1-based line of `pos`.
    line: usize,
    delimiter: u8,
}

impl Records<'_> {
    /// Consumes a line break at `pos`, if there is one.
    fn line_break(&mut self) -> bool {
        match self.b.get(self.pos) {
            Some(b'\r') => {
                self.pos += 1;
                if self.b.get(self.pos) == Some(&b'\n') {
                    self.pos += 1;
                }
            }
            Some(b'\n') => self.pos += 1,
            _ => return false,
        }
        self.line += 1;
        true
    }
}

impl Iterator for Records<'_> {
    /// The record's first line and its fields.
    type Item = Result<(usize, Vec<String>), String>;

    fn next(&mut self) -> Option<Self::Item> {
        while self.line_break() {}
        if self.pos >= self.b.len() {
            return None;
        }
        let first_line = self.line;
        let mut fields = Vec::new();
        let mut field: Vec<u8> = Vec::new();
        let mut quoted = false;
        let mut at_field_start = true;
        loop {
            let Some(&c) = self.b.get(self.pos) else {
                if quoted {
                    self.pos = self.b.len();
                    return Some(Err(format!(
                        "the quoted CSV field starting on line {first_line} is never closed"
                    )));
                }
                fields.push(into_string(field));
                return Some(Ok((first_line, fields)));
            };
            let next = self.b.get(self.pos + 1).copied();
            let after = self.b.get(self.pos + 2).copied();
            let ends_field = |b: Option<u8>| {
                matches!(b, None | Some(b'\r' | b'\n')) || b == Some(self.delimiter)
            };
            match c {
                // `""` alone is an empty quoted field, not a literal quote.
                b'"' if at_field_start && next == Some(b'"') && ends_field(after) => {
                    self.pos += 2;
                }
                b'"' if next == Some(b'"') => {
                    field.push(b'"');
                    self.pos += 2;
                }
                b'"' if quoted => {
                    quoted = false;
                    self.pos += 1;
                }
                b'"' if at_field_start => {
                    quoted = true;
                    self.pos += 1;
                }
                b'\\' => {
                    if let Some(n) = next {
                        field.push(n);
                        if n == b'\n' {
                            self.line += 1;
                        }
                    }
                    self.pos += 2;
                }
                b'\r' | b'\n' if !quoted => {
                    self.line_break();
                    fields.push(into_string(field));
                    return Some(Ok((first_line, fields)));
                }
                d if d == self.delimiter && !quoted => {
                    fields.push(into_string(std::mem::take(&mut field)));
                    self.pos += 1;
                    at_field_start = true;
                    continue;
                }
                _ => {
                    if c == b'\n' {
                        self.line += 1;
                    }
                    field.push(c);
                    self.pos += 1;
                }
            }
            at_field_start = false;
        }
    }
}

/// The input is UTF-8 and only ASCII bytes are removed, so this never loses text.
fn into_string(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}
