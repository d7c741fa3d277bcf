//! Chunked transfer coding (RFC 9112 §7.1).
//!
//! [`ChunkedDecoder`] is a strict, incremental, zero-copy decoder: it is fed
//! whatever bytes have arrived, in pieces split at any boundary, and reports
//! how many it consumed and which of them are body data (as a range into the
//! caller's slice, so the data is never copied). Every byte is examined at
//! most once and nothing is buffered except the (bounded) trailer section.
//!
//! [`write_chunk_header`] is the matching encoder for chunk-size lines.
//!
//! Accepted grammar (everything else is an error):
//!
//! ```text
//! chunked-body   = *chunk last-chunk trailer-section CRLF
//! chunk          = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
//! chunk-size     = 1*HEXDIG                       ; no sign, no "0x"
//! last-chunk     = 1*("0") [ chunk-ext ] CRLF
//! chunk-ext      = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] )
//! ext-val        = token / quoted-string
//! trailer-section = *( field-name ":" field-value CRLF )
//! ```
//!
//! A chunk size is at most `i64::MAX` (16 significant hex digits); leading
//! zeros are accepted, up to [`MAX_SIZE_DIGITS`] digits in all. Line
//! endings must be CRLF; a bare LF is rejected. Extensions are checked
//! and skipped, at most [`MAX_EXTENSION_LEN`] bytes per chunk-size line.
//! Trailer field lines are kept (at most [`TRAILER_CAPACITY`] bytes) and can
//! be read with [`ChunkedDecoder::trailers`]; obsolete line folding is
//! rejected.

use std::fmt;
use std::ops::Range;

/// Maximum number of hex digits in a chunk size, leading zeros included
/// (the value itself has at most 16 significant digits: it is at most
/// `i64::MAX`). Bounds a chunk-size line as [`MAX_EXTENSION_LEN`] bounds
/// its extensions.
pub const MAX_SIZE_DIGITS: u16 = 1024;

/// Maximum number of bytes of chunk extensions (including the whitespace
/// and `;` that introduce them) on one chunk-size line.
pub const MAX_EXTENSION_LEN: usize = 1024;

/// Maximum size of the trailer section in bytes, counting each field
/// line's CRLF but not the final empty line.
pub const TRAILER_CAPACITY: usize = 4096;

/// Largest output of [`write_chunk_header`]: 16 hex digits plus CRLF.
pub const MAX_CHUNK_HEADER_LEN: usize = 18;

/// The last chunk with an empty trailer section: ends a chunked body.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// Why a chunked body was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkedError {
    /// The chunk size is empty or contains something other than hex digits
    /// (a sign, `0x`, whitespace not followed by an extension, ...).
    BadSize,
    /// The chunk size is above `i64::MAX` (more than 16 significant hex
    /// digits), or has more than [`MAX_SIZE_DIGITS`] digits in all.
    SizeOverflow,
    /// A chunk extension is syntactically invalid.
    BadExtension,
    /// The chunk extensions of one line exceed [`MAX_EXTENSION_LEN`].
    ExtensionTooLong,
    /// A CR was not followed by LF, or chunk data was not followed by CRLF.
    MissingCrlf,
    /// A line ended with a bare LF instead of CRLF.
    BareLf,
    /// The trailer section exceeds [`TRAILER_CAPACITY`].
    TrailerTooLarge,
    /// A trailer field line is malformed (bad name, no colon, whitespace
    /// before the colon, control character, obsolete line folding).
    BadTrailer,
}

impl fmt::Display for ChunkedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let msg = match self {
            ChunkedError::BadSize => "invalid chunk size",
            ChunkedError::SizeOverflow => "chunk size too large",
            ChunkedError::BadExtension => "invalid chunk extension",
            ChunkedError::ExtensionTooLong => "chunk extensions too long",
            ChunkedError::MissingCrlf => "missing CRLF in chunked body",
            ChunkedError::BareLf => "bare LF in chunked body",
            ChunkedError::TrailerTooLarge => "trailer section too large",
            ChunkedError::BadTrailer => "invalid trailer field",
        };
        f.write_str(msg)
    }
}

impl std::error::Error for ChunkedError {}

/// Result of one [`ChunkedDecoder::step`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Number of bytes consumed from the start of the input. Consumed bytes
    /// must not be fed again.
    pub consumed: usize,
    /// Body data found in this call, as a range within the input (always
    /// inside `0..consumed`). At most one range per call.
    pub data: Option<Range<usize>>,
    /// The whole chunked body, including the trailer section and the final
    /// CRLF, has been consumed. Bytes after it were not consumed.
    pub done: bool,
}

