//! Escaping for the output formats: Prometheus label values, JSON strings,
//! HTML text and log fields.

use std::io::Write;

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";
const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";

/// A Prometheus label value, without the quotes: `\`, `"` and newline are
/// escaped as the exposition format requires.
pub(super) fn label_value(out: &mut Vec<u8>, s: &str) {
    for &b in s.as_bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            _ => out.push(b),
        }
    }
}

/// A JSON string, quotes included. Any byte that is not printable ASCII is
/// written as `\u00NN` (so bytes that are not UTF-8 come out as the
/// Latin-1 character of the same value and the output is always ASCII);
/// `"` and `\` are backslash-escaped.
pub(super) fn json_str(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    for &b in bytes {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x20..=0x7e => out.push(b),
            _ => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX_LOWER[usize::from(b >> 4)],
                HEX_LOWER[usize::from(b & 15)],
            ]),
        }
    }
    out.push(b'"');
}

/// A log field: printable ASCII as is except `"` and `\`, which like every
/// control or non-ASCII byte become `\xNN` (nginx's escaping), so a client
/// can neither end a quoted field nor start a new line.
pub(super) fn log_field(out: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        match b {
            b'"' | b'\\' => hex_byte(out, b),
            0x20..=0x7e => out.push(b),
            _ => hex_byte(out, b),
        }
    }
}

fn hex_byte(out: &mut Vec<u8>, b: u8) {
    out.extend_from_slice(&[
        b'\\',
        b'x',
        HEX_UPPER[usize::from(b >> 4)],
        HEX_UPPER[usize::from(b & 15)],
    ]);
}

/// HTML text or attribute value: `&`, `<`, `>`, `"` and `'` become
/// character references.
pub(super) fn html(out: &mut Vec<u8>, s: &str) {
    for &b in s.as_bytes() {
        match b {
            b'&' => out.extend_from_slice(b"&amp;"),
            b'<' => out.extend_from_slice(b"&lt;"),
            b'>' => out.extend_from_slice(b"&gt;"),
            b'"' => out.extend_from_slice(b"&quot;"),
            b'\'' => out.extend_from_slice(b"&#39;"),
            _ => out.push(b),
        }
    }
}

/// `v` with `decimals` digits after the point, or `null` when it is not
/// finite (for JSON).
pub(super) fn json_f64(out: &mut Vec<u8>, v: f64, decimals: usize) {
    if v.is_finite() {
        // Writing to a Vec cannot fail.
        let _ = write!(out, "{v:.decimals$}");
    } else {
        out.extend_from_slice(b"null");
    }
}

/// A duration of `micros` microseconds as seconds with six decimals.
pub(super) fn seconds_from_micros(out: &mut Vec<u8>, micros: u64) {
    let _ = write!(out, "{}.{:06}", micros / 1_000_000, micros % 1_000_000);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(f: impl Fn(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn label_values() {
        assert_eq!(run(|o| label_value(o, "a\\b\"c\nd é")), "a\\\\b\\\"c\\nd é");
    }

    #[test]
    fn json_strings() {
        assert_eq!(
            run(|o| json_str(o, b"a\"b\\c\n\x00\x1f\x7f\xc3\xa9 ~")),
            "\"a\\\"b\\\\c\\u000a\\u0000\\u001f\\u007f\\u00c3\\u00a9 ~\""
        );
        assert_eq!(run(|o| json_str(o, b"")), "\"\"");
    }

    #[test]
    fn log_fields() {
        assert_eq!(
            run(|o| log_field(o, b"GET /a\"b\\c\r\n127.0.0.1 - x\xff\x7f ok")),
            "GET /a\\x22b\\x5Cc\\x0D\\x0A127.0.0.1 - x\\xFF\\x7F ok"
        );
    }

    #[test]
    fn html_text() {
        assert_eq!(
            run(|o| html(o, "<a href=\"x\">'&'</a>")),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(run(|o| json_f64(o, 1.23456, 3)), "1.235");
        assert_eq!(run(|o| json_f64(o, f64::NAN, 3)), "null");
        assert_eq!(run(|o| json_f64(o, f64::INFINITY, 3)), "null");
        assert_eq!(run(|o| seconds_from_micros(o, 0)), "0.000000");
        assert_eq!(run(|o| seconds_from_micros(o, 12_000_345)), "12.000345");
    }
}
