//! Tests of the public interface: `parse`/`load` from TOML text to `Config`
//! or a one-line `ConfigError`.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use super::raw::KNOWN_KEYS;
use super::{Config, ConfigError, Position, Server, StrategyKind, load, parse, parse_with_servers};

const SERVERS: &str = "servers = [\"127.0.0.1:8081\", \"127.0.0.1:8082\", \"127.0.0.1:8083\"]\n";

fn ok(text: &str) -> Config {
    match parse(Path::new("t.toml"), text) {
        Ok(c) => c,
        Err(e) => panic!("unexpected error: {e}"),
    }
}

/// Parses `text`, expecting an error about `key`; checks the shape of the
/// message and returns it.
fn key_err(text: &str, key: &str) -> String {
    let e = parse(Path::new("t.toml"), text).expect_err("expected an error");
    let msg = e.to_string();
    assert_eq!(e.key.as_deref(), Some(key), "{msg}");
    assert!(
        msg.starts_with(&format!("t.toml: key `{key}`: ")),
        "bad prefix: {msg}"
    );
    assert!(!msg.contains('\n') && !msg.contains('\r'), "{msg:?}");
    msg
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// A backend with weight 1, as the string form gives.
fn srv(s: &str) -> Server {
    weighted(s, 1)
}

fn weighted(s: &str, weight: u32) -> Server {
    Server {
        addr: addr(s),
        weight,
    }
}

fn defaults(servers: Vec<Server>) -> Config {
    Config {
        servers,
        strategy: StrategyKind::RoundRobin,
        max_fails: 5,
        fail_window: Duration::from_secs(60),
        connection_timeout: ms(1000),
        write_timeout: ms(1000),
        read_timeout: ms(1000),
        health_check_path: "/health".into(),
        pool_size: 10,
        listen: addr("127.0.0.1:8080"),
        health_check_interval: ms(500),
        client_header_timeout: ms(10_000),
        keepalive_timeout: ms(60_000),
        max_connections: 10_000,
        retries: 2,
        retry_budget_percent: 20,
        retry_budget_min_per_sec: 3,
        slow_start: Duration::ZERO,
        forwarded_headers: true,
        workers: 1,
        shutdown_timeout: ms(30_000),
        admin_listen: None,
        access_log: crate::config::AccessLog::Off,
        access_log_format: crate::ops::LogFormat::Combined,
    }
}

fn three_servers() -> Vec<Server> {
    vec![
        srv("127.0.0.1:8081"),
        srv("127.0.0.1:8082"),
        srv("127.0.0.1:8083"),
    ]
}

// ---- accepted configurations ----------------------------------------------

#[test]
fn minimal_config_gets_all_defaults() {
    assert_eq!(ok(SERVERS), defaults(three_servers()));
}

#[test]
fn original_ekilibri_config_loads() {
    // Verbatim from the original project's tests, without any new key.
    let text = r#"servers = [
    "127.0.0.1:8081",
    "127.0.0.1:8082",
    "127.0.0.1:8083"
]
strategy = "LeastConnections"
max_fails = 1
fail_window = 5
connection_timeout = 1000
write_timeout = 1000
read_timeout = 1000
health_check_path = "/sleep"
pool_size = 10
"#;
    let expected = Config {
        strategy: StrategyKind::LeastConnections,
        max_fails: 1,
        fail_window: Duration::from_secs(5),
        health_check_path: "/sleep".into(),
        ..defaults(three_servers())
    };
    assert_eq!(ok(text), expected);
}

