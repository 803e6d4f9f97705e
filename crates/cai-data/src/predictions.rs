//! Prediction files: one row per sample, `file,row,z_pred[,z_true]`, as CSV or Parquet.
//!
//! The original threw its predictions away; ours keeps them, in a file that is either complete
//! or absent (temp file + rename), so a crashed run never leaves a plausible-looking partial
//! result. The same writer serves `cai predict` and the per-rank outputs of the workflow, so
//! both produce the same schema.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, Float32Array, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use cai_torchfile::AtomicFile;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use crate::error::DataError;

/// Parquet key-value metadata key holding the model's origin (path or `seed:N`).
pub const META_MODEL: &str = "cai.model";
/// Parquet key-value metadata key: `"true"` when the weights were seeded random.
pub const META_UNTRAINED: &str = "cai.untrained";
/// Parquet key-value metadata key holding the precision of the model's products (`fp32`,
/// `bf16`, `int8`), for writers that pass it through [`PredictionWriter::create_with`].
pub const META_PRECISION: &str = "cai.precision";
/// Rows per Parquet row group: large enough for good compression, small enough to stream.
const ROW_GROUP_ROWS: usize = 64 * 1024;

/// Output format of a prediction file, chosen from its extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PredictionFormat {
    /// Comma-separated text with a header line.
    Csv,
    /// Apache Parquet (snappy), for analysis tools and large runs.
    Parquet,
}

impl PredictionFormat {
    /// Picks the format from `.csv` / `.parquet`, so a typo fails before any work is done.
    pub fn from_path(path: &Path) -> Result<Self, DataError> {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("csv") => Ok(PredictionFormat::Csv),
            Some(e) if e.eq_ignore_ascii_case("parquet") => Ok(PredictionFormat::Parquet),
            _ => Err(DataError::Invalid(format!(
                "{}: prediction output must end in .csv or .parquet",
                path.display()
            ))),
        }
    }
}

/// What produced the predictions; recorded in the file so an untrained run is never mistaken
/// for a real one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PredictionMeta {
    /// Where the weights came from (file path or `seed:N`).
    pub model: String,
    /// True for seeded random weights.
    pub untrained: bool,
}

enum Sink {
    Csv(Box<csv::Writer<BufWriter<std::fs::File>>>),
    Parquet(Box<ArrowWriter<std::fs::File>>),
}

/// Streams prediction rows to a CSV or Parquet file that appears only on [`finish`].
///
/// [`finish`]: PredictionWriter::finish
pub struct PredictionWriter {
    sink: Sink,
    schema: SchemaRef,
    with_truth: bool,
    rows: u64,
    path: PathBuf,
    atomic: AtomicFile,
}

impl std::fmt::Debug for PredictionWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PredictionWriter")
            .field("path", &self.path)
            .field("with_truth", &self.with_truth)
            .field("rows", &self.rows)
            .finish()
    }
}

impl PredictionWriter {
    /// Creates the temporary file next to `path`; `with_truth` adds the nullable `z_true`
    /// column (set it when any input has redshifts).
    pub fn create(path: &Path, meta: &PredictionMeta, with_truth: bool) -> Result<Self, DataError> {
        Self::create_with(path, meta, with_truth, &[])
    }

    /// [`Self::create`] with more Parquet key-value metadata (e.g. [`META_PRECISION`]);
    /// CSV files ignore it. A separate constructor so existing callers stay as they are.
    pub fn create_with(
        path: &Path,
        meta: &PredictionMeta,
        with_truth: bool,
        extra: &[(&str, &str)],
    ) -> Result<Self, DataError> {
        let format = PredictionFormat::from_path(path)?;
        let name = path.display().to_string();
        let io = |e| DataError::io(&name, e);
        let atomic = AtomicFile::create(path).map_err(io)?;
        let file = atomic.try_clone_file().map_err(io)?;
        let schema = Arc::new(schema(with_truth));
        let sink = match format {
            PredictionFormat::Csv => {
                let mut out = BufWriter::new(file);
                if meta.untrained {
                    writeln!(
                        out,
                        "# UNTRAINED MODEL ({}): random weights, predictions are meaningless",
                        meta.model
                    )
                    .map_err(io)?;
                }
                let mut w = csv::Writer::from_writer(out);
                let header: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                w.write_record(&header).map_err(|e| csv_err(&name, e))?;
                Sink::Csv(Box::new(w))
            }
            PredictionFormat::Parquet => {
                let props = WriterProperties::builder()
                    .set_compression(Compression::SNAPPY)
                    .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
                    .set_key_value_metadata(Some(
                        [
                            KeyValue::new(META_MODEL.to_string(), meta.model.clone()),
                            KeyValue::new(META_UNTRAINED.to_string(), meta.untrained.to_string()),
                        ]
                        .into_iter()
                        .chain(
                            extra
                                .iter()
                                .map(|(k, v)| KeyValue::new(k.to_string(), v.to_string())),
                        )
                        .collect(),
                    ))
                    .build();
                let w = ArrowWriter::try_new(file, schema.clone(), Some(props))
                    .map_err(|e| DataError::format(&name, e.to_string()))?;
                Sink::Parquet(Box::new(w))
            }
        };
        Ok(PredictionWriter {
            sink,
            schema,
            with_truth,
            rows: 0,
            path: path.to_path_buf(),
            atomic,
        })
    }

