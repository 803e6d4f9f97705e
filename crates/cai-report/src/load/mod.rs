//! Reads one run's result folder from a store: cai's (`summary.json`, `plan.json`,
//! `combined_data.json` or the `<rank>.json` files, and the Parquet predictions) or the
//! original CAI's (`combined_data.json` with its own keys). What is missing becomes a note,
//! never an error, as long as some per-rank record is there.

mod original;
mod predictions;

use cai_store::{BlockingBucket, BlockingStore};
use cai_workflow::layout;
use cai_workflow::plan::Plan;
use cai_workflow::result::RankResult;
use cai_workflow::summary::Summary;
use rayon::prelude::*;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use crate::error::ReportError;
use crate::run::{Origin, PlanFacts, RankRow, RunData};

/// Largest `combined_data.json` read (about 150,000 cai rank records).
const MAX_COMBINED_BYTES: u64 = 256 << 20;

/// One per-rank record as found.
enum Record {
    Cai(Box<RankResult>),
    Original(Box<RankRow>),
}

/// Loads the run under `bucket/result_path`.
pub fn load_run(
    store: &BlockingStore,
    bucket: &str,
    result_path: &str,
) -> Result<RunData, ReportError> {
    let rp = result_path.trim_matches('/');
    let label = format!("{bucket}/{rp}");
    let b = store.bucket(bucket)?;
    let mut notes = Vec::new();
    let summary: Option<Summary> = read_json(&b, &layout::summary_key(rp), 64 << 20)?;
    let plan: Option<Plan> = match read_json(&b, &layout::plan_key(rp), 64 << 20) {
        Ok(p) => p,
        Err(e) => {
            notes.push(format!(
                "plan.json was not readable ({e}); planned ranks are not shown"
            ));
            None
        }
    };
    let records = records(&b, rp, plan.as_ref())?;
    if records.is_empty() && summary.is_none() && plan.is_none() {
        return Err(ReportError::NoResults(label));
    }
    let cai =
        summary.is_some() || plan.is_some() || records.iter().any(|r| matches!(r, Record::Cai(_)));
    let origin = if cai { Origin::Cai } else { Origin::Original };

    let mut ranks = Vec::with_capacity(records.len());
    let mut sources = Vec::new();
    for r in &records {
        match r {
            Record::Cai(res) => {
                ranks.push(RankRow::from_cai(res));
                if res.predictions.rows > 0 {
                    sources.push((res.predictions.bucket.clone(), res.predictions.key.clone()));
                }
            }
            Record::Original(row) => ranks.push((**row).clone()),
        }
    }
    ranks.sort_by_key(|r| r.rank);

    let accuracy = match origin {
        Origin::Original => {
            notes.push(
                "The original CAI discards its predictions: no accuracy figures for this run."
                    .into(),
            );
            None
        }
        Origin::Cai => predictions::reduce(store, &sources, &mut notes),
    };
    Ok(RunData {
        label,
        origin,
        ranks,
        summary,
        plan: plan.as_ref().map(plan_facts),
        accuracy,
        notes,
    })
}

fn plan_facts(p: &Plan) -> PlanFacts {
    PlanFacts {
        world_size: p.world_size,
        ranks_with_data: p.ranks_with_data(),
        data_prefix: p
            .payload
            .get("data_prefix")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string(),
        memory_mb: p.run.memory_mb,
        model: p.run.model.to_string(),
    }
}

/// The per-rank records: `combined_data.json` when present, else each rank's file (the
/// plan's ranks with data, or every `<n>.json` directly under the result path).
fn records(b: &BlockingBucket, rp: &str, plan: Option<&Plan>) -> Result<Vec<Record>, ReportError> {
    let combined_key = layout::combined_key(rp);
    if let Some(Value::Array(items)) = read_json::<Value>(b, &combined_key, MAX_COMBINED_BYTES)? {
        return items
            .par_iter()
            .enumerate()
            .map(|(i, v)| record(i, v).map_err(|why| invalid(b, &combined_key, i, why)))
            .collect();
    }
    let keys: Vec<(usize, String)> = match plan {
        // The plan hands files out in rank order: the ranks with data are the first ones.
        Some(p) => (0..p.ranks_with_data())
            .map(|r| (r as usize, layout::rank_result_key(rp, r)))
            .collect(),
        None => b
            .list(rp)?
            .into_iter()
            .filter_map(|e| {
                let name = e.key.strip_prefix(rp)?.strip_prefix('/')?;
                let n: usize = name.strip_suffix(".json")?.parse().ok()?;
                Some((n, e.key))
            })
            .collect(),
    };
    let found: Vec<Option<Record>> = keys
        .par_iter()
        .map(|(i, key)| {
            let Some(v) = read_json::<Value>(b, key, 64 << 20)? else {
                return Ok(None);
            };
            record(*i, &v)
                .map(Some)
                .map_err(|why| ReportError::Invalid {
                    file: format!("{}/{key}", b.name()),
                    why,
                })
        })
        .collect::<Result<_, ReportError>>()?;
    Ok(found.into_iter().flatten().collect())
}

/// cai's record when it parses as one, else the original's.
fn record(index: usize, v: &Value) -> Result<Record, String> {
    match RankResult::deserialize(v) {
        Ok(r) => Ok(Record::Cai(Box::new(r))),
        Err(cai) => original::parse(index, v)
            .map(|r| Record::Original(Box::new(r)))
            .map_err(|orig| {
                format!("neither a cai rank result ({cai}) nor the original's record ({orig})")
            }),
    }
}

fn invalid(b: &BlockingBucket, key: &str, i: usize, why: String) -> ReportError {
    ReportError::Invalid {
        file: format!("{}/{key}", b.name()),
        why: format!("element {i}: {why}"),
    }
}

/// Reads and parses a JSON object; None when it does not exist.
fn read_json<T: DeserializeOwned>(
    b: &BlockingBucket,
    key: &str,
    cap: u64,
) -> Result<Option<T>, ReportError> {
    let bytes = match b.get_capped(key, cap) {
        Ok(bytes) => bytes,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| ReportError::Invalid {
            file: format!("{}/{key}", b.name()),
            why: format!("not the expected JSON: {e}"),
        })
}
