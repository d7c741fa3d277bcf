//! A simple, whole-input reference decoder for the chunked coding, written
//! independently of [`ChunkedDecoder`](crate::http::chunked::ChunkedDecoder)
//! (line by line over the complete input, with lookahead), used as the
//! oracle of the differential fuzz target.
//!
//! It implements the grammar documented in `src/http/chunked.rs`, with the
//! same limits. For input that ends early it decides whether what is there
//! is a viable prefix of a valid body ([`RefOutcome::Incomplete`]) or can
//! no longer become one ([`RefOutcome::Invalid`]).

use crate::http::chunked::{MAX_EXTENSION_LEN, MAX_SIZE_DIGITS, TRAILER_CAPACITY};

/// What the reference decoder makes of an input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefOutcome {
    /// A complete body: its data, the bytes it spans, its trailer lines.
    Done {
        /// Decoded body data.
        data: Vec<u8>,
        /// Bytes of the input the body spans (final CRLF included).
        consumed: usize,
        /// Trailer field lines, each with its CRLF.
        trailers: Vec<u8>,
    },
    /// A valid prefix of a body; the data decoded so far.
    Incomplete {
        /// Decoded body data so far.
        data: Vec<u8>,
    },
    /// The input can not start a valid body; the data before the error.
    Invalid {
        /// Decoded body data before the offending byte.
        data: Vec<u8>,
    },
}