#[test]
fn every_key_set() {
    let text = r#"
servers = ["10.0.0.1:80", { address = "[::1]:9000", weight = 5 }]
strategy = "Random"
max_fails = 3
fail_window = 30
connection_timeout = 250
write_timeout = 2000
read_timeout = 3000
health_check_path = "/status?full=1"
pool_size = 4
listen = "0.0.0.0:0"
health_check_interval = 100
client_header_timeout = 5000
keepalive_timeout = 15000
max_connections = 512
retries = 0
retry_budget_percent = 50
retry_budget_min_per_sec = 10
slow_start = 30
forwarded_headers = false
workers = 2
shutdown_timeout = 5000
admin_listen = "127.0.0.1:9000"
access_log = "/var/log/ekilibri/access.log"
access_log_format = "json"
"#;
    let expected = Config {
        servers: vec![srv("10.0.0.1:80"), weighted("[::1]:9000", 5)],
        strategy: StrategyKind::Random,
        max_fails: 3,
        fail_window: Duration::from_secs(30),
        connection_timeout: ms(250),
        write_timeout: ms(2000),
        read_timeout: ms(3000),
        health_check_path: "/status?full=1".into(),
        pool_size: 4,
        listen: addr("0.0.0.0:0"),
        health_check_interval: ms(100),
        client_header_timeout: ms(5000),
        keepalive_timeout: ms(15000),
        max_connections: 512,
        retries: 0,
        retry_budget_percent: 50,
        retry_budget_min_per_sec: 10,
        slow_start: Duration::from_secs(30),
        forwarded_headers: false,
        workers: 2,
        shutdown_timeout: ms(5000),
        admin_listen: Some(addr("127.0.0.1:9000")),
        access_log: crate::config::AccessLog::File("/var/log/ekilibri/access.log".into()),
        access_log_format: crate::ops::LogFormat::Json,
    };
    assert_eq!(ok(text), expected);
}

#[test]
fn every_strategy_name() {
    for (name, kind) in [
        ("RoundRobin", StrategyKind::RoundRobin),
        ("LeastConnections", StrategyKind::LeastConnections),
        ("Random", StrategyKind::Random),
        ("PowerOfTwoChoices", StrategyKind::PowerOfTwoChoices),
        ("LatencyAware", StrategyKind::LatencyAware),
    ] {
        let c = ok(&format!("{SERVERS}strategy = \"{name}\""));
        assert_eq!(c.strategy, kind);
    }
}

#[test]
fn localhost_resolves() {
    let c = ok("servers = [\"localhost:8081\"]");
    assert_eq!(c.servers.len(), 1);
    assert!(c.servers[0].addr.ip().is_loopback(), "{:?}", c.servers);
    assert_eq!(c.servers[0].addr.port(), 8081);
    assert_eq!(c.servers[0].weight, 1);
}

#[test]
fn listen_ipv6_and_port_zero() {
    assert_eq!(
        ok(&format!("{SERVERS}listen = \"[::1]:0\"")).listen,
        addr("[::1]:0")
    );
}

#[test]
fn upper_bounds_are_inclusive() {
    let c = ok(&format!(
        "{SERVERS}fail_window = 86400\nkeepalive_timeout = 86400000\nmax_connections = 1000000"
    ));
    assert_eq!(c.fail_window, Duration::from_secs(86_400));
    assert_eq!(c.keepalive_timeout, ms(86_400_000));
    assert_eq!(c.max_connections, 1_000_000);
}

#[test]
fn integers_in_other_toml_notations() {
    let c = ok(&format!(
        "{SERVERS}max_connections = 1_000\npool_size = 0x10"
    ));
    assert_eq!(c.max_connections, 1000);
    assert_eq!(c.pool_size, 16);
}

#[test]
fn comments_and_key_order_do_not_matter() {
    let text = "# comment\npool_size = 2 # trailing\n\nservers = [\n  \"127.0.0.1:1\", # one\n]\n";
    let c = ok(text);
    assert_eq!(c.pool_size, 2);
    assert_eq!(c.servers, vec![srv("127.0.0.1:1")]);
}

// ---- servers and weights ------------------------------------------------------

