//! `command`: the HTTP/1.1 origin server used as a backend in ekilibri's
//! tests, demos and benchmarks (see [`ekilibri::origin`] for its routes).
//!
//! ```text
//! command -p 8081                    # 127.0.0.1:8081, X-Backend: command-8081
//! command --listen 127.0.0.1:0 --name b1
//! command --listen 127.0.0.1:0 --name slow --delay-ms 20      # +20 ms per request
//! command --listen 127.0.0.1:0 --name flaky --error-rate 0.05 # 5% answered 503
//! ```
//!
//! `--delay-ms` and `--error-rate` degrade every request except those for
//! `/health`, so active health checks keep passing; the failed requests are
//! picked by a xorshift generator seeded with `--seed` (deterministic).
//!
//! Once bound it prints exactly one line, `listening on <addr>`, to stdout
//! and serves until killed. Logging goes through `env_logger` (`RUST_LOG`).

use std::io::Write;
use std::net::TcpListener;
use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgGroup, Parser};

/// HTTP/1.1 origin server used as a backend in ekilibri tests, demos and
/// benchmarks.
#[derive(Parser, Debug)]
#[command(name = "command", version, about)]
#[command(group(ArgGroup::new("addr").required(true).args(["port", "listen"])))]
struct Args {
    /// Listen on 127.0.0.1:PORT.
    #[arg(short, long, value_name = "PORT")]
    port: Option<u16>,

    /// Listen on ADDR, e.g. 127.0.0.1:0 for an ephemeral port.
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,

    /// Value of the X-Backend response header (default: command-PORT, the bound port).
    #[arg(long, value_name = "NAME")]
    name: Option<String>,

    /// Sleep N milliseconds before answering every request except /health.
    #[arg(long, value_name = "N", default_value_t = 0)]
    delay_ms: u64,

    /// Answer this fraction (0.0 to 1.0) of the requests except /health with
    /// 503 and an empty body.
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = parse_rate)]
    error_rate: f64,

    /// Seed of the generator that picks the requests failed by --error-rate.
    #[arg(long, value_name = "S", default_value_t = 1)]
    seed: u64,

    /// Echo chunked request bodies on POST /echo. Without it, /echo needs a
    /// Content-Length and answers 411 to a chunked body, as the upstream
    /// ekilibri command server does.
    #[arg(long)]
    chunked_echo: bool,
}

/// Parses a fraction within 0.0..=1.0.
fn parse_rate(s: &str) -> Result<f64, String> {
    let p: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(format!("{p} is not within 0.0..=1.0"))
    }
}

fn main() -> ExitCode {
    env_logger::init();
    let args = Args::parse();

    let (listener, wanted) = match (&args.listen, args.port) {
        (Some(addr), _) => (TcpListener::bind(addr.as_str()), addr.clone()),
        (None, Some(port)) => (
            TcpListener::bind(("127.0.0.1", port)),
            format!("127.0.0.1:{port}"),
        ),
        // clap requires one of the two.
        (None, None) => unreachable!("clap requires --port or --listen"),
    };
    let listener = match listener {
        Ok(l) => l,
        Err(e) => {
            eprintln!("command: cannot listen on {wanted}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let local = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("command: cannot get the bound address: {e}");
            return ExitCode::FAILURE;
        }
    };
    let name = args
        .name
        .unwrap_or_else(|| format!("command-{}", local.port()));
    let behaviour = ekilibri::origin::Behaviour {
        delay: Duration::from_millis(args.delay_ms),
        error_rate: args.error_rate,
        seed: args.seed,
        chunked_echo: args.chunked_echo,
    };
    let handle = match ekilibri::origin::spawn_with(listener, name, behaviour) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("command: {e}");
            return ExitCode::FAILURE;
        }
    };

    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "listening on {local}")
        .and_then(|()| stdout.flush())
        .is_err()
    {
        // Nobody is waiting for the line; keep serving anyway.
        log::warn!("command: cannot write to stdout");
    }
    drop(stdout);

    match handle.join() {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}
