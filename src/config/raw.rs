//! Serde mirror of the TOML file, and the mapping of `toml` errors to
//! one-line [`ConfigError`]s.
//!
//! Parsing happens in two steps so every error can be told apart:
//!
//! 1. [`DeTable::parse`] checks the TOML syntax; a failure becomes
//!    `<file>:<line>:<col>: <reason>`.
//! 2. The spanned document is deserialized into [`RawConfig`], which rejects
//!    unknown keys and values of the wrong TOML type. The error's byte span
//!    is mapped back to the top-level key it falls in, giving
//!    ``<file>: key `<key>`: <reason>``.
//!
//! Range checks, defaults and unit conversion are left to
//! [`validate`](super::validate).

use std::fmt;
use std::path::Path;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use toml::de::{DeTable, DeValue};
use toml::value::Datetime;

use super::error::Position;
use super::{Config, ConfigError, Server};

/// Every top-level key the file may contain, in documentation order.
///
/// Must match the fields of [`RawConfig`] (checked by a unit test).
pub(super) const KNOWN_KEYS: &[&str] = &[
    "servers",
    "strategy",
    "max_fails",
    "fail_window",
    "connection_timeout",
    "write_timeout",
    "read_timeout",
    "health_check_path",
    "pool_size",
    "listen",
    "health_check_interval",
    "client_header_timeout",
    "keepalive_timeout",
    "max_connections",
    "retries",
    "retry_budget_percent",
    "retry_budget_min_per_sec",
    "slow_start",
    "forwarded_headers",
    "workers",
    "shutdown_timeout",
    "admin_listen",
    "access_log",
    "access_log_format",
];

/// The file exactly as written: every key optional, integers still signed
/// and unitless, strings not yet interpreted.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub servers: Option<ServerList>,
    pub strategy: Option<String>,
    pub max_fails: Option<Int>,
    pub fail_window: Option<Int>,
    pub connection_timeout: Option<Int>,
    pub write_timeout: Option<Int>,
    pub read_timeout: Option<Int>,
    pub health_check_path: Option<String>,
    pub pool_size: Option<Int>,
    pub listen: Option<String>,
    pub health_check_interval: Option<Int>,
    pub client_header_timeout: Option<Int>,
    pub keepalive_timeout: Option<Int>,
    pub max_connections: Option<Int>,
    pub retries: Option<Int>,
    pub retry_budget_percent: Option<Int>,
    pub retry_budget_min_per_sec: Option<Int>,
    pub slow_start: Option<Int>,
    pub forwarded_headers: Option<bool>,
    pub workers: Option<Int>,
    pub shutdown_timeout: Option<Int>,
    pub admin_listen: Option<String>,
    pub access_log: Option<String>,
    pub access_log_format: Option<String>,
}

/// A TOML integer, kept signed and wide so that negative and huge values
/// reach validation (which names the allowed range) instead of failing as a
/// type error. Floats, strings, booleans etc. are rejected with "expected an
/// integer".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Int(pub i128);

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct IntVisitor;

        impl Visitor<'_> for IntVisitor {
            type Value = Int;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer")
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Int, E> {
                Ok(Int(v.into()))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Int, E> {
                Ok(Int(v.into()))
            }

            fn visit_i128<E: de::Error>(self, v: i128) -> Result<Int, E> {
                Ok(Int(v))
            }

            fn visit_u128<E: de::Error>(self, v: u128) -> Result<Int, E> {
                Ok(Int(i128::try_from(v).unwrap_or(i128::MAX)))
            }
        }

        d.deserialize_i64(IntVisitor)
    }
}

/// The `servers` array, entries as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ServerList(pub Vec<RawServer>);

/// One `servers` entry: `"host:port"`, or an inline table
/// `{ address = "host:port", weight = N }`. The string form has no weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RawServer {
    pub address: String,
    pub weight: Option<Int>,
}

impl RawServer {
    /// An entry written as a plain `"host:port"` string.
    #[cfg(test)]
    pub fn addr(address: &str) -> Self {
        RawServer {
            address: address.to_owned(),
            weight: None,
        }
    }
}

