//! Where a run's files live under `<data_bucket>/<result_path>/`. The original's keys
//! (`<rank>.json`, `combined_data.json`) keep their places; cai's additions sit beside them.

/// The plan Initialize wrote for this run (per run, never one shared `payload.json`).
pub fn plan_key(result_path: &str) -> String {
    format!("{result_path}/plan.json")
}

/// The Map's items: every rank's payload, one JSON array element per line, written by
/// Initialize and read by the Distributed Map's ItemReader.
pub fn items_key(result_path: &str) -> String {
    format!("{result_path}/items.json")
}

/// A rank's result, as in the original.
pub fn rank_result_key(result_path: &str, rank: u64) -> String {
    format!("{result_path}/{rank}.json")
}

/// A rank's predictions (`file,row,z_pred,z_true`).
pub fn predictions_key(result_path: &str, rank: u64) -> String {
    format!("{result_path}/predictions/{rank}.parquet")
}

/// Why a rank failed for good, written by the failure handler.
pub fn error_key(result_path: &str, rank: u64) -> String {
    format!("{result_path}/errors/{rank}.json")
}

/// The attempt a rank is on; written at the start of every attempt so a crash's attempt
/// count survives the crash.
pub fn attempt_key(result_path: &str, rank: u64) -> String {
    format!("{result_path}/attempts/{rank}.json")
}

/// The original's combined array of rank results.
pub fn combined_key(result_path: &str) -> String {
    format!("{result_path}/combined_data.json")
}

/// cai's run summary: totals, accuracy, failures and the performance table.
pub fn summary_key(result_path: &str) -> String {
    format!("{result_path}/summary.json")
}

/// The lease that makes a run the only one writing under its result path (see
/// [`crate::lease`]).
pub fn lease_key(result_path: &str) -> String {
    format!("{result_path}/lease.json")
}
