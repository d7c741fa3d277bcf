//! Configuration: parsed once from TOML into typed values.
//!
//! `load` reads the file, `raw` mirrors the TOML 1:1 (serde, unknown keys
//! rejected), and validation turns it into [`Config`], where every duration is
//! a `Duration`, every backend a [`Server`] with a resolved `SocketAddr` and
//! the strategy an enum.
//!
//! The keys, their units and defaults are documented in
//! `docs/configuration.md` and in the example `ekilibri.toml`. Every failure
//! is a [`ConfigError`] whose `Display` is a single line.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

pub mod describe;
mod error;
mod raw;
#[cfg(test)]
mod tests;
mod validate;

pub use error::{ConfigError, Position};

/// Which balancing strategy picks the backend for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrategyKind {
    /// Rotate through the backends in rotation, in configured order.
    RoundRobin,
    /// Fewest in-flight requests wins; ties broken by rotation.
    LeastConnections,
    /// A uniformly random backend in rotation.
    Random,
    /// Two random backends in rotation; the one with fewer in-flight requests wins.
    PowerOfTwoChoices,
    /// Power of two choices by peak-EWMA response time × (in-flight + 1).
    LatencyAware,
}

/// One backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Server {
    /// Address (resolved at load).
    pub addr: SocketAddr,
    /// Relative share of requests (1..=1000).
    pub weight: u32,
}

/// Where access log lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLog {
    /// No access log.
    Off,
    /// Standard output.
    Stdout,
    /// A file, appended to (reopened on SIGUSR1).
    File(std::path::PathBuf),
}

impl std::fmt::Display for AccessLog {
    /// As written in the file: `off`, `stdout` or the path.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AccessLog::Off => f.write_str("off"),
            AccessLog::Stdout => f.write_str("stdout"),
            AccessLog::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// The validated configuration. After [`load`] no code sees a default, a
/// string strategy or a number with unclear units.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Backends, in configured order (non-empty).
    pub servers: Vec<Server>,
    /// Balancing strategy.
    pub strategy: StrategyKind,
    /// Failures within `fail_window` that take a backend out of rotation.
    pub max_fails: u32,
    /// Window over which failures are counted.
    pub fail_window: Duration,
    /// Time allowed to establish a backend connection.
    pub connection_timeout: Duration,
    /// Time allowed for a write to a backend to make progress.
    pub write_timeout: Duration,
    /// Time allowed waiting for backend bytes.
    pub read_timeout: Duration,
    /// Path probed by active health checks.
    pub health_check_path: String,
    /// Maximum idle connections kept per backend.
    pub pool_size: usize,
    /// Address the client listener binds.
    pub listen: SocketAddr,
    /// Interval between active health probes of one backend.
    pub health_check_interval: Duration,
    /// Time allowed for a client to send a complete request head.
    pub client_header_timeout: Duration,
    /// Time an idle keep-alive client connection is kept open.
    pub keepalive_timeout: Duration,
    /// Maximum simultaneous client connections.
    pub max_connections: usize,
    /// How many times a request that provably never reached a backend may
    /// be retried, each time on a different backend (0..=10; 0 disables).
    pub retries: u32,
    /// Retries may be at most this percentage of the requests over the last
    /// 10 seconds (0..=100), on top of `retry_budget_min_per_sec`.
    pub retry_budget_percent: u32,
    /// Retries allowed per second regardless of the request count
    /// (0..=1000): the floor of the retry budget.
    pub retry_budget_min_per_sec: u32,
    /// Time over which a backend returning to rotation ramps its share of
    /// requests up linearly; zero disables slow start.
    pub slow_start: Duration,
    /// Add `X-Forwarded-Proto` and `Forwarded` (RFC 7239) to requests
    /// (`X-Forwarded-For` and `Via` are always added).
    pub forwarded_headers: bool,
    /// Worker threads, each with its own event loop, listener socket
    /// (`SO_REUSEPORT`), pools, health state and timers.
    pub workers: usize,
    /// How long a graceful shutdown may take before connections are
    /// closed anyway.
    pub shutdown_timeout: Duration,
    /// Address of the admin listener (`/metrics`, `/status`,
    /// `/status.json`); `None` = off.
    pub admin_listen: Option<SocketAddr>,
    /// Access log destination.
    pub access_log: AccessLog,
    /// Access log line format.
    pub access_log_format: crate::ops::LogFormat,
}

/// Reads, parses and validates the configuration file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    parse(path, &read(path)?)
}

/// Parses and validates configuration text; `path` is only used in errors.
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    raw::parse(path, text, None)
}

/// As [`load`], but with `servers` (not empty) in place of the file's
/// `servers`, which is then optional and, if present, only checked to be
/// an array: its host names are not resolved. `ekilibri --demo` runs its
/// own backends.
pub fn load_with_servers(path: &Path, servers: Vec<Server>) -> Result<Config, ConfigError> {
    parse_with_servers(path, &read(path)?, servers)
}

/// As [`parse`], with `servers` in place of the text's (see
/// [`load_with_servers`]).
pub fn parse_with_servers(
    path: &Path,
    text: &str,
    servers: Vec<Server>,
) -> Result<Config, ConfigError> {
    raw::parse(path, text, Some(servers))
}

/// The largest configuration file read: far more than any list of
/// backends needs, and a bound on what a wrong path (a log file, a device)
/// can make ekilibri read.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// Reads the file at `path`: a regular file, or a FIFO (`-f <(...)`; a
/// reload reads off the event loop, so one that waits for its writer
/// stalls no traffic), of at most [`MAX_FILE_BYTES`]. A device such as
/// `/dev/zero` or a socket is refused before it is opened.
fn read(path: &Path) -> Result<String, ConfigError> {
    use std::io::Read;
    use std::os::unix::fs::FileTypeExt;
    let meta = std::fs::metadata(path).map_err(|e| ConfigError::io(path, &e))?;
    let kind = meta.file_type();
    if kind.is_dir() {
        return Err(ConfigError::file(path, "is a directory, not a file"));
    }
    if !kind.is_file() && !kind.is_fifo() {
        return Err(ConfigError::file(
            path,
            "is not a regular file (a device or socket cannot be a configuration file)",
        ));
    }
    let file = std::fs::File::open(path).map_err(|e| ConfigError::io(path, &e))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ConfigError::io(path, &e))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(ConfigError::file(
            path,
            format!(
                "is larger than {} MiB: not a configuration file",
                MAX_FILE_BYTES >> 20
            ),
        ));
    }
    String::from_utf8(bytes).map_err(|_| ConfigError::file(path, "is not valid UTF-8 text"))
}