/// What a `servers` entry must be, for error messages.
const SERVER_EXPECTED: &str =
    "a string \"host:port\" or a table { address = \"host:port\", weight = N }";

/// The table form of a `servers` entry; unknown keys are rejected.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerTable {
    address: String,
    weight: Option<Int>,
}

impl<'de> Deserialize<'de> for RawServer {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ServerVisitor;

        impl<'de> Visitor<'de> for ServerVisitor {
            type Value = RawServer;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(SERVER_EXPECTED)
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawServer, E> {
                Ok(RawServer {
                    address: v.to_owned(),
                    weight: None,
                })
            }

            fn visit_string<E: de::Error>(self, v: String) -> Result<RawServer, E> {
                Ok(RawServer {
                    address: v,
                    weight: None,
                })
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawServer, A::Error> {
                let t = ServerTable::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(RawServer {
                    address: t.address,
                    weight: t.weight,
                })
            }
        }

        d.deserialize_any(ServerVisitor)
    }
}

impl<'de> Deserialize<'de> for ServerList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ListVisitor;

        impl<'de> Visitor<'de> for ListVisitor {
            type Value = ServerList;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of \"host:port\" strings or { address, weight } tables")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ServerList, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(s) = seq.next_element::<RawServer>()? {
                    out.push(s);
                }
                Ok(ServerList(out))
            }
        }

        d.deserialize_seq(ListVisitor)
    }
}

/// Parses and validates `text`, with `servers` in place of its own if
/// given; `path` is only used in error messages.
pub(super) fn parse(
    path: &Path,
    text: &str,
    servers: Option<Vec<Server>>,
) -> Result<Config, ConfigError> {
    let raw = parse_raw(path, text)?;
    super::validate::validate(path, raw, servers)
}

/// Steps 1 and 2 of the module docs: syntax, then key names and types.
pub(super) fn parse_raw(path: &Path, text: &str) -> Result<RawConfig, ConfigError> {
    let doc = DeTable::parse(text).map_err(|e| syntax_error(path, text, &e))?;
    let mut dates = Vec::new();
    let spans: Vec<KeySpans> = doc
        .get_ref()
        .iter()
        .map(|(k, v)| {
            let mut ranges = vec![k.span()];
            collect_spans(v, &mut ranges, &mut dates);
            KeySpans {
                name: k.get_ref().to_string(),
                ranges,
            }
        })
        .collect();
    RawConfig::deserialize(toml::de::Deserializer::from(doc))
        .map_err(|e| data_error(path, text, &spans, &dates, &e))
}

/// Where one top-level key and its value sit in the text.
struct KeySpans {
    name: String,
    /// The key, its value and every key and value nested in it. A value
    /// written as `[[servers]]` sections is spread over the file, so one
    /// range is not enough.
    ranges: Vec<std::ops::Range<usize>>,
}

/// A date or time value in the file, and where it is.
type DateSpan = (std::ops::Range<usize>, Datetime);

/// Pushes the span of `v` and of every key and value nested in it to
/// `out`, and every date or time among them to `dates`.
fn collect_spans(
    v: &toml::Spanned<DeValue<'_>>,
    out: &mut Vec<std::ops::Range<usize>>,
    dates: &mut Vec<DateSpan>,
) {
    out.push(v.span());
    match v.get_ref() {
        DeValue::Array(items) => items
            .iter()
            .for_each(|item| collect_spans(item, out, dates)),
        DeValue::Table(table) => {
            for (k, item) in table {
                out.push(k.span());
                collect_spans(item, out, dates);
            }
        }
        DeValue::Datetime(dt) => dates.push((v.span(), *dt)),
        _ => {}
    }
}

/// A TOML syntax error: position from the error's span, message as one line.
fn syntax_error(path: &Path, text: &str, e: &toml::de::Error) -> ConfigError {
    let offset = e.span().map_or(0, |s| s.start);
    let reason = format!("TOML syntax error: {}", e.message());
    ConfigError::syntax(path, Position::from_offset(text, offset), reason)
}

