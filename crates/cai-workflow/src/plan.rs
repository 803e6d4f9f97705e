//! Initialize's plan: which partition files each rank gets. Same rule as the original
//! (contiguous runs of `ceil(files_left / ranks_left)` files), but over a complete listing, in
//! the order the user chose, and recorded per run.

use serde::{Deserialize, Serialize};

use crate::payload::Payload;
use crate::rank::{DataPath, RankPayload};
use crate::settings::RunSettings;

/// File extensions Initialize treats as partitions.
pub const PARTITION_EXTENSIONS: [&str; 2] = [".pt", ".safetensors"];

/// The plan of one run, written to `<result_path>/plan.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The payload as understood (original field names, defaults filled in, extras kept).
    pub payload: serde_json::Value,
    /// cai's run-wide settings.
    pub run: RunSettings,
    /// The partition keys used, in hand-out order.
    pub files: Vec<String>,
    /// One payload per rank, in rank order.
    pub ranks: Vec<RankPayload>,
    /// Oddities worth a look (gaps in the numbering, ignored objects).
    pub warnings: Vec<String>,
}

/// Why no plan could be made.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PlanError {
    /// Nothing to run on.
    #[error("no partition files (*.pt or *.safetensors) under {bucket}/{prefix}/")]
    NoFiles {
        /// data_bucket.
        bucket: String,
        /// data_prefix.
        prefix: String,
    },
}

/// Hands `files` to `world` ranks in contiguous runs: rank r takes
/// `ceil(files_left / ranks_left)` files; one file is a string, several a list, none null.
pub fn assign(files: &[String], world: usize) -> Vec<DataPath> {
    let mut out = Vec::with_capacity(world);
    let mut next = 0;
    for r in 0..world {
        let left = files.len() - next;
        let step = left.div_ceil(world - r);
        out.push(match step {
            0 => DataPath::None,
            1 => DataPath::One(files[next].clone()),
            _ => DataPath::Many(files[next..next + step].to_vec()),
        });
        next += step;
    }
    out
}

/// Makes the plan from the payload and the complete listing of keys under `data_prefix/`.
pub fn make_plan(payload: &Payload, listing: &[String]) -> Result<Plan, PlanError> {
    let mut warnings = Vec::new();
    let mut files: Vec<String> = listing
        .iter()
        .filter(|k| PARTITION_EXTENSIONS.iter().any(|e| k.ends_with(e)))
        .cloned()
        .collect();
    let ignored = listing.len() - files.len();
    if ignored > 0 {
        warnings.push(format!(
            "{ignored} object(s) under {}/{}/ are not partitions (*.pt, *.safetensors) and were ignored",
            payload.data_bucket, payload.data_prefix
        ));
    }
    if files.is_empty() {
        return Err(PlanError::NoFiles {
            bucket: payload.data_bucket.clone(),
            prefix: payload.data_prefix.clone(),
        });
    }
    warnings.extend(numbering_gaps(&files, &payload.data_prefix));
    payload.settings.file_order.sort(&mut files);
    if let Some(limit) = payload.file_limit {
        files.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    }
    let world = payload.world_size.map_or(files.len(), |w| w as usize);
    let ranks = assign(&files, world)
        .into_iter()
        .enumerate()
        .map(|(r, data_path)| RankPayload {
            s3_bucket: payload.bucket.clone(),
            s3_object_name: payload.s3_object_name.clone(),
            script: payload.script.clone(),
            s3_object_type: payload.object_type.clone(),
            world_size: world.to_string(),
            rank: r.to_string(),
            data_bucket: payload.data_bucket.clone(),
            data_prefix: payload.data_prefix.clone(),
            data_path,
            result_path: payload.result_path.clone(),
            batch_size: payload.batch_size,
        })
        .collect();
    Ok(Plan {
        payload: payload.to_value(),
        run: payload.settings.clone(),
        files,
        ranks,
        warnings,
    })
}

/// Partitions are conventionally `1.pt .. N.pt`; a missing number usually means a failed
/// upload, so say which (as the original logs), without failing.
fn numbering_gaps(files: &[String], prefix: &str) -> Option<String> {
    let mut numbers: Vec<u64> = files
        .iter()
        .filter_map(|k| {
            let name = k.rsplit('/').next()?;
            let stem = name.split('.').next()?;
            stem.parse().ok()
        })
        .collect();
    if numbers.len() != files.len() || numbers.is_empty() {
        return None;
    }
    numbers.sort_unstable();
    let max = *numbers.last()?;
    let mut missing = Vec::new();
    let mut it = numbers.iter().peekable();
    for n in 1..=max {
        while it.peek().is_some_and(|&&x| x < n) {
            it.next();
        }
        if it.peek() != Some(&&n) {
            missing.push(n);
        }
    }
    if missing.is_empty() {
        return None;
    }
    let shown: Vec<String> = missing.iter().take(20).map(u64::to_string).collect();
    let more = if missing.len() > 20 {
        format!(" and {} more", missing.len() - 20)
    } else {
        String::new()
    };
    Some(format!(
        "{prefix}/: {} partition number(s) missing from 1..{max}: {}{more}",
        missing.len(),
        shown.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("p/{i}.pt")).collect()
    }

    #[test]
    fn contiguous_runs_of_ceil_left_over_ranks() {
        let a = assign(&names(10), 4);
        assert_eq!(
            a[0],
            DataPath::Many(vec!["p/1.pt".into(), "p/2.pt".into(), "p/3.pt".into()])
        );
        assert_eq!(
            a[1],
            DataPath::Many(vec!["p/4.pt".into(), "p/5.pt".into(), "p/6.pt".into()])
        );
        assert_eq!(a[2], DataPath::Many(vec!["p/7.pt".into(), "p/8.pt".into()]));
        assert_eq!(
            a[3],
            DataPath::Many(vec!["p/9.pt".into(), "p/10.pt".into()])
        );
        let b = assign(&names(2), 4);
        assert_eq!(b[0], DataPath::One("p/1.pt".into()));
        assert_eq!(b[1], DataPath::One("p/2.pt".into()));
        assert_eq!(b[2], DataPath::None);
        assert_eq!(b[3], DataPath::None);
    }

    #[test]
    fn gaps_are_named() {
        let files = vec!["p/1.pt".to_string(), "p/2.pt".into(), "p/5.pt".into()];
        let w = numbering_gaps(&files, "p").unwrap();
        assert!(w.contains("missing from 1..5: 3, 4"), "{w}");
        assert_eq!(numbering_gaps(&names(5), "p"), None);
    }
}
