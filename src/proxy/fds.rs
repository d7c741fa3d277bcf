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
/// connections and their backend connections: for the probes of `backends`
/// backends (`probes_each` at most in flight) and the fixed ones. Never
/// more than half the share, so that a worker with a small share still
/// serves some clients (what it cannot hold then fails as `EMFILE`, which
/// the loop handles, instead of no client ever being accepted).
pub fn reserve(budget: usize, backends: usize, probes_each: usize) -> usize {
    FIXED
        .saturating_add(backends.saturating_mul(probes_each))
        .min(budget / 2)
}

/// Whether a worker with `open` connections (clients, backend connections,
/// probes), of which `unattached` clients have no backend connection yet,
/// may accept one more client within its share `budget`: the new client
/// and every client without a backend connection may each need one.
pub fn room_for_a_client(open: usize, unattached: usize, reserve: usize, budget: usize) -> bool {
    open.saturating_add(unattached)
        .saturating_add(2)
        .saturating_add(reserve)
        <= budget
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserve_leaves_room_for_clients_even_at_small_limits() {
        assert_eq!(reserve(1024, 3, 4), 16 + 12);
        // ulimit -n 36 with four backends, or 64 workers sharing 1024:
        // half the share still goes to clients.
        assert_eq!(reserve(36, 4, 4), 18);
        assert_eq!(reserve(16, 3, 4), 8);
        assert!(room_for_a_client(0, 0, reserve(16, 3, 4), 16));
    }

    #[test]
    fn each_client_counts_with_the_backend_connection_it_will_need() {
        // 1024 descriptors, 28 reserved: a burst of clients that have not
        // connected a backend yet stops near half of what is left, so
        // every one of them can still open its backend connection.
        let budget = 1024;
        let r = reserve(budget, 3, 4);
        let mut clients = 0;
        while room_for_a_client(clients, clients, r, budget) {
            clients += 1;
        }
        assert_eq!(clients, (budget - r) / 2);
        assert!(2 * clients + r <= budget);
        // Clients that have their backend connection count once each more.
        assert!(room_for_a_client(2 * 400, 0, r, budget));
        assert!(!room_for_a_client(2 * 498, 0, r, budget));
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
