//! The reactor (placeholder, being written).