/// Where the decoder is inside a chunk extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ext {
    /// Whitespace after the chunk size: only more whitespace or `;` may follow.
    SizeBws,
    /// Whitespace after an extension value: only more whitespace or `;`.
    ValueBws,
    /// After `;`: optional whitespace, then a name.
    NameStart,
    /// Inside a name.
    Name,
    /// Whitespace after a name: more whitespace, `=` or `;`.
    NameBws,
    /// After `=`: optional whitespace, then a token or quoted string.
    ValueStart,
    /// Inside a token value.
    Token,
    /// Inside a quoted-string value.
    Quoted,
    /// After a backslash inside a quoted string.
    QuotedEscape,
    /// Right after the closing quote.
    QuotedEnd,
}

/// Decoder state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Expecting the first hex digit of a chunk size.
    SizeStart,
    /// Reading chunk-size hex digits.
    Size,
    /// Inside chunk extensions.
    Ext(Ext),
    /// Saw the CR ending the chunk-size line.
    SizeLf,
    /// Inside chunk data (`remaining` > 0 bytes left).
    Data,
    /// Expecting the CR after chunk data.
    DataCr,
    /// Expecting the LF after chunk data.
    DataLf,
    /// At the start of a trailer line (or the final empty line).
    TrailerStart,
    /// Inside a trailer field name.
    TrailerName,
    /// Inside a trailer field value.
    TrailerValue,
    /// Saw the CR ending a trailer field line.
    TrailerLf,
    /// Saw the CR of the final empty line.
    FinalLf,
    /// The body is complete.
    Done,
    /// The body was rejected; the error is sticky.
    Failed(ChunkedError),
}

/// Incremental decoder for one chunked message body.
///
/// Feed it with [`step`](Self::step) until it reports `done`. It keeps only
/// a few counters plus the trailer section; the trailer buffer is allocated
/// (once, [`TRAILER_CAPACITY`] bytes) only if the body has trailer fields,
/// and is kept across [`reset`](Self::reset).
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    /// Chunk size being parsed.
    size: u64,
    /// Hex digits read for `size`, leading zeros included.
    digits: u16,
    /// Bytes of chunk extension on the current line.
    ext_len: usize,
    /// Chunk data bytes left in the current chunk.
    remaining: u64,
    /// Raw trailer field lines, each with its CRLF.
    trailers: Vec<u8>,
    /// Whitespace between a chunk size and its CRLF is accepted (see
    /// [`ChunkedDecoder::lenient_size_end`]).
    lenient: bool,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self::new()
    }
}

