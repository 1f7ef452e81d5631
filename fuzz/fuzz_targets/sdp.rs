//! libFuzzer entry for the `sdp` target; the body is in the library.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| trunkline_fuzz::sdp(data));
