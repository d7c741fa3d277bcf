//! Turns a [`RawConfig`] into a [`Config`]: fills in defaults, checks ranges
//! and formats, converts units and resolves addresses.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

use super::raw::{Int, RawConfig, RawServer, ServerList};
use super::{Config, ConfigError, Server, StrategyKind};

/// Default `strategy`.
const DEFAULT_STRATEGY: StrategyKind = StrategyKind::RoundRobin;
/// Default `max_fails`.
const DEFAULT_MAX_FAILS: u64 = 5;
/// Default `fail_window`, in seconds.
const DEFAULT_FAIL_WINDOW_S: u64 = 60;
/// Default `connection_timeout`, `write_timeout` and `read_timeout`, in ms.
const DEFAULT_IO_TIMEOUT_MS: u64 = 1000;
/// Default `health_check_path`.
const DEFAULT_HEALTH_CHECK_PATH: &str = "/health";
/// Default `pool_size`.
const DEFAULT_POOL_SIZE: u64 = 10;
/// Default `listen`.
const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default `health_check_interval`, in ms.
const DEFAULT_HEALTH_CHECK_INTERVAL_MS: u64 = 500;
/// Default `client_header_timeout`, in ms.
const DEFAULT_CLIENT_HEADER_TIMEOUT_MS: u64 = 10_000;
/// Default `keepalive_timeout`, in ms.
const DEFAULT_KEEPALIVE_TIMEOUT_MS: u64 = 60_000;
/// Default `max_connections`.
const DEFAULT_MAX_CONNECTIONS: u64 = 10_000;
/// Default weight of a `servers` entry.
const DEFAULT_WEIGHT: u64 = 1;
/// Default `retries`.
const DEFAULT_RETRIES: u64 = 2;
/// Default `retry_budget_percent`.
const DEFAULT_RETRY_BUDGET_PERCENT: u64 = 20;
/// Default `retry_budget_min_per_sec`.
const DEFAULT_RETRY_BUDGET_MIN_PER_SEC: u64 = 3;
/// Default `slow_start`, in seconds (off).
const DEFAULT_SLOW_START_S: u64 = 0;

/// Upper bound for millisecond durations: 24 hours. Keeps `Instant`
/// arithmetic far from overflow.
const MAX_MS: u64 = 86_400_000;
/// Upper bound for `fail_window`: 24 hours, in seconds.
const MAX_SECS: u64 = 86_400;
/// Upper bound for counts (`max_fails`, `pool_size`, `max_connections`).
const MAX_COUNT: u64 = 1_000_000;
/// Upper bound for the weight of a `servers` entry.
const MAX_WEIGHT: u64 = 1000;
/// Upper bound for `retries`.
const MAX_RETRIES: u64 = 10;
/// Upper bound for `retry_budget_min_per_sec`.
const MAX_RETRY_BUDGET_MIN_PER_SEC: u64 = 1000;
/// Upper bound for `slow_start`: one hour, in seconds.
const MAX_SLOW_START_S: u64 = 3600;

/// Accepted `strategy` values, in documentation order.
const STRATEGIES: &[(&str, StrategyKind)] = &[
    ("RoundRobin", StrategyKind::RoundRobin),
    ("LeastConnections", StrategyKind::LeastConnections),
    ("Random", StrategyKind::Random),
    ("PowerOfTwoChoices", StrategyKind::PowerOfTwoChoices),
    ("LatencyAware", StrategyKind::LatencyAware),
];

/// Longest `health_check_path`, in bytes.
const MAX_HEALTH_CHECK_PATH: usize = 2048;

/// The error for `""` where `"off"` is meant.
const BLANK_OFF: &str = "empty; write \"off\" to turn it off";

