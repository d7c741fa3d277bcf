//! Configuration errors: one line naming the file and the key.

use std::fmt;
use std::path::Path;

/// A 1-based line and column (in characters) inside the configuration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Line number, starting at 1.
    pub line: usize,
    /// Column number in characters, starting at 1.
    pub column: usize,
}

impl Position {
    /// Converts a byte offset into `text` to a line and column.
    ///
    /// Offsets past the end, or inside a multi-byte character, are clamped.
    pub fn from_offset(text: &str, offset: usize) -> Self {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Position {
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
        }
    }
}

/// A configuration problem. `Display` is the single line printed to stderr:
///
/// * ``<file>: key `<key>`: <reason>`` for a problem with one key,
/// * `<file>:<line>:<col>: <reason>` for a TOML syntax error,
/// * `<file>: <reason>` when neither is known (e.g. the file cannot be read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file the configuration came from.
    pub file: String,
    /// The key at fault, when one is known.
    pub key: Option<String>,
    /// Where in the file the problem is, for syntax errors.
    pub position: Option<Position>,
    /// What is wrong, in words.
    pub reason: String,
}

impl ConfigError {
    /// An error reading the file itself.
    pub fn io(path: &Path, e: &std::io::Error) -> Self {
        ConfigError::file(path, e.to_string())
    }

    /// A problem with the file as a whole: no key, no position.
    pub fn file(path: &Path, reason: impl Into<String>) -> Self {
        ConfigError {
            file: path.display().to_string(),
            key: None,
            position: None,
            reason: reason.into(),
        }
    }

    /// A problem with the value (or the presence) of one key.
    pub fn key(path: &Path, key: &str, reason: impl Into<String>) -> Self {
        ConfigError {
            file: path.display().to_string(),
            key: Some(key.to_owned()),
            position: None,
            reason: reason.into(),
        }
    }

    /// A TOML syntax error at `position`.
    pub fn syntax(path: &Path, position: Position, reason: impl Into<String>) -> Self {
        ConfigError {
            file: path.display().to_string(),
            key: None,
            position: Some(position),
            reason: reason.into(),
        }
    }
}

/// Writes `s` with every run of line breaks (and the blanks around them)
/// replaced by a single space and other control characters escaped, so the
/// output is always exactly one line.
fn write_one_line(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    let mut first = true;
    for part in s.lines().map(str::trim).filter(|p| !p.is_empty()) {
        if !first {
            f.write_str(" ")?;
        }
        first = false;
        for c in part.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                write!(f, "{c}")?;
            }
        }
    }
    Ok(())
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_one_line(f, &self.file)?;
        if let Some(p) = self.position {
            write!(f, ":{}:{}", p.line, p.column)?;
        }
        f.write_str(": ")?;
        if let Some(k) = &self.key {
            f.write_str("key `")?;
            write_one_line(f, k)?;
            f.write_str("`: ")?;
        }
        write_one_line(f, &self.reason)
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn position_from_offset() {
        let text = "ab\ncdé\nf";
        assert_eq!(
            Position::from_offset(text, 0),
            Position { line: 1, column: 1 }
        );
        assert_eq!(
            Position::from_offset(text, 2),
            Position { line: 1, column: 3 }
        );
        assert_eq!(
            Position::from_offset(text, 3),
            Position { line: 2, column: 1 }
        );
        // 'é' is two bytes, so the second newline is at byte 7.
        assert_eq!(
            Position::from_offset(text, 7),
            Position { line: 2, column: 4 }
        );
        assert_eq!(
            Position::from_offset(text, 8),
            Position { line: 3, column: 1 }
        );
        assert_eq!(
            Position::from_offset(text, 9),
            Position { line: 3, column: 2 }
        );
        // Inside a multi-byte character and past the end are clamped.
        assert_eq!(
            Position::from_offset(text, 6),
            Position { line: 2, column: 3 }
        );
        assert_eq!(
            Position::from_offset(text, 99),
            Position { line: 3, column: 2 }
        );
        assert_eq!(
            Position::from_offset("", 5),
            Position { line: 1, column: 1 }
        );
    }

    #[test]
    fn display_is_one_line() {
        let e = ConfigError::key(Path::new("a.toml"), "k", "first\n  second\r\n\nthird\t!");
        assert_eq!(e.to_string(), "a.toml: key `k`: first second third\\t!");
        let e = ConfigError::syntax(Path::new("a.toml"), Position { line: 3, column: 7 }, "bad");
        assert_eq!(e.to_string(), "a.toml:3:7: bad");
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let e = ConfigError::io(Path::new("a.toml"), &io);
        assert_eq!(e.to_string(), format!("a.toml: {io}"));
    }
}
