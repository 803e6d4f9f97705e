//! Which SIMD instruction set the kernels run on, chosen at run time.
//!
//! One binary must run on any x86-64 (Lambda promises only AVX2) or ARM CPU, so nothing is
//! assumed at compile time: the best level the CPU reports is used unless `CAI_ISA`
//! (`scalar`, `avx2`, `avx512`, `neon`) forces a lower one, which lets an AVX-512 machine
//! measure what an AVX2-only Lambda gets and lets tests run every path on one machine.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

/// An instruction-set level of the matrix kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Isa {
    /// Portable Rust, no explicit SIMD: the reference every other level is tested against.
    Scalar,
    /// x86-64 AVX2 + FMA (what AWS Lambda's x86 functions promise).
    Avx2,
    /// x86-64 AVX-512F (with BW/VL/DQ for the conversions).
    Avx512,
    /// AArch64 Advanced SIMD (Graviton2 and later).
    Neon,
}

impl Isa {
    /// Every level, lowest first.
    pub const ALL: [Isa; 4] = [Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Neon];

    /// True when this CPU can run the level.
    pub fn supported(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                Isa::Avx2.supported()
                    && std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw")
                    && std::arch::is_x86_feature_detected!("avx512vl")
                    && std::arch::is_x86_feature_detected!("avx512dq")
            }
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => std::arch::is_aarch64_feature_detected!("neon"),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// Every level this CPU can run, lowest first.
    pub fn available() -> Vec<Isa> {
        Self::ALL.into_iter().filter(|i| i.supported()).collect()
    }

    /// The best level this CPU can run.
    pub fn detect() -> Isa {
        *Self::available().last().unwrap_or(&Isa::Scalar)
    }

    /// The level to use: `CAI_ISA` when set (an unknown or unsupported value is an error), the
    /// best detected otherwise.
    pub fn from_env() -> Result<Isa, String> {
        match std::env::var("CAI_ISA") {
            Ok(v) if !v.trim().is_empty() => {
                let isa: Isa = v.parse()?;
                if isa.supported() {
                    Ok(isa)
                } else {
                    Err(format!(
                        "CAI_ISA={v}: this CPU cannot run {isa} (available: {})",
                        Self::available()
                            .iter()
                            .map(|i| i.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                }
            }
            _ => Ok(Self::detect()),
        }
    }

    /// The process-wide default: [`Self::from_env`] once, falling back to the detected level
    /// with a warning when `CAI_ISA` is unusable.
    pub fn selected() -> Isa {
        static SELECTED: OnceLock<Isa> = OnceLock::new();
        *SELECTED.get_or_init(|| {
            Self::from_env().unwrap_or_else(|e| {
                tracing::warn!("{e}; using {}", Self::detect());
                Self::detect()
            })
        })
    }

    /// AVX512_BF16 (`vdpbf16ps`) is there to run bf16 products natively at this level.
    pub fn native_bf16(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        if self == Isa::Avx512 {
            return std::arch::is_x86_feature_detected!("avx512bf16");
        }
        false
    }

    /// AVX512_VNNI (`vpdpbusd`) is there to run int8 products natively at this level.
    pub fn native_vnni(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        if self == Isa::Avx512 {
            return std::arch::is_x86_feature_detected!("avx512vnni");
        }
        false
    }

    /// The dot-product extension (`sdot`) is there at this level (Graviton2 has it).
    pub fn native_dotprod(self) -> bool {
        #[cfg(target_arch = "aarch64")]
        if self == Isa::Neon {
            return std::arch::is_aarch64_feature_detected!("dotprod");
        }
        false
    }
}

thread_local! {
    static OVERRIDE: std::cell::Cell<Option<Isa>> = const { std::cell::Cell::new(None) };
}

/// The level the kernels on this thread use: the one [`with_isa`] set, else [`Isa::selected`].
pub fn current() -> Isa {
    OVERRIDE.with(|o| o.get()).unwrap_or_else(Isa::selected)
}

/// Runs `f` with the kernels on this thread at `isa` (the predictor sets its level in each
/// worker this way, so one process can run a model at several levels side by side).
pub fn with_isa<R>(isa: Isa, f: impl FnOnce() -> R) -> R {
    assert!(isa.supported(), "{isa} is not supported by this CPU");
    let prev = OVERRIDE.with(|o| o.replace(Some(isa)));
    struct Restore(Option<Isa>);
    impl Drop for Restore {
        fn drop(&mut self) {
            OVERRIDE.with(|o| o.set(self.0));
        }
    }
    let _restore = Restore(prev);
    f()
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
            Isa::Neon => "neon",
        })
    }
}

impl FromStr for Isa {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "scalar" | "portable" => Ok(Isa::Scalar),
            "avx2" => Ok(Isa::Avx2),
            "avx512" | "avx-512" | "avx512f" => Ok(Isa::Avx512),
            "neon" => Ok(Isa::Neon),
            other => Err(format!(
                "unknown ISA level {other:?} (expected scalar, avx2, avx512 or neon)"
            )),
        }
    }
}

/// Defines `fn $name(args) -> R` that runs `$body` (an `#[inline(always)]` function with the
/// same arguments) compiled for the thread's level ([`current`]): AVX-512 or AVX2+FMA code on
/// x86-64, the portable build otherwise. Unlike CPU-feature dispatch, a forced level
/// (`CAI_ISA`, `--isa`) is then what every kernel runs, so an AVX-512 machine measures what an
/// AVX2-only one gets.
macro_rules! at_isa_level {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($a:ident: $t:ty),* $(,)?) $(-> $r:ty)? = $body:path;) => {
        $(#[$m])*
        $vis fn $name($($a: $t),*) $(-> $r)? {
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
            unsafe fn avx512($($a: $t),*) $(-> $r)? {
                $body($($a),*)
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            unsafe fn avx2($($a: $t),*) $(-> $r)? {
                $body($($a),*)
            }
            match $crate::isa::current() {
                // SAFETY: the thread's level is only ever one this CPU supports
                // (`Isa::supported` checks exactly these features).
                #[cfg(target_arch = "x86_64")]
                $crate::isa::Isa::Avx512 => unsafe { avx512($($a),*) },
                // SAFETY: as above.
                #[cfg(target_arch = "x86_64")]
                $crate::isa::Isa::Avx2 => unsafe { avx2($($a),*) },
                _ => $body($($a),*),
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_scalar_is_always_there() {
        for isa in Isa::ALL {
            assert_eq!(isa.to_string().parse::<Isa>().unwrap(), isa);
        }
        assert!(Isa::Scalar.supported());
        assert!(Isa::available().contains(&Isa::detect()));
        assert!("sse9".parse::<Isa>().is_err());
    }
}
