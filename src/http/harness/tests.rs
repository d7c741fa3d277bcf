//! Smoke tests of the harnesses, and the fuzzer's findings replayed
//! (reproducers in `tests/fuzz_regressions/`).

use super::*;

/// Builds a harness input: config bytes, no split bytes, then `stream`.
fn input(cfg: &[u8], splits: &[u8], stream: &[u8]) -> Vec<u8> {
    let mut v = cfg.to_vec();
    v.push(splits.len() as u8);
    v.extend_from_slice(splits);
    v.extend_from_slice(stream);
    v
}

#[test]
fn harnesses_accept_well_formed_traffic() {
    let req = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\
GET http://h/p HTTP/1.1\r\nConnection: close, X-A\r\nX-A: 1\r\n\r\n\
PUT /c HTTP/1.1\r\nHost: y\r\nTransfer-Encoding: chunked\r\n\r\n3;e=1\r\nabc\r\n0\r\nT: v\r\n\r\n";
    for splits in [&[][..], &[0], &[2, 7, 0], &[40]] {
        for cfg in [[0, 0, 0], [1, 3, 1], [0, 255, 7]] {
            request(&input(&cfg, splits, req));
        }
    }
    let resps: [&[u8]; 4] = [
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nKeep-Alive: x\r\n\r\nuntil close",
        b"HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n",
    ];
    for resp in resps {
        for splits in [&[][..], &[0], &[3, 1]] {
            for flags in 0..8 {
                for (dst, rate) in [(0, 0), (0, 1), (255, 0), (2, 5)] {
                    response(&input(&[flags, dst, rate], splits, resp));
                }
            }
        }
    }
    for body in [
        &b"5\r\nhello\r\n0\r\n\r\n"[..],
        b"5;a\r\nhel",
        b"5 \r\n",
        b"0\r\nX:y\r\n\r\n",
    ] {
        for splits in [&[][..], &[0], &[1, 4]] {
            chunked(&input(&[], splits, body));
        }
    }
}

#[test]
fn harnesses_survive_edge_inputs() {
    request(&[]);
    response(&[]);
    chunked(&[]);
    request(&[0, 0, 0, 31]);
    response(&[0xff; 64]);
    chunked(&[0xff; 64]);
}

/// Replays a reproducer from `tests/fuzz_regressions/`.
macro_rules! replay {
    ($name:ident, $target:ident, $file:literal) => {
        #[test]
        fn $name() {
            $target(include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fuzz_regressions/",
                $file
            )));
        }
    };
}

// `GET http://h?p` was forwarded as `GET ?p` (src/http/head.rs).
replay!(
    request_absolute_form_query,
    request,
    "request-absolute-form-query.bin"
);

// EOF from the backend while the rest of the body was still buffered
// behind a full client buffer: a close-delimited body lost its tail, a
// complete Content-Length or chunked body was reported truncated
// (src/http/body.rs, `BodyRelay::on_eof`). Found by the harness on its
// first (seed) inputs, before fuzzing.
replay!(
    response_eof_close_delimited_buffered,
    response,
    "response-eof-close-delimited-buffered.bin"
);
replay!(
    response_eof_chunked_buffered,
    response,
    "response-eof-chunked-buffered.bin"
);
replay!(
    response_eof_length_buffered,
    response,
    "response-eof-length-buffered.bin"
);

// `Connection: ..., host, ...` made the Host field hop-by-hop: the request
// went to the backend without Host (src/http/head.rs, `rewrite_request`).
replay!(
    request_connection_lists_host,
    request,
    "request-connection-lists-host.bin"
);
