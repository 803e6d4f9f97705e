//! The arithmetic the model's matrix products run in.
//!
//! On Lambda the bill is CPU-seconds, so trading a little accuracy for speed is a user's
//! choice: `bf16` halves the weight bytes and doubles the multiply rate where the CPU has
//! AVX512_BF16; `int8` quarters them and is what AVX2-only and Graviton2 CPUs run fastest.
//! Only the transformer blocks' products (84% of the FLOPs) change precision; layer norms,
//! softmax, the residual stream, the patch embedding and every head stay f32 in every mode
//! (see [`crate::AstroMae::set_precision`]).

use std::fmt;
use std::str::FromStr;

/// Precision of the matrix products (`fp32` by default).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// f32 weights and activations: matches PyTorch to ~1e-5.
    #[default]
    Fp32,
    /// bf16 weights and activations, f32 accumulation (`vdpbf16ps` where available).
    Bf16,
    /// int8 weights (per output channel scales, 7-bit so every ISA computes exactly the same
    /// sums) and int8 activations (dynamic per-row scales), i32 accumulation.
    Int8,
}

impl Precision {
    /// Every mode.
    pub const ALL: [Precision; 3] = [Precision::Fp32, Precision::Bf16, Precision::Int8];
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Precision::Fp32 => "fp32",
            Precision::Bf16 => "bf16",
            Precision::Int8 => "int8",
        })
    }
}

impl FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fp32" | "f32" | "float32" => Ok(Precision::Fp32),
            "bf16" | "bfloat16" => Ok(Precision::Bf16),
            "int8" | "i8" => Ok(Precision::Int8),
            other => Err(format!(
                "unknown precision {other:?} (expected fp32, bf16 or int8)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_text_and_json() {
        for p in Precision::ALL {
            assert_eq!(p.to_string().parse::<Precision>().unwrap(), p);
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(json, format!("\"{p}\""));
            assert_eq!(serde_json::from_str::<Precision>(&json).unwrap(), p);
        }
        assert_eq!(Precision::default(), Precision::Fp32);
        assert!("fp16".parse::<Precision>().is_err());
    }
}
