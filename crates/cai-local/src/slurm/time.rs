//! Slurm's timestamps (`2026-11-30T16:55:08`, the controller's local time, whole seconds) as
//! Unix seconds, so queue waits and wall times can be computed beside the engine's own clock.

/// Unix seconds of a Slurm timestamp; None for `N/A`, `Unknown`, `None` and anything else
/// that is not one.
pub fn unix_seconds(s: &str) -> Option<f64> {
    let s = s.trim();
    let (date, time) = s.split_once('T')?;
    let d: Vec<i32> = date
        .split('-')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let t: Vec<i32> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let (&[year, month, day], &[hour, minute, second]) = (&d[..], &t[..]) else {
        return None;
    };
    // SAFETY: a zeroed tm is valid; mktime reads and normalises it.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    tm.tm_year = year - 1900;
    tm.tm_mon = month - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = minute;
    tm.tm_sec = second;
    // Daylight saving as the C library knows it for that date: Slurm printed local time.
    tm.tm_isdst = -1;
    // SAFETY: tm is a valid, initialised struct owned by this frame.
    let t = unsafe { libc::mktime(&mut tm) };
    (t != -1).then_some(t as f64)
}

/// Now, Unix seconds.
pub fn now_unix() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_parse_and_placeholders_do_not() {
        let a = unix_seconds("2026-11-30T16:55:08").unwrap();
        let b = unix_seconds("2026-11-30T16:56:10").unwrap();
        assert_eq!(b - a, 62.0);
        for s in [
            "N/A",
            "Unknown",
            "None",
            "",
            "2026-11-30",
            "2026-11-30T16:55",
        ] {
            assert_eq!(unix_seconds(s), None, "{s}");
        }
    }
}
