//! The proxy: one `mio` reactor owning every socket.
//!
//! [`Reactor`] owns the listener, every client and backend connection and
//! the health probes in one `Slab`, and the timer wheel that drives their
//! timeouts. It only moves bytes between sockets and buffers and hands them
//! to the protocol code in [`crate::http`], which never touches a socket.
//! See `docs/architecture.md` for how a request flows through one turn.

pub mod access;
mod conn;
pub mod fds;
pub mod health;
pub mod io;
pub mod listen;
mod probe;
mod reactor;
mod reload;
pub mod retry_budget;
pub mod signals;

pub use reactor::{ADMIN_SERVER, Reactor, ReactorError};
pub use reload::ReloadHub;
