//! A reactor running in the test process, in front of one in-process
//! origin server (shared by the Rust integration tests).

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A reactor on its own thread, listening on a free loopback port.
pub struct InProcess {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl InProcess {
    /// Starts an origin and a reactor in front of it; `on_thread` runs on
    /// the reactor's thread before the loop does.
    pub fn start(on_thread: impl FnOnce() + Send + 'static) -> InProcess {
        let backend = TcpListener::bind("127.0.0.1:0").unwrap();
        let backend_addr = backend.local_addr().unwrap();
        let chunked = ekilibri::origin::Behaviour {
            chunked_echo: true,
            ..Default::default()
        };
        ekilibri::origin::spawn_with(backend, "b1".into(), chunked).unwrap();
        // Generous backend timeouts: a burst of 400 connects can overflow
        // the origin's accept queue (backlog 128) on a busy machine, and a
        // dropped SYN is retried after one second.
        let text = format!(
            "servers = [\"{backend_addr}\"]\nlisten = \"127.0.0.1:0\"\n\
             health_check_interval = 600000\nconnection_timeout = 10000\nread_timeout = 10000\n"
        );
        let cfg = ekilibri::config::parse(Path::new("test.toml"), &text).unwrap();
        let mut reactor = ekilibri::proxy::Reactor::new(cfg).unwrap();
        // No pool trims while a test runs: a test thread stalled for a
        // second by a busy machine would see idle buffers freed (as they
        // should be) and allocated again.
        reactor.set_trim_interval(std::time::Duration::from_secs(3600));
        let addr = reactor.local_addr();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            on_thread();
            reactor
                .run_while(|| !stop2.load(Ordering::Relaxed))
                .unwrap();
        });
        InProcess { addr, stop, thread }
    }

    /// Stops the loop and waits for its thread.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        self.thread.join().unwrap();
    }
}

/// Reads one 200 response with a Content-Length body from `sock`; `buf`
/// holds bytes read ahead and keeps what follows the response. Returns
/// the body.
pub fn read_response(sock: &mut TcpStream, buf: &mut Vec<u8>) -> Vec<u8> {
    let mut tmp = [0u8; 65536];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = sock.read(&mut tmp).unwrap();
        assert!(n > 0, "connection closed");
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .map(|v| v.trim().parse().unwrap())
        .expect("content-length");
    while buf.len() < head_end + len {
        let n = sock.read(&mut tmp).unwrap();
        assert!(n > 0, "connection closed");
        buf.extend_from_slice(&tmp[..n]);
    }
    let body = buf[head_end..head_end + len].to_vec();
    buf.drain(..head_end + len);
    body
}