#[inline]
fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `tchar` from RFC 9110 §5.6.2.
#[inline]
fn is_tchar(b: u8) -> bool {
    matches!(b,
        b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.'
        | b'^' | b'_' | b'`' | b'|' | b'~' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z')
}

#[inline]
fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// `qdtext` from RFC 9110 §5.6.4.
#[inline]
fn is_qdtext(b: u8) -> bool {
    matches!(b, b'\t' | b' ' | 0x21 | 0x23..=0x5B | 0x5D..=0x7E | 0x80..=0xFF)
}

/// Bytes allowed in a field value (field-vchar, SP, HTAB, obs-text).
#[inline]
fn is_field_byte(b: u8) -> bool {
    matches!(b, b'\t' | b' '..=0x7E | 0x80..=0xFF)
}

impl ChunkedDecoder {
    /// A decoder at the start of a chunked body.
    pub fn new() -> Self {
        ChunkedDecoder {
            state: State::SizeStart,
            size: 0,
            digits: 0,
            ext_len: 0,
            remaining: 0,
            trailers: Vec::new(),
            lenient: false,
        }
    }

    /// Accepts whitespace between a chunk size and its CRLF (`2 \r\n`),
    /// which the grammar does not allow but which nginx and HAProxy take
    /// from backends. For responses only: the proxy re-chunks the body, so
    /// nobody downstream reads that line; in a request it could be read
    /// otherwise by the next server (a smuggling vector).
    pub fn lenient_size_end(mut self) -> Self {
        self.lenient = true;
        self
    }

    /// Returns the decoder to the start of a new body, keeping the trailer
    /// buffer's allocation.
    pub fn reset(&mut self) {
        self.state = State::SizeStart;
        self.size = 0;
        self.digits = 0;
        self.ext_len = 0;
        self.remaining = 0;
        self.trailers.clear();
    }

    /// Decodes from `input`.
    ///
    /// Returns how many bytes were consumed and, if some of them are body
    /// data, their range within `input` (at most one data range per call).
    /// The caller loops, advancing past `consumed` bytes, while
    /// `consumed > 0 && !done`. Unless the body is complete, a call with
    /// non-empty input consumes at least one byte, and every byte of
    /// framing is consumed as soon as it is seen (no lookahead), so the
    /// caller never has to keep unconsumed bytes around.
    ///
    /// `done` means the last chunk, the trailer section and the final CRLF
    /// have been consumed; bytes after them are left unconsumed (they belong
    /// to the next message). Once done, further calls consume nothing.
    ///
    /// Errors are sticky: after an error every call returns it again.
    pub fn step(&mut self, input: &[u8]) -> Result<Step, ChunkedError> {
        let mut i = 0;
        loop {
            match self.state {
                State::Failed(e) => return Err(e),
                State::Done => {
                    return Ok(Step {
                        consumed: i,
                        data: None,
                        done: true,
                    });
                }
                State::Data => {
                    let avail = input.len() - i;
                    if avail == 0 {
                        break;
                    }
                    // Fits in usize: it is at most `avail`.
                    let n = self.remaining.min(avail as u64) as usize;
                    self.remaining -= n as u64;
                    if self.remaining == 0 {
                        self.state = State::DataCr;
                    }
                    return Ok(Step {
                        consumed: i + n,
                        data: Some(i..i + n),
                        done: false,
                    });
                }
                _ => {
                    let Some(&b) = input.get(i) else { break };
                    i += 1;
                    if let Err(e) = self.byte(b) {
                        self.state = State::Failed(e);
                        return Err(e);
                    }
                }
            }
        }
        Ok(Step {
            consumed: i,
            data: None,
            done: false,
        })
    }

    /// True once the whole body (through the final CRLF) has been consumed.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The trailer field lines seen so far, raw, each ending with CRLF,
    /// without the final empty line. Empty if the body had no trailers.
    /// Complete only once [`is_done`](Self::is_done); the caller decides
    /// what, if anything, to forward.
    pub fn trailers(&self) -> &[u8] {
        &self.trailers
    }

    fn push_trailer(&mut self, b: u8) -> Result<(), ChunkedError> {
        if self.trailers.len() >= TRAILER_CAPACITY {
            return Err(ChunkedError::TrailerTooLarge);
        }
        if self.trailers.capacity() == 0 {
            self.trailers.reserve_exact(TRAILER_CAPACITY);
        }
        self.trailers.push(b);
        Ok(())
    }

    /// Processes one framing byte (any state except `Data`, `Done`, `Failed`).
    fn byte(&mut self, b: u8) -> Result<(), ChunkedError> {
        match self.state {
            State::SizeStart => match hex_value(b) {
                Some(v) => {
                    self.size = u64::from(v);
                    self.digits = 1;
                    self.state = State::Size;
                }
                None => return Err(ChunkedError::BadSize),
            },
            State::Size => {
                if let Some(v) = hex_value(b) {
                    // A size that fits an i64 (a next hop may well hold
                    // it signed), so at most 16 significant digits; leading
                    // zeros up to MAX_SIZE_DIGITS digits in all.
                    if self.digits >= MAX_SIZE_DIGITS || self.size >= 1 << 59 {
                        return Err(ChunkedError::SizeOverflow);
                    }
                    self.digits += 1;
                    self.size = (self.size << 4) | u64::from(v);
                } else {
                    match b {
                        b';' => self.start_ext(Ext::NameStart),
                        b' ' | b'\t' => self.start_ext(Ext::SizeBws),
                        b'\r' => self.state = State::SizeLf,
                        b'\n' => return Err(ChunkedError::BareLf),
                        _ => return Err(ChunkedError::BadSize),
                    }
                }
            }
            State::Ext(ext) => self.ext_byte(ext, b)?,
            State::SizeLf => {
                if b != b'\n' {
                    return Err(ChunkedError::MissingCrlf);
                }
                if self.size == 0 {
                    self.state = State::TrailerStart;
                } else {
                    self.remaining = self.size;
                    self.state = State::Data;
                }
            }
            State::DataCr => match b {
                b'\r' => self.state = State::DataLf,
                b'\n' => return Err(ChunkedError::BareLf),
                _ => return Err(ChunkedError::MissingCrlf),
            },
            State::DataLf => {
                if b != b'\n' {
                    return Err(ChunkedError::MissingCrlf);
                }
                self.size = 0;
                self.digits = 0;
                self.state = State::SizeStart;
            }
            State::TrailerStart => match b {
                b'\r' => self.state = State::FinalLf,
                b'\n' => return Err(ChunkedError::BareLf),
                _ if is_tchar(b) => {
                    self.push_trailer(b)?;
                    self.state = State::TrailerName;
                }
                _ => return Err(ChunkedError::BadTrailer),
            },
            State::TrailerName => {
                if b == b':' {
                    self.state = State::TrailerValue;
                } else if !is_tchar(b) {
                    return Err(ChunkedError::BadTrailer);
                }
                self.push_trailer(b)?;
            }
            State::TrailerValue => {
                match b {
                    b'\r' => self.state = State::TrailerLf,
                    b'\n' => return Err(ChunkedError::BareLf),
                    _ if is_field_byte(b) => {}
                    _ => return Err(ChunkedError::BadTrailer),
                }
                self.push_trailer(b)?;
            }
            State::TrailerLf => {
                if b != b'\n' {
                    return Err(ChunkedError::MissingCrlf);
                }
                self.push_trailer(b)?;
                self.state = State::TrailerStart;
            }
            State::FinalLf => {
                if b != b'\n' {
                    return Err(ChunkedError::MissingCrlf);
                }
                self.state = State::Done;
            }
            // Handled by `step`; never reached.
            State::Data | State::Done | State::Failed(_) => {}
        }
        Ok(())
    }

    fn start_ext(&mut self, ext: Ext) {
        self.ext_len = 1;
        self.state = State::Ext(ext);
    }

    fn ext_byte(&mut self, ext: Ext, b: u8) -> Result<(), ChunkedError> {
        if b == b'\n' {
            return Err(ChunkedError::BareLf);
        }
        if b == b'\r' {
            return match ext {
                Ext::Name | Ext::Token | Ext::QuotedEnd => {
                    self.state = State::SizeLf;
                    Ok(())
                }
                // Whitespace after the size, with no extension: trailing
                // whitespace in the chunk size.
                Ext::SizeBws if self.lenient => {
                    self.state = State::SizeLf;
                    Ok(())
                }
                Ext::SizeBws => Err(ChunkedError::BadSize),
                _ => Err(ChunkedError::BadExtension),
            };
        }
        self.ext_len += 1;
        if self.ext_len > MAX_EXTENSION_LEN {
            return Err(ChunkedError::ExtensionTooLong);
        }
        let next = match ext {
            Ext::SizeBws | Ext::ValueBws => match b {
                b' ' | b'\t' => ext,
                b';' => Ext::NameStart,
                _ if ext == Ext::SizeBws => return Err(ChunkedError::BadSize),
                _ => return Err(ChunkedError::BadExtension),
            },
            Ext::NameStart => match b {
                b' ' | b'\t' => ext,
                _ if is_tchar(b) => Ext::Name,
                _ => return Err(ChunkedError::BadExtension),
            },
            Ext::Name => match b {
                b' ' | b'\t' => Ext::NameBws,
                b'=' => Ext::ValueStart,
                b';' => Ext::NameStart,
                _ if is_tchar(b) => ext,
                _ => return Err(ChunkedError::BadExtension),
            },
            Ext::NameBws => match b {
                b' ' | b'\t' => ext,
                b'=' => Ext::ValueStart,
                b';' => Ext::NameStart,
                _ => return Err(ChunkedError::BadExtension),
            },
            Ext::ValueStart => match b {
                b' ' | b'\t' => ext,
                b'"' => Ext::Quoted,
                _ if is_tchar(b) => Ext::Token,
                _ => return Err(ChunkedError::BadExtension),
            },
            Ext::Token => match b {
                b' ' | b'\t' => Ext::ValueBws,
                b';' => Ext::NameStart,
                _ if is_tchar(b) => ext,
                _ => return Err(ChunkedError::BadExtension),
            },
            Ext::Quoted => match b {
                b'"' => Ext::QuotedEnd,
                b'\\' => Ext::QuotedEscape,
                _ if is_qdtext(b) => ext,
                _ => return Err(ChunkedError::BadExtension),
            },
            Ext::QuotedEscape => match b {
                b'\t' | b' '..=0x7E | 0x80..=0xFF => Ext::Quoted,
                _ => return Err(ChunkedError::BadExtension),
            },
            Ext::QuotedEnd => match b {
                _ if is_ws(b) => Ext::ValueBws,
                b';' => Ext::NameStart,
                _ => return Err(ChunkedError::BadExtension),
            },
        };
        self.state = State::Ext(next);
        Ok(())
    }
}

/// Writes the chunk-size line for a chunk of `len` bytes (`{hex}\r\n`,
/// lowercase, no leading zeros) into `out` and returns the number of bytes
/// written. A `len` of 0 writes `0\r\n`, the start of the last chunk.
///
/// # Panics
///
/// If `out` is too short; [`MAX_CHUNK_HEADER_LEN`] (18) bytes always suffice.
pub fn write_chunk_header(len: usize, out: &mut [u8]) -> usize {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bits = usize::BITS - len.leading_zeros();
    let digits = (bits.div_ceil(4) as usize).max(1);
    let total = digits + 2;
    assert!(
        out.len() >= total,
        "write_chunk_header: output buffer too small"
    );
    for (k, slot) in out[..digits].iter_mut().enumerate() {
        let shift = 4 * (digits - 1 - k);
        *slot = HEX[(len >> shift) & 0xf];
    }
    out[digits] = b'\r';
    out[digits + 1] = b'\n';
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `pieces` one after another the way a caller would, returning
    /// (data, bytes consumed in total, done).
    fn feed(
        dec: &mut ChunkedDecoder,
        pieces: &[&[u8]],
    ) -> Result<(Vec<u8>, usize, bool), ChunkedError> {
        let mut data = Vec::new();
        let mut total = 0;
        for piece in pieces {
            let mut rest: &[u8] = piece;
            loop {
                let step = dec.step(rest)?;
                assert!(step.consumed <= rest.len());
                if let Some(r) = step.data.clone() {
                    assert!(r.end <= step.consumed);
                    assert!(!r.is_empty());
                    data.extend_from_slice(&rest[r]);
                }
                total += step.consumed;
                rest = &rest[step.consumed..];
                assert_eq!(step.done, dec.is_done());
                if step.done {
                    return Ok((data, total, true));
                }
                if rest.is_empty() {
                    break;
                }
                // Not done and input left: progress is guaranteed.
                assert!(step.consumed > 0);
            }
        }
        Ok((data, total, dec.is_done()))
    }

    fn decode_all(input: &[u8]) -> Result<(Vec<u8>, usize, bool), ChunkedError> {
        feed(&mut ChunkedDecoder::new(), &[input])
    }

    struct Case {
        body: &'static [u8],
        data: &'static [u8],
        trailers: &'static [u8],
    }

    const CASES: &[Case] = &[
        Case {
            body: b"0\r\n\r\n",
            data: b"",
            trailers: b"",
        },
        Case {
            body: b"5\r\nhello\r\n0\r\n\r\n",
            data: b"hello",
            trailers: b"",
        },
        Case {
            body: b"5\r\nhello\r\n7\r\n, world\r\nA\r\n0123456789\r\n0\r\n\r\n",
            data: b"hello, world0123456789",
            trailers: b"",
        },
        Case {
            body: b"3;a=b\r\nabc\r\n4 ; x ; y = \"q;\\\"\" ;z=t\r\n\r\n\r\n\r\n000;last\r\n\r\n",
            data: b"abc\r\n\r\n",
            trailers: b"",
        },
        Case {
            body: b"2\r\nhi\r\n0\r\nExpires: never\r\nX-Sum:  abc def \r\nEmpty:\r\n\r\n",
            data: b"hi",
            trailers: b"Expires: never\r\nX-Sum:  abc def \r\nEmpty:\r\n",
        },
        Case {
            body: b"1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0000\r\nT:v\r\n\r\n",
            data: b"abcdefghijklmnopqrstuvwxyz",
            trailers: b"T:v\r\n",
        },
    ];

    fn check(case: &Case, pieces: &[&[u8]]) {
        let mut dec = ChunkedDecoder::new();
        let (data, consumed, done) = feed(&mut dec, pieces).unwrap();
        assert!(done);
        assert_eq!(consumed, case.body.len());
        assert_eq!(data, case.data);
        assert_eq!(dec.trailers(), case.trailers);
    }

    #[test]
    fn whole_bodies() {
        for case in CASES {
            check(case, &[case.body]);
        }
    }

    #[test]
    fn split_at_every_boundary() {
        for case in CASES {
            let b = case.body;
            for k in 0..=b.len() {
                check(case, &[&b[..k], &b[k..]]);
            }
        }
    }

    #[test]
    fn split_at_every_pair_of_boundaries() {
        for case in CASES {
            let b = case.body;
            for j in 0..=b.len() {
                for k in j..=b.len() {
                    check(case, &[&b[..j], &b[j..k], &b[k..]]);
                }
            }
        }
    }

    #[test]
    fn one_byte_at_a_time() {
        for case in CASES {
            let pieces: Vec<&[u8]> = case.body.chunks(1).collect();
            check(case, &pieces);
        }
    }

    #[test]
    fn one_data_range_per_call() {
        let mut dec = ChunkedDecoder::new();
        let input = b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let s = dec.step(input).unwrap();
        assert_eq!(s.data, Some(3..6));
        assert_eq!(s.consumed, 6);
        assert!(!s.done);
        let rest = &input[6..];
        let s = dec.step(rest).unwrap();
        assert_eq!(s.data, Some(5..7));
        assert_eq!(&rest[5..7], b"de");
        let rest = &rest[s.consumed..];
        let s = dec.step(rest).unwrap();
        assert_eq!(s.data, None);
        assert!(s.done);
        assert_eq!(s.consumed, rest.len());
    }

    #[test]
    fn bytes_after_done_are_not_consumed() {
        let input = b"2\r\nok\r\n0\r\n\r\nGET / HTTP/1.1\r\n";
        let (data, consumed, done) = decode_all(input).unwrap();
        assert!(done);
        assert_eq!(data, b"ok");
        assert_eq!(&input[consumed..], b"GET / HTTP/1.1\r\n");

        // Once done, nothing more is consumed.
        let mut dec = ChunkedDecoder::new();
        let s = dec.step(b"0\r\n\r\nXYZ").unwrap();
        assert_eq!(s.consumed, 5);
        assert!(s.done);
        let s = dec.step(b"XYZ").unwrap();
        assert_eq!(
            s,
            Step {
                consumed: 0,
                data: None,
                done: true
            }
        );
    }

    #[test]
    fn incomplete_is_not_done() {
        for input in [
            &b""[..],
            b"5",
            b"5\r\nhel",
            b"5\r\nhello\r\n",
            b"0\r\n",
            b"0\r\nA: b\r\n",
            b"0\r\n\r",
        ] {
            let (_, consumed, done) = decode_all(input).unwrap();
            assert!(!done, "{input:?}");
            assert_eq!(consumed, input.len());
        }
    }

    #[test]
    fn large_sizes() {
        let mut dec = ChunkedDecoder::new();
        let s = dec.step(b"7fffffffffffffff\r\nab").unwrap();
        assert_eq!(s.data, Some(18..20));
        assert_eq!(dec.remaining, i64::MAX as u64 - 2);
        let mut dec = ChunkedDecoder::new();
        dec.step(b"0000000000000010\r\n").unwrap();
        assert_eq!(dec.remaining, 16);
    }

    #[test]
    fn leading_zeros_do_not_count_as_significant_digits() {
        // 17 and 18 digits, values 5 and 0 (nginx and HAProxy accept them).
        let (data, _, done) =
            decode_all(b"00000000000000005\r\nhello\r\n000000000000000000\r\n\r\n").unwrap();
        assert!(done);
        assert_eq!(data, b"hello");
        let mut dec = ChunkedDecoder::new();
        dec.step(b"00000000000000007fffffffffffffff\r\n").unwrap();
        assert_eq!(dec.remaining, i64::MAX as u64);
        // Still at most 2^63 - 1, however many zeros come first.
        assert_eq!(
            err(b"010000000000000000\r\nx\r\n"),
            ChunkedError::SizeOverflow
        );
        assert_eq!(
            err(b"00008000000000000000\r\nx\r\n"),
            ChunkedError::SizeOverflow
        );
    }

    #[test]
    fn size_digits_are_bounded_leading_zeros_included() {
        let max = usize::from(MAX_SIZE_DIGITS);
        // MAX_SIZE_DIGITS digits in all, in a chunk size and in the last
        // chunk, are accepted.
        let mut ok = vec![b'0'; max - 1];
        ok.extend_from_slice(b"1\r\nx\r\n");
        ok.extend(std::iter::repeat_n(b'0', max));
        ok.extend_from_slice(b"\r\n\r\n");
        let (data, consumed, done) = decode_all(&ok).unwrap();
        assert!(done && consumed == ok.len());
        assert_eq!(data, b"x");
        // One digit more is refused as soon as it comes, so a line of a
        // million zeros is not read to its end.
        let mut dec = ChunkedDecoder::new();
        let zeros = vec![b'0'; 1_000_000];
        assert_eq!(dec.step(&zeros), Err(ChunkedError::SizeOverflow));
        let mut bad = vec![b'0'; max];
        bad.extend_from_slice(b"1\r\nx\r\n0\r\n\r\n");
        assert_eq!(err(&bad), ChunkedError::SizeOverflow);
        bad.truncate(max);
        bad.extend_from_slice(b"0\r\n\r\n");
        assert_eq!(err(&bad), ChunkedError::SizeOverflow);
    }

    fn err(input: &[u8]) -> ChunkedError {
        decode_all(input).unwrap_err()
    }

    #[test]
    fn a_lenient_decoder_takes_whitespace_after_a_size_and_nothing_else() {
        let lenient = |input: &[u8]| feed(&mut ChunkedDecoder::new().lenient_size_end(), &[input]);
        let (data, _, done) = lenient(b"2 \r\nok\r\n3\t \r\n!!!\r\n0 \r\n\r\n").unwrap();
        assert_eq!((data.as_slice(), done), (&b"ok!!!"[..], true));
        let (data, _, done) = lenient(b"2 ;a=b\r\nok\r\n0\r\n\r\n").unwrap();
        assert_eq!((data.as_slice(), done), (&b"ok"[..], true));
        assert_eq!(
            lenient(b"2 x\r\nok\r\n").unwrap_err(),
            ChunkedError::BadSize
        );
        assert_eq!(lenient(b" 2\r\nok\r\n").unwrap_err(), ChunkedError::BadSize);
        assert_eq!(lenient(b"2 \nok\r\n").unwrap_err(), ChunkedError::BareLf);
        // The strict decoder (requests) still refuses it.
        assert_eq!(err(b"2 \r\nok\r\n0\r\n\r\n"), ChunkedError::BadSize);
    }

    #[test]
    fn bad_sizes() {
        assert_eq!(err(b"-1\r\nx\r\n0\r\n\r\n"), ChunkedError::BadSize);
        assert_eq!(err(b"+1\r\nx\r\n0\r\n\r\n"), ChunkedError::BadSize);
        assert_eq!(err(b"0x1\r\nx\r\n0\r\n\r\n"), ChunkedError::BadSize);
        assert_eq!(err(b"\r\n"), ChunkedError::BadSize);
        assert_eq!(err(b";a\r\n"), ChunkedError::BadSize);
        assert_eq!(err(b" 1\r\nx\r\n"), ChunkedError::BadSize);
        assert_eq!(err(b"1 \r\nx\r\n"), ChunkedError::BadSize);
        assert_eq!(err(b"1\t\r\nx\r\n"), ChunkedError::BadSize);
        assert_eq!(err(b"1 x\r\n"), ChunkedError::BadSize);
        assert_eq!(err(b"g\r\n"), ChunkedError::BadSize);
        assert_eq!(err(b"1g\r\n"), ChunkedError::BadSize);
        assert_eq!(err(b"ffffffffffffffffff\r\n"), ChunkedError::SizeOverflow);
        assert_eq!(err(b"10000000000000000\r\n"), ChunkedError::SizeOverflow);
        // Beyond i64::MAX, which a next hop may hold sizes in.
        assert_eq!(err(b"8000000000000000\r\n"), ChunkedError::SizeOverflow);
        assert_eq!(err(b"ffffffffffffffff\r\n"), ChunkedError::SizeOverflow);
    }

    #[test]
    fn bws_before_extension_is_tolerated() {
        let (data, _, done) = decode_all(b"1 \t;a\r\nx\r\n0 ;b=\"c\"\r\n\r\n").unwrap();
        assert!(done);
        assert_eq!(data, b"x");
    }

    #[test]
    fn bad_extensions() {
        for input in [
            &b"1;\r\nx\r\n"[..],
            b"1;=v\r\nx\r\n",
            b"1;a=\r\nx\r\n",
            b"1;a=\"unterminated\r\nx\r\n",
            b"1;a b\r\nx\r\n",
            b"1;a=b c\r\nx\r\n",
            b"1;a=\"q\"x\r\nx\r\n",
            b"1;a@b\r\nx\r\n",
            b"1;a=\"\x01\"\r\nx\r\n",
            b"1;a \r\nx\r\n",
            b"1;a=b \r\nx\r\n",
        ] {
            assert_eq!(err(input), ChunkedError::BadExtension, "{input:?}");
        }
    }

    #[test]
    fn extension_too_long() {
        // The extension is everything after the size digit.
        let mut ok = b"1;".to_vec();
        ok.resize(MAX_EXTENSION_LEN + 1, b'a');
        ok.extend_from_slice(b"\r\nx\r\n0\r\n\r\n");
        let (data, _, done) = decode_all(&ok).unwrap();
        assert!(done);
        assert_eq!(data, b"x");

        let mut bad = b"1;".to_vec();
        bad.resize(MAX_EXTENSION_LEN + 2, b'a');
        bad.extend_from_slice(b"\r\nx\r\n0\r\n\r\n");
        assert_eq!(err(&bad), ChunkedError::ExtensionTooLong);

        // The bound is per line: many lines of long extensions are fine.
        let mut many = Vec::new();
        for _ in 0..10 {
            many.extend_from_slice(b"1;");
            many.resize(many.len() + 1000, b'b');
            many.extend_from_slice(b"\r\ny\r\n");
        }
        many.extend_from_slice(b"0\r\n\r\n");
        let (data, _, done) = decode_all(&many).unwrap();
        assert!(done);
        assert_eq!(data, b"yyyyyyyyyy");
    }

    #[test]
    fn missing_crlf_after_data() {
        assert_eq!(err(b"3\r\nabcd\r\n0\r\n\r\n"), ChunkedError::MissingCrlf);
        assert_eq!(err(b"3\r\nabc0\r\n\r\n"), ChunkedError::MissingCrlf);
        assert_eq!(err(b"3\r\nabc\rx"), ChunkedError::MissingCrlf);
        assert_eq!(err(b"3\rabc"), ChunkedError::MissingCrlf);
        assert_eq!(err(b"0\r\n\rx"), ChunkedError::MissingCrlf);
        assert_eq!(err(b"0\r\nA: b\rx"), ChunkedError::MissingCrlf);
    }

    #[test]
    fn bare_lf() {
        assert_eq!(err(b"3\nabc\r\n"), ChunkedError::BareLf);
        assert_eq!(err(b"3;a=b\nabc\r\n"), ChunkedError::BareLf);
        assert_eq!(err(b"3\r\nabc\n0\r\n\r\n"), ChunkedError::BareLf);
        assert_eq!(err(b"0\r\n\n"), ChunkedError::BareLf);
        assert_eq!(err(b"0\r\nA: b\n\r\n"), ChunkedError::BareLf);
    }

    #[test]
    fn bad_trailers() {
        for input in [
            &b"0\r\nA : b\r\n\r\n"[..],
            b"0\r\n: b\r\n\r\n",
            b"0\r\nNoColon\r\n\r\n",
            b"0\r\nA: b\r\n folded\r\n\r\n",
            b"0\r\nA: b\x00c\r\n\r\n",
            b"0\r\nA: b\x7f\r\n\r\n",
            b"0\r\nA(: b\r\n\r\n",
        ] {
            assert_eq!(err(input), ChunkedError::BadTrailer, "{input:?}");
        }
    }

    #[test]
    fn trailers_too_large() {
        let mut ok = b"0\r\nX: ".to_vec();
        ok.resize(TRAILER_CAPACITY + 3 - 2, b'v');
        ok.extend_from_slice(b"\r\n\r\n");
        let mut dec = ChunkedDecoder::new();
        let (_, _, done) = feed(&mut dec, &[&ok]).unwrap();
        assert!(done);
        assert_eq!(dec.trailers().len(), TRAILER_CAPACITY);

        let mut bad = b"0\r\nX: ".to_vec();
        bad.resize(TRAILER_CAPACITY + 3 - 1, b'v');
        bad.extend_from_slice(b"\r\n\r\n");
        assert_eq!(err(&bad), ChunkedError::TrailerTooLarge);

        // Many small trailer lines count together.
        let mut many = b"0\r\n".to_vec();
        for _ in 0..1000 {
            many.extend_from_slice(b"A: b\r\n");
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(err(&many), ChunkedError::TrailerTooLarge);
    }

    #[test]
    fn errors_are_sticky_and_split_independent() {
        let input = b"5\r\nhello\r\nzz\r\n";
        for k in 0..=input.len() {
            let mut dec = ChunkedDecoder::new();
            let e = feed(&mut dec, &[&input[..k], &input[k..]]).unwrap_err();
            assert_eq!(e, ChunkedError::BadSize);
            assert_eq!(dec.step(b"0\r\n\r\n"), Err(ChunkedError::BadSize));
            assert_eq!(dec.step(b""), Err(ChunkedError::BadSize));
        }
    }

    #[test]
    fn reset_reuses_decoder() {
        let mut dec = ChunkedDecoder::new();
        feed(&mut dec, &[b"0\r\nA: b\r\n\r\n"]).unwrap();
        assert!(dec.is_done());
        dec.reset();
        assert!(!dec.is_done());
        assert_eq!(dec.trailers(), b"");
        let (data, _, done) = feed(&mut dec, &[b"1\r\nz\r\n0\r\n\r\n"]).unwrap();
        assert!(done);
        assert_eq!(data, b"z");
    }

    #[test]
    fn chunk_header_encoding() {
        let mut out = [0u8; MAX_CHUNK_HEADER_LEN];
        let cases: &[(usize, &[u8])] = &[
            (0, b"0\r\n"),
            (1, b"1\r\n"),
            (15, b"f\r\n"),
            (16, b"10\r\n"),
            (0x4000, b"4000\r\n"),
            (0xabcdef, b"abcdef\r\n"),
        ];
        for &(len, want) in cases {
            let n = write_chunk_header(len, &mut out);
            assert_eq!(&out[..n], want);
        }
        let n = write_chunk_header(usize::MAX, &mut out);
        assert_eq!(n, usize::BITS as usize / 4 + 2);

        // Round trip through the decoder.
        for len in [1usize, 9, 10, 255, 256, 4097] {
            let mut body = Vec::new();
            let n = write_chunk_header(len, &mut out);
            body.extend_from_slice(&out[..n]);
            body.resize(body.len() + len, b'q');
            body.extend_from_slice(b"\r\n");
            body.extend_from_slice(LAST_CHUNK);
            let (data, consumed, done) = decode_all(&body).unwrap();
            assert!(done);
            assert_eq!(consumed, body.len());
            assert_eq!(data.len(), len);
        }
    }
}
