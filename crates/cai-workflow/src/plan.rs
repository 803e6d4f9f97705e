//! Initialize's plan: which partition files each rank gets. Same rule as the original
//! (contiguous runs of `ceil(files_left / ranks_left)` files), but over a complete listing, in
//! the order the user chose, and recorded per run.
//!
//! The plan holds the files and the world size, never one payload per rank: rank `r`'s payload
//! is computed when asked for ([`Plan::rank`]), so planning, writing the Map's items and
//! summarizing take memory that grows with the number of files, not with the world size.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

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
    /// Number of ranks.
    pub world_size: u64,
    /// What every rank's payload holds apart from `RANK` and `DATA_PATH`.
    pub rank_template: RankPayload,
    /// SHA-256 of the rank payloads in rank order (see [`Plan::ranks_digest`]): how `--resume`
    /// checks it runs the same plan without keeping every rank.
    pub ranks_sha256: String,
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
/// Materialises every rank; [`Plan::rank`] computes one at a time with the same result.
pub fn assign(files: &[String], world: usize) -> Vec<DataPath> {
    let mut out = Vec::with_capacity(world);
    let mut next = 0;
    for r in 0..world {
        let left = files.len() - next;
        let step = left.div_ceil(world - r);
        out.push(data_path(&files[next..next + step]));
        next += step;
    }
    out
}

fn data_path(files: &[String]) -> DataPath {
    match files {
        [] => DataPath::None,
        [one] => DataPath::One(one.clone()),
        many => DataPath::Many(many.to_vec()),
    }
}

/// Which slice of `files` rank `r` of `world` gets under the `ceil(left / ranks left)` rule:
/// the first `files % world` ranks take one file more than the rest.
fn share(files: usize, world: u64, r: u64) -> std::ops::Range<usize> {
    let world = world.max(1) as u128;
    let (r, files) = (r as u128, files as u128);
    let (base, extra) = (files / world, files % world);
    let start = r * base + r.min(extra);
    let len = base + u128::from(r < extra);
    start as usize..(start + len) as usize
}

impl Plan {
    /// Rank `r`'s payload, exactly as the original's Initialize would emit it.
    pub fn rank(&self, r: u64) -> RankPayload {
        let range = share(self.files.len(), self.world_size, r);
        RankPayload {
            rank: r.to_string(),
            data_path: data_path(&self.files[range]),
            ..self.rank_template.clone()
        }
    }

    /// Every rank's payload in rank order, computed one at a time.
    pub fn ranks(&self) -> impl Iterator<Item = RankPayload> + '_ {
        (0..self.world_size).map(|r| self.rank(r))
    }

    /// Ranks that have at least one file.
    pub fn ranks_with_data(&self) -> u64 {
        self.world_size.min(self.files.len() as u64)
    }

    /// The key of the Map's items object for this plan's result path.
    pub fn items_key(&self) -> String {
        crate::layout::items_key(&self.rank_template.result_path)
    }

    /// SHA-256 (hex) of the rank payloads' JSON, one per line in rank order: equal digests
    /// mean equal plans, whatever the world size.
    pub fn ranks_digest(&self) -> String {
        digest_of(self.ranks())
    }
}

/// The digest [`Plan::ranks_digest`] computes, over any sequence of rank payloads (e.g. the
/// `ranks` list of a plan.json written by an older cai).
pub fn digest_of(ranks: impl IntoIterator<Item = RankPayload>) -> String {
    let mut h = Sha256::new();
    for r in ranks {
        h.update(serde_json::to_vec(&r).expect("a rank payload serializes"));
        h.update(b"\n");
    }
    h.finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
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
    let world = payload.world_size.unwrap_or(files.len() as u64);
    let mut plan = Plan {
        payload: payload.to_value(),
        run: payload.settings.clone(),
        files,
        world_size: world,
        rank_template: RankPayload {
            s3_bucket: payload.bucket.clone(),
            s3_object_name: payload.s3_object_name.clone(),
            script: payload.script.clone(),
            s3_object_type: payload.object_type.clone(),
            world_size: world.to_string(),
            rank: String::new(),
            data_bucket: payload.data_bucket.clone(),
            data_prefix: payload.data_prefix.clone(),
            data_path: DataPath::None,
            result_path: payload.result_path.clone(),
            batch_size: payload.batch_size,
        },
        ranks_sha256: String::new(),
        warnings,
    };
    plan.ranks_sha256 = plan.ranks_digest();
    Ok(plan)
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
            if missing.len() > 1_000 {
                break;
            }
        }
    }
    if missing.is_empty() {
        return None;
    }
    let shown: Vec<String> = missing.iter().take(20).map(u64::to_string).collect();
    let (count, more) = if missing.len() > 1_000 {
        ("over 1,000".to_string(), " and more".to_string())
    } else if missing.len() > 20 {
        (
            missing.len().to_string(),
            format!(" and {} more", missing.len() - 20),
        )
    } else {
        (missing.len().to_string(), String::new())
    };
    Some(format!(
        "{prefix}/: {count} partition number(s) missing from 1..{max}: {}{more}",
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
    fn one_rank_at_a_time_equals_the_greedy_rule() {
        for files in [0, 1, 2, 7, 10, 11, 100, 130] {
            for world in [1u64, 2, 3, 4, 11, 50, 99, 100, 101, 257] {
                let list = names(files);
                let greedy = assign(&list, world as usize);
                for (r, want) in greedy.iter().enumerate() {
                    let got = data_path(&list[share(files, world, r as u64)]);
                    assert_eq!(&got, want, "files {files} world {world} rank {r}");
                }
            }
        }
    }

    #[test]
    fn gaps_are_named() {
        let files = vec!["p/1.pt".to_string(), "p/2.pt".into(), "p/5.pt".into()];
        let w = numbering_gaps(&files, "p").unwrap();
        assert!(w.contains("missing from 1..5: 3, 4"), "{w}");
        assert_eq!(numbering_gaps(&names(5), "p"), None);
    }

    #[test]
    fn a_huge_gap_is_bounded() {
        let files = vec!["p/1.pt".to_string(), "p/4000000000.pt".into()];
        let w = numbering_gaps(&files, "p").unwrap();
        assert!(w.ends_with("and more"), "{w}");
    }
}
