//! The ekilibri load balancer.
//!
//! `ekilibri -f ekilibri.toml` runs the balancer; `--check` only validates
//! the file; `--demo` starts three built-in demo backends on loopback and
//! balances over them, with nothing else to run.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use ekilibri::config::{self, Config, Server};
use ekilibri::proxy::{Reactor, signals};

/// Command-line arguments.
#[derive(Debug, Parser)]
#[command(
    name = "ekilibri",
    version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("EKILIBRI_GIT_HASH"), ")"),
    about = "HTTP/1.1 reverse proxy and load balancer"
)]
struct Args {
    /// Configuration file [default: ekilibri.toml]
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<PathBuf>,
    /// Validate the configuration file and exit (0 valid, 2 invalid).
    #[arg(long)]
    check: bool,
    /// Run with three built-in demo backends on loopback (the file's
    /// `servers` are ignored, not resolved; the file is optional).
    #[arg(long)]
    demo: bool,
    /// Listen on this address instead of the configured one.
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
}

fn main() -> ExitCode {
    // Before anything slow: a SIGHUP or SIGUSR1 during start-up must not
    // kill the process (it is acted on once the loop runs).
    if let Err(e) = signals::defer_during_startup() {
        eprintln!("ekilibri: cannot set up signal handling: {e}");
        return ExitCode::from(1);
    }
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => return fail_usage(&e),
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();

    // With --demo the default file is optional; a file named with -f is not.
    let explicit = args.file.is_some();
    let file = args.file.unwrap_or_else(|| PathBuf::from("ekilibri.toml"));
    let mut cfg = if args.demo {
        match demo_config(&file, explicit) {
            Ok(cfg) => cfg,
            Err(e) => return fail_config(&e),
        }
    } else {
        match config::load(&file) {
            Ok(cfg) => cfg,
            Err(e) => return fail_config(&e),
        }
    };
    if let Some(listen) = args.listen {
        cfg.listen = listen;
        if cfg.admin_listen == Some(listen) && listen.port() != 0 {
            eprintln!(
                "ekilibri: --listen {listen} is the admin_listen address of {}",
                file.display()
            );
            return ExitCode::from(2);
        }
    }
    if args.check {
        if args.demo && !explicit && !file.exists() {
            println!("--demo with no {}: its defaults are ok", file.display());
        } else {
            println!("{}: configuration ok", file.display());
        }
        print_reload_diff(&cfg);
        return ExitCode::SUCCESS;
    }

    let servers = cfg.servers.clone();
    let strategy = cfg.strategy;
    let workers = cfg.workers;
    let fd_limit = match ekilibri::proxy::fds::raise_nofile_limit() {
        Ok(limit) => limit,
        Err(e) => {
            log::warn!("cannot read the descriptor limit: {e}");
            usize::MAX
        }
    };
    let fd_need = cfg
        .max_connections
        .saturating_mul(workers)
        .saturating_mul(2);
    if fd_need > fd_limit {
        log::warn!(
            "max_connections = {} with {workers} worker(s) may need up to {fd_need} descriptors (a \
             client and a backend connection each), but the limit is {fd_limit} (ulimit -n / \
             LimitNOFILE): new clients will wait when descriptors run short",
            cfg.max_connections
        );
    }
    if workers > 1 {
        // Workers share the address with SO_REUSEPORT, which would also let
        // this process bind beside another one already listening there.
        for addr in std::iter::once(cfg.listen).chain(cfg.admin_listen) {
            if let Err(e) = ekilibri::proxy::listen::ensure_free(addr) {
                eprintln!("ekilibri: cannot listen on {addr}: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let mut reactors = Vec::with_capacity(workers);
    for _ in 0..workers {
        // Every worker binds the address the first one got (port 0 resolved).
        let mut worker_cfg = cfg.clone();
        if let Some(first) = reactors.first() {
            worker_cfg.listen = Reactor::local_addr(first);
            worker_cfg.admin_listen = Reactor::admin_addr(first);
        }
        match Reactor::new(worker_cfg) {
            Ok(mut r) => {
                r.set_configured_addresses(cfg.listen, cfg.admin_listen);
                r.set_descriptor_budget(fd_limit / workers);
                reactors.push(r);
            }
            Err(e) => {
                eprintln!("ekilibri: {e}");
                return ExitCode::from(e.exit_code());
            }
        }
    }
    let addr = reactors[0].local_addr();
    let backends: Vec<String> = servers
        .iter()
        .map(|s| match s.weight {
            1 => s.addr.to_string(),
            w => format!("{} (weight {w})", s.addr),
        })
        .collect();
    log::info!(
        "listening on {addr}, strategy {strategy:?}, workers {workers}, backends [{}]",
        backends.join(", ")
    );
    if let Some(admin) = reactors[0].admin_addr() {
        log::info!("admin listening on {admin}: /metrics, /status, /status.json");
    }
    if args.demo {
        println!(
            "ekilibri demo: balancing over {} demo backends.",
            servers.len()
        );
        println!("Try:  curl -i http://{addr}/        (each answer names its backend)");
        println!("      curl -i -X POST --data hello http://{addr}/echo");
        println!("Stop with Ctrl-C.");
    }
    // One hub for all workers: a reload reads the file once, and every
    // worker applies that one result.
    let hub = ekilibri::proxy::ReloadHub::new(workers, args.listen);
    for r in &mut reactors {
        if !args.demo
            && let Err(e) = r.set_config_path(file.clone(), &hub)
        {
            eprintln!("ekilibri: cannot set up reloads: {e}");
            return ExitCode::from(1);
        }
        if let Err(e) = r.enable_signals() {
            eprintln!("ekilibri: cannot set up signal handling: {e}");
            return ExitCode::from(1);
        }
    }
    // Signals that arrived during start-up are delivered now, into the
    // pipes; the worker threads started below keep them blocked, so they
    // are all handled on this thread, whose handler writes to every pipe.
    if let Err(e) = signals::release_deferred() {
        eprintln!("ekilibri: cannot set up signal handling: {e}");
        return ExitCode::from(1);
    }
    let mut last = reactors.pop().expect("at least one worker");
    let threads: Vec<std::io::Result<std::thread::JoinHandle<()>>> = reactors
        .into_iter()
        .enumerate()
        .map(|(i, mut r)| {
            std::thread::Builder::new()
                .name(format!("worker-{}", i + 1))
                .spawn(move || {
                    if let Err(e) = r.run() {
                        eprintln!("ekilibri: {e}");
                        std::process::exit(1);
                    }
                })
        })
        .collect();
    for t in &threads {
        if let Err(e) = t {
            eprintln!("ekilibri: cannot start a worker thread: {e}");
            return ExitCode::from(1);
        }
    }
    // The main thread is the last worker; any worker failing ends the
    // process. Every worker returns after a graceful shutdown.
    let result = last.run();
    if let Err(e) = result {
        eprintln!("ekilibri: {e}");
        return ExitCode::from(1);
    }
    for t in threads.into_iter().flatten() {
        let _ = t.join();
    }
    ExitCode::SUCCESS
}

/// With an admin listener configured, asks the running ekilibri for its
/// configuration (`GET /config`) and prints what a reload with `cfg` would
/// change.
fn print_reload_diff(cfg: &Config) {
    use std::io::{Read, Write};
    let Some(admin) = cfg.admin_listen.filter(|a| a.port() != 0) else {
        println!("(no admin_listen in the file: cannot compare with a running ekilibri)");
        return;
    };
    let fetch = || -> std::io::Result<String> {
        let timeout = std::time::Duration::from_millis(1000);
        let mut s = std::net::TcpStream::connect_timeout(&admin, timeout)?;
        s.set_read_timeout(Some(timeout))?;
        s.write_all(b"GET /config HTTP/1.1\r\nHost: ekilibri\r\nConnection: close\r\n\r\n")?;
        let mut text = String::new();
        s.read_to_string(&mut text)?;
        let (head, body) = text
            .split_once("\r\n\r\n")
            .ok_or_else(|| std::io::Error::other("no HTTP answer"))?;
        // `Server: ekilibri/VERSION`, whatever the version.
        let (product, _) = ekilibri::proxy::ADMIN_SERVER
            .split_once('/')
            .unwrap_or_default();
        let server = format!("server: {product}/");
        if !head
            .lines()
            .any(|l| l.to_ascii_lowercase().starts_with(&server))
        {
            return Err(std::io::Error::other("the server there is not an ekilibri"));
        }
        if !head.starts_with("HTTP/1.1 200") {
            return Err(std::io::Error::other("unexpected answer to GET /config"));
        }
        Ok(body.to_string())
    };
    match fetch() {
        Ok(running) => {
            let changes = config::describe::diff(&running, cfg);
            if changes.is_empty() {
                println!("a reload would change nothing (running ekilibri at {admin})");
            } else {
                println!("a reload would change (running ekilibri at {admin}):");
                for c in changes {
                    // The running side's values come from the network:
                    // no raw control bytes to the terminal.
                    let mut line = String::with_capacity(c.len());
                    for ch in c.chars() {
                        if ch.is_control() {
                            line.extend(ch.escape_default());
                        } else {
                            line.push(ch);
                        }
                    }
                    println!("  {line}");
                }
            }
        }
        Err(e) => println!("(no running ekilibri answered on {admin}: {e})"),
    }
}

/// Command-line errors: help and version go to stdout with exit code 0;
/// anything else is one line on stderr and exit code 2, like a bad
/// configuration.
fn fail_usage(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    let text = e.render().to_string();
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("invalid arguments");
    let first = first.strip_prefix("error: ").unwrap_or(first);
    eprintln!("ekilibri: {first} (see ekilibri --help)");
    ExitCode::from(2)
}

/// Prints the one-line configuration error and returns exit code 2.
fn fail_config(e: &config::ConfigError) -> ExitCode {
    eprintln!("ekilibri: {e}");
    ExitCode::from(2)
}

/// Starts three demo backends and builds a configuration over them, taking
/// the other settings from `file` when it exists (or when it was named
/// with `-f`: then it must exist). The file's `servers` are not used, so
/// they are not resolved either: a host name there that does not resolve,
/// or resolves slowly, does not hold up the demo.
fn demo_config(file: &Path, explicit: bool) -> Result<Config, config::ConfigError> {
    let servers = demo_backends()?;
    if explicit || file.exists() {
        config::load_with_servers(file, servers)
    } else {
        config::parse_with_servers(Path::new("(demo)"), "", servers)
    }
}

/// Starts the three demo backends on loopback.
fn demo_backends() -> Result<Vec<Server>, config::ConfigError> {
    let mut servers = Vec::new();
    for i in 1..=3 {
        let io_err = |e: std::io::Error| config::ConfigError::io(Path::new("(demo backend)"), &e);
        let listener = TcpListener::bind("127.0.0.1:0").map_err(io_err)?;
        let addr = listener.local_addr().map_err(io_err)?;
        servers.push(Server { addr, weight: 1 });
        // The demo echoes chunked uploads too (`curl -T file`).
        let behaviour = ekilibri::origin::Behaviour {
            chunked_echo: true,
            ..Default::default()
        };
        ekilibri::origin::spawn_with(listener, format!("demo-{i}"), behaviour).map_err(io_err)?;
    }
    Ok(servers)
}
