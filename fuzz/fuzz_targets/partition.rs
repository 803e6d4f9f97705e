#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cai_data::fuzz_support::partition_bytes(data);
});
