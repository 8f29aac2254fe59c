#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ppwds_fuzz::tar_reader(data));
