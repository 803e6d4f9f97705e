//! Redshift accuracy as the field reports it (definitions from the original's plots).

use serde::Serialize;

/// Accuracy of predictions against spectroscopic redshifts.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Accuracy {
    /// Samples compared.
    pub count: usize,
    /// Mean absolute error of `pred - z`.
    pub mae: f64,
    /// Mean squared error of `pred - z`.
    pub mse: f64,
    /// Mean of `dz = (pred - z) / (1 + z)`.
    pub bias: f64,
    /// NMAD precision: `1.48 * median(|dz - median(dz)|)`.
    pub nmad: f64,
    /// Coefficient of determination of `pred` against `z`.
    pub r2: f64,
    /// Catastrophic-outlier fraction: `|dz| > 0.15`.
    pub outlier_fraction: f64,
}

/// Computes [`Accuracy`]; `None` for no samples.
pub fn accuracy(pred: &[f32], z: &[f32]) -> Option<Accuracy> {
    assert_eq!(
        pred.len(),
        z.len(),
        "predictions and labels differ in length"
    );
    let n = pred.len();
    if n == 0 {
        return None;
    }
    let nf = n as f64;
    let pairs = || pred.iter().zip(z).map(|(&p, &t)| (p as f64, t as f64));
    let mae = pairs().map(|(p, t)| (p - t).abs()).sum::<f64>() / nf;
    let mse = pairs().map(|(p, t)| (p - t).powi(2)).sum::<f64>() / nf;
    let dz: Vec<f64> = pairs().map(|(p, t)| (p - t) / (1.0 + t)).collect();
    let bias = dz.iter().sum::<f64>() / nf;
    let med = median(dz.clone());
    let nmad = 1.48 * median(dz.iter().map(|d| (d - med).abs()).collect());
    let mean_z = pairs().map(|(_, t)| t).sum::<f64>() / nf;
    let ss_tot: f64 = pairs().map(|(_, t)| (t - mean_z).powi(2)).sum();
    let r2 = if ss_tot > 0.0 {
        1.0 - mse * nf / ss_tot
    } else {
        f64::NAN
    };
    let outliers = dz.iter().filter(|d| d.abs() > 0.15).count();
    Some(Accuracy {
        count: n,
        mae,
        mse,
        bias,
        nmad,
        r2,
        outlier_fraction: outliers as f64 / nf,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        let z = [0.1f32, 0.2, 0.3, 0.4];
        let p = [0.1f32, 0.25, 0.3, 1.0];
        let a = accuracy(&p, &z).unwrap();
        assert_eq!(a.count, 4);
        assert!((a.mae - (0.05 + 0.6) / 4.0).abs() < 1e-6);
        assert!((a.mse - (0.0025 + 0.36) / 4.0).abs() < 1e-6);
        // dz = [0, 0.05/1.2, 0, 0.6/1.4]; one outlier.
        assert!((a.outlier_fraction - 0.25).abs() < 1e-12);
        let dz = [0.0, 0.05 / 1.2, 0.0, 0.6 / 1.4];
        assert!((a.bias - dz.iter().sum::<f64>() / 4.0).abs() < 1e-6);
        // median(dz) = 0.05/2.4; deviations sorted: 0.0208, 0.0208, 0.0208, 0.41 -> median 0.0208.
        assert!((a.nmad - 1.48 * (0.05 / 2.4)).abs() < 1e-6);
        let perfect = accuracy(&z, &z).unwrap();
        assert!((perfect.r2 - 1.0).abs() < 1e-12 && perfect.mae == 0.0);
        assert!(accuracy(&[], &[]).is_none());
    }
}
