//! The status page: [`render_json`] for `/status.json` and [`render_html`]
//! for a human.
//!
//! The HTML page is self-contained (no external asset, no framework). It
//! is rendered complete on the server, so it works as a static table; a
//! little inline script fetches [`JSON_PATH`] every 2 seconds and redraws
//! the table, and without script a `<noscript>` meta refresh reloads the
//! whole page every 5 seconds instead.
//!
//! Rates and quantiles cover the last [`RATE_WINDOW_SECS`] seconds (see
//! [`BackendStats::request_rate`]).

use std::io::Write;

use super::BackendView;
use super::escape::{html, json_f64, json_str};
use super::metrics::{BackendStats, Metrics, ParseErrorKind, RATE_WINDOW_SECS, STATUS_CLASSES};
use crate::time::Tick;

/// `Content-Type` of [`render_json`]'s output.
pub const CONTENT_TYPE_JSON: &str = "application/json";
/// `Content-Type` of [`render_html`]'s output.
pub const CONTENT_TYPE_HTML: &str = "text/html; charset=utf-8";
/// Where the page's script fetches the JSON from.
pub const JSON_PATH: &str = "/status.json";

/// The numbers shown for one backend, computed once for both renderers.
struct Row<'a> {
    view: &'a BackendView,
    stats: &'a BackendStats,
    addr: String,
    request_rate: f64,
    error_rate: f64,
    error_ratio: Option<f64>,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
}

fn rows<'a>(m: &'a Metrics, backends: &'a [BackendView], now: Tick) -> Vec<Row<'a>> {
    backends
        .iter()
        .enumerate()
        .filter_map(|(i, view)| {
            let stats = m.backend(i)?;
            Some(Row {
                view,
                stats,
                addr: view.addr.to_string(),
                request_rate: stats.request_rate(now),
                error_rate: stats.error_rate(now),
                error_ratio: stats.error_ratio(now),
                p50_ms: stats.recent_quantile(now, 0.5).map(|s| s * 1000.0),
                p99_ms: stats.recent_quantile(now, 0.99).map(|s| s * 1000.0),
            })
        })
        .collect()
}

fn json_opt(out: &mut Vec<u8>, v: Option<f64>, decimals: usize) {
    match v {
        Some(v) => json_f64(out, v, decimals),
        None => out.extend_from_slice(b"null"),
    }
}

