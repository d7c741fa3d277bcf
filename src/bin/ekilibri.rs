//! The ekilibri load balancer binary.
fn main() {}
