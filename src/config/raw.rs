//! Serde mirror of the TOML file (placeholder, being written).
use super::{Config, ConfigError};
use std::path::Path;

pub(super) fn parse(path: &Path, _text: &str) -> Result<Config, ConfigError> {
    Err(ConfigError {
        file: path.display().to_string(),
        key: None,
        reason: "unimplemented".into(),
    })
}