fn is_hex(b: u8) -> bool {
    b.is_ascii_hexdigit()
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn is_vchar_or_obs(b: u8) -> bool {
    (0x21..=0x7e).contains(&b) || b >= 0x80
}

/// Validates the extension part of a chunk-size line (everything after
/// the hex digits, before CR): `*( BWS ";" BWS name [ BWS "=" BWS value ] )`
/// with no whitespace at the end.
fn ext_valid(ext: &[u8]) -> bool {
    let mut i = 0;
    let n = ext.len();
    let skip_ws = |i: &mut usize| {
        while *i < n && is_ws(ext[*i]) {
            *i += 1;
        }
    };
    while i < n {
        skip_ws(&mut i);
        if i >= n || ext[i] != b';' {
            return false;
        }
        i += 1;
        skip_ws(&mut i);
        let name_start = i;
        while i < n && is_tchar(ext[i]) {
            i += 1;
        }
        if i == name_start {
            return false;
        }
        // Optional `BWS "=" BWS value`.
        let mut j = i;
        skip_ws(&mut j);
        if j < n && ext[j] == b'=' {
            j += 1;
            skip_ws(&mut j);
            if j >= n {
                return false;
            }
            if ext[j] == b'"' {
                j += 1;
                loop {
                    if j >= n {
                        return false;
                    }
                    match ext[j] {
                        b'"' => {
                            j += 1;
                            break;
                        }
                        b'\\' => {
                            if j + 1 >= n {
                                return false;
                            }
                            let c = ext[j + 1];
                            if !(c == b'\t' || c == b' ' || is_vchar_or_obs(c)) {
                                return false;
                            }
                            j += 2;
                        }
                        c if c == b'\t' || c == b' ' || (is_vchar_or_obs(c) && c != b'"') => {
                            j += 1;
                        }
                        _ => return false,
                    }
                }
            } else {
                let v = j;
                while j < n && is_tchar(ext[j]) {
                    j += 1;
                }
                if j == v {
                    return false;
                }
            }
            i = j;
        } else if j < n && ext[j] == b';' {
            i = j;
        } else if j < n {
            return false;
        } else if j > i {
            // Whitespace at the end of the line.
            return false;
        }
    }
    true
}

/// Whether `ext` (no CR, no LF) can still be completed into a valid
/// extension part.
fn ext_viable(ext: &[u8]) -> bool {
    ["", "a", "\"", "=a", ";a", "a\""].iter().any(|tail| {
        let mut v = ext.to_vec();
        v.extend_from_slice(tail.as_bytes());
        ext_valid(&v)
    })
}

/// Where the end of the line starting at `at` is: `Ok(Some(cr))` for a
/// CRLF at `cr`, `Ok(None)` if the input ends before it, `Err(())` for a
/// bare LF or a CR not followed by LF. `prefix_ok` judges the line's
/// content when the input ends inside it.
fn line_end(input: &[u8], at: usize) -> Result<Option<usize>, usize> {
    let mut i = at;
    while i < input.len() {
        match input[i] {
            b'\n' => return Err(i),
            b'\r' => {
                return match input.get(i + 1) {
                    Some(b'\n') => Ok(Some(i)),
                    Some(_) => Err(i),
                    None => Ok(None),
                };
            }
            _ => i += 1,
        }
    }
    Ok(None)
}

/// Decodes a complete input in one go.
pub fn decode(input: &[u8]) -> RefOutcome {
    let mut data = Vec::new();
    let mut pos = 0;
    loop {
        // chunk-size line
        let digits = input[pos..].iter().take_while(|&&b| is_hex(b)).count();
        let significant = input[pos..pos + digits]
            .iter()
            .skip_while(|&&b| b == b'0')
            .count();
        if digits > usize::from(MAX_SIZE_DIGITS) || significant > 16 {
            return RefOutcome::Invalid { data };
        }
        if digits == 0 {
            return if pos == input.len() {
                RefOutcome::Incomplete { data }
            } else {
                RefOutcome::Invalid { data }
            };
        }
        let size = input[pos..pos + digits].iter().fold(0u64, |acc, &b| {
            (acc << 4) | u64::from((b as char).to_digit(16).unwrap() as u8)
        });
        // Sizes must fit an i64.
        if size > i64::MAX as u64 {
            return RefOutcome::Invalid { data };
        }
        let ext_at = pos + digits;
        let (ext, complete) = match line_end(input, ext_at) {
            Ok(Some(cr)) => (&input[ext_at..cr], true),
            Ok(None) => {
                let end = input.len();
                // A CR at the very end belongs to the line end.
                let e = if end > ext_at && input[end - 1] == b'\r' {
                    end - 1
                } else {
                    end
                };
                (&input[ext_at..e], false)
            }
            Err(bad) => {
                // The line is broken at `bad`; the decoder sees the bytes
                // before it first, which may already be invalid: either
                // way the body is invalid.
                let _ = bad;
                return RefOutcome::Invalid { data };
            }
        };
        if ext.len() > MAX_EXTENSION_LEN {
            return RefOutcome::Invalid { data };
        }
        if complete {
            if !ext_valid(ext) {
                return RefOutcome::Invalid { data };
            }
        } else {
            let cr_seen = ext_at + ext.len() < input.len();
            let ok = if cr_seen {
                ext_valid(ext)
            } else {
                ext_viable(ext)
            };
            return if ok {
                RefOutcome::Incomplete { data }
            } else {
                RefOutcome::Invalid { data }
            };
        }
        pos = ext_at + ext.len() + 2;
        if size == 0 {
            break;
        }
        // chunk-data CRLF
        let avail = (input.len() - pos) as u64;
        if avail < size {
            data.extend_from_slice(&input[pos..]);
            return RefOutcome::Incomplete { data };
        }
        let size = size as usize;
        data.extend_from_slice(&input[pos..pos + size]);
        pos += size;
        match (input.get(pos), input.get(pos + 1)) {
            (None, _) | (Some(b'\r'), None) => return RefOutcome::Incomplete { data },
            (Some(b'\r'), Some(b'\n')) => pos += 2,
            _ => return RefOutcome::Invalid { data },
        }
    }
    // trailer-section CRLF
    let mut trailers = Vec::new();
    loop {
        match line_end(input, pos) {
            Err(_) => return RefOutcome::Invalid { data },
            Ok(Some(cr)) if cr == pos => {
                return RefOutcome::Done {
                    data,
                    consumed: pos + 2,
                    trailers,
                };
            }
            Ok(Some(cr)) => {
                let line = &input[pos..cr];
                if !trailer_prefix_ok(line, true) {
                    return RefOutcome::Invalid { data };
                }
                trailers.extend_from_slice(&input[pos..cr + 2]);
                if trailers.len() > TRAILER_CAPACITY {
                    return RefOutcome::Invalid { data };
                }
                pos = cr + 2;
            }
            Ok(None) => {
                let end = input.len();
                let cr_seen = end > pos && input[end - 1] == b'\r';
                let line = &input[pos..if cr_seen { end - 1 } else { end }];
                if line.is_empty() {
                    return RefOutcome::Incomplete { data };
                }
                let counted = trailers.len() + line.len() + usize::from(cr_seen);
                if counted > TRAILER_CAPACITY || !trailer_prefix_ok(line, cr_seen) {
                    return RefOutcome::Invalid { data };
                }
                return RefOutcome::Incomplete { data };
            }
        }
    }
}

/// A trailer field line `name ":" value` (no CRLF); `whole` says the line
/// is complete, else only a viable prefix is required.
fn trailer_prefix_ok(line: &[u8], whole: bool) -> bool {
    let colon = line.iter().position(|&b| b == b':');
    let name_end = colon.unwrap_or(line.len());
    if !line[..name_end].iter().all(|&b| is_tchar(b)) {
        return false;
    }
    match colon {
        None => !whole,
        Some(0) => false,
        Some(c) => line[c + 1..]
            .iter()
            .all(|&b| b == b'\t' || b == b' ' || is_vchar_or_obs(b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(input: &[u8]) -> (Vec<u8>, usize) {
        match decode(input) {
            RefOutcome::Done { data, consumed, .. } => (data, consumed),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reference_decodes_the_basics() {
        assert_eq!(done(b"5\r\nhello\r\n0\r\n\r\nX"), (b"hello".to_vec(), 15));
        assert_eq!(
            done(b"1;a=b;c=\"d\\\"\" ;e\r\nx\r\n0\r\nT: v\r\n\r\n").0,
            b"x"
        );
        assert!(matches!(decode(b"5\r\nhel"), RefOutcome::Incomplete { .. }));
        assert!(matches!(decode(b"5 ;"), RefOutcome::Incomplete { .. }));
        assert!(matches!(decode(b"5 \r"), RefOutcome::Invalid { .. }));
        assert!(matches!(decode(b"5;a \r\n"), RefOutcome::Invalid { .. }));
        assert!(matches!(decode(b"5\nhello"), RefOutcome::Invalid { .. }));
        assert!(matches!(decode(b"0\r\nT\r\n"), RefOutcome::Invalid { .. }));
        // Leading zeros are not significant digits.
        assert_eq!(
            done(b"00000000000000005\r\nhello\r\n000000000000000000\r\n\r\n").0,
            b"hello"
        );
        assert!(matches!(
            decode(b"010000000000000000\r\nx"),
            RefOutcome::Invalid { .. }
        ));
    }
}
