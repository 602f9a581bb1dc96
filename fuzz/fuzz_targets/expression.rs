#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| scimitar_fuzz::expression::expression(data));
