//! Element types of torch storages and their conversion to `f32`/`f64`.

use half::{bf16, f16};

/// The element type of a storage or tensor; the set torch files use for numeric data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    /// IEEE half precision.
    F16,
    /// bfloat16.
    BF16,
    /// Single precision.
    F32,
    /// Double precision.
    F64,
    /// Signed 8-bit integer.
    I8,
    /// Unsigned 8-bit integer (also the element of untyped storages).
    U8,
    /// Signed 16-bit integer.
    I16,
    /// Signed 32-bit integer.
    I32,
    /// Signed 64-bit integer.
    I64,
    /// Boolean stored as one byte.
    Bool,
}

impl DType {
    /// Size of one element in bytes.
    pub fn size(self) -> usize {
        match self {
            DType::I8 | DType::U8 | DType::Bool => 1,
            DType::F16 | DType::BF16 | DType::I16 => 2,
            DType::F32 | DType::I32 => 4,
            DType::F64 | DType::I64 => 8,
        }
    }

    /// Maps a legacy typed-storage class name (`FloatStorage`, ...) to its dtype.
    pub fn from_storage_name(name: &str) -> Option<DType> {
        Some(match name {
            "FloatStorage" => DType::F32,
            "DoubleStorage" => DType::F64,
            "HalfStorage" => DType::F16,
            "BFloat16Storage" => DType::BF16,
            "LongStorage" => DType::I64,
            "IntStorage" => DType::I32,
            "ShortStorage" => DType::I16,
            "CharStorage" => DType::I8,
            "ByteStorage" | "UntypedStorage" => DType::U8,
            "BoolStorage" => DType::Bool,
            _ => return None,
        })
    }

    /// The typed-storage class name torch pickles for this dtype.
    pub fn storage_name(self) -> &'static str {
        match self {
            DType::F32 => "FloatStorage",
            DType::F64 => "DoubleStorage",
            DType::F16 => "HalfStorage",
            DType::BF16 => "BFloat16Storage",
            DType::I64 => "LongStorage",
            DType::I32 => "IntStorage",
            DType::I16 => "ShortStorage",
            DType::I8 => "CharStorage",
            DType::U8 => "ByteStorage",
            DType::Bool => "BoolStorage",
        }
    }

    /// Maps a `torch.<dtype>` attribute name (as pickled by `_rebuild_tensor_v3`).
    pub fn from_torch_name(name: &str) -> Option<DType> {
        Some(match name {
            "float32" | "float" => DType::F32,
            "float64" | "double" => DType::F64,
            "float16" | "half" => DType::F16,
            "bfloat16" => DType::BF16,
            "int64" | "long" => DType::I64,
            "int32" | "int" => DType::I32,
            "int16" | "short" => DType::I16,
            "int8" => DType::I8,
            "uint8" => DType::U8,
            "bool" => DType::Bool,
            _ => return None,
        })
    }
}

/// An output element type that tensor reads convert into (`f32` or `f64`).
pub trait Element: Copy + Default + Send + Sync + 'static {
    /// Converts from a double, rounding if needed.
    fn from_f64(v: f64) -> Self;
    /// Converts from a single.
    fn from_f32(v: f32) -> Self;
}

impl Element for f32 {
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    fn from_f32(v: f32) -> Self {
        v
    }
}

impl Element for f64 {
    fn from_f64(v: f64) -> Self {
        v
    }
    fn from_f32(v: f32) -> Self {
        v as f64
    }
}

/// Appends the little-endian elements in `bytes` (a whole number of `dtype` elements)
/// to `out`, converted to `T`; the one conversion routine every reader shares.
pub fn decode_into<T: Element>(dtype: DType, bytes: &[u8], out: &mut Vec<T>) {
    macro_rules! conv {
        ($n:literal, $f:expr) => {
            out.extend(bytes.chunks_exact($n).map(|c| {
                let a: [u8; $n] = c.try_into().expect("chunk size");
                $f(a)
            }))
        };
    }
    match dtype {
        DType::F32 => conv!(4, |a| T::from_f32(f32::from_le_bytes(a))),
        DType::F64 => conv!(8, |a| T::from_f64(f64::from_le_bytes(a))),
        DType::F16 => conv!(2, |a| T::from_f32(f16::from_le_bytes(a).to_f32())),
        DType::BF16 => conv!(2, |a| T::from_f32(bf16::from_le_bytes(a).to_f32())),
        DType::I64 => conv!(8, |a| T::from_f64(i64::from_le_bytes(a) as f64)),
        DType::I32 => conv!(4, |a| T::from_f64(i32::from_le_bytes(a) as f64)),
        DType::I16 => conv!(2, |a| T::from_f32(i16::from_le_bytes(a) as f32)),
        DType::I8 => conv!(1, |a: [u8; 1]| T::from_f32(a[0] as i8 as f32)),
        DType::U8 => conv!(1, |a: [u8; 1]| T::from_f32(a[0] as f32)),
        DType::Bool => conv!(1, |a: [u8; 1]| T::from_f32(if a[0] != 0 {
            1.0
        } else {
            0.0
        })),
    }
}
