//! Numbers as people read them in tables, captions and tick labels: thousands separators,
//! a sensible count of significant digits, dollars and seconds.

/// `12345` as `12,345`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A value with `sig` significant digits, without exponent for everyday magnitudes and
/// with separators above 10,000.
pub fn sig(x: f64, sig: usize) -> String {
    if !x.is_finite() {
        return "n/a".into();
    }
    if x == 0.0 {
        return "0".into();
    }
    let mag = x.abs().log10().floor() as i32;
    if x.abs() >= 10_000.0 {
        let r = x.round();
        let s = thousands(r.abs() as u64);
        return if r < 0.0 { format!("-{s}") } else { s };
    }
    if mag < -5 {
        return format!("{x:.*e}", sig.saturating_sub(1));
    }
    let decimals = (sig as i32 - 1 - mag).max(0) as usize;
    format!("{x:.decimals$}")
}

/// A tick label: short, no float noise (`0.30000000000000004` is `0.3`).
pub fn tick(x: f64) -> String {
    if x.abs() < 1e-12 {
        return "0".into();
    }
    if x.abs() >= 10_000.0 {
        return sig(x, 6);
    }
    let s = format!("{x:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// Dollars, with enough digits for sub-cent amounts.
pub fn usd(x: f64) -> String {
    if x >= 1.0 {
        format!("${x:.2}")
    } else if x == 0.0 {
        "$0".into()
    } else {
        // Three significant digits, in plain decimals however small.
        let decimals = (2 - x.abs().log10().floor() as i32).clamp(2, 12) as usize;
        format!("${x:.decimals$}")
    }
}

/// Seconds.
pub fn secs(x: f64) -> String {
    format!("{} s", sig(x, 3))
}

/// A fraction as a percentage.
pub fn percent(f: f64) -> String {
    format!("{} %", sig(100.0 * f, 3))
}

/// Bytes in decimal units (MB, GB), as partition sizes are quoted.
pub fn bytes(b: f64) -> String {
    if b >= 1e9 {
        format!("{} GB", sig(b / 1e9, 3))
    } else if b >= 1e6 {
        format!("{} MB", sig(b / 1e6, 3))
    } else if b >= 1e3 {
        format!("{} kB", sig(b / 1e3, 3))
    } else {
        format!("{b} B")
    }
}

/// The smallest of 1, 2, 2.5, 5 x 10^k that is at least `x` (an axis end).
pub fn nice_ceil(x: f64) -> f64 {
    if x <= 0.0 || !x.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(x.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * p >= x * (1.0 - 1e-12) {
            return m * p;
        }
    }
    10.0 * p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(thousands(10_000), "10,000");
        assert_eq!(thousands(999), "999");
        assert_eq!(sig(0.013_42, 3), "0.0134");
        assert_eq!(sig(213.7, 3), "214");
        assert_eq!(sig(52_316.0, 3), "52,316");
        assert_eq!(tick(0.1 + 0.2), "0.3");
        assert_eq!(tick(-0.15), "-0.15");
        assert_eq!(usd(0.001_234), "$0.00123");
        assert_eq!(usd(2.8e-6), "$0.00000280");
        assert_eq!(usd(12.5), "$12.50");
        assert_eq!(percent(0.012_3), "1.23 %");
        assert_eq!(nice_ceil(0.37), 0.5);
        assert_eq!(nice_ceil(2.1), 2.5);
        assert_eq!(nice_ceil(100.0), 100.0);
    }
}
