#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_harness::srtp::srtp_after_dtls(data));