/// Validates `raw`, taking `given` servers (already resolved) instead of
/// the file's when there are some; `path` is only used in error messages.
pub(super) fn validate(
    path: &Path,
    raw: RawConfig,
    given: Option<Vec<Server>>,
) -> Result<Config, ConfigError> {
    let err = |key: &str, reason: String| ConfigError::key(path, key, reason);

    // Every integer key: min..=max, in `unit` (for the message only).
    let ranged = |key: &str, value: Option<Int>, default: u64, (min, max), unit: &str| {
        in_range(value, default, min, max, unit).map_err(|r| err(key, r))
    };
    // Most integer keys: 1..=max.
    let int = |key: &str, value: Option<Int>, default: u64, max: u64, unit: &str| {
        ranged(key, value, default, (1, max), unit)
    };
    let count =
        |key: &str, value: Option<Int>, default: u64| int(key, value, default, MAX_COUNT, "");
    let millis = |key: &str, value: Option<Int>, default: u64| {
        int(key, value, default, MAX_MS, " (milliseconds)").map(Duration::from_millis)
    };

    let servers = match given {
        Some(given) => given,
        None => servers(raw.servers).map_err(|r| err("servers", r))?,
    };
    let strategy = strategy(raw.strategy.as_deref()).map_err(|r| err("strategy", r))?;
    let max_fails = count("max_fails", raw.max_fails, DEFAULT_MAX_FAILS)?;
    let fail_window = int(
        "fail_window",
        raw.fail_window,
        DEFAULT_FAIL_WINDOW_S,
        MAX_SECS,
        " (seconds)",
    )?;
    let connection_timeout = millis(
        "connection_timeout",
        raw.connection_timeout,
        DEFAULT_IO_TIMEOUT_MS,
    )?;
    let write_timeout = millis("write_timeout", raw.write_timeout, DEFAULT_IO_TIMEOUT_MS)?;
    let read_timeout = millis("read_timeout", raw.read_timeout, DEFAULT_IO_TIMEOUT_MS)?;
    let health_check_path =
        health_check_path(raw.health_check_path).map_err(|r| err("health_check_path", r))?;
    let pool_size = count("pool_size", raw.pool_size, DEFAULT_POOL_SIZE)?;
    let listen = parse_listen(raw.listen.as_deref()).map_err(|r| err("listen", r))?;
    let health_check_interval = millis(
        "health_check_interval",
        raw.health_check_interval,
        DEFAULT_HEALTH_CHECK_INTERVAL_MS,
    )?;
    let client_header_timeout = millis(
        "client_header_timeout",
        raw.client_header_timeout,
        DEFAULT_CLIENT_HEADER_TIMEOUT_MS,
    )?;
    let keepalive_timeout = millis(
        "keepalive_timeout",
        raw.keepalive_timeout,
        DEFAULT_KEEPALIVE_TIMEOUT_MS,
    )?;
    let max_connections = count(
        "max_connections",
        raw.max_connections,
        DEFAULT_MAX_CONNECTIONS,
    )?;
    let admin_listen = match raw.admin_listen.as_deref() {
        None | Some("off") => None,
        Some(blank) if blank.trim().is_empty() => {
            return Err(err("admin_listen", BLANK_OFF.into()));
        }
        Some(a) => Some(parse_listen(Some(a)).map_err(|r| err("admin_listen", r))?),
    };
    if let Some(a) = admin_listen
        && a == listen
        && a.port() != 0
    {
        return Err(err(
            "admin_listen",
            format!("{a} is also `listen`; the admin listener needs an address of its own"),
        ));
    }
    let access_log = match raw.access_log.as_deref() {
        None | Some("off") => super::AccessLog::Off,
        Some(blank) if blank.trim().is_empty() => {
            return Err(err("access_log", BLANK_OFF.into()));
        }
        Some("stdout") => super::AccessLog::Stdout,
        Some(word) if word.eq_ignore_ascii_case("off") || word.eq_ignore_ascii_case("stdout") => {
            // Almost surely meant as the keyword, not a file of that name.
            return Err(err(
                "access_log",
                format!(
                    "{word:?}: the keywords are lower case, \"{}\"; for a file of that name write \"./{word}\"",
                    word.to_ascii_lowercase()
                ),
            ));
        }
        Some(path) => super::AccessLog::File(path.into()),
    };
    let access_log_format = match raw.access_log_format.as_deref() {
        None | Some("combined") => crate::ops::LogFormat::Combined,
        Some("common") => crate::ops::LogFormat::Common,
        Some("json") => crate::ops::LogFormat::Json,
        Some(other) => {
            return Err(err(
                "access_log_format",
                format!("unknown format {other:?}; accepted: common, combined, json"),
            ));
        }
    };
    let shutdown_timeout = millis("shutdown_timeout", raw.shutdown_timeout, 30_000)?;
    let workers = ranged("workers", raw.workers, 1, (1, 64), " (threads)")?;
    let retries = ranged(
        "retries",
        raw.retries,
        DEFAULT_RETRIES,
        (0, MAX_RETRIES),
        "",
    )?;
    let retry_budget_percent = ranged(
        "retry_budget_percent",
        raw.retry_budget_percent,
        DEFAULT_RETRY_BUDGET_PERCENT,
        (0, 100),
        " (percent)",
    )?;
    let retry_budget_min_per_sec = ranged(
        "retry_budget_min_per_sec",
        raw.retry_budget_min_per_sec,
        DEFAULT_RETRY_BUDGET_MIN_PER_SEC,
        (0, MAX_RETRY_BUDGET_MIN_PER_SEC),
        " (retries per second)",
    )?;
    let slow_start = ranged(
        "slow_start",
        raw.slow_start,
        DEFAULT_SLOW_START_S,
        (0, MAX_SLOW_START_S),
        " (seconds)",
    )?;

    // The `as` casts below are lossless: counts were checked to lie in
    // 0..=MAX_COUNT, far inside u32 and usize.
    Ok(Config {
        servers,
        strategy,
        max_fails: max_fails as u32,
        fail_window: Duration::from_secs(fail_window),
        connection_timeout,
        write_timeout,
        read_timeout,
        health_check_path,
        pool_size: pool_size as usize,
        listen,
        health_check_interval,
        client_header_timeout,
        keepalive_timeout,
        max_connections: max_connections as usize,
        retries: retries as u32,
        retry_budget_percent: retry_budget_percent as u32,
        retry_budget_min_per_sec: retry_budget_min_per_sec as u32,
        slow_start: Duration::from_secs(slow_start),
        forwarded_headers: raw.forwarded_headers.unwrap_or(true),
        workers: workers as usize,
        shutdown_timeout,
        admin_listen,
        access_log,
        access_log_format,
    })
}

