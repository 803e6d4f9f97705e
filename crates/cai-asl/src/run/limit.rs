//! The payload size quota: every input, output and result a state handles must fit in
//! 256 KiB of UTF-8 JSON, or the execution fails with `States.DataLimitExceeded`.

use std::io;

use serde_json::Value;

use crate::error::error_names;
use crate::TaskFailure;

/// Step Functions' payload quota: 256 KiB of UTF-8 encoded JSON.
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;

/// Counts serialized bytes without keeping them.
struct Counter(usize);

impl io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The length of `v` as compact JSON text.
pub(crate) fn json_len(v: &Value) -> usize {
    let mut c = Counter(0);
    serde_json::to_writer(&mut c, v).expect("serializing a Value to a counter cannot fail");
    c.0
}

/// The failure for a payload of `size` bytes.
pub(crate) fn exceeded(limit: usize, size: usize, what: &str) -> TaskFailure {
    TaskFailure::new(
        error_names::DATA_LIMIT_EXCEEDED,
        format!("{what} is {size} bytes, more than the payload limit of {limit} bytes"),
    )
}