#[test]
fn weighted_servers_table_form() {
    let c = ok(r#"servers = [
    { address = "127.0.0.1:8081", weight = 3 },
    { address = "127.0.0.1:8082", weight = 1000 },
    { address = "127.0.0.1:8083" },
    { weight = 2, address = "localhost:8084" },
]"#);
    assert_eq!(
        c.servers[..3],
        [
            weighted("127.0.0.1:8081", 3),
            weighted("127.0.0.1:8082", 1000),
            srv("127.0.0.1:8083"),
        ]
    );
    assert!(c.servers[3].addr.ip().is_loopback(), "{:?}", c.servers);
    assert_eq!(c.servers[3].weight, 2);
}

#[test]
fn mixed_server_forms_keep_their_order() {
    let c = ok(
        r#"servers = ["127.0.0.1:8081", { address = "127.0.0.1:8082", weight = 7 }, "127.0.0.1:8083"]"#,
    );
    assert_eq!(
        c.servers,
        vec![
            srv("127.0.0.1:8081"),
            weighted("127.0.0.1:8082", 7),
            srv("127.0.0.1:8083"),
        ]
    );
}

#[test]
fn servers_as_array_of_tables() {
    let text = "[[servers]]\naddress = \"127.0.0.1:8081\"\nweight = 4\n\n[[servers]]\naddress = \"127.0.0.1:8082\"\n";
    let c = ok(&format!("pool_size = 2\n{text}"));
    assert_eq!(
        c.servers,
        vec![weighted("127.0.0.1:8081", 4), srv("127.0.0.1:8082")]
    );
    // Errors inside a later section still name `servers`.
    let m = key_err(&format!("{text}port = 1\n"), "servers");
    assert!(m.contains("unknown field `port`"), "{m}");
}

#[test]
fn weight_out_of_range() {
    for (bad, got) in [
        ("0", "0"),
        ("1001", "1001"),
        ("-1", "-1"),
        ("0x7fffffffffffffff", "9223372036854775807"),
    ] {
        let m = key_err(
            &format!(
                "servers = [\"127.0.0.1:8081\", {{ address = \"127.0.0.1:8082\", weight = {bad} }}]"
            ),
            "servers",
        );
        assert!(
            m.ends_with(&format!(
                "weight of \"127.0.0.1:8082\" must be an integer from 1 to 1000, got {got}"
            )),
            "{m}"
        );
    }
    // The bounds are inclusive.
    let c = ok(
        "servers = [{ address = \"127.0.0.1:1\", weight = 1 }, { address = \"127.0.0.1:2\", weight = 1000 }]",
    );
    assert_eq!(c.servers[0].weight, 1);
    assert_eq!(c.servers[1].weight, 1000);
}

#[test]
fn weight_not_an_integer() {
    for bad in ["1.5", "\"2\"", "true", "[1]"] {
        let m = key_err(
            &format!("servers = [{{ address = \"127.0.0.1:8081\", weight = {bad} }}]"),
            "servers",
        );
        assert!(m.contains("expected an integer"), "{m}");
    }
}

#[test]
fn unknown_key_in_server_table() {
    let m = key_err(
        "servers = [{ address = \"127.0.0.1:8081\", port = 2 }]",
        "servers",
    );
    assert!(m.contains("unknown field `port`"), "{m}");
    assert!(
        m.contains("`address` or `weight`"),
        "lists accepted keys: {m}"
    );
    // Also when nested or misspelt.
    let m = key_err(
        "servers = [{ address = \"127.0.0.1:8081\", weigth = 2 }]",
        "servers",
    );
    assert!(m.contains("`weigth`"), "{m}");
    key_err(
        "servers = [{ address = \"127.0.0.1:8081\", x = { y = 1 } }]",
        "servers",
    );
}

#[test]
fn server_table_needs_an_address_string() {
    let m = key_err("servers = [{ weight = 2 }]", "servers");
    assert!(m.contains("missing field `address`"), "{m}");
    key_err("servers = [{}]", "servers");
    let m = key_err("servers = [{ address = 8081 }]", "servers");
    assert!(m.contains("expected a string"), "{m}");
    let m = key_err(
        "servers = [{ address = \"127.0.0.1\", weight = 2 }]",
        "servers",
    );
    assert!(m.contains("invalid address \"127.0.0.1\""), "{m}");
}

