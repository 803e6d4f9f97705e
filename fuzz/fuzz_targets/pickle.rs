#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cai_torchfile::fuzz_support::pickle_bytes(data);
});