    /// Appends rows `start_row..start_row + z_pred.len()` of partition `file`; `z_true` is
    /// written when given and the file has the column, else left null.
    pub fn write_batch(
        &mut self,
        file: &str,
        start_row: u64,
        z_pred: &[f32],
        z_true: Option<&[f32]>,
    ) -> Result<(), DataError> {
        if let Some(z) = z_true {
            if z.len() != z_pred.len() {
                return Err(DataError::Invalid(format!(
                    "{}: {} predictions but {} labels",
                    self.path.display(),
                    z_pred.len(),
                    z.len()
                )));
            }
        }
        let name = self.path.display().to_string();
        match &mut self.sink {
            Sink::Csv(w) => {
                let mut row_buf = String::new();
                let mut pred_buf = String::new();
                let mut true_buf = String::new();
                for (i, p) in z_pred.iter().enumerate() {
                    row_buf.clear();
                    pred_buf.clear();
                    true_buf.clear();
                    use std::fmt::Write as _;
                    let _ = write!(row_buf, "{}", start_row + i as u64);
                    let _ = write!(pred_buf, "{p}");
                    if let Some(z) = z_true {
                        let _ = write!(true_buf, "{}", z[i]);
                    }
                    let r = if self.with_truth {
                        w.write_record([file, &row_buf, &pred_buf, &true_buf])
                    } else {
                        w.write_record([file, &row_buf, &pred_buf])
                    };
                    r.map_err(|e| csv_err(&name, e))?;
                }
            }
            Sink::Parquet(w) => {
                let n = z_pred.len();
                let mut cols: Vec<ArrayRef> = vec![
                    Arc::new(StringArray::from(vec![file; n])),
                    Arc::new(UInt64Array::from_iter_values(
                        (0..n as u64).map(|i| start_row + i),
                    )),
                    Arc::new(Float32Array::from(z_pred.to_vec())),
                ];
                if self.with_truth {
                    let z: Float32Array = match z_true {
                        Some(z) => Float32Array::from(z.to_vec()),
                        None => Float32Array::from(vec![None; n]),
                    };
                    cols.push(Arc::new(z));
                }
                let batch = RecordBatch::try_new(self.schema.clone(), cols)
                    .map_err(|e| DataError::format(&name, e.to_string()))?;
                w.write(&batch)
                    .map_err(|e| DataError::format(&name, e.to_string()))?;
            }
        }
        self.rows += z_pred.len() as u64;
        Ok(())
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Flushes, syncs and renames the file into place; returns the number of rows.
    pub fn finish(self) -> Result<u64, DataError> {
        let name = self.path.display().to_string();
        match self.sink {
            Sink::Csv(w) => {
                let out = w
                    .into_inner()
                    .map_err(|e| DataError::io(&name, e.into_error()))?;
                out.into_inner()
                    .map_err(|e| DataError::io(&name, e.into_error()))?;
            }
            Sink::Parquet(w) => {
                w.close()
                    .map_err(|e| DataError::format(&name, e.to_string()))?;
            }
        }
        self.atomic.commit().map_err(|e| DataError::io(&name, e))?;
        Ok(self.rows)
    }
}

/// The prediction schema: `file` (utf8), `row` (u64), `z_pred` (f32), optional `z_true`.
fn schema(with_truth: bool) -> Schema {
    let mut fields = vec![
        Field::new("file", DataType::Utf8, false),
        Field::new("row", DataType::UInt64, false),
        Field::new("z_pred", DataType::Float32, false),
    ];
    if with_truth {
        fields.push(Field::new("z_true", DataType::Float32, true));
    }
    Schema::new(fields)
}

fn csv_err(file: &str, e: csv::Error) -> DataError {
    match e.into_kind() {
        csv::ErrorKind::Io(e) => DataError::io(file, e),
        other => DataError::format(file, format!("{other:?}")),
    }
}

/// Rows in a Parquet file, from its footer alone: how a resumed run checks that a stored
/// predictions file is whole without reading its rows.
pub fn parquet_row_count(name: &str, bytes: bytes::Bytes) -> Result<u64, DataError> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let reader =
        SerializedFileReader::new(bytes).map_err(|e| DataError::format(name, e.to_string()))?;
    Ok(reader.metadata().file_metadata().num_rows().max(0) as u64)
}

