//! The test/demo HTTP/1.1 server (placeholder, being written).
fn main() {}
