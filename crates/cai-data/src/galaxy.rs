//! A plausible synthetic galaxy: SDSS-like redshift, Sersic profile in five bands
//! (u, g, r, i, z) whose size and flux fall with redshift, colours reddening with z,
//! sky noise, and magnitudes consistent with the drawn fluxes.

use rand::Rng;
use rand_distr::{Distribution, Gamma, Normal};

/// Bands per image.
pub(crate) const BANDS: usize = 5;
/// Image side in pixels.
pub(crate) const SIDE: usize = 32;
/// Pixels per band.
const PIXELS: usize = SIDE * SIDE;

/// Per-band sky noise (nanomaggies per pixel); u is the noisiest band.
const NOISE: [f64; BANDS] = [0.12, 0.04, 0.035, 0.045, 0.10];
/// Per-band size factor: galaxies look slightly larger in the blue bands.
const SIZE: [f64; BANDS] = [1.1, 1.05, 1.0, 0.97, 0.95];

/// Draws one sample: fills `image` (`5 x 32 x 32`) and `mags` (5), returns redshift.
pub(crate) fn draw(rng: &mut impl Rng, image: &mut [f32], mags: &mut [f64]) -> f32 {
    let std = |s: f64| Normal::new(0.0, s).expect("positive sigma");
    // Redshift: gamma-distributed, most galaxies at low z (SDSS main sample peaks ~0.1).
    let gamma = Gamma::new(2.2, 0.045).expect("valid gamma");
    let z = loop {
        let z: f64 = gamma.sample(rng);
        if (0.005..0.4).contains(&z) {
            break z;
        }
    };
    // Apparent r magnitude grows with distance; intrinsic scatter on top.
    let r = (17.2 + 5.0 * (z / 0.1).log10() + std(0.7).sample(rng)).clamp(14.0, 22.5);
    // Colours redden with redshift: u-g, g-r, r-i, i-z.
    let ug = 1.3 + 1.5 * z + std(0.2).sample(rng);
    let gr = 0.55 + 1.6 * z + std(0.1).sample(rng);
    let ri = 0.3 + 0.8 * z + std(0.06).sample(rng);
    let iz = 0.2 + 0.5 * z + std(0.06).sample(rng);
    let band_mags = [r + gr + ug, r + gr, r, r - ri, r - ri - iz];
    // Half-light radius in pixels shrinks with distance and brightness.
    let radius = (2.2
        * (0.1 / (z + 0.03)).powf(0.7)
        * (0.3 * std(1.0).sample(rng)).exp()
        * 10f64.powf(-0.08 * (r - 17.0)))
    .clamp(0.7, 9.0);
    let n = rng.random_range(0.7..4.0f64);
    let q = rng.random_range(0.35..1.0f64);
    let theta = rng.random_range(0.0..std::f64::consts::PI);
    let (cx, cy) = (15.5 + std(0.5).sample(rng), 15.5 + std(0.5).sample(rng));
    let bn = 2.0 * n - 1.0 / 3.0;
    let (s, c) = theta.sin_cos();
    for (b, (&m, mag_out)) in band_mags.iter().zip(mags.iter_mut()).enumerate() {
        let m = m.clamp(14.0, 24.0);
        *mag_out = m + std(0.03).sample(rng);
        let flux = 10f64.powf(-0.4 * (m - 22.5));
        let re = radius * SIZE[b];
        let plane = &mut image[b * PIXELS..(b + 1) * PIXELS];
        let mut total = 0.0;
        for (i, px) in plane.iter_mut().enumerate() {
            let (dx, dy) = ((i % SIDE) as f64 - cx, (i / SIDE) as f64 - cy);
            let (u, v) = (dx * c + dy * s, (-dx * s + dy * c) / q);
            let rr = (u * u + v * v).sqrt() / re;
            let val = (-bn * (rr.powf(1.0 / n) - 1.0)).exp();
            *px = val as f32;
            total += val;
        }
        let scale = flux / total.max(1e-12);
        let noise = std(NOISE[b]);
        for px in plane.iter_mut() {
            *px = (*px as f64 * scale + noise.sample(rng)) as f32;
        }
    }
    z as f32
}
