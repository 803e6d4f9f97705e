//! Predictions against true redshifts, reduced as they stream in: a fine sparse 2D grid (for
//! the density figure, rebinned when drawn), a fine Δz histogram, and the sums behind the
//! field's metrics. Memory depends on how spread the predictions are, never on how many there
//! are, so a run of millions of samples reports in bounded space.

use std::collections::HashMap;

/// Width of a fine redshift cell: far below any bin a figure draws.
pub const CELL: f64 = 0.002;
/// The Δz histogram covers [-DZ_SPAN, DZ_SPAN] in bins of DZ_BIN; the rest is counted apart.
pub const DZ_SPAN: f64 = 4.0;
/// Width of a fine Δz bin (NMAD is resolved to this when computed here).
pub const DZ_BIN: f64 = 1e-4;
/// The photo-z catastrophic-outlier threshold on |Δz|.
pub const OUTLIER_DZ: f64 = 0.15;

/// The field's accuracy metrics (Δz = (pred - z) / (1 + z)): the very struct Summarize
/// writes into summary.json, so a page and a summary can never disagree on what they hold.
pub use cai_workflow::summary::AccuracyReport as Metrics;

/// A fine histogram of Δz.
#[derive(Debug, Clone, PartialEq)]
pub struct DzHistogram {
    /// Counts of bins of width [`DZ_BIN`] from `-DZ_SPAN`.
    pub counts: Vec<u32>,
    /// Δz below the covered span.
    pub below: u64,
    /// Δz above the covered span.
    pub above: u64,
}

impl DzHistogram {
    fn new() -> DzHistogram {
        DzHistogram {
            counts: vec![0; (2.0 * DZ_SPAN / DZ_BIN).round() as usize],
            below: 0,
            above: 0,
        }
    }

    fn add(&mut self, dz: f64) {
        let i = ((dz + DZ_SPAN) / DZ_BIN).floor();
        if i < 0.0 {
            self.below += 1;
        } else if i as usize >= self.counts.len() {
            self.above += 1;
        } else {
            self.counts[i as usize] += 1;
        }
    }

    fn merge(&mut self, o: &DzHistogram) {
        for (a, b) in self.counts.iter_mut().zip(&o.counts) {
            *a += b;
        }
        self.below += o.below;
        self.above += o.above;
    }

    /// Centre of fine bin `i`.
    pub fn centre(i: usize) -> f64 {
        -DZ_SPAN + (i as f64 + 0.5) * DZ_BIN
    }

    /// Δz at quantile `q` (0..1), to the bin; the span's ends for values outside it.
    pub fn quantile(&self, q: f64) -> f64 {
        let total = self.total();
        if total == 0 {
            return 0.0;
        }
        let target = (q.clamp(0.0, 1.0) * total as f64).ceil().max(1.0) as u64;
        let mut seen = self.below;
        if seen >= target {
            return -DZ_SPAN;
        }
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c as u64;
            if seen >= target {
                return Self::centre(i);
            }
        }
        DZ_SPAN
    }

    /// Every Δz counted.
    pub fn total(&self) -> u64 {
        self.below + self.above + self.counts.iter().map(|&c| c as u64).sum::<u64>()
    }

    /// 1.48 x median |Δz - median|, to the bin.
    pub fn nmad(&self) -> f64 {
        let med = self.quantile(0.5);
        let mut dev: Vec<(f64, u64)> = self
            .counts
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(i, &c)| ((Self::centre(i) - med).abs(), c as u64))
            .collect();
        dev.push(((-DZ_SPAN - med).abs(), self.below));
        dev.push(((DZ_SPAN - med).abs(), self.above));
        dev.sort_by(|a, b| a.0.total_cmp(&b.0));
        let total: u64 = dev.iter().map(|d| d.1).sum();
        let half = total.div_ceil(2).max(1);
        let mut seen = 0;
        for (d, c) in dev {
            seen += c;
            if seen >= half {
                return 1.48 * d;
            }
        }
        0.0
    }
}

