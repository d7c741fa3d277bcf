//! Relaying a body from one buffer to another, re-framing it on the way.
//!
//! The source framing says where the body ends in the input; the output
//! coding says how it is written (as is, or re-encoded as chunks). The relay
//! moves only what fits in the destination, which is what gives the proxy
//! its backpressure: a full destination stops the relay, the source buffer
//! fills, and the reactor stops reading that socket.

use super::chunked::{ChunkedDecoder, ChunkedError, write_chunk_header};
use super::head::OutCoding;
use super::{Framing, HopNames};
use crate::buf::Buf;

/// Room a chunk header and its trailing CRLF take in the destination.
const CHUNK_OVERHEAD: usize = 16 + 2 + 2;
const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// Why a body could not be relayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// The chunked coding was invalid.
    Chunked(ChunkedError),
    /// The sender closed before the body was complete.
    Truncated,
}

#[derive(Debug)]
enum Source {
    Empty,
    Length(u64),
    Chunked(ChunkedDecoder),
    UntilClose,
}

/// Relays one message body.
#[derive(Debug)]
pub struct BodyRelay {
    source: Source,
    out: OutCoding,
    /// The input side is complete; only the last chunk may be left to write.
    input_done: bool,
    /// The whole body, terminator included, is in the destination.
    done: bool,
    /// Body bytes moved so far.
    moved: u64,
    /// The sender closed: the source buffer holds all that will come.
    eof: bool,
    /// ... and it closed abortively (a reset), so a close-delimited body
    /// did not end: it was cut.
    aborted: bool,
    /// Trailer fields not forwarded: those the message's `Connection` named.
    hop_names: HopNames,
}

impl BodyRelay {
    /// A relay for a body framed by `framing`, written with `out`.
    pub fn new(framing: Framing, out: OutCoding) -> BodyRelay {
        let source = match framing {
            Framing::None | Framing::Length(0) => Source::Empty,
            Framing::Length(n) => Source::Length(n),
            Framing::Chunked => Source::Chunked(ChunkedDecoder::new()),
            Framing::UntilClose => Source::UntilClose,
        };
        let empty = matches!(source, Source::Empty);
        BodyRelay {
            source,
            // An empty body is never chunk-encoded: the head says no body.
            out: if empty { OutCoding::Identity } else { out },
            input_done: empty,
            done: empty,
            moved: 0,
            eof: false,
            aborted: false,
            hop_names: HopNames::default(),
        }
    }

    /// Leaves out of the trailers the fields the message's `Connection`
    /// named (RFC 9110 §7.6.1).
    pub fn dropping(mut self, hop_names: HopNames) -> BodyRelay {
        self.hop_names = hop_names;
        self
    }

    /// A body from a backend: see [`ChunkedDecoder::lenient_size_end`].
    pub fn from_backend(mut self) -> BodyRelay {
        self.source = match self.source {
            Source::Chunked(d) => Source::Chunked(d.lenient_size_end()),
            other => other,
        };
        self
    }

    /// The whole body has been written to the destination.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// All of the body has been read from the source (the destination may
    /// still need the last chunk).
    pub fn input_done(&self) -> bool {
        self.input_done
    }

    /// Body bytes relayed so far.
    pub fn moved(&self) -> u64 {
        self.moved
    }

    /// Whether more than `n` bytes of the body may still come from the
    /// source: always, for a chunked or close-delimited body that is not
    /// over, whose length is not known.
    pub fn expects_more_than(&self, n: u64) -> bool {
        match self.source {
            _ if self.input_done => false,
            Source::Empty => false,
            Source::Length(remaining) => remaining > n,
            Source::Chunked(_) | Source::UntilClose => true,
        }
    }

    /// True if the body ends only when the sender closes.
    pub fn until_close(&self) -> bool {
        matches!(self.source, Source::UntilClose)
    }

