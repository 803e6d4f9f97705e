//! The AArch64 int8 micro-kernel: `sdot` (the dot-product extension Graviton2 has), 4 rows x
//! 16 columns. Activations arrive as `q + 128` bytes; flipping the top bit gives the signed
//! `q`, so the sums are exactly the ones the x86 kernels get after their compensation.
//! `sdot` is issued through `asm!` because its Rust intrinsic is not stable yet.

use super::quant::{dequantize, QTile};
use std::arch::aarch64::*;
use std::arch::asm;

/// Rows per tile.
pub const MR: usize = 4;

macro_rules! sdot {
    ($acc:expr, $b:expr, $a:expr, $lane:literal) => {
        asm!(
            concat!("sdot {c:v}.4s, {b:v}.16b, {a:v}.4b[", $lane, "]"),
            c = inout(vreg) $acc,
            b = in(vreg) $b,
            a = in(vreg) $a,
            options(pure, nomem, nostack)
        )
    };
}

/// # Safety
/// NEON and dotprod must be available; pointers as [`QTile`] describes, 16 columns at most.
#[target_feature(enable = "neon,dotprod")]
unsafe fn tile_n<const R: usize>(t: &QTile) {
    let flip = vdupq_n_u8(0x80);
    let mut acc = [[vdupq_n_s32(0); 4]; R];
    let mut u = 0;
    let b = t.b as *const i8;
    let load_b = |u: usize| {
        [
            vld1q_s8(b.add(u * 64)),
            vld1q_s8(b.add(u * 64 + 16)),
            vld1q_s8(b.add(u * 64 + 32)),
            vld1q_s8(b.add(u * 64 + 48)),
        ]
    };
    while u + 4 <= t.units {
        let mut av = [vdupq_n_s8(0); R];
        for (i, a) in av.iter_mut().enumerate() {
            *a = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(t.a.add(i * t.a_row + 4 * u)), flip));
        }
        macro_rules! step {
            ($l:literal) => {
                let bv = load_b(u + $l);
                for (i, row) in acc.iter_mut().enumerate() {
                    for (r, w) in row.iter_mut().zip(bv) {
                        sdot!(*r, w, av[i], $l);
                    }
                }
            };
        }
        step!(0);
        step!(1);
        step!(2);
        step!(3);
        u += 4;
    }
    while u < t.units {
        let bv = load_b(u);
        for (i, row) in acc.iter_mut().enumerate() {
            let quad = (t.a.add(i * t.a_row + 4 * u) as *const u32).read_unaligned() ^ 0x8080_8080;
            let a = vreinterpretq_s8_u32(vdupq_n_u32(quad));
            for (r, w) in row.iter_mut().zip(bv) {
                sdot!(*r, w, a, 0);
            }
        }
        u += 1;
    }
    let mut sums = [0i32; 16];
    for (i, row) in acc.iter().enumerate() {
        for (v, r) in row.iter().enumerate() {
            vst1q_s32(sums.as_mut_ptr().add(4 * v), *r);
        }
        for (j, s) in sums.iter().enumerate().take(t.cols) {
            let bias = if t.bias.is_null() {
                0.0
            } else {
                *t.bias.add(j)
            };
            // The signed sum already excludes the +128 offset: no compensation.
            let y = dequantize(*s, 0, *t.col_scale.add(j), *t.row_scale.add(i), bias);
            let c = t.c.add(i * t.ldc + j);
            *c = if t.init { *c + y } else { y };
        }
    }
}

/// NEON int8 tile of `mr` rows (1..=4) and up to 16 columns.
///
/// # Safety
/// As [`tile_n`].
pub unsafe fn i8_sdot(mr: usize, t: &QTile) {
    match mr {
        1 => tile_n::<1>(t),
        2 => tile_n::<2>(t),
        3 => tile_n::<3>(t),
        4 => tile_n::<4>(t),
        _ => unreachable!("NEON int8 tile of {mr} rows"),
    }
}
