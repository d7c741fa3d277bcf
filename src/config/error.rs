//! Configuration errors: one line naming the file and the key.

use std::fmt;
use std::path::Path;

/// A configuration problem. `Display` is the single line printed to stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file the configuration came from.
    pub file: String,
    /// The key at fault, when one is known.
    pub key: Option<String>,
    /// What is wrong, in words.
    pub reason: String,
}

impl ConfigError {
    /// An error reading the file itself.
    pub fn io(path: &Path, e: &std::io::Error) -> Self {
        ConfigError {
            file: path.display().to_string(),
            key: None,
            reason: e.to_string(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(k) => write!(f, "{}: key `{}`: {}", self.file, k, self.reason),
            None => write!(f, "{}: {}", self.file, self.reason),
        }
    }
}

impl std::error::Error for ConfigError {}
