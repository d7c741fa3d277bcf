//! Chunked transfer coding (placeholder, being written).
