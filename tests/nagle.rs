//! Nagle's algorithm on client connections: `TCP_NODELAY` is set before the
//! second write on a connection (a small write behind a short segment must
//! not wait for a delayed ACK), and not before (the first write cannot be
//! held back, so a one-response `Connection: close` client costs no
//! `setsockopt`). The reactor runs in this process, so the test finds the
//! accepted socket among its own descriptors and asks the kernel.

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::RawFd;

use common::{InProcess, read_response};

/// The peer address of `fd`, if it is a connected IPv4 socket.
fn peer_of(fd: RawFd) -> Option<SocketAddr> {
    let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    let rc = unsafe { libc::getpeername(fd, (&raw mut sa).cast(), &mut len) };
    if rc != 0 || i32::from(sa.sin_family) != libc::AF_INET {
        return None;
    }
    let ip = std::net::Ipv4Addr::from(u32::from_be(sa.sin_addr.s_addr));
    Some(SocketAddr::from((ip, u16::from_be(sa.sin_port))))
}

/// TCP_NODELAY of the proxy's end of `client`'s connection.
fn proxy_side_nodelay(client: &TcpStream) -> bool {
    let me = client.local_addr().unwrap();
    let fds = std::fs::read_dir("/proc/self/fd").unwrap();
    let fd = fds
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<RawFd>().ok())
        .find(|&fd| peer_of(fd) == Some(me))
        .expect("the proxy's socket for this client");
    let mut on: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&raw mut on).cast(),
            &mut len,
        )
    };
    assert_eq!(rc, 0);
    on != 0
}

/// Sends `GET path` and reads the response; returns the body length.
fn get(sock: &mut TcpStream, path: &str) -> usize {
    write!(sock, "GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    read_response(sock, &mut Vec::new()).len()
}

#[test]
fn nodelay_is_set_before_the_second_write() {
    let proxy = InProcess::start(|| {});
    let mut sock = TcpStream::connect(proxy.addr).unwrap();
    assert_eq!(get(&mut sock, "/bytes/10"), 10);
    assert!(
        !proxy_side_nodelay(&sock),
        "one small response is one write: no setsockopt needed yet"
    );
    assert_eq!(get(&mut sock, "/bytes/10"), 10);
    assert!(
        proxy_side_nodelay(&sock),
        "second response: Nagle must be off"
    );
    drop(sock);
    proxy.stop();
}

#[test]
fn a_response_written_in_several_writes_turns_nagle_off() {
    let proxy = InProcess::start(|| {});
    let mut sock = TcpStream::connect(proxy.addr).unwrap();
    // 200 KB cannot fit one 16 KiB buffer: the body goes out in many writes.
    assert_eq!(get(&mut sock, "/bytes/200000"), 200_000);
    assert!(proxy_side_nodelay(&sock));
    drop(sock);
    proxy.stop();
}