/// `value` (or `default` when absent) if it lies in `min..=max`, else the
/// reason; `unit` is only used in the message.
fn in_range(
    value: Option<Int>,
    default: u64,
    min: u64,
    max: u64,
    unit: &str,
) -> Result<u64, String> {
    let v = value.map_or(i128::from(default), |Int(v)| v);
    if (i128::from(min)..=i128::from(max)).contains(&v) {
        // In min..=max, so it fits in a u64.
        Ok(v as u64)
    } else {
        Err(format!(
            "must be an integer from {min} to {max}{unit}, got {v}"
        ))
    }
}

/// Resolves every entry's `"host:port"`, keeping its first address, and
/// checks its weight.
fn servers(list: Option<ServerList>) -> Result<Vec<Server>, String> {
    let Some(ServerList(list)) = list else {
        return Err(
            "required key is missing; list the backends, e.g. servers = [\"127.0.0.1:8081\"]"
                .into(),
        );
    };
    if list.is_empty() {
        return Err("must list at least one backend \"host:port\" address".into());
    }
    let mut out: Vec<(String, Server)> = Vec::with_capacity(list.len());
    for entry in list {
        let address = entry.address.clone();
        let s = server(entry)?;
        if let Some((first, _)) = out.iter().find(|(_, o)| o.addr == s.addr) {
            // Two entries for one backend would double its share silently
            // and give /metrics two series with the same label.
            return Err(format!(
                "{first:?} and {address:?} are the same backend ({}); list it once, with a weight for a larger share",
                s.addr
            ));
        }
        out.push((address, s));
    }
    Ok(out.into_iter().map(|(_, s)| s).collect())
}

