//! Streams every rank's Parquet predictions into one [`Accumulator`], ranks in parallel, so
//! a run of thousands of ranks reduces in seconds and in bounded memory.

use cai_store::BlockingStore;
use rayon::prelude::*;

use crate::accuracy::{Accumulator, AccuracyData};

/// Files that could not be read, named in the notes up to this many.
const NAMED: usize = 3;

/// Reduces the predictions files `(bucket, key)`; unreadable ones are noted and skipped.
pub fn reduce(
    store: &BlockingStore,
    files: &[(String, String)],
    notes: &mut Vec<String>,
) -> Option<AccuracyData> {
    if files.is_empty() {
        notes.push("No rank wrote predictions: no accuracy figures.".into());
        return None;
    }
    let (acc, failed) = files
        .par_iter()
        .fold(
            || (Accumulator::default(), Vec::new()),
            |(mut acc, mut failed), (bucket, key)| {
                if let Err(e) = read_one(store, bucket, key, &mut acc) {
                    failed.push(format!("{bucket}/{key}: {e}"));
                }
                (acc, failed)
            },
        )
        .reduce(
            || (Accumulator::default(), Vec::new()),
            |(a, mut fa), (b, fb)| {
                fa.extend(fb);
                (a.merge(b), fa)
            },
        );
    if !failed.is_empty() {
        let named: Vec<&str> = failed.iter().take(NAMED).map(String::as_str).collect();
        notes.push(format!(
            "{} of {} predictions files could not be read and are left out of the accuracy figures ({}{}).",
            failed.len(),
            files.len(),
            named.join("; "),
            if failed.len() > NAMED { "; ..." } else { "" }
        ));
    }
    let unlabelled = acc.unlabelled();
    let data = acc.finish();
    match (&data, unlabelled) {
        (None, 0) => {}
        (None, _) => notes.push(format!(
            "The partitions carry no true (spectroscopic) redshifts, so the {unlabelled} predictions cannot be compared with anything: the accuracy figures are skipped."
        )),
        (Some(_), n) if n > 0 => notes.push(format!(
            "{n} predictions have no true redshift and are not in the accuracy figures."
        )),
        _ => {}
    }
    data
}

fn read_one(
    store: &BlockingStore,
    bucket: &str,
    key: &str,
    acc: &mut Accumulator,
) -> Result<(), String> {
    let bytes = store
        .bucket(bucket)
        .and_then(|b| b.get(key))
        .map_err(|e| e.to_string())?;
    let name = format!("{bucket}/{key}");
    // Buffered, so a file that fails half way adds nothing.
    let mut rows = Vec::new();
    cai_data::read_parquet_predictions(&name, bytes, |_, _, pred, truth| rows.push((pred, truth)))
        .map_err(|e| e.to_string())?;
    for (pred, truth) in rows {
        acc.add(pred, truth);
    }
    Ok(())
}
