//! Keeps the `cai` binary runnable on Lambda's Amazon Linux 2023, whose glibc is 2.34.
//!
//! glibc 2.35 gave `hypotf` (and `hypot`) a new symbol version (GLIBC_2.35). Rust's
//! `f32::hypot` calls `hypotf`, and plotters (through `cai report`'s dashed lines) uses it, so a
//! binary linked on a newer system would ask for GLIBC_2.35 and Lambda would refuse to start
//! it (`cai aws package` checks for exactly this). Defining the function in the binary makes
//! the linker bind to this one instead of libm's versioned symbol; it calls nothing of libm.

/// `hypotf` in f64 arithmetic: squares of f32 values can neither overflow nor underflow in
/// f64, so the plain formula is accurate (the square root is an instruction, not a libm call).
/// An infinite argument gives infinity even beside a NaN, as IEEE 754 specifies.
#[no_mangle]
pub extern "C" fn hypotf(x: f32, y: f32) -> f32 {
    if x.is_infinite() || y.is_infinite() {
        return f32::INFINITY;
    }
    let (x, y) = (f64::from(x), f64::from(y));
    (x * x + y * y).sqrt() as f32
}

#[cfg(test)]
mod tests {
    #[test]
    fn matches_the_definition() {
        assert_eq!(super::hypotf(3.0, 4.0), 5.0);
        assert_eq!(super::hypotf(-3.0, 0.0), 3.0);
        assert_eq!(super::hypotf(f32::MAX, f32::MAX), f32::INFINITY);
        assert!(super::hypotf(f32::NAN, 1.0).is_nan());
        assert_eq!(super::hypotf(f32::NEG_INFINITY, f32::NAN), f32::INFINITY);
        // Tiny values neither underflow nor lose precision.
        let tiny = super::hypotf(1e-30, 1e-30);
        assert!(
            (tiny / 1e-30 - std::f32::consts::SQRT_2).abs() < 1e-6,
            "{tiny}"
        );
    }
}