fn server(entry: RawServer) -> Result<Server, String> {
    let RawServer { address, weight } = entry;
    let weight = in_range(weight, DEFAULT_WEIGHT, 1, MAX_WEIGHT, "")
        .map_err(|r| format!("weight of {address:?} {r}"))?;
    if let Some((scheme, _)) = address.split_once("://") {
        return Err(format!(
            "invalid address {address:?}: a server is \"host:port\", without {scheme}://"
        ));
    }
    // "::1:80" would resolve as host "::1", port 80, but it reads as well
    // as the address ::1:80 without a port: brackets, as in a URL.
    if let Some((host, _)) = address.rsplit_once(':')
        && host.contains(':')
        && !host.starts_with('[')
    {
        return Err(format!(
            "invalid address {address:?}: an IPv6 address needs brackets, e.g. \"[::1]:8081\""
        ));
    }
    let mut addrs = address.to_socket_addrs().map_err(|e| {
        if e.kind() == std::io::ErrorKind::InvalidInput {
            format!(
                "invalid address {address:?}: {e}; expected \"host:port\", e.g. \"127.0.0.1:8081\""
            )
        } else {
            format!("cannot resolve {address:?}: {e}")
        }
    })?;
    let addr = addrs
        .next()
        .ok_or_else(|| format!("cannot resolve {address:?}: no addresses found"))?;
    if addr.port() == 0 {
        return Err(format!(
            "invalid address {address:?}: port 0 is not a backend port"
        ));
    }
    // In 1..=MAX_WEIGHT, so the cast is lossless.
    Ok(Server {
        addr,
        weight: weight as u32,
    })
}

fn strategy(name: Option<&str>) -> Result<StrategyKind, String> {
    let Some(name) = name else {
        return Ok(DEFAULT_STRATEGY);
    };
    STRATEGIES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|&(_, kind)| kind)
        .ok_or_else(|| {
            let accepted: Vec<&str> = STRATEGIES.iter().map(|(n, _)| *n).collect();
            format!(
                "unknown strategy {name:?}; accepted values: {}",
                accepted.join(", ")
            )
        })
}

/// The path goes verbatim into a request line, so it must be an
/// origin-form target: `/` followed by visible ASCII only, without a
/// fragment.
fn health_check_path(path: Option<String>) -> Result<String, String> {
    let path = path.unwrap_or_else(|| DEFAULT_HEALTH_CHECK_PATH.to_owned());
    if !path.starts_with('/') {
        return Err(format!("must start with '/', got {path:?}"));
    }
    if !path.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "must not contain spaces, control or non-ASCII characters, got {path:?}"
        ));
    }
    if path.contains('#') {
        // No request target has a fragment (RFC 9112 §3.2): ekilibri itself
        // answers such a request line 400, and so may a backend.
        return Err(format!(
            "must not contain a fragment ('#'): no request target has one, got {path:?}"
        ));
    }
    if path.len() > MAX_HEALTH_CHECK_PATH {
        // Backends refuse long request lines (nginx: 8 KiB for the whole
        // head), so every probe would fail and every backend go down.
        return Err(format!(
            "{} bytes long; at most {MAX_HEALTH_CHECK_PATH}",
            path.len()
        ));
    }
    Ok(path)
}

fn parse_listen(addr: Option<&str>) -> Result<SocketAddr, String> {
    let addr = addr.unwrap_or(DEFAULT_LISTEN);
    addr.parse().map_err(|_| {
        format!(
            "invalid socket address {addr:?}; expected an IP address and port, e.g. \"127.0.0.1:8080\" or \"[::1]:8080\""
        )
    })
}