/// A well-formed document with an unknown key or a value of the wrong type.
fn data_error(
    path: &Path,
    text: &str,
    spans: &[KeySpans],
    dates: &[DateSpan],
    e: &toml::de::Error,
) -> ConfigError {
    let message = match e
        .span()
        .and_then(|span| dates.iter().find(|(r, _)| *r == span))
    {
        Some((_, dt)) => date_message(e.message(), dt),
        None => e.message().to_owned(),
    };
    let key = e.span().and_then(|span| {
        spans
            .iter()
            .find(|k| k.ranges.iter().any(|r| r.contains(&span.start)))
    });
    match key {
        Some(k) if !KNOWN_KEYS.contains(&k.name.as_str()) => ConfigError::key(
            path,
            &k.name,
            format!("unknown key; accepted keys are: {}", KNOWN_KEYS.join(", ")),
        ),
        Some(k) => ConfigError::key(path, &k.name, message),
        // Not expected: every data error carries the span of a key or value.
        // Fall back to the position, or to the bare message.
        None => match e.span() {
            Some(span) => {
                ConfigError::syntax(path, Position::from_offset(text, span.start), message)
            }
            None => ConfigError::file(path, message),
        },
    }
}

/// The message for a date or time where a value of another type belongs,
/// naming it as written.
///
/// serde sees a TOML date or time as a map (a table with one private key),
/// so `toml` says "invalid type: map, expected an integer" for
/// `max_fails = 1979-05-27`; where a table is read (a `servers` entry) it
/// says "unknown field" and names that private key.
fn date_message(message: &str, dt: &Datetime) -> String {
    let kind = match (dt.date, dt.time) {
        (Some(_), Some(_)) => "date-time",
        (Some(_), None) => "date",
        (None, _) => "time",
    };
    let expected = message
        .strip_prefix("invalid type: map, expected ")
        .unwrap_or(SERVER_EXPECTED);
    format!("invalid type: {kind} `{dt}`, expected {expected}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Result<RawConfig, ConfigError> {
        parse_raw(Path::new("t.toml"), text)
    }

    /// `KNOWN_KEYS` lists exactly the fields serde accepts: serde's own
    /// "expected one of ..." list for an unknown field must match it.
    #[test]
    fn known_keys_match_struct_fields() {
        let err = toml::from_str::<RawConfig>("nope = 1").unwrap_err();
        let msg = err.message();
        let listed: Vec<&str> = msg
            .split_once("expected one of ")
            .expect("serde lists the fields")
            .1
            .split(", ")
            .map(|s| s.trim_matches('`'))
            .collect();
        assert_eq!(listed, KNOWN_KEYS);
    }

    #[test]
    fn raw_keeps_values_as_written() {
        let r = raw("servers = [\"a:1\", \"b:2\"]\nmax_fails = -3\nstrategy = \"x\"").unwrap();
        assert_eq!(
            r.servers,
            Some(ServerList(vec![
                RawServer::addr("a:1"),
                RawServer::addr("b:2")
            ]))
        );
        assert_eq!(r.max_fails, Some(Int(-3)));
        assert_eq!(r.strategy.as_deref(), Some("x"));
        assert_eq!(r.pool_size, None);
    }

    #[test]
    fn wrong_type_inside_servers_names_servers() {
        let e = raw("servers = [\"a:1\", 5]").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("servers"));
        assert!(e.reason.contains("expected a string"), "{e}");
        let e = raw("servers = \"a:1\"").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("servers"));
        assert!(e.reason.contains("array"), "{e}");
    }

    #[test]
    fn unknown_table_is_an_unknown_key() {
        let e = raw("servers = [\"a:1\"]\n[backend]\nx = 1\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("backend"));
        assert!(e.reason.starts_with("unknown key"), "{e}");
    }

    #[test]
    fn duplicate_key_is_a_syntax_error() {
        let e = raw("pool_size = 1\npool_size = 2\n").unwrap_err();
        assert_eq!(e.position.map(|p| p.line), Some(2), "{e}");
        assert!(!e.to_string().contains('\n'));
    }
}