// ---- retries and slow start ---------------------------------------------------

#[test]
fn retry_and_slow_start_defaults() {
    let c = ok(SERVERS);
    assert_eq!(c.retries, 2);
    assert_eq!(c.retry_budget_percent, 20);
    assert_eq!(c.retry_budget_min_per_sec, 3);
    assert_eq!(c.slow_start, Duration::ZERO);
}

#[test]
fn retry_and_slow_start_accept_zero_and_their_maximum() {
    let c = ok(&format!(
        "{SERVERS}retries = 0\nretry_budget_percent = 0\nretry_budget_min_per_sec = 0\nslow_start = 0"
    ));
    assert_eq!(
        (
            c.retries,
            c.retry_budget_percent,
            c.retry_budget_min_per_sec,
            c.slow_start
        ),
        (0, 0, 0, Duration::ZERO)
    );
    let c = ok(&format!(
        "{SERVERS}retries = 10\nretry_budget_percent = 100\nretry_budget_min_per_sec = 1000\nslow_start = 3600"
    ));
    assert_eq!(
        (
            c.retries,
            c.retry_budget_percent,
            c.retry_budget_min_per_sec,
            c.slow_start
        ),
        (10, 100, 1000, Duration::from_secs(3600))
    );
}

#[test]
fn retry_and_slow_start_range_errors() {
    for (key, max, unit) in [
        ("retries", 10, ""),
        ("retry_budget_percent", 100, " (percent)"),
        ("retry_budget_min_per_sec", 1000, " (retries per second)"),
        ("slow_start", 3600, " (seconds)"),
    ] {
        for bad in [-1, max + 1] {
            let m = key_err(&format!("{SERVERS}{key} = {bad}"), key);
            assert!(
                m.ends_with(&format!(
                    "must be an integer from 0 to {max}{unit}, got {bad}"
                )),
                "{m}"
            );
        }
    }
}

// ---- errors: servers --------------------------------------------------------

#[test]
fn missing_servers() {
    let m = key_err("pool_size = 3", "servers");
    assert!(m.contains("missing"), "{m}");
    key_err("", "servers");
}

/// `--demo` gives its own backends: the file's `servers` are then optional
/// and not resolved, and every other key still applies and is checked.
#[test]
fn given_servers_replace_the_files_without_resolving_them() {
    let given = vec![srv("127.0.0.1:9001")];
    let with = |text: &str| parse_with_servers(Path::new("t.toml"), text, given.clone());
    let c = with("servers = [\"no-such-host.invalid:80\"]\npool_size = 3\n").unwrap();
    assert_eq!(c.servers, given);
    assert_eq!(c.pool_size, 3);
    assert_eq!(with("").unwrap(), defaults(given.clone()));
    let e = with("servers = [\"no-such-host.invalid:80\"]\npool_size = 0\n").unwrap_err();
    assert_eq!(e.key.as_deref(), Some("pool_size"), "{e}");
    // Not an array is still a type error.
    let e = with("servers = 5").unwrap_err();
    assert_eq!(e.key.as_deref(), Some("servers"), "{e}");
}

#[test]
fn empty_servers() {
    let m = key_err("servers = []", "servers");
    assert!(m.contains("at least one"), "{m}");
}

#[test]
fn the_same_backend_twice_is_refused() {
    let m = key_err(
        "servers = [\"127.0.0.1:8081\", \"127.0.0.1:8082\", \"127.0.0.1:8081\"]",
        "servers",
    );
    assert!(m.contains("same backend (127.0.0.1:8081)"), "{m}");
    let m = key_err(
        "servers = [\"127.0.0.1:8081\", {address = \"127.0.0.1:8081\", weight = 2}]",
        "servers",
    );
    assert!(m.contains("list it once"), "{m}");
}

