//! The process's file descriptor budget.
//!
//! Every client, backend connection and health probe is a descriptor. When
//! the process runs out, `accept`, `socket` and `connect` fail with
//! `EMFILE`: the loop then must not blame a backend for its own shortage,
//! and should keep some descriptors for the backend connections and probes
//! of the clients it already has. So a worker stops accepting while its
//! connections come within a reserve of its share of the limit.

use std::io;

/// Descriptors a worker holds besides its connections: standard streams,
/// poller, listeners, signal pipe, reload waker, access log, with margin.
const FIXED: usize = 16;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit, as HAProxy and the Go
/// runtime do (an administrator's hard limit is the one meant), and
/// returns the soft limit now in force (`usize::MAX` when unlimited).
pub fn raise_nofile_limit() -> io::Result<usize> {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid resource and a live struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut rl) != 0 {
            return Err(io::Error::last_os_error());
        }
        if rl.rlim_cur < rl.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: rl.rlim_max,
                rlim_max: rl.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raw const raised) == 0 {
                rl.rlim_cur = rl.rlim_max;
            }
        }
    }
    Ok(if rl.rlim_cur == libc::RLIM_INFINITY {
        usize::MAX
    } else {
        usize::try_from(rl.rlim_cur).unwrap_or(usize::MAX)
    })
}

/// Descriptors a worker with a share of `budget` keeps free of client
/// connections, for the backend connections of the clients it has and for
/// the probes of `backends` backends (`probes_each` at most in flight).
pub fn reserve(budget: usize, backends: usize, probes_each: usize) -> usize {
    FIXED
        .saturating_add(backends.saturating_mul(probes_each))
        .saturating_add(budget / 8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserve_leaves_room_for_clients_even_at_small_limits() {
        // ulimit -n 64, two backends: 32 kept back, 32 for connections.
        assert_eq!(reserve(64, 2, 4), 32);
        assert_eq!(reserve(1024, 3, 4), 16 + 12 + 128);
    }

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_one() {
        let soft = raise_nofile_limit().unwrap();
        let mut rl = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit with a valid resource and a live struct.
        assert_eq!(
            unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut rl) },
            0
        );
        assert_eq!(rl.rlim_cur, rl.rlim_max);
        assert!(soft >= 64);
    }
}
