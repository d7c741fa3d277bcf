//! Binding the client listener, with `SO_REUSEPORT` when several workers
//! each accept on a socket of their own.

use std::io;
use std::mem;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Backlog of the listen queue (the kernel caps it at `somaxconn`).
const BACKLOG: i32 = 4096;

/// Binds a non-blocking TCP listener on `addr`, with `SO_REUSEADDR` (a
/// restart can rebind at once) and, if `reuse_port`, `SO_REUSEPORT` (so that
/// every worker binds the same address and the kernel spreads connections
/// over them).
pub fn bind(addr: SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
    let fd = bound_socket(addr, reuse_port)?;
    // SAFETY: listen(2) on our own bound socket.
    if unsafe { libc::listen(fd.as_raw_fd(), BACKLOG) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(TcpListener::from(fd))
}

/// Fails with `AddrInUse` if some socket already listens on `addr`.
///
/// Workers bind with `SO_REUSEPORT`, which lets any process of the same
/// user bind the same address beside them: a second ekilibri started by
/// mistake would take half the connections instead of failing. A socket
/// bound here without `SO_REUSEPORT` (but with `SO_REUSEADDR`, so that
/// connections in `TIME_WAIT` from an earlier run do not count) finds out
/// whether the address is taken; it never listens, and is closed at once.
pub fn ensure_free(addr: SocketAddr) -> io::Result<()> {
    if addr.port() == 0 {
        return Ok(());
    }
    bound_socket(addr, false).map(drop)
}

/// A non-blocking TCP socket bound to `addr`, not yet listening.
fn bound_socket(addr: SocketAddr, reuse_port: bool) -> io::Result<OwnedFd> {
    let family = match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    // SAFETY: plain socket(2); the descriptor is owned by `fd` at once.
    let raw = unsafe {
        libc::socket(
            family,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh, valid descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    set_flag(raw, libc::SO_REUSEADDR)?;
    if reuse_port {
        set_flag(raw, libc::SO_REUSEPORT)?;
    }
    let (storage, len) = sockaddr(addr);
    // SAFETY: `storage` holds a valid sockaddr of `len` bytes.
    if unsafe { libc::bind(raw, (&raw const storage).cast(), len) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

fn set_flag(fd: i32, opt: i32) -> io::Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: setsockopt(2) with a pointer to a live c_int and its size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            opt,
            (&raw const one).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data; all-zero is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_in fits in sockaddr_storage.
            unsafe { std::ptr::write((&raw mut storage).cast(), sin) };
            mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_in6 fits in sockaddr_storage.
            unsafe { std::ptr::write((&raw mut storage).cast(), sin6) };
            mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuse_port_lets_two_listeners_share_an_address() {
        let a = bind("127.0.0.1:0".parse().unwrap(), true).unwrap();
        let addr = a.local_addr().unwrap();
        let b = bind(addr, true).unwrap();
        assert_eq!(b.local_addr().unwrap(), addr);
        // Without SO_REUSEPORT the same bind fails.
        assert!(bind(addr, false).is_err());
        assert_eq!(
            ensure_free(addr).unwrap_err().kind(),
            io::ErrorKind::AddrInUse
        );
        drop((a, b));
        ensure_free(addr).unwrap();
        let again = bind(addr, true).unwrap();
        assert_eq!(again.local_addr().unwrap(), addr);
    }

    #[test]
    fn ipv6_loopback() {
        if let Ok(l) = bind("[::1]:0".parse().unwrap(), false) {
            assert!(l.local_addr().unwrap().is_ipv6());
        }
    }
}
