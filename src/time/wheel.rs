//! Hashed timer wheel (placeholder, being written).