    /// Moves as much of the body from `src` to `dst` as fits. Returns
    /// whether anything moved. Bytes after the body stay in `src`.
    ///
    /// After [`BodyRelay::on_eof`], `src` holds all that will ever come:
    /// once it is relayed, a close-delimited body ends and any other
    /// unfinished body is [`BodyError::Truncated`].
    pub fn pump(&mut self, src: &mut Buf, dst: &mut Buf) -> Result<bool, BodyError> {
        let mut progress = false;
        while !self.input_done {
            if src.is_empty() {
                if !self.eof {
                    break;
                }
                if matches!(self.source, Source::UntilClose) && !self.aborted {
                    self.input_done = true;
                    break;
                }
                return Err(BodyError::Truncated);
            }
            let room = match self.out {
                OutCoding::Identity => dst.space(),
                OutCoding::Chunked => dst.space().saturating_sub(CHUNK_OVERHEAD),
            };
            if room == 0 {
                break;
            }
            match &mut self.source {
                Source::Empty => self.input_done = true,
                Source::Length(remaining) => {
                    let n = (src.len() as u64).min(*remaining).min(room as u64) as usize;
                    *remaining -= n as u64;
                    if *remaining == 0 {
                        self.input_done = true;
                    }
                    move_data(self.out, src, n, dst);
                    self.moved += n as u64;
                    progress = true;
                }
                Source::UntilClose => {
                    let n = src.len().min(room);
                    move_data(self.out, src, n, dst);
                    self.moved += n as u64;
                    progress = true;
                }
                Source::Chunked(dec) => {
                    let input = &src.data()[..src.len().min(room)];
                    let step = dec.step(input).map_err(BodyError::Chunked)?;
                    if let Some(r) = step.data.clone() {
                        let data = &input[r];
                        self.moved += data.len() as u64;
                        write_data(self.out, data, dst);
                    }
                    src.consume(step.consumed);
                    if step.done {
                        self.input_done = true;
                    }
                    if step.consumed == 0 && !step.done {
                        break;
                    }
                    progress = true;
                }
            }
        }
        if self.input_done && !self.done {
            let trailers = match &self.source {
                Source::Chunked(dec) => dec.trailers(),
                _ => b"",
            };
            self.done = match self.out {
                OutCoding::Identity => true,
                OutCoding::Chunked if dst.space() >= LAST_CHUNK.len() + trailers.len() => {
                    // The last chunk, then the trailer fields that may be
                    // forwarded (RFC 9110 §6.5.1), then the final CRLF.
                    dst.put(b"0\r\n");
                    for line in trailers.split_inclusive(|&b| b == b'\n') {
                        let name = line.split(|&b| b == b':').next().unwrap_or(b"");
                        if trailer_forwardable(name) && !self.hop_names.contains(name) {
                            dst.put(line);
                        }
                    }
                    dst.put(b"\r\n");
                    progress = true;
                    true
                }
                OutCoding::Chunked => false,
            };
        }
        Ok(progress)
    }

    /// The sender closed its side: no byte will be added to the source
    /// buffer any more. The body is not over yet, since the source may
    /// still hold bytes the destination had no room for: call
    /// [`BodyRelay::pump`] until it is done. A close-delimited body ends
    /// once the source is drained (then the last chunk is written); any
    /// other unfinished body makes `pump` fail with
    /// [`BodyError::Truncated`] once the source is drained. Calling this
    /// again is harmless. Never fails; the `Result` is kept for callers
    /// that treat truncation at EOF as an error.
    pub fn on_eof(&mut self) -> Result<(), BodyError> {
        self.eof = true;
        Ok(())
    }

    /// The sender reset the connection: as [`BodyRelay::on_eof`], except
    /// that a close-delimited body is [`BodyError::Truncated`] too once the
    /// source is drained. A reset is not the sender's way of ending a body
    /// (RFC 9112 §8: an incomplete message must not pass for a complete
    /// one), and the kernel may have dropped bytes the sender wrote.
    pub fn on_reset(&mut self) {
        self.eof = true;
        self.aborted = true;
    }
}

