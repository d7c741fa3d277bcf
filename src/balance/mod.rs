//! Balancing strategies (placeholder, being written).
