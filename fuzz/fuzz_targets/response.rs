#![no_main]
//! See `ekilibri::http::harness::response` for the input layout and invariants.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ekilibri::http::harness::response(data);
});
