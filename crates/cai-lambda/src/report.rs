//! Lambda's `REPORT` log line: what an invocation was billed for and how much memory it
//! used, as Lambda measured it. It ends every invocation's log (CloudWatch Logs, or the
//! base64 tail an Invoke with `LogType=Tail` returns), and is the only place those figures
//! appear, so the cost cai prints is read from it.

/// One parsed `REPORT` line.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportLine {
    /// The invocation's request id.
    pub request_id: String,
    /// Handler duration (ms).
    pub duration_ms: f64,
    /// Billed duration (ms): what the GB-second price applies to.
    pub billed_ms: u64,
    /// Configured memory (MB).
    pub memory_mb: u64,
    /// Peak memory used (MB).
    pub max_memory_used_mb: u64,
    /// Cold start: the init phase (ms), present only on a container's first invocation.
    pub init_ms: Option<f64>,
}

impl ReportLine {
    /// Parses a line such as `REPORT RequestId: 3f1e... Duration: 102.25 ms Billed Duration:
    /// 103 ms Memory Size: 2048 MB Max Memory Used: 119 MB Init Duration: 250.32 ms`
    /// (fields are tab-separated on Lambda, spaces are accepted too). None for any other line.
    pub fn parse(line: &str) -> Option<ReportLine> {
        let rest = line.trim_start().strip_prefix("REPORT")?;
        let field = |name: &str| -> Option<&str> {
            let at = rest.find(name)? + name.len();
            let tail = rest[at..].trim_start();
            tail.split(|c: char| c.is_whitespace()).next()
        };
        Some(ReportLine {
            request_id: field("RequestId:")?.to_string(),
            duration_ms: field("\tDuration:")
                .or_else(|| field(" Duration:"))?
                .parse()
                .ok()?,
            billed_ms: field("Billed Duration:")?.parse().ok()?,
            memory_mb: field("Memory Size:")?.parse().ok()?,
            max_memory_used_mb: field("Max Memory Used:")?.parse().ok()?,
            init_ms: field("Init Duration:").and_then(|v| v.parse().ok()),
        })
    }

    /// The REPORT line in a log text (the last one, if several).
    pub fn find_in(log: &str) -> Option<ReportLine> {
        log.lines().rev().find_map(ReportLine::parse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_cold_start_report_with_tabs() {
        let line = "REPORT RequestId: 8f507cfc-b3c3-4c0b-9e0a-8d2a7a1e0e55\tDuration: 102.25 ms\tBilled Duration: 353 ms\tMemory Size: 2048 MB\tMax Memory Used: 119 MB\tInit Duration: 250.32 ms\t";
        let r = ReportLine::parse(line).unwrap();
        assert_eq!(r.request_id, "8f507cfc-b3c3-4c0b-9e0a-8d2a7a1e0e55");
        assert_eq!(r.duration_ms, 102.25);
        assert_eq!(r.billed_ms, 353);
        assert_eq!(r.memory_mb, 2048);
        assert_eq!(r.max_memory_used_mb, 119);
        assert_eq!(r.init_ms, Some(250.32));
    }

    #[test]
    fn parses_a_warm_report_with_spaces_and_ignores_other_lines() {
        let log = "START RequestId: a Version: $LATEST\nsome output\nEND RequestId: a\nREPORT RequestId: a  Duration: 1.50 ms  Billed Duration: 2 ms  Memory Size: 128 MB  Max Memory Used: 20 MB\n";
        let r = ReportLine::find_in(log).unwrap();
        assert_eq!(r.request_id, "a");
        assert_eq!(r.duration_ms, 1.5);
        assert_eq!(r.billed_ms, 2);
        assert_eq!(r.memory_mb, 128);
        assert_eq!(r.max_memory_used_mb, 20);
        assert_eq!(r.init_ms, None);
        assert!(ReportLine::parse("END RequestId: a").is_none());
        assert!(ReportLine::parse("REPORT RequestId: a Duration: x ms").is_none());
    }
}
