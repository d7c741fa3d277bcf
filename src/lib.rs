//! ekilibri: an HTTP/1.1 reverse proxy and load balancer built on one
//! `mio` event loop.
//!
//! The crate is split so that protocol logic never touches a socket:
//! [`http`] parses and frames messages, [`balance`] picks backends,
//! [`time`] holds the timer wheel, and [`proxy`] is the reactor that moves
//! bytes between sockets and drives the state machines. [`ops`] holds the
//! metrics, the status page and access log formatting.

pub mod balance;
pub mod buf;
pub mod config;
pub mod http;
pub mod ops;
pub mod origin;
pub mod proxy;
pub mod time;