#[test]
fn access_log_keywords_in_another_case_are_refused() {
    let m = key_err(
        "servers = [\"127.0.0.1:1\"]\naccess_log = \"OFF\"",
        "access_log",
    );
    assert!(m.contains("\"off\""), "{m}");
    key_err(
        "servers = [\"127.0.0.1:1\"]\naccess_log = \"Stdout\"",
        "access_log",
    );
    assert!(
        parse(
            Path::new("t.toml"),
            "servers = [\"127.0.0.1:1\"]\naccess_log = \"./OFF\""
        )
        .is_ok()
    );
}

#[test]
fn a_server_written_as_a_url_is_refused_by_its_scheme() {
    let m = key_err("servers = [\"http://127.0.0.1:8081\"]", "servers");
    assert!(m.contains("without http://"), "{m}");
}

#[test]
fn unbracketed_ipv6_backend_is_refused() {
    let m = key_err("servers = [\"::1:8081\"]", "servers");
    assert!(m.contains("brackets"), "{m}");
    assert_eq!(
        ok("servers = [\"[::1]:8081\"]").servers[0].addr,
        addr("[::1]:8081")
    );
}

#[test]
fn empty_strings_for_off_are_refused() {
    for key in ["admin_listen", "access_log"] {
        for blank in ["", "  "] {
            let m = key_err(&format!("{SERVERS}{key} = \"{blank}\""), key);
            assert!(m.contains("\"off\""), "{m}");
        }
    }
}

#[test]
fn admin_listen_must_differ_from_listen() {
    let m = key_err(
        &format!("{SERVERS}listen = \"127.0.0.1:7001\"\nadmin_listen = \"127.0.0.1:7001\""),
        "admin_listen",
    );
    assert!(m.contains("127.0.0.1:7001"), "{m}");
    // Port 0 on both means two ephemeral ports.
    ok(&format!(
        "{SERVERS}listen = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\""
    ));
}

#[test]
fn health_check_path_refuses_a_fragment() {
    let m = key_err(
        &format!("{SERVERS}health_check_path = \"/x?y=1#frag\""),
        "health_check_path",
    );
    assert!(m.contains("fragment"), "{m}");
}

#[test]
fn health_check_path_length_is_capped() {
    let long = format!("/{}", "a".repeat(2047));
    assert_eq!(
        ok(&format!("{SERVERS}health_check_path = \"{long}\"")).health_check_path,
        long
    );
    let m = key_err(
        &format!("{SERVERS}health_check_path = \"{long}a\""),
        "health_check_path",
    );
    assert!(m.contains("at most 2048"), "{m}");
}

#[test]
fn backend_port_0_is_refused() {
    let m = key_err("servers = [\"127.0.0.1:0\"]", "servers");
    assert!(m.contains("port 0"), "{m}");
}

#[test]
fn bad_server_address() {
    let m = key_err(
        "servers = [\"127.0.0.1:8081\", \"not an address\"]",
        "servers",
    );
    assert!(m.contains("\"not an address\""), "{m}");
    let m = key_err("servers = [\"127.0.0.1\"]", "servers");
    assert!(m.contains("\"127.0.0.1\""), "{m}");
    let m = key_err("servers = [\"127.0.0.1:99999\"]", "servers");
    assert!(m.contains("\"127.0.0.1:99999\""), "{m}");
    let m = key_err("servers = [\"\"]", "servers");
    assert!(m.contains("invalid address \"\""), "{m}");
}

#[test]
fn servers_wrong_types() {
    let m = key_err("servers = \"127.0.0.1:8081\"", "servers");
    assert!(m.contains("expected an array"), "{m}");
    let m = key_err("servers = [8081]", "servers");
    assert!(m.contains("expected a string"), "{m}");
}

// ---- errors: other keys -----------------------------------------------------

#[test]
fn pool_size_zero() {
    let m = key_err(&format!("{SERVERS}pool_size = 0"), "pool_size");
    assert!(
        m.ends_with("must be an integer from 1 to 1000000, got 0"),
        "{m}"
    );
}

