//! The Prometheus text exposition format, version 0.0.4.
//!
//! Every family has a `# HELP` and a `# TYPE` line, every name starts with
//! `ekilibri_`, counters end in `_total`, per-backend series carry a
//! `backend="IP:port"` label, and the response-time histogram has
//! cumulative `_bucket{le="..."}` series ending with `+Inf`, then `_sum`
//! (seconds) and `_count`. Serve it with [`CONTENT_TYPE`].

use std::io::Write;

use super::BackendView;
use super::escape::{label_value, seconds_from_micros};
use super::metrics::{
    BackendStats, FAILURE_KINDS, LE_LABELS, Metrics, ParseErrorKind, STATUS_CLASSES, failure_label,
};

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Writes the family header: `# HELP` and `# TYPE`.
fn header(out: &mut Vec<u8>, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Writes one sample line. Label values must already be escaped.
fn sample(out: &mut Vec<u8>, name: &str, labels: &[(&str, &[u8])], value: u64) {
    sample_start(out, name, labels);
    let _ = writeln!(out, "{value}");
}

fn sample_start(out: &mut Vec<u8>, name: &str, labels: &[(&str, &[u8])]) {
    out.extend_from_slice(name.as_bytes());
    if !labels.is_empty() {
        out.push(b'{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(b"=\"");
            out.extend_from_slice(v);
            out.push(b'"');
        }
        out.push(b'}');
    }
    out.push(b' ');
}

/// Appends the exposition of `m` to `out`. `backends[i]` gives the address
/// label and the current gauges (in rotation, in flight, weight) of backend
/// `i`; only backends present in both `m` and `backends` are written.
pub fn render(m: &Metrics, backends: &[BackendView], out: &mut Vec<u8>) {
    let rows: Vec<(Vec<u8>, &BackendView, &BackendStats)> = backends
        .iter()
        .enumerate()
        .filter_map(|(i, view)| {
            let stats = m.backend(i)?;
            let mut label = Vec::new();
            label_value(&mut label, &view.addr.to_string());
            Some((label, view, stats))
        })
        .collect();

    header(
        out,
        "ekilibri_build_info",
        "gauge",
        "Always 1; the version label says which ekilibri is running.",
    );
    sample(
        out,
        "ekilibri_build_info",
        &[("version", env!("CARGO_PKG_VERSION").as_bytes())],
        1,
    );

    header(
        out,
        "ekilibri_connections_accepted_total",
        "counter",
        "Client connections accepted.",
    );
    sample(
        out,
        "ekilibri_connections_accepted_total",
        &[],
        m.accepted(),
    );
    header(
        out,
        "ekilibri_connections_open",
        "gauge",
        "Client connections currently open.",
    );
    sample(out, "ekilibri_connections_open", &[], m.open());
    header(
        out,
        "ekilibri_client_received_bytes_total",
        "counter",
        "Bytes read from client connections.",
    );
    sample(
        out,
        "ekilibri_client_received_bytes_total",
        &[],
        m.bytes_in(),
    );
    header(
        out,
        "ekilibri_client_sent_bytes_total",
        "counter",
        "Bytes written to client connections.",
    );
    sample(out, "ekilibri_client_sent_bytes_total", &[], m.bytes_out());

    header(
        out,
        "ekilibri_parse_errors_total",
        "counter",
        "Client requests rejected by ekilibri itself, by reason.",
    );
    for kind in ParseErrorKind::ALL {
        sample(
            out,
            "ekilibri_parse_errors_total",
            &[("kind", kind.label().as_bytes())],
            m.parse_errors(kind),
        );
    }

    let (reload_ok, reload_failed) = m.reloads();
    header(
        out,
        "ekilibri_config_reloads_total",
        "counter",
        "Configuration reloads, by result.",
    );
    sample(
        out,
        "ekilibri_config_reloads_total",
        &[("result", b"success")],
        reload_ok,
    );
    sample(
        out,
        "ekilibri_config_reloads_total",
        &[("result", b"failure")],
        reload_failed,
    );

    header(
        out,
        "ekilibri_access_log_dropped_lines_total",
        "counter",
        "Access log lines dropped because the log buffer was full.",
    );
    sample(
        out,
        "ekilibri_access_log_dropped_lines_total",
        &[],
        m.log_dropped(),
    );

    let name = "ekilibri_backend_requests_total";
    header(
        out,
        name,
        "counter",
        "Requests sent to the backend, retries included.",
    );
    for (label, _, stats) in &rows {
        sample(out, name, &[("backend", label)], stats.requests());
    }

    let name = "ekilibri_backend_responses_total";
    header(
        out,
        name,
        "counter",
        "Responses received from the backend, by status class.",
    );
    for (label, _, stats) in &rows {
        for (i, class) in STATUS_CLASSES.iter().enumerate() {
            sample(
                out,
                name,
                &[("backend", label), ("class", class.as_bytes())],
                stats.responses(i),
            );
        }
    }

    let name = "ekilibri_backend_failures_total";
    header(
        out,
        name,
        "counter",
        "Backend failures (connections, timeouts, resets, failed health checks), by kind.",
    );
    for (label, _, stats) in &rows {
        for kind in FAILURE_KINDS {
            sample(
                out,
                name,
                &[("backend", label), ("kind", failure_label(kind).as_bytes())],
                stats.failures(kind),
            );
        }
    }

    let name = "ekilibri_backend_retries_total";
    header(
        out,
        name,
        "counter",
        "Requests retried on another backend after failing on this one.",
    );
    for (label, _, stats) in &rows {
        sample(out, name, &[("backend", label)], stats.retries());
    }

    let name = "ekilibri_backend_health_transitions_total";
    header(
        out,
        name,
        "counter",
        "Times the backend left (direction=\"out\") or re-entered (direction=\"in\") rotation.",
    );
    for (label, _, stats) in &rows {
        sample(
            out,
            name,
            &[("backend", label), ("direction", b"out")],
            stats.went_out(),
        );
        sample(
            out,
            name,
            &[("backend", label), ("direction", b"in")],
            stats.came_in(),
        );
    }

    let name = "ekilibri_backend_in_rotation";
    header(
        out,
        name,
        "gauge",
        "1 if the backend may receive requests, 0 if it is out of rotation.",
    );
    for (label, view, _) in &rows {
        sample(
            out,
            name,
            &[("backend", label)],
            u64::from(view.in_rotation),
        );
    }

    let name = "ekilibri_backend_in_flight_requests";
    header(
        out,
        name,
        "gauge",
        "Requests currently in flight to the backend.",
    );
    for (label, view, _) in &rows {
        sample(out, name, &[("backend", label)], u64::from(view.in_flight));
    }

    let name = "ekilibri_backend_weight";
    header(out, name, "gauge", "Configured weight of the backend.");
    for (label, view, _) in &rows {
        sample(out, name, &[("backend", label)], u64::from(view.weight));
    }

    let name = "ekilibri_backend_response_time_seconds";
    header(
        out,
        name,
        "histogram",
        "Backend response time: from the backend being picked (connect or pool checkout included) to the response head.",
    );
    for (label, _, stats) in &rows {
        let h = stats.latency();
        let mut cumulative = 0;
        for (le, &n) in LE_LABELS.iter().zip(h.counts()) {
            cumulative += n;
            sample(
                out,
                "ekilibri_backend_response_time_seconds_bucket",
                &[("backend", label), ("le", le.as_bytes())],
                cumulative,
            );
        }
        sample_start(
            out,
            "ekilibri_backend_response_time_seconds_sum",
            &[("backend", label)],
        );
        seconds_from_micros(out, h.sum_micros());
        out.push(b'\n');
        sample(
            out,
            "ekilibri_backend_response_time_seconds_count",
            &[("backend", label)],
            cumulative,
        );
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashSet};
    use std::io::Write as _;
    use std::net::SocketAddr;
    use std::process::{Command, Stdio};
    use std::time::Duration;

    use super::*;
    use crate::proxy::health::FailureKind;

    /// A sample's labels, in order.
    type Labels = Vec<(String, String)>;

    /// One parsed sample line.
    #[derive(Debug, Clone, PartialEq)]
    struct Sample {
        name: String,
        labels: Vec<(String, String)>,
        value: f64,
    }

    impl Sample {
        fn label(&self, k: &str) -> Option<&str> {
            self.labels
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        }
    }

    fn is_name(s: &str, colon: bool) -> bool {
        let mut chars = s.chars();
        let ok_first = |c: char| c.is_ascii_alphabetic() || c == '_' || (colon && c == ':');
        match chars.next() {
            Some(c) if ok_first(c) => {}
            _ => return false,
        }
        chars.all(|c| ok_first(c) || c.is_ascii_digit())
    }

    /// Parses `name{k="v",...} value` strictly; returns the sample.
    fn parse_sample(line: &str) -> Result<Sample, String> {
        let name_end = line
            .find(['{', ' '])
            .ok_or_else(|| format!("no value: {line}"))?;
        let name = &line[..name_end];
        if !is_name(name, true) {
            return Err(format!("bad metric name {name:?}"));
        }
        let mut rest = &line[name_end..];
        let mut labels: Vec<(String, String)> = Vec::new();
        if let Some(r) = rest.strip_prefix('{') {
            rest = r;
            loop {
                let eq = rest.find('=').ok_or("label without '='")?;
                let k = &rest[..eq];
                if !is_name(k, false) || k.starts_with("__") {
                    return Err(format!("bad label name {k:?}"));
                }
                if labels.iter().any(|(n, _)| n == k) {
                    return Err(format!("duplicate label {k}"));
                }
                rest = rest[eq + 1..]
                    .strip_prefix('"')
                    .ok_or("label value not quoted")?;
                let mut v = String::new();
                let mut chars = rest.char_indices();
                let end = loop {
                    let (i, c) = chars.next().ok_or("unterminated label value")?;
                    match c {
                        '"' => break i,
                        '\\' => match chars.next() {
                            Some((_, '\\')) => v.push('\\'),
                            Some((_, '"')) => v.push('"'),
                            Some((_, 'n')) => v.push('\n'),
                            _ => return Err("bad escape in label value".into()),
                        },
                        '\n' => return Err("raw newline in label value".into()),
                        c => v.push(c),
                    }
                };
                labels.push((k.to_string(), v));
                rest = &rest[end + 1..];
                if let Some(r) = rest.strip_prefix(',') {
                    rest = r;
                } else if let Some(r) = rest.strip_prefix('}') {
                    rest = r;
                    break;
                } else {
                    return Err(format!("expected ',' or '}}' in {line}"));
                }
            }
        }
        let value = rest
            .strip_prefix(' ')
            .ok_or_else(|| format!("expected one space before the value: {line}"))?;
        if value.contains(' ') {
            return Err(format!("timestamps or extra fields: {line}"));
        }
        let value = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v.parse().map_err(|_| format!("bad value {v:?}"))?,
        };
        Ok(Sample {
            name: name.to_string(),
            labels,
            value,
        })
    }

    /// Checks the whole exposition against the rules of the 0.0.4 text
    /// format plus ekilibri's naming conventions; returns the samples and
    /// the family types.
    fn check(text: &str) -> Result<(Vec<Sample>, BTreeMap<String, String>), String> {
        if !text.ends_with('\n') {
            return Err("no final newline".into());
        }
        if text.contains('\r') {
            return Err("carriage return".into());
        }
        let mut types: BTreeMap<String, String> = BTreeMap::new();
        let mut samples = Vec::new();
        let mut series = HashSet::new();
        let mut current: Option<(String, String)> = None;
        let mut pending_help: Option<String> = None;
        for line in text[..text.len() - 1].split('\n') {
            if line.is_empty() {
                return Err("empty line".into());
            }
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').ok_or("HELP without text")?;
                if help.trim().is_empty() || help.contains('\\') {
                    return Err(format!("bad HELP text for {name}"));
                }
                if pending_help.is_some() {
                    return Err(format!("HELP {name} follows a HELP"));
                }
                pending_help = Some(name.to_string());
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').ok_or("TYPE without type")?;
                if pending_help.take().as_deref() != Some(name) {
                    return Err(format!("TYPE {name} not right after its HELP"));
                }
                if !matches!(kind, "counter" | "gauge" | "histogram") {
                    return Err(format!("unexpected type {kind}"));
                }
                if !is_name(name, true) || !name.starts_with("ekilibri_") {
                    return Err(format!("bad family name {name}"));
                }
                if (kind == "counter") != name.ends_with("_total") {
                    return Err(format!("{name}: only counters end in _total"));
                }
                if types.insert(name.to_string(), kind.to_string()).is_some() {
                    return Err(format!("family {name} declared twice"));
                }
                current = Some((name.to_string(), kind.to_string()));
                continue;
            }
            if line.starts_with('#') {
                return Err(format!("unexpected comment {line}"));
            }
            if pending_help.is_some() {
                return Err("sample between HELP and TYPE".into());
            }
            let s = parse_sample(line)?;
            let (family, kind) = current.as_ref().ok_or("sample before any TYPE")?;
            let belongs = if kind == "histogram" {
                [
                    s.name.strip_suffix("_bucket"),
                    s.name.strip_suffix("_sum"),
                    s.name.strip_suffix("_count"),
                ]
                .contains(&Some(family.as_str()))
            } else {
                s.name == *family
            };
            if !belongs {
                return Err(format!("{} outside its family ({family})", s.name));
            }
            if kind == "counter" && (s.value.is_nan() || s.value < 0.0) {
                return Err(format!("negative counter {line}"));
            }
            if s.name.ends_with("_bucket") != s.label("le").is_some() {
                return Err(format!("le label misplaced: {line}"));
            }
            let mut key = s.labels.clone();
            key.sort();
            if !series.insert((s.name.clone(), key)) {
                return Err(format!("duplicate series {line}"));
            }
            samples.push(s);
        }
        if pending_help.is_some() {
            return Err("HELP at the end".into());
        }
        check_histograms(&samples, &types)?;
        Ok((samples, types))
    }

    fn check_histograms(
        samples: &[Sample],
        types: &BTreeMap<String, String>,
    ) -> Result<(), String> {
        for (family, _) in types.iter().filter(|(_, k)| *k == "histogram") {
            let bucket = format!("{family}_bucket");
            let mut by_series: BTreeMap<Labels, Vec<(f64, f64)>> = BTreeMap::new();
            for s in samples.iter().filter(|s| s.name == bucket) {
                let mut key: Vec<_> = s
                    .labels
                    .iter()
                    .filter(|(k, _)| k != "le")
                    .cloned()
                    .collect();
                key.sort();
                let le = match s.label("le").unwrap() {
                    "+Inf" => f64::INFINITY,
                    v => v.parse::<f64>().map_err(|_| format!("bad le {v}"))?,
                };
                by_series.entry(key).or_default().push((le, s.value));
            }
            for (key, buckets) in by_series {
                for w in buckets.windows(2) {
                    if !(w[0].0 < w[1].0 && w[0].1 <= w[1].1) {
                        return Err(format!("{family}: buckets not cumulative: {w:?}"));
                    }
                }
                let last = buckets.last().unwrap();
                if last.0 != f64::INFINITY {
                    return Err(format!("{family}: no +Inf bucket"));
                }
                let find = |suffix: &str| {
                    samples.iter().find(|s| {
                        let mut k = s.labels.clone();
                        k.sort();
                        s.name == format!("{family}{suffix}") && k == key
                    })
                };
                let count = find("_count").ok_or("no _count")?;
                find("_sum").ok_or("no _sum")?;
                if count.value != last.1 {
                    return Err(format!("{family}: _count != +Inf bucket"));
                }
            }
        }
        Ok(())
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn sample_metrics() -> (Metrics, Vec<BackendView>) {
        let mut m = Metrics::new(2);
        m.on_accept();
        m.on_accept();
        m.on_close();
        m.on_bytes(100, 2000);
        m.on_parse_error(ParseErrorKind::HeadersTooLarge);
        m.on_reload(true);
        m.on_log_dropped(4);
        m.on_request(0);
        m.on_request(0);
        m.on_request(0);
        m.on_response(0, 200, Duration::from_micros(800));
        m.on_response(0, 200, Duration::from_millis(30));
        m.on_response(0, 503, Duration::from_secs(12));
        m.on_failure(0, FailureKind::ConnectRefused);
        m.on_retry(0);
        m.on_transition(1, true);
        let views = vec![
            BackendView {
                addr: addr("127.0.0.1:8081"),
                in_rotation: true,
                in_flight: 2,
                weight: 3,
            },
            BackendView {
                addr: addr("[::1]:8082"),
                in_rotation: false,
                in_flight: 0,
                weight: 1,
            },
        ];
        (m, views)
    }

    fn rendered() -> String {
        let (m, views) = sample_metrics();
        let mut out = Vec::new();
        render(&m, &views, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn output_passes_the_strict_parser() {
        let text = rendered();
        let (samples, types) = check(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(types.len(), 17);
        let get = |name: &str, labels: &[(&str, &str)]| {
            samples
                .iter()
                .find(|s| s.name == name && labels.iter().all(|(k, v)| s.label(k) == Some(*v)))
                .unwrap_or_else(|| panic!("no {name} {labels:?}"))
                .value
        };
        let b0 = ("backend", "127.0.0.1:8081");
        let b1 = ("backend", "[::1]:8082");
        assert_eq!(get("ekilibri_connections_accepted_total", &[]), 2.0);
        assert_eq!(get("ekilibri_connections_open", &[]), 1.0);
        assert_eq!(get("ekilibri_client_received_bytes_total", &[]), 100.0);
        assert_eq!(get("ekilibri_client_sent_bytes_total", &[]), 2000.0);
        assert_eq!(
            get(
                "ekilibri_parse_errors_total",
                &[("kind", "headers_too_large")]
            ),
            1.0
        );
        assert_eq!(
            get("ekilibri_parse_errors_total", &[("kind", "timeout")]),
            0.0
        );
        assert_eq!(
            get("ekilibri_config_reloads_total", &[("result", "success")]),
            1.0
        );
        assert_eq!(get("ekilibri_access_log_dropped_lines_total", &[]), 4.0);
        assert_eq!(get("ekilibri_backend_requests_total", &[b0]), 3.0);
        assert_eq!(
            get("ekilibri_backend_responses_total", &[b0, ("class", "2xx")]),
            2.0
        );
        assert_eq!(
            get("ekilibri_backend_responses_total", &[b0, ("class", "5xx")]),
            1.0
        );
        assert_eq!(
            get(
                "ekilibri_backend_failures_total",
                &[b0, ("kind", "connect_refused")]
            ),
            1.0
        );
        assert_eq!(get("ekilibri_backend_retries_total", &[b0]), 1.0);
        assert_eq!(
            get(
                "ekilibri_backend_health_transitions_total",
                &[b1, ("direction", "out")]
            ),
            1.0
        );
        assert_eq!(get("ekilibri_backend_in_rotation", &[b0]), 1.0);
        assert_eq!(get("ekilibri_backend_in_rotation", &[b1]), 0.0);
        assert_eq!(get("ekilibri_backend_in_flight_requests", &[b0]), 2.0);
        assert_eq!(get("ekilibri_backend_weight", &[b0]), 3.0);
        let h = "ekilibri_backend_response_time_seconds";
        assert_eq!(get(&format!("{h}_bucket"), &[b0, ("le", "0.001")]), 1.0);
        assert_eq!(get(&format!("{h}_bucket"), &[b0, ("le", "0.025")]), 1.0);
        assert_eq!(get(&format!("{h}_bucket"), &[b0, ("le", "0.05")]), 2.0);
        assert_eq!(get(&format!("{h}_bucket"), &[b0, ("le", "10")]), 2.0);
        assert_eq!(get(&format!("{h}_bucket"), &[b0, ("le", "+Inf")]), 3.0);
        assert_eq!(get(&format!("{h}_count"), &[b0]), 3.0);
        assert!((get(&format!("{h}_sum"), &[b0]) - 12.0308).abs() < 1e-9);
        assert_eq!(get(&format!("{h}_count"), &[b1]), 0.0);
    }

    #[test]
    fn exact_lines() {
        let text = rendered();
        for line in [
            "# HELP ekilibri_connections_accepted_total Client connections accepted.",
            "# TYPE ekilibri_connections_accepted_total counter",
            "ekilibri_connections_accepted_total 2",
            "ekilibri_build_info{version=\"0.1.0\"} 1",
            "ekilibri_backend_responses_total{backend=\"127.0.0.1:8081\",class=\"2xx\"} 2",
            "ekilibri_backend_responses_total{backend=\"[::1]:8082\",class=\"other\"} 0",
            "# TYPE ekilibri_backend_response_time_seconds histogram",
            "ekilibri_backend_response_time_seconds_bucket{backend=\"127.0.0.1:8081\",le=\"0.0025\"} 1",
            "ekilibri_backend_response_time_seconds_bucket{backend=\"127.0.0.1:8081\",le=\"+Inf\"} 3",
            "ekilibri_backend_response_time_seconds_sum{backend=\"127.0.0.1:8081\"} 12.030800",
            "ekilibri_backend_response_time_seconds_count{backend=\"127.0.0.1:8081\"} 3",
            "ekilibri_backend_response_time_seconds_sum{backend=\"[::1]:8082\"} 0.000000",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing line {line:?} in\n{text}"
            );
        }
        // Families come in a fixed order, global ones first.
        let families: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .map(|l| l.split(' ').next().unwrap())
            .collect();
        assert_eq!(families[0], "ekilibri_build_info");
        assert_eq!(families[7], "ekilibri_access_log_dropped_lines_total");
        assert_eq!(families[16], "ekilibri_backend_response_time_seconds");
    }

    #[test]
    fn label_values_are_escaped() {
        let mut out = Vec::new();
        let mut label = Vec::new();
        label_value(&mut label, "a\"b\\c\nd");
        sample(&mut out, "ekilibri_x", &[("backend", &label)], 1);
        let line = std::str::from_utf8(&out).unwrap();
        assert_eq!(line, "ekilibri_x{backend=\"a\\\"b\\\\c\\nd\"} 1\n");
        let s = parse_sample(line.trim_end()).unwrap();
        assert_eq!(s.label("backend"), Some("a\"b\\c\nd"));
    }

    #[test]
    fn strict_parser_rejects_bad_expositions() {
        let good =
            "# HELP ekilibri_a_total A.\n# TYPE ekilibri_a_total counter\nekilibri_a_total 1\n";
        assert!(check(good).is_ok());
        for bad in [
            // no final newline
            "# HELP ekilibri_a_total A.\n# TYPE ekilibri_a_total counter\nekilibri_a_total 1",
            // counter without _total
            "# HELP ekilibri_a A.\n# TYPE ekilibri_a counter\nekilibri_a 1\n",
            // TYPE without HELP
            "# TYPE ekilibri_a_total counter\nekilibri_a_total 1\n",
            // sample of another family
            "# HELP ekilibri_a_total A.\n# TYPE ekilibri_a_total counter\nekilibri_b_total 1\n",
            // unescaped quote
            "# HELP ekilibri_a_total A.\n# TYPE ekilibri_a_total counter\nekilibri_a_total{x=\"a\"b\"} 1\n",
            // two spaces
            "# HELP ekilibri_a_total A.\n# TYPE ekilibri_a_total counter\nekilibri_a_total  1\n",
            // duplicate series
            "# HELP ekilibri_a_total A.\n# TYPE ekilibri_a_total counter\nekilibri_a_total 1\nekilibri_a_total 2\n",
            // histogram not cumulative
            "# HELP ekilibri_h H.\n# TYPE ekilibri_h histogram\nekilibri_h_bucket{le=\"1\"} 2\nekilibri_h_bucket{le=\"+Inf\"} 1\nekilibri_h_sum 1\nekilibri_h_count 1\n",
            // histogram without +Inf
            "# HELP ekilibri_h H.\n# TYPE ekilibri_h histogram\nekilibri_h_bucket{le=\"1\"} 1\nekilibri_h_sum 1\nekilibri_h_count 1\n",
        ] {
            assert!(check(bad).is_err(), "accepted:\n{bad}");
        }
    }

    #[test]
    fn backends_missing_on_either_side_are_skipped() {
        let (m, views) = sample_metrics();
        let mut out = Vec::new();
        render(&m, &views[..1], &mut out);
        let text = String::from_utf8(out).unwrap();
        check(&text).unwrap();
        assert!(!text.contains("8082"));
        let mut out = Vec::new();
        render(&Metrics::new(0), &views, &mut out);
        let text = String::from_utf8(out).unwrap();
        check(&text).unwrap();
        assert!(!text.contains("backend=\""));
    }

    /// Runs `promtool check metrics` (Debian package `prometheus`) on the
    /// output when promtool is installed; skips otherwise.
    #[test]
    fn promtool_check_metrics() {
        let mut child = match Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
        {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                eprintln!("promtool not found: skipping promtool_check_metrics");
                return;
            }
            Err(e) => panic!("promtool: {e}"),
        };
        let text = rendered();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let report = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && report.trim().is_empty(),
            "promtool check metrics: {}\n{report}\n{text}",
            out.status
        );
    }
}
