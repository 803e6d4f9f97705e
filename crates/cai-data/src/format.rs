//! The two partition formats and how to tell them apart.

use std::path::Path;

/// On-disk format of a partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// `torch.save` zip archive of a TensorDataset (the original's `.pt`).
    Torch,
    /// safetensors with `images`, `magnitudes` and optional `redshifts`.
    Safetensors,
}

impl Format {
    /// Detects the format from the first bytes of the content (never the extension).
    pub fn detect(head: &[u8]) -> Option<Format> {
        if head.starts_with(b"PK\x03\x04")
            || head.starts_with(b"PK\x05\x06")
            || head.first() == Some(&0x80)
        {
            // 0x80 is a legacy pickle; the torch reader explains it is unsupported.
            return Some(Format::Torch);
        }
        if head.len() >= 9 && head[8] == b'{' {
            return Some(Format::Safetensors);
        }
        None
    }

    /// Chooses the output format from a file extension (`.pt`/`.pth` or `.safetensors`).
    pub fn from_extension(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()? {
            "pt" | "pth" => Some(Format::Torch),
            "safetensors" => Some(Format::Safetensors),
            _ => None,
        }
    }

    /// File extension for numbered partitions.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Torch => "pt",
            Format::Safetensors => "safetensors",
        }
    }
}