#[test]
fn unknown_strategy_lists_accepted_values() {
    let m = key_err(&format!("{SERVERS}strategy = \"Fastest\""), "strategy");
    assert!(m.contains("\"Fastest\""), "{m}");
    assert!(
        m.ends_with(
            "accepted values: RoundRobin, LeastConnections, Random, PowerOfTwoChoices, LatencyAware"
        ),
        "{m}"
    );
    // Names are case-sensitive, as in the original ekilibri.
    key_err(&format!("{SERVERS}strategy = \"roundrobin\""), "strategy");
}

#[test]
fn unknown_key() {
    let m = key_err(&format!("{SERVERS}max_fail = 3"), "max_fail");
    assert!(m.contains("unknown key"), "{m}");
    assert!(m.contains("max_fails"), "lists accepted keys: {m}");
    // Unknown tables and dotted keys are reported by their top-level name.
    key_err(&format!("{SERVERS}[extra]\na = 1"), "extra");
    key_err(&format!("{SERVERS}health.path = \"/\""), "health");
}

#[test]
fn wrong_type_for_integer_keys() {
    for key in KNOWN_KEYS.iter().filter(|k| is_int_key(k)) {
        for bad in ["\"10\"", "1.5", "true", "[1]", "1979-05-27"] {
            let m = key_err(&format!("{SERVERS}{key} = {bad}"), key);
            assert!(m.contains("expected an integer"), "{m}");
        }
    }
}

#[test]
fn wrong_type_for_string_keys() {
    for key in ["strategy", "health_check_path", "listen"] {
        let m = key_err(&format!("{SERVERS}{key} = 5"), key);
        assert!(m.contains("expected a string"), "{m}");
    }
}

/// serde sees a TOML date or time as a map (a table with one private key);
/// the message names what was written instead.
#[test]
fn a_date_or_time_where_another_type_belongs_is_named_as_written() {
    for key in KNOWN_KEYS.iter().filter(|k| **k != "servers") {
        let m = key_err(&format!("{SERVERS}{key} = 1979-05-27"), key);
        assert!(
            m.contains("invalid type: date `1979-05-27`, expected "),
            "{m}"
        );
        assert!(!m.contains("map"), "{m}");
    }
    let cases = [
        (
            "read_timeout = 07:32:00",
            "time `07:32:00`, expected an integer",
        ),
        (
            "strategy = 1979-05-27T07:32:00Z",
            "date-time `1979-05-27T07:32:00Z`, expected a string",
        ),
        (
            "forwarded_headers = 1979-05-27",
            "date `1979-05-27`, expected a boolean",
        ),
    ];
    for (line, want) in cases {
        let key = line.split_once(' ').unwrap().0;
        let m = key_err(&format!("{SERVERS}{line}"), key);
        assert!(m.ends_with(&format!("invalid type: {want}")), "{m}");
    }
    let servers = [
        ("servers = 1979-05-27", "expected an array"),
        (
            "servers = [1979-05-27]",
            "expected a string \"host:port\" or a table",
        ),
        ("servers = [{ address = 1979-05-27 }]", "expected a string"),
        (
            "servers = [{ address = \"127.0.0.1:1\", weight = 1979-05-27 }]",
            "expected an integer",
        ),
    ];
    for (text, want) in servers {
        let m = key_err(text, "servers");
        assert!(
            m.contains(&format!("invalid type: date `1979-05-27`, {want}")),
            "{m}"
        );
        assert!(!m.contains("map") && !m.contains("$__"), "{m}");
    }
}

#[test]
fn zero_and_negative_integers() {
    for key in KNOWN_KEYS
        .iter()
        .filter(|k| is_int_key(k) && !zero_allowed(k))
    {
        for bad in [
            "0",
            "-1",
            "-9223372036854775808",
            "9223372036854775807",
            "99999999999999999999",
        ] {
            let m = key_err(&format!("{SERVERS}{key} = {bad}"), key);
            assert!(m.ends_with(&format!("got {bad}")), "{m}");
        }
    }
}

