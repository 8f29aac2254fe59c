#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ppwds_fuzz::index_build(data));