/// Trailer fields that must not travel in a trailer section: framing,
/// routing, connection and authentication fields, and the ones that change
/// how the content is read (RFC 9110 §6.5.1).
fn trailer_forwardable(name: &[u8]) -> bool {
    const PROHIBITED: [&[u8]; 16] = [
        b"content-length",
        b"transfer-encoding",
        b"host",
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"upgrade",
        b"authorization",
        b"proxy-authorization",
        b"proxy-authenticate",
        b"www-authenticate",
        b"content-encoding",
        b"content-type",
        b"content-range",
    ];
    // Underscore spellings (`Content_Length`) too: see
    // `aliases_with_underscores`.
    !name.is_empty()
        && !PROHIBITED
            .iter()
            .any(|p| name.eq_ignore_ascii_case(p) || super::aliases_with_underscores(name, p))
}

/// Moves the first `n` bytes of `src` to `dst`. When they are all of
/// `src`, go out as they are, and `dst` is empty and as large, the two
/// buffers trade storage instead: a large body streams without a copy.
fn move_data(out: OutCoding, src: &mut Buf, n: usize, dst: &mut Buf) {
    if n == src.len()
        && out == OutCoding::Identity
        && dst.is_empty()
        && dst.capacity() == src.capacity()
    {
        std::mem::swap(src, dst);
    } else {
        write_data(out, &src.data()[..n], dst);
        src.consume(n);
    }
}

