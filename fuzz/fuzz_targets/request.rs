#![no_main]
//! See `ekilibri::http::harness::request` for the input layout and invariants.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ekilibri::http::harness::request(data);
});