/// Appends the status as one JSON object to `out`:
///
/// ```json
/// {"backends":[{"address":"127.0.0.1:8081","in_rotation":true,"in_flight":0,
///   "weight":1,"requests":10,"retries":0,"failures":0,
///   "responses":{"1xx":0,"2xx":10,"3xx":0,"4xx":0,"5xx":0,"other":0},
///   "request_rate":1.000,"error_rate":0.000,"error_ratio":0.000,
///   "p50_ms":1.250,"p99_ms":2.475}],
///  "connections":{"open":1,"accepted":3},"bytes":{"received":512,"sent":4096},
///  "parse_errors":{"bad_request":0,...},"reloads":{"success":0,"failure":0},
///  "access_log":{"dropped":0},"window_secs":10,"uptime_secs":12.345}
/// ```
///
/// (without the line breaks). Rates are per second over the window;
/// `error_ratio`, `p50_ms` and `p99_ms` are `null` when the window holds no
/// request or response. `backends[i]` describes backend `i`; `now` is the
/// reactor's current tick.
pub fn render_json(m: &Metrics, backends: &[BackendView], now: Tick, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"backends\":[");
    for (i, r) in rows(m, backends, now).iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"address\":");
        json_str(out, r.addr.as_bytes());
        let _ = write!(
            out,
            ",\"in_rotation\":{},\"in_flight\":{},\"weight\":{},\"requests\":{},\"retries\":{},\"failures\":{},\"responses\":{{",
            r.view.in_rotation,
            r.view.in_flight,
            r.view.weight,
            r.stats.requests(),
            r.stats.retries(),
            r.stats.failures_total(),
        );
        for (c, class) in STATUS_CLASSES.iter().enumerate() {
            if c > 0 {
                out.push(b',');
            }
            let _ = write!(out, "\"{class}\":{}", r.stats.responses(c));
        }
        out.extend_from_slice(b"},\"request_rate\":");
        json_f64(out, r.request_rate, 3);
        out.extend_from_slice(b",\"error_rate\":");
        json_f64(out, r.error_rate, 3);
        out.extend_from_slice(b",\"error_ratio\":");
        json_opt(out, r.error_ratio, 3);
        out.extend_from_slice(b",\"p50_ms\":");
        json_opt(out, r.p50_ms, 3);
        out.extend_from_slice(b",\"p99_ms\":");
        json_opt(out, r.p99_ms, 3);
        out.push(b'}');
    }
    let _ = write!(
        out,
        "],\"connections\":{{\"open\":{},\"accepted\":{}}},\"bytes\":{{\"received\":{},\"sent\":{}}},\"parse_errors\":{{",
        m.open(),
        m.accepted(),
        m.bytes_in(),
        m.bytes_out(),
    );
    for (i, kind) in ParseErrorKind::ALL.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let _ = write!(out, "\"{}\":{}", kind.label(), m.parse_errors(*kind));
    }
    let (ok, failed) = m.reloads();
    let _ = write!(
        out,
        "}},\"reloads\":{{\"success\":{ok},\"failure\":{failed}}},\"access_log\":{{\"dropped\":{}}},\"window_secs\":{RATE_WINDOW_SECS},\"uptime_secs\":{}.{:03}}}",
        m.log_dropped(),
        now.0 / 1000,
        now.0 % 1000,
    );
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse}\
th,td{padding:.3em .8em;border-bottom:1px solid #ddd;text-align:left}\
td.n{text-align:right;font-variant-numeric:tabular-nums}\
tr.in td.state{color:#0a6b1f;font-weight:bold}\
tr.out td.state{color:#b00020;font-weight:bold}\
tr.out{background:#fdecea}\
#stamp{color:#666}#stamp.stale{color:#b00020}";

/// The script: fetch the JSON every 2 s and rebuild the table body and the
/// summary with `textContent` (never markup from the response). Numbers
/// are formatted exactly like the server-side table.
const SCRIPT: &str = r#"(function(){
var dash='\u2013';
function fix(v,d){return (v===null||v===undefined)?dash:v.toFixed(d);}
function pct(v){return (v===null||v===undefined)?dash:(v*100).toFixed(1);}
function cell(tr,text,cls){var td=document.createElement('td');td.textContent=text;if(cls){td.className=cls;}tr.appendChild(td);}
function update(s){
var old=document.getElementById('rows');var body=document.createElement('tbody');body.id='rows';
s.backends.forEach(function(b){
var tr=document.createElement('tr');tr.className=b.in_rotation?'in':'out';
cell(tr,b.address);cell(tr,b.in_rotation?'in rotation':'out of rotation','state');
cell(tr,String(b.in_flight),'n');cell(tr,String(b.weight),'n');cell(tr,String(b.requests),'n');
cell(tr,fix(b.request_rate,2),'n');cell(tr,fix(b.error_rate,2),'n');cell(tr,pct(b.error_ratio),'n');
cell(tr,fix(b.p50_ms,2),'n');cell(tr,fix(b.p99_ms,2),'n');body.appendChild(tr);});
old.parentNode.replaceChild(body,old);
document.getElementById('open').textContent=String(s.connections.open);
document.getElementById('accepted').textContent=String(s.connections.accepted);
document.getElementById('uptime').textContent=String(Math.floor(s.uptime_secs));}
function tick(){var st=document.getElementById('stamp');
fetch('/status.json',{cache:'no-store'}).then(function(r){if(!r.ok){throw new Error('HTTP '+r.status);}return r.json();})
.then(function(s){update(s);st.textContent='live, updated '+new Date().toLocaleTimeString();st.className='';})
.catch(function(e){st.textContent='update failed: '+e.message;st.className='stale';});}
setInterval(tick,2000);})();"#;

fn html_fixed(out: &mut Vec<u8>, v: Option<f64>, decimals: usize) {
    match v {
        Some(v) if v.is_finite() => {
            let _ = write!(out, "{v:.decimals$}");
        }
        _ => out.extend_from_slice("\u{2013}".as_bytes()),
    }
}

/// Appends the HTML status page to `out`: a table of the backends (address,
/// in or out of rotation in green or red, in flight, weight, requests,
/// requests/s, errors/s, error %, p50 and p99 in ms) and the connection
/// counts. Everything taken from outside is HTML-escaped.
pub fn render_html(m: &Metrics, backends: &[BackendView], now: Tick, out: &mut Vec<u8>) {
    out.extend_from_slice(b"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<noscript><meta http-equiv=\"refresh\" content=\"5\"></noscript>\n<title>ekilibri status</title>\n<style>");
    out.extend_from_slice(STYLE.as_bytes());
    out.extend_from_slice(b"</style>\n</head>\n<body>\n<h1>ekilibri ");
    html(out, env!("CARGO_PKG_VERSION"));
    let _ = write!(
        out,
        "</h1>\n<p>Connections open: <span id=\"open\">{}</span>, accepted: <span id=\"accepted\">{}</span>. Up <span id=\"uptime\">{}</span> s. Rates and percentiles over the last {RATE_WINDOW_SECS} s. <span id=\"stamp\">static page</span></p>\n",
        m.open(),
        m.accepted(),
        now.0 / 1000,
    );
    out.extend_from_slice(b"<table>\n<thead><tr><th>Backend</th><th>State</th><th>In flight</th><th>Weight</th><th>Requests</th><th>Req/s</th><th>Errors/s</th><th>Error %</th><th>p50 ms</th><th>p99 ms</th></tr></thead>\n<tbody id=\"rows\">\n");
    for r in rows(m, backends, now) {
        let (class, state) = if r.view.in_rotation {
            ("in", "in rotation")
        } else {
            ("out", "out of rotation")
        };
        let _ = write!(out, "<tr class=\"{class}\"><td>");
        html(out, &r.addr);
        let _ = write!(
            out,
            "</td><td class=\"state\">{state}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">",
            r.view.in_flight,
            r.view.weight,
            r.stats.requests(),
        );
        html_fixed(out, Some(r.request_rate), 2);
        out.extend_from_slice(b"</td><td class=\"n\">");
        html_fixed(out, Some(r.error_rate), 2);
        out.extend_from_slice(b"</td><td class=\"n\">");
        html_fixed(out, r.error_ratio.map(|e| e * 100.0), 1);
        out.extend_from_slice(b"</td><td class=\"n\">");
        html_fixed(out, r.p50_ms, 2);
        out.extend_from_slice(b"</td><td class=\"n\">");
        html_fixed(out, r.p99_ms, 2);
        out.extend_from_slice(b"</td></tr>\n");
    }
    out.extend_from_slice(b"</tbody>\n</table>\n<p><a href=\"");
    html(out, JSON_PATH);
    out.extend_from_slice(b"\">JSON</a></p>\n<script>\n");
    out.extend_from_slice(SCRIPT.as_bytes());
    out.extend_from_slice(b"\n</script>\n</body>\n</html>\n");
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use super::*;
    use crate::ops::testutil::{Json, parse_json};
    use crate::proxy::health::FailureKind;

    fn views() -> Vec<BackendView> {
        vec![
            BackendView {
                addr: "127.0.0.1:8081".parse::<SocketAddr>().unwrap(),
                in_rotation: true,
                in_flight: 2,
                weight: 3,
            },
            BackendView {
                addr: "[::1]:8082".parse().unwrap(),
                in_rotation: false,
                in_flight: 0,
                weight: 1,
            },
        ]
    }

    /// Backend 0: 20 requests in second 5, 18 responses in (1, 2.5] ms and
    /// two 503s in (5, 10] ms; backend 1 idle.
    fn metrics() -> Metrics {
        let mut m = Metrics::new(2);
        m.on_accept();
        m.on_accept();
        m.on_accept();
        m.on_close();
        m.on_bytes(512, 4096);
        m.on_parse_error(ParseErrorKind::BadRequest);
        m.set_now(Tick(5_000));
        for _ in 0..20 {
            m.on_request(0);
        }
        for _ in 0..18 {
            m.on_response(0, 200, Duration::from_micros(1_500));
        }
        m.on_response(0, 503, Duration::from_millis(8));
        m.on_response(0, 503, Duration::from_millis(8));
        m.on_failure(0, FailureKind::ReadTimeout);
        m.on_transition(1, true);
        m
    }

    fn json_text(now: Tick) -> String {
        let mut out = Vec::new();
        render_json(&metrics(), &views(), now, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn json_is_exact() {
        let text = json_text(Tick(12_345));
        assert_eq!(
            text,
            concat!(
                r#"{"backends":["#,
                r#"{"address":"127.0.0.1:8081","in_rotation":true,"in_flight":2,"weight":3,"requests":20,"retries":0,"failures":1,"#,
                r#""responses":{"1xx":0,"2xx":18,"3xx":0,"4xx":0,"5xx":2,"other":0},"#,
                r#""request_rate":2.000,"error_rate":0.300,"error_ratio":0.150,"p50_ms":1.833,"p99_ms":9.500},"#,
                r#"{"address":"[::1]:8082","in_rotation":false,"in_flight":0,"weight":1,"requests":0,"retries":0,"failures":0,"#,
                r#""responses":{"1xx":0,"2xx":0,"3xx":0,"4xx":0,"5xx":0,"other":0},"#,
                r#""request_rate":0.000,"error_rate":0.000,"error_ratio":null,"p50_ms":null,"p99_ms":null}],"#,
                r#""connections":{"open":2,"accepted":3},"bytes":{"received":512,"sent":4096},"#,
                r#""parse_errors":{"bad_request":1,"uri_too_long":0,"headers_too_large":0,"version":0,"not_implemented":0,"timeout":0,"bad_body":0},"#,
                r#""reloads":{"success":0,"failure":0},"access_log":{"dropped":0},"window_secs":10,"uptime_secs":12.345}"#,
            )
        );
    }

    #[test]
    fn json_parses_and_has_the_numbers() {
        let v = parse_json(&json_text(Tick(12_345))).unwrap();
        let b0 = v.get("backends").at(0);
        assert_eq!(b0.get("address").str(), "127.0.0.1:8081");
        assert_eq!(b0.get("in_rotation"), &Json::Bool(true));
        // 20 requests in the 10 s window.
        assert_eq!(b0.get("request_rate").num(), 2.0);
        // p50: rank 10 of 20, 10/18 into (1, 2.5] ms.
        let p50 = 1.0 + 1.5 * 10.0 / 18.0;
        assert!((b0.get("p50_ms").num() - p50).abs() < 0.001);
        // p99: rank 19.8, 1.8/2 into (5, 10] ms.
        assert!((b0.get("p99_ms").num() - 9.5).abs() < 0.001);
        let b1 = v.get("backends").at(1);
        assert_eq!(b1.get("p99_ms"), &Json::Null);
        assert_eq!(v.get("connections").get("open").num(), 2.0);
        assert_eq!(v.get("uptime_secs").num(), 12.345);
        // Out of the window: rates fall to zero.
        let v = parse_json(&json_text(Tick(60_000))).unwrap();
        let b0 = v.get("backends").at(0);
        assert_eq!(b0.get("request_rate").num(), 0.0);
        assert_eq!(b0.get("p50_ms"), &Json::Null);
        assert_eq!(b0.get("requests").num(), 20.0);
    }

    #[test]
    fn json_without_backends() {
        let mut out = Vec::new();
        render_json(&Metrics::new(0), &[], Tick(5), &mut out);
        let v = parse_json(std::str::from_utf8(&out).unwrap()).unwrap();
        assert_eq!(v.get("backends"), &Json::Arr(vec![]));
        assert_eq!(v.get("uptime_secs").num(), 0.005);
    }

    fn html_text() -> String {
        let mut out = Vec::new();
        render_html(&metrics(), &views(), Tick(12_345), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn html_static_table() {
        let page = html_text();
        assert!(page.starts_with("<!DOCTYPE html>\n"));
        assert!(page.ends_with("</html>\n"));
        assert!(page.contains("<noscript><meta http-equiv=\"refresh\" content=\"5\"></noscript>"));
        assert!(page.contains(
            "<tr class=\"in\"><td>127.0.0.1:8081</td><td class=\"state\">in rotation</td>\
             <td class=\"n\">2</td><td class=\"n\">3</td><td class=\"n\">20</td>\
             <td class=\"n\">2.00</td><td class=\"n\">0.30</td><td class=\"n\">15.0</td>\
             <td class=\"n\">1.83</td><td class=\"n\">9.50</td></tr>\n"
        ));
        assert!(page.contains(
            "<tr class=\"out\"><td>[::1]:8082</td><td class=\"state\">out of rotation</td>\
             <td class=\"n\">0</td><td class=\"n\">1</td><td class=\"n\">0</td>\
             <td class=\"n\">0.00</td><td class=\"n\">0.00</td><td class=\"n\">\u{2013}</td>\
             <td class=\"n\">\u{2013}</td><td class=\"n\">\u{2013}</td></tr>\n"
        ));
        assert!(page.contains("Connections open: <span id=\"open\">2</span>, accepted: <span id=\"accepted\">3</span>. Up <span id=\"uptime\">12</span> s."));
        // Self-contained: no external resource.
        for needle in ["src=", "<link", "http://", "https://", "@import", "url("] {
            assert!(!page.contains(needle), "{needle}");
        }
        // The script polls the JSON every 2 s and builds cells as text.
        assert!(page.contains("fetch('/status.json'"));
        assert!(page.contains("setInterval(tick,2000)"));
        assert!(page.contains(".textContent="));
        assert!(!page.contains("innerHTML"));
        // The script cannot be closed early by its own content.
        assert_eq!(page.matches("</script>").count(), 1);
    }

    #[test]
    fn html_ids_used_by_the_script_exist() {
        let page = html_text();
        for id in ["rows", "open", "accepted", "uptime", "stamp"] {
            assert!(page.contains(&format!("id=\"{id}\"")), "{id}");
            assert!(SCRIPT.contains(&format!("getElementById('{id}')")), "{id}");
        }
        // The table has as many header cells as the script creates cells.
        let th = page.matches("<th>").count();
        // (one `cell(tr,` is the function's own definition)
        assert_eq!(th, SCRIPT.matches("cell(tr,").count() - 1);
        assert_eq!(th, 10);
    }

    /// The cells of the server-rendered table: `(row class, cell texts)`.
    fn static_rows(page: &str) -> Vec<(String, Vec<String>)> {
        let body = page.split("<tbody id=\"rows\">\n").nth(1).unwrap();
        let body = body.split("</tbody>").next().unwrap();
        body.lines()
            .map(|tr| {
                let class = tr["<tr class=\"".len()..].split('"').next().unwrap();
                let cells = tr
                    .split("</td>")
                    .filter(|c| c.contains("<td"))
                    .filter_map(|c| c.rsplit_once('>').map(|(_, t)| t.to_string()))
                    .collect();
                (class.to_string(), cells)
            })
            .collect()
    }

    /// Runs the page's script under node (when installed; skipped
    /// otherwise) against a fake DOM, feeds it `render_json`'s output and
    /// checks that it draws the same table as the server did.
    #[test]
    fn script_draws_the_same_table_as_the_server() {
        use std::process::{Command, Stdio};
        let mut json = Vec::new();
        render_json(&metrics(), &views(), Tick(12_345), &mut json);
        let harness = format!(
            r#"
var els = {{}};
function el(tag) {{
  return {{ tag: tag, children: [], textContent: '', className: '', id: '', parentNode: null,
    appendChild: function (c) {{ c.parentNode = this; this.children.push(c); }},
    replaceChild: function (n, o) {{ var i = this.children.indexOf(o); this.children[i] = n;
      n.parentNode = this; if (n.id) {{ els[n.id] = n; }} }} }};
}}
var table = el('table');
['rows', 'open', 'accepted', 'uptime', 'stamp'].forEach(function (id) {{
  var e = el('x'); e.id = id; els[id] = e; table.appendChild(e); }});
var document = {{ getElementById: function (id) {{ return els[id]; }}, createElement: el }};
var timer = null;
function setInterval(f, ms) {{ if (ms !== 2000) {{ throw new Error('interval ' + ms); }} timer = f; }}
var data = {json};
function fetch(url, opts) {{
  if (url !== '/status.json') {{ throw new Error('url ' + url); }}
  return Promise.resolve({{ ok: true, status: 200, json: function () {{ return Promise.resolve(data); }} }});
}}
{script}
timer();
setTimeout(function () {{
  var rows = els['rows'].children.map(function (tr) {{
    return [tr.className, tr.children.map(function (td) {{ return td.textContent; }})]; }});
  console.log(JSON.stringify({{ rows: rows, open: els['open'].textContent,
    accepted: els['accepted'].textContent, uptime: els['uptime'].textContent,
    stamp: els['stamp'].className }}));
}}, 10);
"#,
            json = String::from_utf8(json).unwrap(),
            script = SCRIPT,
        );
        let out = match Command::new("node")
            .arg("-e")
            .arg(&harness)
            .stderr(Stdio::inherit())
            .output()
        {
            Ok(out) => out,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                eprintln!("node not found: skipping script_draws_the_same_table_as_the_server");
                return;
            }
            Err(e) => panic!("node: {e}"),
        };
        assert!(out.status.success(), "node failed");
        let v = parse_json(std::str::from_utf8(&out.stdout).unwrap()).unwrap();
        let Json::Arr(rows) = v.get("rows") else {
            panic!("rows")
        };
        let drawn: Vec<(String, Vec<String>)> = rows
            .iter()
            .map(|r| {
                let Json::Arr(cells) = r.at(1) else { panic!() };
                (
                    r.at(0).str().to_string(),
                    cells.iter().map(|c| c.str().to_string()).collect(),
                )
            })
            .collect();
        assert_eq!(drawn, static_rows(&html_text()));
        assert_eq!(v.get("open").str(), "2");
        assert_eq!(v.get("accepted").str(), "3");
        assert_eq!(v.get("uptime").str(), "12");
        assert_eq!(v.get("stamp").str(), "");
    }

    #[test]
    fn html_numbers_and_escaping() {
        let mut out = Vec::new();
        html_fixed(&mut out, Some(1.005), 1);
        html_fixed(&mut out, None, 2);
        html_fixed(&mut out, Some(f64::NAN), 2);
        assert_eq!(String::from_utf8(out).unwrap(), "1.0\u{2013}\u{2013}");
        let mut out = Vec::new();
        html(&mut out, "<script>\"x\"&'y'</script>");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "&lt;script&gt;&quot;x&quot;&amp;&#39;y&#39;&lt;/script&gt;"
        );
    }
}