#[test]
fn negative_and_huge_integers_where_zero_is_allowed() {
    for key in KNOWN_KEYS.iter().filter(|k| zero_allowed(k)) {
        ok(&format!("{SERVERS}{key} = 0"));
        for bad in [
            "-1",
            "-9223372036854775808",
            "9223372036854775807",
            "99999999999999999999",
        ] {
            let m = key_err(&format!("{SERVERS}{key} = {bad}"), key);
            assert!(m.ends_with(&format!("got {bad}")), "{m}");
        }
    }
}

#[test]
fn units_are_named_in_range_errors() {
    let m = key_err(&format!("{SERVERS}read_timeout = -5"), "read_timeout");
    assert!(m.contains("(milliseconds)"), "{m}");
    let m = key_err(&format!("{SERVERS}fail_window = 86401"), "fail_window");
    assert!(m.contains("(seconds)"), "{m}");
}

#[test]
fn values_above_the_maximum() {
    for (key, max) in [
        ("max_fails", 1_000_000),
        ("pool_size", 1_000_000),
        ("max_connections", 1_000_000),
        ("fail_window", 86_400),
        ("connection_timeout", 86_400_000),
        ("keepalive_timeout", 86_400_000),
        ("retries", 10),
        ("retry_budget_percent", 100),
        ("retry_budget_min_per_sec", 1000),
        ("slow_start", 3600),
        ("workers", 64),
    ] {
        let m = key_err(&format!("{SERVERS}{key} = {}", max + 1), key);
        let min = if zero_allowed(key) { 0 } else { 1 };
        assert!(m.contains(&format!("from {min} to {max}")), "{m}");
    }
}

#[test]
fn bad_health_check_path() {
    for bad in ["health", "", "/a b", "/a\\tb", "/caf\u{e9}"] {
        key_err(
            &format!("{SERVERS}health_check_path = \"{bad}\""),
            "health_check_path",
        );
    }
}

#[test]
fn bad_listen() {
    for bad in ["", "8080", "127.0.0.1", "localhost:8080", "127.0.0.1:65536"] {
        let m = key_err(&format!("{SERVERS}listen = \"{bad}\""), "listen");
        assert!(m.contains(&format!("{bad:?}")), "{m}");
    }
}

// ---- errors: syntax and files -------------------------------------------

#[test]
fn syntax_error_has_line_and_column() {
    let text = format!("{SERVERS}pool_size = 3\nmax_fails = = 2\n");
    let e = parse(Path::new("t.toml"), &text).unwrap_err();
    assert_eq!(e.key, None);
    assert_eq!(
        e.position,
        Some(Position {
            line: 3,
            column: 13
        })
    );
    let m = e.to_string();
    assert!(m.starts_with("t.toml:3:13: "), "{m}");
    assert!(!m.contains('\n'), "{m:?}");
}

#[test]
fn syntax_errors_are_one_line() {
    for text in [
        "servers = [\"a:1\"",
        "servers = [\"a:1\"]\nstrategy = \"RoundRobin",
        "= 3",
        "servers = [\"a:1\"]\n[[",
        "servers = [\"a:1\"]\npool_size = 3\npool_size = 4\n",
        "\u{feff}servers = ['a:1'] x",
    ] {
        let e = parse(Path::new("t.toml"), text).unwrap_err();
        let m = e.to_string();
        assert!(e.position.is_some(), "{m}");
        assert!(!m.contains('\n') && !m.contains('\r'), "{m:?}");
        assert!(m.starts_with("t.toml:"), "{m}");
    }
}

#[test]
fn syntax_error_column_counts_characters() {
    // "é" is two bytes but one column; the error is at the second '='.
    let text = "servers = [\"é:1\"] = 2\n";
    let e = parse(Path::new("t.toml"), text).unwrap_err();
    let p = e.position.expect("position");
    assert_eq!(p.line, 1, "{e}");
    assert_eq!(p.column, 19, "{e}");
}

