//! A partition opened for streaming batch reads, whatever its format.

use std::ops::Range;
use std::path::Path;

use cai_torchfile::{Element, TensorRef, TorchFile};

use crate::error::DataError;
use crate::format::Format;
use crate::safetensors_read::{StBytes, StFile, StTensor};
use crate::torch_layout;

/// Largest accepted image (channels x height x width) per sample.
const MAX_IMAGE_ELEMENTS: usize = 1 << 24;
/// Largest accepted magnitude vector per sample.
const MAX_MAGNITUDES: usize = 1 << 12;

/// One batch of rows, converted to `f32`; buffers are reused across reads.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Batch {
    /// First row of the batch within the partition.
    pub start_row: usize,
    /// Number of rows.
    pub len: usize,
    /// `len x C x H x W` pixels, row-major.
    pub images: Vec<f32>,
    /// `len x M` magnitudes.
    pub magnitudes: Vec<f32>,
    /// `len` spectroscopic redshifts, when the partition has them.
    pub redshifts: Option<Vec<f32>>,
}

/// Which of the three partition tensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Which {
    Images,
    Magnitudes,
    Redshifts,
}

enum Backend {
    Torch {
        file: TorchFile,
        tensors: Vec<TensorRef>,
    },
    Safetensors {
        file: StFile,
        tensors: Vec<StTensor>,
    },
}

/// An opened, validated partition; reads are positional, so it is `Send + Sync` and
/// batches can be read from several threads.
pub struct Partition {
    name: String,
    rows: usize,
    image_shape: [usize; 3],
    mag_width: usize,
    format: Format,
    backend: Backend,
}

impl std::fmt::Debug for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Partition")
            .field("name", &self.name)
            .field("rows", &self.rows)
            .field("image_shape", &self.image_shape)
            .field("mag_width", &self.mag_width)
            .field("format", &self.format)
            .finish()
    }
}

