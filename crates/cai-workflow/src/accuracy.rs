//! Accuracy over every labelled prediction of a run, accumulated rank by rank in constant
//! memory, so Summarize can score 10,000 ranks (or a terabyte's 50 million samples) without
//! holding the predictions.
//!
//! MAE, MSE, bias, R^2 and the outlier fraction are exact sums. NMAD needs two medians of dz:
//! they come from a fine histogram of dz over [-DZ_RANGE, DZ_RANGE) (bins of 1.9e-6) plus the
//! exact values of the rare dz outside it, so the medians are exact to within one bin and NMAD
//! to within 1e-5, for 16 MiB whatever the sample count.

use crate::summary::AccuracyReport;

/// Half-width of the histogram's dz range; values beyond it are kept exactly.
const DZ_RANGE: f64 = 4.0;
/// Bins over the range (2^22: 1.9e-6 wide).
const BINS: usize = 1 << 22;
/// The field's catastrophic-outlier bound on |dz|.
pub const OUTLIER_DZ: f64 = 0.15;

/// Running sums and the dz histogram.
pub struct AccuracyAccumulator {
    n: u64,
    abs_err: f64,
    sq_err: f64,
    dz_sum: f64,
    z_sum: f64,
    z_sq_sum: f64,
    outliers: u64,
    bins: Vec<u32>,
    beyond: Vec<f64>,
}

impl Default for AccuracyAccumulator {
    fn default() -> Self {
        AccuracyAccumulator {
            n: 0,
            abs_err: 0.0,
            sq_err: 0.0,
            dz_sum: 0.0,
            z_sum: 0.0,
            z_sq_sum: 0.0,
            outliers: 0,
            bins: Vec::new(),
            beyond: Vec::new(),
        }
    }
}

fn bin_width() -> f64 {
    2.0 * DZ_RANGE / BINS as f64
}

impl AccuracyAccumulator {
    /// Adds one prediction `pred` of a sample whose spectroscopic redshift is `z`.
    pub fn add(&mut self, pred: f32, z: f32) {
        let (p, t) = (f64::from(pred), f64::from(z));
        let dz = (p - t) / (1.0 + t);
        self.n += 1;
        self.abs_err += (p - t).abs();
        self.sq_err += (p - t).powi(2);
        self.dz_sum += dz;
        self.z_sum += t;
        self.z_sq_sum += t * t;
        self.outliers += u64::from(dz.abs() > OUTLIER_DZ);
        if (-DZ_RANGE..DZ_RANGE).contains(&dz) {
            if self.bins.is_empty() {
                self.bins = vec![0; BINS];
            }
            let i = ((dz + DZ_RANGE) / bin_width()) as usize;
            self.bins[i.min(BINS - 1)] += 1;
        } else {
            self.beyond.push(dz);
        }
    }

    /// Labelled predictions seen.
    pub fn count(&self) -> u64 {
        self.n
    }

    /// The metrics; `None` without labelled predictions.
    pub fn report(&self) -> Option<AccuracyReport> {
        if self.n == 0 {
            return None;
        }
        let nf = self.n as f64;
        let mse = self.sq_err / nf;
        let ss_tot = self.z_sq_sum - self.z_sum * self.z_sum / nf;
        let med = self.quantile_dz(|v| v);
        let nmad = 1.48 * self.quantile_dz(|v| (v - med).abs());
        Some(AccuracyReport {
            count: self.n,
            mae: self.abs_err / nf,
            mse,
            bias: self.dz_sum / nf,
            nmad,
            r2: if ss_tot > 0.0 {
                1.0 - self.sq_err / ss_tot
            } else {
                f64::NAN
            },
            outlier_fraction: self.outliers as f64 / nf,
        })
    }

    /// The median of `f(dz)` over every sample, with `f` monotone on each side of some point
    /// (identity, or distance to the median): the histogram's bin centres stand for their
    /// samples, the values beyond the range are exact.
    fn quantile_dz(&self, f: impl Fn(f64) -> f64) -> f64 {
        let mut values: Vec<(f64, u64)> = self
            .bins
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(i, &c)| (f(-DZ_RANGE + (i as f64 + 0.5) * bin_width()), u64::from(c)))
            .chain(self.beyond.iter().map(|&v| (f(v), 1)))
            .collect();
        values.sort_by(|a, b| a.0.total_cmp(&b.0));
        let lower = (self.n - 1) / 2;
        let upper = self.n / 2;
        let (mut seen, mut lo, mut hi) = (0u64, None, None);
        for (v, c) in values {
            if lo.is_none() && seen + c > lower {
                lo = Some(v);
            }
            if seen + c > upper {
                hi = Some(v);
                break;
            }
            seen += c;
        }
        match (lo, hi) {
            (Some(a), Some(b)) => (a + b) / 2.0,
            _ => f64::NAN,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(pred: &[f32], z: &[f32]) -> AccuracyReport {
        let a = cai_model::metrics::accuracy(pred, z).unwrap();
        AccuracyReport {
            count: a.count as u64,
            mae: a.mae,
            mse: a.mse,
            bias: a.bias,
            nmad: a.nmad,
            r2: a.r2,
            outlier_fraction: a.outlier_fraction,
        }
    }

    #[test]
    fn matches_the_exact_metrics() {
        // A skewed spread of dz with a few values beyond the histogram's range.
        let z: Vec<f32> = (0..20_001).map(|i| (i % 400) as f32 / 1000.0).collect();
        let pred: Vec<f32> = z
            .iter()
            .enumerate()
            .map(|(i, &t)| {
                let noise = ((i * 7919) % 1000) as f32 / 1000.0 - 0.45;
                let wild = if i % 997 == 0 { 9.0 } else { 0.0 };
                t + 0.05 * noise * (1.0 + t) + wild
            })
            .collect();
        let mut acc = AccuracyAccumulator::default();
        for (&p, &t) in pred.iter().zip(&z) {
            acc.add(p, t);
        }
        let got = acc.report().unwrap();
        let want = exact(&pred, &z);
        assert_eq!(got.count, want.count);
        for (name, g, w, tol) in [
            ("mae", got.mae, want.mae, 1e-9),
            ("mse", got.mse, want.mse, 1e-9),
            ("bias", got.bias, want.bias, 1e-9),
            ("r2", got.r2, want.r2, 1e-6),
            ("outliers", got.outlier_fraction, want.outlier_fraction, 0.0),
            ("nmad", got.nmad, want.nmad, 1e-5),
        ] {
            assert!((g - w).abs() <= tol, "{name}: {g} vs {w}");
        }
    }

    #[test]
    fn small_and_empty() {
        assert!(AccuracyAccumulator::default().report().is_none());
        let mut acc = AccuracyAccumulator::default();
        for (p, t) in [(0.1f32, 0.1f32), (0.25, 0.2), (0.3, 0.3), (1.0, 0.4)] {
            acc.add(p, t);
        }
        let got = acc.report().unwrap();
        let want = exact(&[0.1, 0.25, 0.3, 1.0], &[0.1, 0.2, 0.3, 0.4]);
        assert!((got.nmad - want.nmad).abs() < 1e-5, "{got:?} {want:?}");
        assert_eq!(got.outlier_fraction, 0.25);
    }
}