/// Streams the rows of a Parquet predictions file (as written by [`PredictionWriter`]) to
/// `row(file, row, z_pred, z_true)`, a record batch at a time, so a summary over many ranks
/// never holds more than one batch of strings. Returns the row count.
pub fn read_parquet_predictions(
    name: &str,
    bytes: bytes::Bytes,
    mut row: impl FnMut(&str, u64, f32, Option<f32>),
) -> Result<u64, DataError> {
    use arrow::array::{Array, Float32Array, StringArray, UInt64Array};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    let bad = |what: String| DataError::format(name, what);
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .and_then(|b| b.with_batch_size(8192).build())
        .map_err(|e| bad(e.to_string()))?;
    let mut rows = 0u64;
    for batch in reader {
        let batch = batch.map_err(|e| bad(e.to_string()))?;
        let column = |n: &str| {
            batch
                .column_by_name(n)
                .ok_or_else(|| bad(format!("no `{n}` column")))
        };
        let file = column("file")?
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| bad("`file` is not a string column".into()))?;
        let idx = column("row")?
            .as_any()
            .downcast_ref::<UInt64Array>()
            .ok_or_else(|| bad("`row` is not a u64 column".into()))?;
        let pred = column("z_pred")?
            .as_any()
            .downcast_ref::<Float32Array>()
            .ok_or_else(|| bad("`z_pred` is not an f32 column".into()))?;
        let truth = match batch.column_by_name("z_true") {
            Some(c) => Some(
                c.as_any()
                    .downcast_ref::<Float32Array>()
                    .ok_or_else(|| bad("`z_true` is not an f32 column".into()))?,
            ),
            None => None,
        };
        for i in 0..batch.num_rows() {
            let t = truth.and_then(|t| (!t.is_null(i)).then(|| t.value(i)));
            row(file.value(i), idx.value(i), pred.value(i), t);
        }
        rows += batch.num_rows() as u64;
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(untrained: bool) -> PredictionMeta {
        PredictionMeta {
            model: "seed:1".into(),
            untrained,
        }
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn csv_rows_banner_and_nulls() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.csv");
        let mut w = PredictionWriter::create(&path, &meta(true), true).unwrap();
        w.write_batch("a.pt", 0, &[1.5, 2.0], Some(&[0.1, 0.2]))
            .unwrap();
        w.write_batch("b.pt", 4, &[3.0], None).unwrap();
        assert!(!path.exists(), "visible before finish");
        assert_eq!(w.finish().unwrap(), 3);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("# UNTRAINED MODEL (seed:1)"));
        assert_eq!(lines[1], "file,row,z_pred,z_true");
        assert_eq!(lines[2], "a.pt,0,1.5,0.1");
        assert_eq!(lines[4], "b.pt,4,3,");
        assert_eq!(entries(dir.path()), vec!["p.csv"]);
    }

    #[test]
    fn trained_csv_has_no_banner_and_no_truth_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.csv");
        let mut w = PredictionWriter::create(&path, &meta(false), false).unwrap();
        w.write_batch("a.pt", 0, &[1.0], None).unwrap();
        w.finish().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "file,row,z_pred\na.pt,0,1\n");
    }

    #[test]
    fn parquet_metadata_and_drop_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.parquet");
        let extra = [(META_PRECISION, "int8")];
        let mut w = PredictionWriter::create_with(&path, &meta(true), true, &extra).unwrap();
        w.write_batch("a.pt", 0, &[1.0, 2.0], Some(&[0.1, 0.2]))
            .unwrap();
        w.finish().unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let reader =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        let kv = reader
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .unwrap()
            .clone();
        let get = |k: &str| kv.iter().find(|e| e.key == k).and_then(|e| e.value.clone());
        assert_eq!(get(META_UNTRAINED).as_deref(), Some("true"));
        assert_eq!(get(META_MODEL).as_deref(), Some("seed:1"));
        assert_eq!(get(META_PRECISION).as_deref(), Some("int8"));
        let rows: usize = reader.build().unwrap().map(|b| b.unwrap().num_rows()).sum();
        assert_eq!(rows, 2);

        let other = dir.path().join("q.parquet");
        let mut w = PredictionWriter::create(&other, &meta(false), false).unwrap();
        w.write_batch("a.pt", 0, &[1.0], None).unwrap();
        drop(w);
        assert_eq!(entries(dir.path()), vec!["p.parquet"]);
    }

    #[test]
    fn rejects_unknown_extension_and_label_mismatch() {
        let err = PredictionWriter::create(Path::new("out.json"), &meta(false), false).unwrap_err();
        assert!(err.to_string().contains("out.json"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let mut w =
            PredictionWriter::create(&dir.path().join("p.csv"), &meta(false), true).unwrap();
        assert!(w.write_batch("a", 0, &[1.0, 2.0], Some(&[1.0])).is_err());
    }
}
