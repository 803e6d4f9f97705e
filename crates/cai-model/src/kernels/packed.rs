//! Linear-layer weights laid out once at load for the matrix-product kernels, at the
//! model's precision.
//!
//! PyTorch stores `Linear.weight` output-major (`[m, k]`); the [`gemm`] packs re-lay it in
//! the micro-kernels' 16-column panels once, so no call re-packs it, and the product runs
//! on the instruction set [`crate::isa::current`] names.

use super::activation::Activation;
use super::gemm::{self, Epilogue, Out, PackedBf16, PackedF32, PackedI8};
use crate::isa;
use crate::precision::Precision;

#[derive(Clone, Debug)]
enum Weights {
    F32(PackedF32),
    Bf16(PackedBf16),
    I8(PackedI8),
}

/// A linear layer's weights, packed, plus bias.
#[derive(Clone, Debug)]
pub struct PackedLinear {
    w: Weights,
}

impl PackedLinear {
    /// Packs PyTorch-layout weights `w[m][k]` and `bias[m]` in f32.
    pub fn new(w: &[f32], bias: &[f32], k: usize, m: usize) -> Self {
        Self {
            w: Weights::F32(PackedF32::from_rows(w, bias, k, m)),
        }
    }

    /// The same layer re-packed at `p` (from f32 weights; converting a converted layer
    /// again starts from its rounded weights).
    pub fn to_precision(&self, p: Precision) -> Self {
        let (rows, bias, k, m) = match &self.w {
            Weights::F32(w) => (w.to_rows(), w.bias(), w.k(), w.m()),
            Weights::Bf16(w) => (w.to_rows(), w.bias(), w.k(), w.m()),
            Weights::I8(w) => (w.to_rows(), w.bias(), w.k(), w.m()),
        };
        let w = match p {
            Precision::Fp32 => Weights::F32(PackedF32::from_rows(&rows, bias, k, m)),
            Precision::Bf16 => Weights::Bf16(PackedBf16::from_rows(&rows, bias, k, m)),
            Precision::Int8 => Weights::I8(PackedI8::from_rows(&rows, bias, k, m)),
        };
        Self { w }
    }

    /// The precision the weights are packed at.
    pub fn precision(&self) -> Precision {
        match self.w {
            Weights::F32(_) => Precision::Fp32,
            Weights::Bf16(_) => Precision::Bf16,
            Weights::I8(_) => Precision::Int8,
        }
    }

    /// Input features.
    pub fn k(&self) -> usize {
        match &self.w {
            Weights::F32(w) => w.k(),
            Weights::Bf16(w) => w.k(),
            Weights::I8(w) => w.k(),
        }
    }

    /// Output features.
    pub fn m(&self) -> usize {
        match &self.w {
            Weights::F32(w) => w.m(),
            Weights::Bf16(w) => w.m(),
            Weights::I8(w) => w.m(),
        }
    }

    /// `out = epilogue(x[n×k] · W + b)` at the thread's ISA level.
    pub fn run(&self, x: &[f32], n: usize, lda: usize, out: Out, e: Epilogue) {
        let isa = isa::current();
        match &self.w {
            Weights::F32(w) => gemm::gemm_f32(isa, x, n, lda, w, out, e),
            Weights::Bf16(w) => gemm::gemm_bf16(isa, x, n, lda, w, out, e),
            Weights::I8(w) => gemm::gemm_i8(isa, x, n, lda, w, out, e),
        }
    }

    /// `dst[n×m] = act(x[n×k] · W + b)`, or with `accumulate`, `dst = act(dst + x · W + b)`.
    pub fn forward(&self, x: &[f32], n: usize, dst: &mut [f32], accumulate: bool, act: Activation) {
        assert_eq!(
            x.len(),
            n * self.k(),
            "linear: input is not {n}x{}",
            self.k()
        );
        assert_eq!(
            dst.len(),
            n * self.m(),
            "linear: output is not {n}x{}",
            self.m()
        );
        let e = Epilogue {
            bias: true,
            act,
            accumulate,
        };
        let (k, m) = (self.k(), self.m());
        self.run(x, n, k, Out::new(dst, m, 0), e);
    }

    /// Like [`Self::forward`] into a new vector.
    pub fn forward_new(&self, x: &[f32], n: usize, act: Activation) -> Vec<f32> {
        let (k, m) = (self.k(), self.m());
        assert_eq!(x.len(), n * k, "linear: input is not {n}x{k}");
        // SAFETY: a storing product writes every element of its n x m block, which is the
        // whole vector here.
        unsafe {
            super::written_vec(n * m, |out| {
                self.run(x, n, k, Out::uninit(out, m, 0), Epilogue::store(act))
            })
        }
    }

    /// Writes `act(x · W + b)` into the block `out`: lets concatenated branch outputs land
    /// in place, with no copy.
    pub fn forward_strided(&self, x: &[f32], n: usize, out: Out, act: Activation) {
        let k = self.k();
        assert_eq!(x.len(), n * k, "linear: input is not {n}x{k}");
        self.run(x, n, k, out, Epilogue::store(act));
    }
}
