//! HTTP/1.1 message handling, free of I/O.
//!
//! Everything here takes bytes and returns facts or writes bytes into a
//! [`crate::buf::Buf`]; nothing touches a socket. [`head`] parses request and
//! response heads and rewrites them for the other side, [`body`] relays a
//! body from one buffer to another re-framing it, [`chunked`] decodes the
//! chunked transfer coding and [`canned`] holds the error responses.

pub mod body;
pub mod canned;
pub mod chunked;
pub mod head;

#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod harness;

/// `name` is the lowercase field name `lit` with at least one `-` written
/// `_` (`Transfer_Encoding`). CGI, WSGI and Rack backends turn both
/// spellings into the same variable (`HTTP_TRANSFER_ENCODING`), so a proxy
/// must not let a client pass, under the underscore spelling, a field it
/// manages under the other (nginx drops names with `_` by default).
fn aliases_with_underscores(name: &[u8], lit: &[u8]) -> bool {
    name.len() == lit.len()
        && name.contains(&b'_')
        && name.iter().zip(lit).all(|(&a, &b)| {
            (if a == b'_' {
                b'-'
            } else {
                a.to_ascii_lowercase()
            }) == b
        })
}

/// How the length of a message body is determined (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Everything until the sender closes the connection (responses only).
    UntilClose,
}

/// The field names a message's `Connection` field lists besides `close`,
/// `keep-alive` and `upgrade`: they are hop-by-hop in the trailer section
/// too (RFC 9110 §7.6.1), which is relayed after the head is gone, so the
/// names are kept as hashes (32-bit FNV-1a of the lowercased name: small,
/// since every head carries the set). More than [`HopNames::MAX`] names:
/// every trailer field counts as named.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HopNames {
    hashes: [u32; HopNames::MAX],
    /// Names kept, or `u8::MAX` for more than [`HopNames::MAX`].
    n: u8,
}

impl HopNames {
    /// Names kept exactly.
    pub const MAX: usize = 4;

    /// The set of `names`.
    pub fn of<'a>(names: impl IntoIterator<Item = &'a [u8]>) -> HopNames {
        let mut set = HopNames::default();
        for name in names {
            if usize::from(set.n) == Self::MAX {
                set.n = u8::MAX;
                break;
            }
            set.hashes[usize::from(set.n)] = fnv_lower(name);
            set.n += 1;
        }
        set
    }

    /// Whether `name` is in the set (case-insensitively).
    pub fn contains(&self, name: &[u8]) -> bool {
        match usize::from(self.n) {
            0 => false,
            n if n > Self::MAX => true,
            n => self.hashes[..n].contains(&fnv_lower(name)),
        }
    }
}

fn fnv_lower(name: &[u8]) -> u32 {
    name.iter().fold(0x811c_9dc5, |h, &b| {
        (h ^ u32::from(b.to_ascii_lowercase())).wrapping_mul(0x0100_0193)
    })
}

/// Protocol version of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.0.
    Http10,
    /// HTTP/1.1.
    Http11,
}

/// Request method, with the ones the proxy treats specially named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET
    Get,
    /// HEAD
    Head,
    /// POST
    Post,
    /// PUT
    Put,
    /// DELETE
    Delete,
    /// CONNECT
    Connect,
    /// OPTIONS
    Options,
    /// TRACE
    Trace,
    /// PATCH
    Patch,
    /// Any other token.
    Other,
}

impl Method {
    /// Classifies a method token.
    pub fn from_token(m: &str) -> Method {
        match m {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "CONNECT" => Method::Connect,
            "OPTIONS" => Method::Options,
            "TRACE" => Method::Trace,
            "PATCH" => Method::Patch,
            _ => Method::Other,
        }
    }

    /// Idempotent per RFC 9110 §9.2.2: safe to send twice.
    pub fn is_idempotent(self) -> bool {
        matches!(
            self,
            Method::Get
                | Method::Head
                | Method::Put
                | Method::Delete
                | Method::Options
                | Method::Trace
        )
    }
}