/// Streams (prediction, truth) pairs in; merge per-thread accumulators, then [`finish`].
///
/// [`finish`]: Accumulator::finish
#[derive(Debug, Clone)]
pub struct Accumulator {
    cells: HashMap<(i32, i32), u32>,
    dz: DzHistogram,
    n: u64,
    unlabelled: u64,
    sum_abs: f64,
    sum_sq: f64,
    sum_dz: f64,
    sum_t: f64,
    sum_t2: f64,
    outliers: u64,
    t_min: f64,
    t_max: f64,
}

impl Default for Accumulator {
    fn default() -> Self {
        Accumulator {
            cells: HashMap::new(),
            dz: DzHistogram::new(),
            n: 0,
            unlabelled: 0,
            sum_abs: 0.0,
            sum_sq: 0.0,
            sum_dz: 0.0,
            sum_t: 0.0,
            sum_t2: 0.0,
            outliers: 0,
            t_min: f64::INFINITY,
            t_max: f64::NEG_INFINITY,
        }
    }
}

fn cell(v: f64) -> i32 {
    (v / CELL).floor().clamp(i32::MIN as f64, i32::MAX as f64) as i32
}

impl Accumulator {
    /// One prediction; `truth` None counts it as unlabelled.
    pub fn add(&mut self, pred: f32, truth: Option<f32>) {
        let (p, t) = match truth {
            Some(t) if t.is_finite() && pred.is_finite() => (pred as f64, t as f64),
            _ => {
                self.unlabelled += 1;
                return;
            }
        };
        let d = p - t;
        let dz = d / (1.0 + t);
        self.n += 1;
        self.sum_abs += d.abs();
        self.sum_sq += d * d;
        self.sum_dz += dz;
        self.sum_t += t;
        self.sum_t2 += t * t;
        if dz.abs() > OUTLIER_DZ {
            self.outliers += 1;
        }
        self.t_min = self.t_min.min(t);
        self.t_max = self.t_max.max(t);
        self.dz.add(dz);
        *self.cells.entry((cell(t), cell(p))).or_insert(0) += 1;
    }

    /// Adds another accumulator's counts.
    pub fn merge(mut self, o: Accumulator) -> Accumulator {
        let (mut big, small) = if self.cells.len() >= o.cells.len() {
            (std::mem::take(&mut self.cells), o.cells)
        } else {
            (o.cells, std::mem::take(&mut self.cells))
        };
        for (k, c) in small {
            *big.entry(k).or_insert(0) += c;
        }
        self.cells = big;
        self.dz.merge(&o.dz);
        self.n += o.n;
        self.unlabelled += o.unlabelled;
        self.sum_abs += o.sum_abs;
        self.sum_sq += o.sum_sq;
        self.sum_dz += o.sum_dz;
        self.sum_t += o.sum_t;
        self.sum_t2 += o.sum_t2;
        self.outliers += o.outliers;
        self.t_min = self.t_min.min(o.t_min);
        self.t_max = self.t_max.max(o.t_max);
        self
    }

    /// Predictions without a true redshift.
    pub fn unlabelled(&self) -> u64 {
        self.unlabelled
    }

    /// The reduced data; None when no prediction had a label.
    pub fn finish(self) -> Option<AccuracyData> {
        if self.n == 0 {
            return None;
        }
        let n = self.n as f64;
        let mean_t = self.sum_t / n;
        let ss_tot = self.sum_t2 - n * mean_t * mean_t;
        let metrics = Metrics {
            count: self.n,
            mae: self.sum_abs / n,
            mse: self.sum_sq / n,
            bias: self.sum_dz / n,
            nmad: self.dz.nmad(),
            r2: if ss_tot > 0.0 {
                1.0 - self.sum_sq / ss_tot
            } else {
                f64::NAN
            },
            outlier_fraction: self.outliers as f64 / n,
        };
        let mut cells: Vec<(i32, i32, u32)> = self
            .cells
            .into_iter()
            .map(|((t, p), c)| (t, p, c))
            .collect();
        cells.sort_unstable();
        Some(AccuracyData {
            metrics,
            cells,
            dz: self.dz,
            true_range: (self.t_min, self.t_max),
            unlabelled: self.unlabelled,
        })
    }
}