fn write_data(out: OutCoding, data: &[u8], dst: &mut Buf) {
    if data.is_empty() {
        return;
    }
    match out {
        OutCoding::Identity => dst.put(data),
        OutCoding::Chunked => {
            let mut hdr = [0u8; 20];
            let n = write_chunk_header(data.len(), &mut hdr);
            dst.put(&hdr[..n]);
            dst.put(data);
            dst.put(b"\r\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        framing: Framing,
        out: OutCoding,
        input: &[u8],
        dst_cap: usize,
        eof: bool,
    ) -> (Vec<u8>, BodyRelay, usize) {
        let mut relay = BodyRelay::new(framing, out);
        let mut src = Buf::with_capacity(input.len().max(1));
        src.put(input);
        let mut dst = Buf::with_capacity(dst_cap);
        let mut got = Vec::new();
        loop {
            let progressed = relay.pump(&mut src, &mut dst).unwrap();
            got.extend_from_slice(dst.data());
            dst.clear();
            if !progressed {
                if eof && !relay.input_done() {
                    relay.on_eof().unwrap();
                    continue;
                }
                break;
            }
        }
        (got, relay, src.len())
    }

    #[test]
    fn length_stops_at_end_of_body() {
        let (got, relay, left) = run(
            Framing::Length(5),
            OutCoding::Identity,
            b"helloGET /",
            3,
            false,
        );
        assert_eq!(got, b"hello");
        assert!(relay.is_done());
        assert_eq!(left, 5);
    }

    #[test]
    fn a_whole_buffer_of_body_trades_storage_instead_of_copying() {
        let mut relay = BodyRelay::new(Framing::Length(8), OutCoding::Identity);
        let (mut src, mut dst) = (Buf::with_capacity(8), Buf::with_capacity(8));
        src.put(b"abcd");
        let before = src.data().as_ptr();
        relay.pump(&mut src, &mut dst).unwrap();
        assert_eq!((dst.data(), src.len()), (&b"abcd"[..], 0));
        assert_eq!(dst.data().as_ptr(), before, "the bytes were copied");
        // Bytes after the body stay behind: copied, not traded.
        src.put(b"efghGET ");
        dst.clear();
        relay.pump(&mut src, &mut dst).unwrap();
        assert_eq!((dst.data(), src.data()), (&b"efgh"[..], &b"GET "[..]));
        assert!(relay.is_done());
        // A destination of another size, or not empty, is copied into.
        let mut relay = BodyRelay::new(Framing::UntilClose, OutCoding::Identity);
        let mut wide = Buf::with_capacity(16);
        src.clear();
        src.put(b"xy");
        relay.pump(&mut src, &mut wide).unwrap();
        assert_eq!(
            (wide.data(), wide.capacity(), src.capacity()),
            (&b"xy"[..], 16, 8)
        );
        src.put(b"z");
        relay.pump(&mut src, &mut wide).unwrap();
        assert_eq!(wide.data(), b"xyz");
    }

    #[test]
    fn expects_more_than_counts_what_the_source_still_owes() {
        let mut relay = BodyRelay::new(Framing::Length(10), OutCoding::Identity);
        assert!(relay.expects_more_than(9));
        assert!(!relay.expects_more_than(10));
        let mut src = Buf::with_capacity(16);
        let mut dst = Buf::with_capacity(16);
        src.put(b"12345");
        relay.pump(&mut src, &mut dst).unwrap();
        assert!(relay.expects_more_than(4) && !relay.expects_more_than(5));
        for framing in [Framing::Chunked, Framing::UntilClose] {
            assert!(BodyRelay::new(framing, OutCoding::Identity).expects_more_than(u64::MAX));
        }
        assert!(!BodyRelay::new(Framing::None, OutCoding::Identity).expects_more_than(0));
        let mut chunked = BodyRelay::new(Framing::Chunked, OutCoding::Identity);
        src.clear();
        src.put(b"0\r\n\r\n");
        chunked.pump(&mut src, &mut dst).unwrap();
        assert!(!chunked.expects_more_than(0));
    }

    #[test]
    fn chunked_to_identity_and_back() {
        let body = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\nNEXT";
        let (got, relay, left) = run(Framing::Chunked, OutCoding::Identity, body, 4, false);
        assert_eq!(got, b"hello world");
        assert!(relay.is_done());
        assert_eq!(left, 4);
        let (got, relay, _) = run(Framing::Chunked, OutCoding::Chunked, body, 64, false);
        assert!(relay.is_done());
        let (plain, _, _) = run(Framing::Chunked, OutCoding::Identity, &got, 64, false);
        assert_eq!(plain, b"hello world");
    }

    #[test]
    fn safe_trailers_are_forwarded() {
        let body = b"3\r\nabc\r\n0\r\nX-Checksum: 42\r\nContent-Length: 9\r\nHost: evil\r\n\
                     Content_Length: 9\r\nTRANSFER_encoding: chunked\r\n\r\n";
        let (got, relay, _) = run(Framing::Chunked, OutCoding::Chunked, body, 256, false);
        assert!(relay.is_done());
        assert_eq!(got, b"3\r\nabc\r\n0\r\nX-Checksum: 42\r\n\r\n");
        let (got, _, _) = run(Framing::Chunked, OutCoding::Identity, body, 256, false);
        assert_eq!(got, b"abc");
    }

    #[test]
    fn trailers_named_in_connection_are_dropped() {
        // RFC 9110 §7.6.1: trailer fields too.
        let body = b"3\r\nabc\r\n0\r\nX-Secret: s\r\nx-checksum: 42\r\n\r\n";
        let names = HopNames::of([&b"x-SECRET"[..]]);
        let mut relay = BodyRelay::new(Framing::Chunked, OutCoding::Chunked).dropping(names);
        let mut src = Buf::with_capacity(256);
        let mut dst = Buf::with_capacity(256);
        src.put(body);
        relay.pump(&mut src, &mut dst).unwrap();
        assert!(relay.is_done());
        assert_eq!(dst.data(), b"3\r\nabc\r\n0\r\nx-checksum: 42\r\n\r\n");
    }

    #[test]
    fn until_close_becomes_chunked_and_ends_on_eof() {
        let (got, relay, _) = run(Framing::UntilClose, OutCoding::Chunked, b"abc", 64, true);
        assert_eq!(got, b"3\r\nabc\r\n0\r\n\r\n");
        assert!(relay.is_done());
    }

    /// A reset is not an end: the bytes before it are relayed, then a
    /// close-delimited body is truncated, not finished with a last chunk.
    /// A framed body complete before the reset is still complete.
    #[test]
    fn a_reset_cuts_a_close_delimited_body_after_relaying_what_came() {
        let mut relay = BodyRelay::new(Framing::UntilClose, OutCoding::Chunked);
        let mut src = Buf::with_capacity(16);
        let mut dst = Buf::with_capacity(64);
        src.put(b"abc");
        relay.on_reset();
        assert_eq!(relay.pump(&mut src, &mut dst), Err(BodyError::Truncated));
        assert_eq!(dst.data(), b"3\r\nabc\r\n");
        assert!(!relay.is_done());

        let mut relay = BodyRelay::new(Framing::Length(3), OutCoding::Identity);
        let (mut src, mut dst) = (Buf::with_capacity(16), Buf::with_capacity(16));
        src.put(b"abc");
        relay.on_reset();
        assert_eq!(relay.pump(&mut src, &mut dst), Ok(true));
        assert!(relay.is_done());
    }

    #[test]
    fn truncated_length_body_is_an_error() {
        let mut relay = BodyRelay::new(Framing::Length(10), OutCoding::Identity);
        let mut src = Buf::with_capacity(16);
        let mut dst = Buf::with_capacity(16);
        src.put(b"abc");
        assert_eq!(relay.on_eof(), Ok(()));
        assert_eq!(relay.pump(&mut src, &mut dst), Err(BodyError::Truncated));
        assert_eq!(dst.data(), b"abc");
    }

    /// EOF while the destination is full: the rest of the body is still in
    /// the source and must be relayed, not dropped (close-delimited) or
    /// reported as truncated (Length, chunked). Found by the `response`
    /// fuzz harness (`tests/fuzz_regressions/response-eof-*`).
    #[test]
    fn eof_with_the_rest_still_buffered() {
        let cases: [(Framing, OutCoding, &[u8], &[u8]); 4] = [
            (
                Framing::UntilClose,
                OutCoding::Chunked,
                b"until close",
                b"until close",
            ),
            (
                Framing::UntilClose,
                OutCoding::Identity,
                b"until close",
                b"until close",
            ),
            (
                Framing::Length(11),
                OutCoding::Identity,
                b"exactly 11!",
                b"exactly 11!",
            ),
            (
                Framing::Chunked,
                OutCoding::Identity,
                b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
                b"hello world",
            ),
        ];
        for (framing, out, input, want) in cases {
            let mut relay = BodyRelay::new(framing, out);
            let mut src = Buf::with_capacity(64);
            src.put(input);
            let cap = if out == OutCoding::Chunked { 24 } else { 6 };
            let mut dst = Buf::with_capacity(cap);
            let mut got = Vec::new();
            // The destination fills before the sender's close is seen.
            relay.pump(&mut src, &mut dst).unwrap();
            assert!(!src.is_empty());
            relay.on_eof().unwrap();
            relay.on_eof().unwrap();
            while !relay.is_done() {
                got.extend_from_slice(dst.data());
                dst.clear();
                assert!(relay.pump(&mut src, &mut dst).unwrap(), "{framing:?}");
            }
            got.extend_from_slice(dst.data());
            let plain = if out == OutCoding::Chunked {
                let (plain, _, _) = run(Framing::Chunked, OutCoding::Identity, &got, 64, false);
                plain
            } else {
                got
            };
            assert_eq!(plain, want, "{framing:?} {out:?}");
            assert!(src.is_empty());
        }
    }

    #[test]
    fn empty_bodies_are_done_at_once() {
        for f in [Framing::None, Framing::Length(0)] {
            let relay = BodyRelay::new(f, OutCoding::Chunked);
            assert!(relay.is_done());
        }
    }
}
