//! Multi-head self-attention over a short token sequence (17 tokens for AstroMAE).
//!
//! With so few tokens the score matrix is tiny (17x17 per head), so general batched GEMM
//! calls cost more in set-up than in arithmetic; this kernel does the whole
//! scores-softmax-weighted-sum for one (sample, head) while its rows are in L1.

use super::activation::exp;
use super::transpose::{transpose16, N};
use std::mem::MaybeUninit;

/// `qkv` is `[b, t, 3*d]` laid out as PyTorch's fused `qkv` Linear output (q, k, v, each
/// split into `heads` contiguous chunks); returns softmax(q kᵀ · scale) v as `[b, t, d]`.
pub fn attention(qkv: &[f32], b: usize, t: usize, d: usize, heads: usize, scale: f32) -> Vec<f32> {
    assert!(
        heads > 0 && d.is_multiple_of(heads),
        "attention: {d} channels do not split into {heads} heads"
    );
    assert_eq!(qkv.len(), b * t * 3 * d);
    // SAFETY: `heads_into` writes every head's channels of every token of every sample.
    unsafe { super::written_vec(b * t * d, |out| heads_into(qkv, b, t, d, heads, scale, out)) }
}

at_isa_level! {
    /// At the thread's ISA level (see `at_isa_level!`).
    fn heads_into(
        qkv: &[f32],
        b: usize,
        t: usize,
        d: usize,
        heads: usize,
        scale: f32,
        out: &mut [MaybeUninit<f32>],
    ) = heads_into_body;
}

#[inline(always)]
fn heads_into_body(
    qkv: &[f32],
    b: usize,
    t: usize,
    d: usize,
    heads: usize,
    scale: f32,
    out: &mut [MaybeUninit<f32>],
) {
    let hd = d / heads;
    let mut scores = vec![0.0f32; t];
    // Keys in blocks of LANES, transposed so one vector holds one channel of LANES keys: a
    // query's scores against a block are then plain multiply-adds, with no horizontal sum
    // per key (those sums were most of the attention's time).
    let blocks = t / LANES;
    let mut kt = vec![[0.0f32; LANES]; blocks * hd];
    for s in 0..b {
        let base = &qkv[s * t * 3 * d..(s + 1) * t * 3 * d];
        let out_s = &mut out[s * t * d..(s + 1) * t * d];
        let key = |j: usize, h: usize| &base[j * 3 * d + d + h * hd..j * 3 * d + d + (h + 1) * hd];
        for h in 0..heads {
            for (jb, block) in kt.chunks_exact_mut(hd).enumerate() {
                if hd.is_multiple_of(N) {
                    let first = (jb * LANES) * 3 * d + d + h * hd;
                    for (cb, tile) in block.chunks_exact_mut(N).enumerate() {
                        let tile = tile.try_into().expect("16 channels");
                        transpose16(&base[first + cb * N..], 3 * d, tile);
                    }
                } else {
                    for l in 0..LANES {
                        for (lanes, k) in block.iter_mut().zip(key(jb * LANES + l, h)) {
                            lanes[l] = *k;
                        }
                    }
                }
            }
            for i in 0..t {
                let q = &base[i * 3 * d + h * hd..i * 3 * d + (h + 1) * hd];
                for (block, sc) in kt.chunks_exact(hd).zip(scores.chunks_exact_mut(LANES)) {
                    block_scores(q, block, scale, sc);
                }
                for (j, sc) in scores.iter_mut().enumerate().skip(blocks * LANES) {
                    *sc = super::dot(q, key(j, h)) * scale;
                }
                let max = max_of(&scores);
                // The exponentials in their own loop so it vectorises.
                for sc in scores.iter_mut() {
                    *sc = exp(*sc - max);
                }
                let sum = super::sum(&scores);
                let inv = 1.0 / sum;
                let o = &mut out_s[i * d + h * hd..i * d + (h + 1) * hd];
                let v_at = 2 * d + h * hd;
                weighted_sum(&scores, inv, &base[v_at..], 3 * d, o);
            }
        }
    }
}

/// The largest score, over sixteen lanes (a NaN-aware running `f32::max` is one scalar
/// compare-and-select per score; the scores here are finite).
#[inline(always)]
fn max_of(scores: &[f32]) -> f32 {
    let mut m = [f32::NEG_INFINITY; LANES];
    let mut chunks = scores.chunks_exact(LANES);
    for c in &mut chunks {
        for l in 0..LANES {
            m[l] = if c[l] > m[l] { c[l] } else { m[l] };
        }
    }
    let rest = chunks.remainder().iter();
    m.iter()
        .chain(rest)
        .fold(f32::NEG_INFINITY, |a, &b| if b > a { b } else { a })
}

/// Keys per transposed block: one AVX-512 vector, two AVX2 ones.
const LANES: usize = N;

