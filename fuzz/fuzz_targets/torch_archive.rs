#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cai_torchfile::fuzz_support::archive_bytes(data);
});
