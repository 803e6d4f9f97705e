//! Partition file order. S3 lists keys in byte order, so the original handed out
//! `1, 10, 100, 101, ...`; natural order (`1, 2, ..., 10`) is what users mean, and the
//! byte order stays available to reproduce the original exactly.

use std::cmp::Ordering;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How Initialize orders the partition keys before handing them out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileOrder {
    /// Digit runs compare as numbers: `2.pt` before `10.pt`.
    #[default]
    Natural,
    /// Byte order, as S3 lists: the original's order.
    Lexicographic,
}

impl FileOrder {
    /// The payload spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            FileOrder::Natural => "natural",
            FileOrder::Lexicographic => "lexicographic",
        }
    }

    /// Sorts keys in place in this order.
    pub fn sort(self, keys: &mut [String]) {
        match self {
            FileOrder::Natural => keys.sort_by(|a, b| natural_cmp(a, b)),
            FileOrder::Lexicographic => keys.sort(),
        }
    }
}

impl FromStr for FileOrder {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s.to_ascii_lowercase().as_str() {
            "natural" => Ok(FileOrder::Natural),
            "lexicographic" | "lexical" => Ok(FileOrder::Lexicographic),
            _ => Err(()),
        }
    }
}

/// Compares with digit runs as numbers (leading zeros ignored, then shorter run first) and
/// everything else bytewise; ties fall back to byte order so the order is total.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (x, y) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < x.len() && j < y.len() {
        if x[i].is_ascii_digit() && y[j].is_ascii_digit() {
            let (si, sj) = (i, j);
            while i < x.len() && x[i].is_ascii_digit() {
                i += 1;
            }
            while j < y.len() && y[j].is_ascii_digit() {
                j += 1;
            }
            let da = trim_zeros(&x[si..i]);
            let db = trim_zeros(&y[sj..j]);
            let ord = da.len().cmp(&db.len()).then_with(|| da.cmp(db));
            if ord != Ordering::Equal {
                return ord;
            }
        } else {
            if x[i] != y[j] {
                return x[i].cmp(&y[j]);
            }
            i += 1;
            j += 1;
        }
    }
    (x.len() - i).cmp(&(y.len() - j)).then_with(|| a.cmp(b))
}

fn trim_zeros(d: &[u8]) -> &[u8] {
    let n = d.iter().take_while(|&&c| c == b'0').count();
    &d[n..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_puts_numbers_in_numeric_order() {
        let mut k: Vec<String> = ["p/10.pt", "p/2.pt", "p/1.pt", "p/100.pt", "p/02.pt"]
            .map(String::from)
            .to_vec();
        FileOrder::Natural.sort(&mut k);
        assert_eq!(k, ["p/1.pt", "p/02.pt", "p/2.pt", "p/10.pt", "p/100.pt"]);
        FileOrder::Lexicographic.sort(&mut k);
        assert_eq!(k, ["p/02.pt", "p/1.pt", "p/10.pt", "p/100.pt", "p/2.pt"]);
    }
}