/// `sc[l] = scale · q · k_l` for the `LANES` keys of one transposed block, as four
/// independent chains of multiply-adds over the channels.
#[inline(always)]
fn block_scores(q: &[f32], block: &[[f32; LANES]], scale: f32, sc: &mut [f32]) {
    let mut acc = [[0.0f32; LANES]; 4];
    let mut qc = q.chunks_exact(4);
    let mut kc = block.chunks_exact(4);
    for (q4, k4) in (&mut qc).zip(&mut kc) {
        for u in 0..4 {
            for l in 0..LANES {
                acc[u][l] = q4[u].mul_add(k4[u][l], acc[u][l]);
            }
        }
    }
    for (qv, kv) in qc.remainder().iter().zip(kc.remainder()) {
        for l in 0..LANES {
            acc[0][l] = qv.mul_add(kv[l], acc[0][l]);
        }
    }
    for (l, s) in sc.iter_mut().enumerate() {
        *s = ((acc[0][l] + acc[1][l]) + (acc[2][l] + acc[3][l])) * scale;
    }
}

/// Writes `o = Σ_j (scores[j] · inv) · v_j`, where `v_j` starts `j * v_row` into `v`: up to
/// 64 output values at a time held in registers across all tokens (rather than re-read and
/// re-written in memory once per token), as four or more independent chains of multiply-adds
/// (one 16-value chain at a time waited on each multiply-add's latency: attention measured
/// 7% of a forward pass so); each sum still taken in token order.
#[inline(always)]
fn weighted_sum(scores: &[f32], inv: f32, v: &[f32], v_row: usize, o: &mut [MaybeUninit<f32>]) {
    let mut c0 = 0;
    let mut wide = o.chunks_exact_mut(64);
    for ob in &mut wide {
        weighted_block::<64>(scores, inv, &v[c0..], v_row, ob);
        c0 += 64;
    }
    let mut narrow = wide.into_remainder().chunks_exact_mut(16);
    for ob in &mut narrow {
        weighted_block::<16>(scores, inv, &v[c0..], v_row, ob);
        c0 += 16;
    }
    let rest = narrow.into_remainder();
    let mut acc = [0.0f32; 16];
    for (j, sc) in scores.iter().enumerate() {
        let p = sc * inv;
        let vj = &v[j * v_row + c0..j * v_row + c0 + rest.len()];
        acc.iter_mut()
            .zip(vj)
            .for_each(|(o, v)| *o = p.mul_add(*v, *o));
    }
    rest.iter_mut().zip(acc).for_each(|(o, a)| {
        o.write(a);
    });
}

/// [`weighted_sum`] over exactly `W` output values.
#[inline(always)]
fn weighted_block<const W: usize>(
    scores: &[f32],
    inv: f32,
    v: &[f32],
    v_row: usize,
    o: &mut [MaybeUninit<f32>],
) {
    let mut acc = [0.0f32; W];
    for (j, sc) in scores.iter().enumerate() {
        let p = sc * inv;
        let vj: &[f32; W] = v[j * v_row..j * v_row + W].try_into().expect("W values");
        for c in 0..W {
            acc[c] = p.mul_add(vj[c], acc[c]);
        }
    }
    o.iter_mut().zip(acc).for_each(|(o, a)| {
        o.write(a);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_naive_attention() {
        // Head widths 4, 64 (AstroMAE's) and 83 (64 + 16 + 3): every path of the weighted sum.
        for (b, t, d, heads) in [(2, 5, 8, 2), (1, 17, 192, 3), (2, 7, 166, 2)] {
            check(b, t, d, heads);
        }
    }

    fn check(b: usize, t: usize, d: usize, heads: usize) {
        let qkv: Vec<f32> = (0..b * t * 3 * d)
            .map(|i| ((i * 7 % 13) as f32 - 6.0) * 0.1)
            .collect();
        let scale = 0.5;
        let out = attention(&qkv, b, t, d, heads, scale);
        let hd = d / heads;
        for s in 0..b {
            for h in 0..heads {
                for i in 0..t {
                    let at = |tok: usize, part: usize, c: usize| {
                        qkv[s * t * 3 * d + tok * 3 * d + part * d + h * hd + c] as f64
                    };
                    let logits: Vec<f64> = (0..t)
                        .map(|j| {
                            (0..hd).map(|c| at(i, 0, c) * at(j, 1, c)).sum::<f64>() * scale as f64
                        })
                        .collect();
                    let m = logits.iter().cloned().fold(f64::MIN, f64::max);
                    let e: Vec<f64> = logits.iter().map(|l| (l - m).exp()).collect();
                    let z: f64 = e.iter().sum();
                    for c in 0..hd {
                        let want: f64 = (0..t).map(|j| e[j] / z * at(j, 2, c)).sum();
                        let got = out[s * t * d + i * d + h * hd + c] as f64;
                        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
                    }
                }
            }
        }
    }
}
