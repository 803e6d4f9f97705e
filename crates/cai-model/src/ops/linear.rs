//! Fused linear layers: `x · W + b`, then an activation, optionally onto a residual.
//!
//! The weights are a [`PackedLinear`] (laid out once at load for the kernel chosen at run
//! time) rather than a tensor operand, so each op borrows them for the duration of the call.

use super::{slice, slice_mut};
use crate::kernels::activation::Activation;
use crate::kernels::packed::PackedLinear;
use candle_core::{bail, CpuStorage, CustomOp1, InplaceOp2, Layout, Result, Shape, Tensor};

fn rows(l: &Layout, k: usize) -> Result<usize> {
    let dims = l.dims();
    match dims.last() {
        Some(&last) if last == k => Ok(l.shape().elem_count() / k.max(1)),
        _ => bail!("linear: input {dims:?} does not end in {k} features"),
    }
}

struct Linear<'a> {
    w: &'a PackedLinear,
    act: Activation,
}

impl CustomOp1 for Linear<'_> {
    fn name(&self) -> &'static str {
        "cai-linear"
    }
    fn cpu_fwd(&self, xs: &CpuStorage, xl: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = slice(xs, xl, "linear input")?;
        let n = rows(xl, self.w.k())?;
        let out = self.w.forward_new(x, n, self.act);
        let mut dims = xl.dims().to_vec();
        *dims.last_mut().expect("checked non-empty") = self.w.m();
        Ok((CpuStorage::F32(out), Shape::from(dims)))
    }
}

/// `act(x · W + b)` over the last dimension of `x`.
pub fn linear(x: &Tensor, w: &PackedLinear, act: Activation) -> Result<Tensor> {
    x.apply_op1_no_bwd(&Linear { w, act })
}

struct Accumulate<'a>(&'a PackedLinear);

impl InplaceOp2 for Accumulate<'_> {
    fn name(&self) -> &'static str {
        "cai-linear-accumulate"
    }
    fn cpu_fwd(
        &self,
        dst: &mut CpuStorage,
        dl: &Layout,
        xs: &CpuStorage,
        xl: &Layout,
    ) -> Result<()> {
        let x = slice(xs, xl, "linear input")?;
        let n = rows(xl, self.0.k())?;
        if dl.shape().elem_count() != n * self.0.m() {
            bail!(
                "linear: residual {:?} does not match output {n}x{}",
                dl.dims(),
                self.0.m()
            );
        }
        self.0.forward(
            x,
            n,
            slice_mut(dst, dl, "residual")?,
            true,
            Activation::Identity,
        );
        Ok(())
    }
}

/// `residual += x · W + b` in place: the transformer's residual connection, fused.
pub fn linear_accumulate(residual: &Tensor, x: &Tensor, w: &PackedLinear) -> Result<()> {
    residual.inplace_op2(x, &Accumulate(w))
}
