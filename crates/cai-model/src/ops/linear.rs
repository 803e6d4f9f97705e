//! Fused linear layers: `x · W + b`, then an activation, optionally onto a residual.

use super::{slice, slice_mut};
use crate::kernels::activation::{self, Activation};
use crate::kernels::matmul::linear_into;
use candle_core::{bail, CpuStorage, CustomOp2, InplaceOp3, Layout, Result, Shape, Tensor};

/// Weight and bias packed as `[k + 1, m]`: rows 0..k are `Wᵀ`, row k is the bias.
/// One tensor keeps the op binary, which candle's custom-op traits support directly.
fn split_packed<'a>(wb: &'a [f32], l: &Layout) -> Result<(usize, usize, &'a [f32], &'a [f32])> {
    let dims = l.dims();
    if dims.len() != 2 || dims[0] < 1 {
        bail!("linear: packed weight must be [k+1, m], got {dims:?}");
    }
    let (k, m) = (dims[0] - 1, dims[1]);
    Ok((k, m, &wb[..k * m], &wb[k * m..]))
}

fn rows(l: &Layout, k: usize) -> Result<usize> {
    let dims = l.dims();
    match dims.last() {
        Some(&last) if last == k => Ok(l.shape().elem_count() / k.max(1)),
        _ => bail!("linear: input {dims:?} does not end in {k} features"),
    }
}

struct Linear(Activation);

impl CustomOp2 for Linear {
    fn name(&self) -> &'static str {
        "cai-linear"
    }
    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = slice(xs, xl, "linear input")?;
        let (k, m, w, b) = split_packed(slice(ws, wl, "linear weight")?, wl)?;
        let n = rows(xl, k)?;
        let mut out = vec![0.0f32; n * m];
        linear_into(x, n, k, w, m, Some(b), &mut out, false);
        activation::apply(self.0, &mut out);
        let mut dims = xl.dims().to_vec();
        *dims.last_mut().expect("checked non-empty") = m;
        Ok((CpuStorage::F32(out), Shape::from(dims)))
    }
}

/// `act(x · W + b)` over the last dimension of `x`, with `wb` packed by [`pack`].
pub fn linear(x: &Tensor, wb: &Tensor, act: Activation) -> Result<Tensor> {
    x.apply_op2_no_bwd(wb, &Linear(act))
}

struct Accumulate;

impl InplaceOp3 for Accumulate {
    fn name(&self) -> &'static str {
        "cai-linear-accumulate"
    }
    fn cpu_fwd(
        &self,
        dst: &mut CpuStorage,
        dl: &Layout,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
    ) -> Result<()> {
        let x = slice(xs, xl, "linear input")?;
        let (k, m, w, b) = split_packed(slice(ws, wl, "linear weight")?, wl)?;
        let n = rows(xl, k)?;
        if dl.shape().elem_count() != n * m {
            bail!(
                "linear: residual {:?} does not match output {n}x{m}",
                dl.dims()
            );
        }
        linear_into(
            x,
            n,
            k,
            w,
            m,
            Some(b),
            slice_mut(dst, dl, "residual")?,
            true,
        );
        Ok(())
    }
}

/// `residual += x · W + b` in place: the transformer's residual connection, fused.
pub fn linear_accumulate(residual: &Tensor, x: &Tensor, wb: &Tensor) -> Result<()> {
    residual.inplace_op3(x, wb, &Accumulate)
}
