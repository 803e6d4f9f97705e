//! candle operations backed by the fused kernels in [`crate::kernels`].
//!
//! candle's generic CPU ops allocate and traverse memory once per elementary step; the
//! model's hot path instead runs through these custom ops, which fold bias, activation and
//! residual into the matrix product and specialise attention and PCM to their shapes.
//! Inputs must be contiguous f32 CPU tensors (the model only ever builds such tensors).

mod conv;
mod linear;
mod token;

pub use conv::{avg_pool2, inception, nchw_to_nhwc, InceptionWeights};
pub use linear::{linear, linear_accumulate};
pub use token::{attention, layer_norm, pcm_residual, PcmShape};

use candle_core::{bail, CpuStorage, Layout, Result};

/// The contiguous f32 data behind a storage and layout.
pub(crate) fn slice<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    let data = s.as_slice::<f32>()?;
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => bail!(
            "{what}: expected a contiguous tensor, got strides {:?}",
            l.stride()
        ),
    }
}

/// Mutable counterpart of [`slice`].
pub(crate) fn slice_mut<'a>(
    s: &'a mut CpuStorage,
    l: &Layout,
    what: &str,
) -> Result<&'a mut [f32]> {
    let (a, b) = match l.contiguous_offsets() {
        Some(r) => r,
        None => bail!(
            "{what}: expected a contiguous tensor, got strides {:?}",
            l.stride()
        ),
    };
    match s {
        CpuStorage::F32(v) => Ok(&mut v[a..b]),
        _ => bail!("{what}: expected an f32 tensor"),
    }
}