impl Partition {
    /// Opens a file, detecting its format from its content.
    pub fn open(path: &Path) -> Result<Self, DataError> {
        let name = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|e| DataError::io(&name, e))?;
        let mut head = [0u8; 9];
        let n = std::os::unix::fs::FileExt::read_at(&file, &mut head, 0)
            .map_err(|e| DataError::io(&name, e))?;
        match Format::detect(&head[..n]) {
            Some(Format::Torch) => {
                let tf = TorchFile::open(path).map_err(|e| DataError::torch(&name, e))?;
                Self::from_torch(name, tf)
            }
            Some(Format::Safetensors) => {
                // SAFETY: partitions are not modified while being read; a concurrent
                // writer would replace the file by rename, leaving this map intact.
                let map =
                    unsafe { memmap2::Mmap::map(&file) }.map_err(|e| DataError::io(&name, e))?;
                let st = StFile::parse(&name, StBytes::Map(map))?;
                Self::from_safetensors(name, st)
            }
            None => Err(DataError::format(
                &name,
                "neither a torch .pt archive nor a safetensors file",
            )),
        }
    }

    /// Opens a partition held in memory (fetched from a store, or a fuzz input).
    pub fn from_bytes<T: AsRef<[u8]> + Send + Sync + 'static>(
        name: String,
        bytes: T,
    ) -> Result<Self, DataError> {
        match Format::detect(&bytes.as_ref()[..bytes.as_ref().len().min(9)]) {
            Some(Format::Torch) => {
                let tf = TorchFile::from_bytes(name.clone(), bytes)
                    .map_err(|e| DataError::torch(&name, e))?;
                Self::from_torch(name, tf)
            }
            Some(Format::Safetensors) => {
                let st = StFile::parse(&name, StBytes::Mem(Box::new(bytes)))?;
                Self::from_safetensors(name, st)
            }
            None => Err(DataError::format(
                &name,
                "neither a torch .pt archive nor a safetensors file",
            )),
        }
    }

    fn from_torch(name: String, file: TorchFile) -> Result<Self, DataError> {
        let tensors = torch_layout::locate(file.root()).map_err(|found| {
            DataError::layout(
                &name,
                "dataset",
                "a TensorDataset or tuple/dict of images, magnitudes[, redshifts]",
                found,
            )
        })?;
        let shapes: Vec<Vec<usize>> = tensors.iter().map(|t| t.shape.clone()).collect();
        let (rows, image_shape, mag_width) = validate(&name, &shapes)?;
        Ok(Partition {
            name,
            rows,
            image_shape,
            mag_width,
            format: Format::Torch,
            backend: Backend::Torch { file, tensors },
        })
    }

    fn from_safetensors(name: String, file: StFile) -> Result<Self, DataError> {
        let mut tensors = Vec::new();
        for key in ["images", "magnitudes"] {
            let t = file.get(key).ok_or_else(|| {
                let have: Vec<&str> = file.tensors.iter().map(|(n, _)| n.as_str()).collect();
                DataError::layout(
                    &name,
                    key,
                    "a tensor of that name",
                    format!("only {have:?}"),
                )
            })?;
            tensors.push(t.clone());
        }
        if let Some(z) = file.get("redshifts") {
            tensors.push(z.clone());
        }
        let shapes: Vec<Vec<usize>> = tensors.iter().map(|t| t.shape.clone()).collect();
        let (rows, image_shape, mag_width) = validate(&name, &shapes)?;
        Ok(Partition {
            name,
            rows,
            image_shape,
            mag_width,
            format: Format::Safetensors,
            backend: Backend::Safetensors { file, tensors },
        })
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// True when the partition holds no samples.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// `[C, H, W]` of each image.
    pub fn image_shape(&self) -> [usize; 3] {
        self.image_shape
    }

    /// Magnitudes per sample.
    pub fn magnitude_width(&self) -> usize {
        self.mag_width
    }

    /// Whether spectroscopic redshifts are present.
    pub fn has_redshifts(&self) -> bool {
        self.tensor_count() == 3
    }

    /// The file (or object) name, for messages and output naming.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The detected format.
    pub fn format(&self) -> Format {
        self.format
    }

    fn tensor_count(&self) -> usize {
        match &self.backend {
            Backend::Torch { tensors, .. } => tensors.len(),
            Backend::Safetensors { tensors, .. } => tensors.len(),
        }
    }

    /// Reads rows `rows` into `out`, reusing its buffers.
    pub fn read_batch(&self, rows: Range<usize>, out: &mut Batch) -> Result<(), DataError> {
        self.check_rows(&rows)?;
        out.start_row = rows.start;
        out.len = rows.len();
        self.read_tensor(Which::Images, rows.clone(), &mut out.images)?;
        self.read_tensor(Which::Magnitudes, rows.clone(), &mut out.magnitudes)?;
        if self.has_redshifts() {
            let z = out.redshifts.get_or_insert_with(Vec::new);
            self.read_tensor(Which::Redshifts, rows, z)?;
        } else {
            out.redshifts = None;
        }
        Ok(())
    }

    /// Consecutive batches of at most `batch_size` rows (at least one row each).
    pub fn batches(
        &self,
        batch_size: usize,
    ) -> impl Iterator<Item = Result<Batch, DataError>> + '_ {
        let step = batch_size.max(1);
        (0..self.rows).step_by(step).map(move |start| {
            let mut b = Batch::default();
            self.read_batch(start..(start + step).min(self.rows), &mut b)?;
            Ok(b)
        })
    }

    fn check_rows(&self, rows: &Range<usize>) -> Result<(), DataError> {
        if rows.start > rows.end || rows.end > self.rows {
            return Err(DataError::Invalid(format!(
                "{}: rows {rows:?} outside 0..{}",
                self.name, self.rows
            )));
        }
        Ok(())
    }

    /// Rows of one tensor converted to `T` (used by split/convert to keep f64).
    pub(crate) fn read_tensor<T: Element>(
        &self,
        which: Which,
        rows: Range<usize>,
        out: &mut Vec<T>,
    ) -> Result<(), DataError> {
        self.check_rows(&rows)?;
        let i = which as usize;
        match &self.backend {
            Backend::Torch { file, tensors } => {
                let t = tensors
                    .get(i)
                    .ok_or_else(|| DataError::Invalid(format!("{}: no {which:?}", self.name)))?;
                file.read_rows_into(t, rows, out)
                    .map_err(|e| DataError::torch(&self.name, e))
            }
            Backend::Safetensors { file, tensors } => {
                let t = tensors
                    .get(i)
                    .ok_or_else(|| DataError::Invalid(format!("{}: no {which:?}", self.name)))?;
                file.read_rows(t, rows, out);
                Ok(())
            }
        }
    }
}

/// Checks ranks and the shared sample count; returns (N, [C,H,W], M).
fn validate(file: &str, shapes: &[Vec<usize>]) -> Result<(usize, [usize; 3], usize), DataError> {
    let img = &shapes[0];
    if img.len() != 4 {
        return Err(DataError::layout(
            file,
            "images",
            "rank 4 [N, C, H, W]",
            format!("shape {img:?}"),
        ));
    }
    let n = img[0];
    let per_image = img[1]
        .checked_mul(img[2])
        .and_then(|x| x.checked_mul(img[3]));
    if per_image.is_none_or(|p| p == 0 || p > MAX_IMAGE_ELEMENTS) {
        return Err(DataError::layout(
            file,
            "images",
            format!("1 to {MAX_IMAGE_ELEMENTS} values per image"),
            format!("shape {img:?}"),
        ));
    }
    let mag = &shapes[1];
    if mag.len() != 2 || mag[0] != n || mag[1] == 0 || mag[1] > MAX_MAGNITUDES {
        return Err(DataError::layout(
            file,
            "magnitudes",
            format!("shape [{n}, M] with 1 <= M <= {MAX_MAGNITUDES}"),
            format!("shape {mag:?}"),
        ));
    }
    if let Some(z) = shapes.get(2) {
        let ok = (z.len() == 1 || (z.len() == 2 && z[1] == 1)) && z[0] == n;
        if !ok {
            return Err(DataError::layout(
                file,
                "redshifts",
                format!("shape [{n}]"),
                format!("shape {z:?}"),
            ));
        }
    }
    Ok((n, [img[1], img[2], img[3]], mag[1]))
}
