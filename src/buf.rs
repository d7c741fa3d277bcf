//! Fixed-capacity byte buffers (placeholder, being written).
