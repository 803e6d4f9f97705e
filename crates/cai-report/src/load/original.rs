//! The original CAI's per-rank record: its ten keys (and, from its newer worker, the S3
//! timing keys, possibly null). What it does not record (rank, samples, bytes) is derived the
//! way its own `stats.py` does: from the rates and the inference time.

use cai_workflow::result::S3Timing;
use serde::Deserialize;
use serde_json::Value;

use crate::run::RankRow;

/// One element of the original's `combined_data.json`.
#[derive(Debug, Deserialize)]
struct OriginalRecord {
    #[serde(rename = "total_cpu_time (seconds)")]
    total_cpu_time: f64,
    #[serde(rename = "execution_time (seconds/batch)")]
    execution_time: f64,
    num_batches: f64,
    throughput_bps: f64,
    sample_persec: f64,
    #[serde(default)]
    data_path: Value,
    #[serde(default)]
    s3_num_requests: Option<f64>,
    #[serde(default)]
    s3_total_time: Option<f64>,
    #[serde(default)]
    s3_avg_time: Option<f64>,
    #[serde(default)]
    s3_min_time: Option<f64>,
    #[serde(default)]
    s3_max_time: Option<f64>,
    #[serde(default)]
    s3_first_request_time: Option<f64>,
    #[serde(default)]
    s3_last_response_time: Option<f64>,
}

/// Parses record `index` of the original's array; the error names the missing key.
pub fn parse(index: usize, v: &Value) -> Result<RankRow, String> {
    let r: OriginalRecord = serde_json::from_value(v.clone()).map_err(|e| e.to_string())?;
    let inference = r.execution_time * r.num_batches;
    let bits = r.throughput_bps * inference;
    let data_path = match &r.data_path {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|k| k.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    let s3 = r.s3_num_requests.filter(|n| *n > 0.0).map(|n| S3Timing {
        s3_num_requests: n as u64,
        s3_total_time: r.s3_total_time.unwrap_or(0.0),
        s3_avg_time: r.s3_avg_time.unwrap_or(0.0),
        s3_min_time: r.s3_min_time.unwrap_or(0.0),
        s3_max_time: r.s3_max_time.unwrap_or(0.0),
        s3_first_request_time: r.s3_first_request_time.unwrap_or(0.0),
        s3_last_response_time: r.s3_last_response_time.unwrap_or(0.0),
    });
    Ok(RankRow {
        rank: index as u64,
        data_path,
        samples: (r.sample_persec * inference).round(),
        inference_seconds: inference,
        sample_persec: r.sample_persec,
        throughput_bps: r.throughput_bps,
        cpu_seconds: r.total_cpu_time,
        data_bytes: bits / 8.0,
        peak_rss_mb: None,
        wall_seconds: None,
        started_unix: None,
        timings: None,
        attempts: None,
        s3,
        untrained: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derives_samples_and_bytes_from_the_rates() {
        let v: Value = serde_json::json!({
            "total_cpu_time (seconds)": 23.8, "total_cpu_memory (MB)": 71461.3,
            "execution_time (seconds/batch)": 2.4, "num_batches": 10, "batch_size": 512,
            "device": "cpu", "throughput_bps": 3.5e7, "sample_persec": 213.0,
            "result_path": "result-partition-100MB/1GB/1", "data_path": "100MB/1.pt",
            "s3_num_requests": 3, "s3_total_time": 1.5, "s3_first_request_time": null
        });
        let r = parse(4, &v).unwrap();
        assert_eq!(r.rank, 4);
        assert_eq!(r.samples, (213.0f64 * 24.0).round());
        assert!((r.data_bytes - 3.5e7 * 24.0 / 8.0).abs() < 1.0);
        assert_eq!(r.data_path, vec!["100MB/1.pt"]);
        assert_eq!(r.s3.unwrap().s3_num_requests, 3);
        assert!(parse(0, &serde_json::json!({"device": "cpu"})).is_err());
    }
}
