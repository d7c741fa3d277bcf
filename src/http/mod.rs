//! HTTP/1.1 message handling, free of I/O.

pub mod chunked;