/// Labelled predictions, reduced for the accuracy figures.
#[derive(Debug, Clone, PartialEq)]
pub struct AccuracyData {
    /// Metrics computed here (NMAD to [`DZ_BIN`]); Summarize's exact ones are preferred.
    pub metrics: Metrics,
    /// Fine cells `(truth cell, prediction cell, count)`, cells of width [`CELL`].
    pub cells: Vec<(i32, i32, u32)>,
    /// The fine Δz histogram.
    pub dz: DzHistogram,
    /// Smallest and largest true redshift.
    pub true_range: (f64, f64),
    /// Predictions without a label (not in the figures).
    pub unlabelled: u64,
}

impl AccuracyData {
    /// Prediction value at quantile `q` over every labelled sample, to the cell.
    pub fn prediction_quantile(&self, q: f64) -> f64 {
        let mut marg: Vec<(i32, u64)> = Vec::new();
        let mut by: HashMap<i32, u64> = HashMap::new();
        for &(_, p, c) in &self.cells {
            *by.entry(p).or_insert(0) += c as u64;
        }
        marg.extend(by);
        marg.sort_unstable();
        let total: u64 = marg.iter().map(|m| m.1).sum();
        let target = (q.clamp(0.0, 1.0) * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (p, c) in marg {
            seen += c;
            if seen >= target {
                return (p as f64 + 0.5) * CELL;
            }
        }
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_match_the_definitions() {
        let pairs = [(0.1f32, 0.1f32), (0.2, 0.3), (0.5, 0.4), (1.0, 0.2)];
        let mut a = Accumulator::default();
        for (p, t) in pairs {
            a.add(p, Some(t));
        }
        a.add(0.3, None);
        let d = a.finish().unwrap();
        let m = d.metrics;
        assert_eq!(m.count, 4);
        assert_eq!(d.unlabelled, 1);
        let mae = (0.0 + 0.1 + 0.1 + 0.8) / 4.0;
        assert!((m.mae - mae).abs() < 1e-6, "{}", m.mae);
        // One of four has |dz| > 0.15: (1.0 - 0.2) / 1.2.
        assert!((m.outlier_fraction - 0.25).abs() < 1e-12);
        let dz: Vec<f64> = pairs
            .iter()
            .map(|&(p, t)| (p as f64 - t as f64) / (1.0 + t as f64))
            .collect();
        let bias = dz.iter().sum::<f64>() / 4.0;
        assert!((m.bias - bias).abs() < 1e-6);
        assert_eq!(d.cells.iter().map(|c| c.2).sum::<u32>(), 4);
    }

    #[test]
    fn merging_equals_one_pass() {
        let mut one = Accumulator::default();
        let mut a = Accumulator::default();
        let mut b = Accumulator::default();
        for i in 0..1000 {
            let t = (i % 37) as f32 / 100.0;
            let p = t + ((i % 7) as f32 - 3.0) / 100.0;
            one.add(p, Some(t));
            let half = if i % 2u32 == 0 { &mut a } else { &mut b };
            half.add(p, Some(t));
        }
        let (m, o) = (a.merge(b).finish().unwrap(), one.finish().unwrap());
        assert_eq!(m.cells, o.cells);
        assert_eq!(m.dz, o.dz);
        assert_eq!(m.metrics.count, o.metrics.count);
        assert_eq!(m.metrics.nmad, o.metrics.nmad);
        assert!((m.metrics.mae - o.metrics.mae).abs() < 1e-12);
        assert!((m.metrics.r2 - o.metrics.r2).abs() < 1e-9);
    }

    #[test]
    fn nmad_of_a_known_spread() {
        // dz uniform on [-0.05, 0.05]: median 0, median |dz| 0.025, NMAD 0.037.
        let mut a = Accumulator::default();
        for i in 0..=1000 {
            let dz = -0.05 + 0.1 * i as f64 / 1000.0;
            a.add(dz as f32, Some(0.0));
        }
        let m = a.finish().unwrap().metrics;
        assert!((m.nmad - 1.48 * 0.025).abs() < 3e-4, "{}", m.nmad);
    }
}