#[test]
fn missing_file_is_one_line() {
    let path = Path::new("/nonexistent/ekilibri-test/ekilibri.toml");
    let e = load(path).unwrap_err();
    let m = e.to_string();
    assert!(
        m.starts_with("/nonexistent/ekilibri-test/ekilibri.toml: No such file or directory"),
        "{m}"
    );
    assert!(!m.contains('\n'));
}

#[test]
fn a_file_that_is_not_utf8_is_one_line() {
    let path = std::env::temp_dir().join(format!("ekilibri-latin1-{}.toml", std::process::id()));
    std::fs::write(&path, b"servers = [\"caf\xe9:1\"]\n").unwrap();
    let m = load(&path).unwrap_err().to_string();
    std::fs::remove_file(&path).unwrap();
    assert!(m.ends_with(": is not valid UTF-8 text"), "{m}");
}

#[test]
fn error_display_formats() {
    let e = ConfigError::key(Path::new("f.toml"), "pool_size", "must be positive");
    assert_eq!(e.to_string(), "f.toml: key `pool_size`: must be positive");
}

// ---- shipped example and docs -----------------------------------------------

const EXAMPLE: &str = include_str!("../../ekilibri.toml");
const DOCS: &str = include_str!("../../docs/configuration.md");

#[test]
fn root_example_loads() {
    let c = ok(EXAMPLE);
    assert_eq!(c.servers, three_servers());
    assert_eq!(c.listen, addr("127.0.0.1:8080"));
}

#[test]
fn root_example_sets_every_key_to_its_default() {
    // Every key is written out in the example with its default value, so
    // the example and the code cannot drift apart silently.
    assert_eq!(ok(EXAMPLE), defaults(three_servers()));
    for key in KNOWN_KEYS {
        assert!(
            EXAMPLE.lines().any(|l| l.starts_with(&format!("{key} = "))),
            "ekilibri.toml does not set `{key}`"
        );
    }
}

#[test]
fn docs_cover_every_key_and_example_loads() {
    for key in KNOWN_KEYS {
        assert!(
            DOCS.contains(&format!("| `{key}` |")),
            "docs/configuration.md has no table row for `{key}`"
        );
    }
    let blocks: Vec<&str> = DOCS
        .split("```toml\n")
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap())
        .collect();
    assert!(!blocks.is_empty(), "docs contain a ```toml example");
    for block in &blocks {
        ok(block);
    }
    // The complete example sets every key.
    let example = DOCS
        .split("## Example\n")
        .nth(1)
        .and_then(|rest| rest.split("```toml\n").nth(1))
        .and_then(|rest| rest.split("```").next())
        .expect("docs have an ## Example section with a ```toml block");
    for key in KNOWN_KEYS {
        assert!(
            example.lines().any(|l| l.starts_with(&format!("{key} = "))),
            "the complete example in docs/configuration.md does not set `{key}`"
        );
    }
    for section in ["## Servers and weights", "## Retries", "## Slow start"] {
        assert!(DOCS.contains(section), "docs lack {section:?}");
    }
}

#[test]
fn root_example_weighted_servers_comment_loads() {
    // The commented `servers = [...]` example in ekilibri.toml, uncommented.
    let start = EXAMPLE
        .find("# servers = [")
        .expect("ekilibri.toml shows a weighted servers example");
    let block: String = EXAMPLE[start..]
        .lines()
        .take_while(|l| l.starts_with('#'))
        .map(|l| format!("{}\n", l.trim_start_matches('#')))
        .collect();
    let c = ok(&block);
    assert!(c.servers.iter().any(|s| s.weight > 1), "{:?}", c.servers);
}

fn is_int_key(key: &str) -> bool {
    !matches!(
        key,
        "servers"
            | "strategy"
            | "health_check_path"
            | "listen"
            | "forwarded_headers"
            | "admin_listen"
            | "access_log"
            | "access_log_format"
    )
}

/// Integer keys whose range starts at 0 rather than 1.
fn zero_allowed(key: &str) -> bool {
    matches!(
        key,
        "retries" | "retry_budget_percent" | "retry_budget_min_per_sec" | "slow_start"
    )
}
