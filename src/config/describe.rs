//! A configuration as `key = value` lines, the same for the running
//! process (served on the admin listener at `/config`) and for a file, so
//! that `ekilibri --check` can show what a reload would change.

use super::Config;

/// Every setting as `(key, value)`, in a fixed order; `servers` lists one
/// entry per backend (`addr` or `addr (weight N)`).
pub fn describe(c: &Config) -> Vec<(&'static str, String)> {
    let servers: Vec<String> = c
        .servers
        .iter()
        .map(|s| match s.weight {
            1 => s.addr.to_string(),
            w => format!("{} (weight {w})", s.addr),
        })
        .collect();
    let ms = |d: std::time::Duration| format!("{} ms", d.as_millis());
    vec![
        ("servers", servers.join(", ")),
        ("strategy", format!("{:?}", c.strategy)),
        ("max_fails", c.max_fails.to_string()),
        ("fail_window", format!("{} s", c.fail_window.as_secs())),
        ("connection_timeout", ms(c.connection_timeout)),
        ("write_timeout", ms(c.write_timeout)),
        ("read_timeout", ms(c.read_timeout)),
        ("health_check_path", c.health_check_path.clone()),
        ("health_check_interval", ms(c.health_check_interval)),
        ("pool_size", c.pool_size.to_string()),
        ("listen", c.listen.to_string()),
        ("client_header_timeout", ms(c.client_header_timeout)),
        ("keepalive_timeout", ms(c.keepalive_timeout)),
        ("max_connections", c.max_connections.to_string()),
        ("retries", c.retries.to_string()),
        ("retry_budget_percent", c.retry_budget_percent.to_string()),
        (
            "retry_budget_min_per_sec",
            c.retry_budget_min_per_sec.to_string(),
        ),
        ("slow_start", format!("{} s", c.slow_start.as_secs())),
        ("forwarded_headers", c.forwarded_headers.to_string()),
        ("workers", c.workers.to_string()),
        ("shutdown_timeout", ms(c.shutdown_timeout)),
        (
            "admin_listen",
            c.admin_listen.map_or("off".into(), |a| a.to_string()),
        ),
        ("access_log", c.access_log.to_string()),
        ("access_log_format", c.access_log_format.to_string()),
    ]
}

/// Renders [`describe`] as text, one `key = value` line each.
pub fn render(c: &Config) -> String {
    describe(c)
        .into_iter()
        .map(|(k, v)| format!("{k} = {v}\n"))
        .collect()
}

/// What changes from `running` (text from [`render`]) to `next`: one line
/// per difference; empty when nothing changes.
pub fn diff(running: &str, next: &Config) -> Vec<String> {
    let old: Vec<(&str, &str)> = running
        .lines()
        .filter_map(|l| l.split_once(" = "))
        .collect();
    let get = |k: &str| old.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
    let mut out = Vec::new();
    for (key, new) in describe(next) {
        let Some(prev) = get(key) else {
            out.push(format!("{key}: (unknown to the running process) -> {new}"));
            continue;
        };
        if prev == new {
            continue;
        }
        if key == "servers" {
            servers_diff(prev, &new, &mut out);
        } else {
            out.push(format!("{key}: {prev} -> {new}"));
        }
    }
    out
}

/// The lines for a change of `servers`, as a reload logs it: backends
/// added, backends removed, and weights changed (a backend whose weight
/// changes keeps its health state and pool, so it is neither added nor
/// removed). Each entry is `addr` or `addr (weight N)` ([`describe`]).
fn servers_diff(prev: &str, new: &str, out: &mut Vec<String>) {
    // (address, weight, the entry as written)
    let entries = |line: &'_ str| -> Vec<(String, String, String)> {
        line.split(", ")
            .filter(|e| !e.is_empty())
            .map(|e| {
                let (addr, weight) = match e.split_once(" (weight ") {
                    Some((a, w)) => (a, w.trim_end_matches(')')),
                    None => (e, "1"),
                };
                (addr.to_owned(), weight.to_owned(), e.to_owned())
            })
            .collect()
    };
    let (before, after) = (entries(prev), entries(new));
    let weight_in = |list: &[(String, String, String)], addr: &str| {
        list.iter()
            .find(|(a, ..)| a == addr)
            .map(|(_, w, _)| w.clone())
    };
    let only_in = |list: &[(String, String, String)], other: &[(String, String, String)]| {
        list.iter()
            .filter(|(a, ..)| weight_in(other, a).is_none())
            .map(|(.., e)| e.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (what, names) in [
        ("added", only_in(&after, &before)),
        ("removed", only_in(&before, &after)),
    ] {
        if !names.is_empty() {
            out.push(format!("backends {what}: {names}"));
        }
    }
    for (addr, w, _) in &after {
        if let Some(old) = weight_in(&before, addr).filter(|old| old != w) {
            out.push(format!("{addr} weight {old} -> {w}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn cfg(text: &str) -> Config {
        super::super::parse(Path::new("t.toml"), text).unwrap()
    }

    #[test]
    fn diff_names_backends_and_settings() {
        let running = render(&cfg(
            "servers = [\"127.0.0.1:1\", \"127.0.0.1:2\"]\nread_timeout = 1000\n",
        ));
        let next = cfg(
            "servers = [\"127.0.0.1:2\", { address = \"127.0.0.1:3\", weight = 2 }]\nread_timeout = 2500\n",
        );
        assert_eq!(
            diff(&running, &next),
            [
                "backends added: 127.0.0.1:3 (weight 2)",
                "backends removed: 127.0.0.1:1",
                "read_timeout: 1000 ms -> 2500 ms",
            ]
        );
        assert!(diff(&render(&next), &next).is_empty());
    }

    #[test]
    fn diff_shows_a_weight_change_as_such() {
        let running = render(&cfg(
            "servers = [{ address = \"127.0.0.1:1\", weight = 3 }, \"127.0.0.1:2\"]\n",
        ));
        let next = cfg(
            "servers = [\"127.0.0.1:1\", { address = \"127.0.0.1:2\", weight = 2 }, \"127.0.0.1:3\"]\n",
        );
        assert_eq!(
            diff(&running, &next),
            [
                "backends added: 127.0.0.1:3",
                "127.0.0.1:1 weight 3 -> 1",
                "127.0.0.1:2 weight 1 -> 2",
            ]
        );
    }
}
