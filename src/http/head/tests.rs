use super::*;

const INFO: ForwardInfo<'static> = ForwardInfo {
    client_ip: b"10.0.0.9",
    default_host: "backend:80",
    forwarded: false,
};

fn req(raw: &str) -> Result<(RequestHead, String), HeadError> {
    let mut scan = HeadScan::default();
    let len = scan.find_end(raw.as_bytes()).expect("complete head");
    let mut out = Buf::with_capacity(64 * 1024);
    let head = rewrite_request(&raw.as_bytes()[..len], &INFO, &mut out)?;
    Ok((head, String::from_utf8(out.data().to_vec()).unwrap()))
}

fn resp(raw: &str, ctx: RequestContext) -> Result<(ResponseHead, String), HeadError> {
    let mut scan = HeadScan::default();
    let len = scan.find_end(raw.as_bytes()).expect("complete head");
    let mut out = Buf::with_capacity(64 * 1024);
    let head = rewrite_response(&raw.as_bytes()[..len], &ctx, &mut out)?;
    Ok((head, String::from_utf8(out.data().to_vec()).unwrap()))
}

const CTX11: RequestContext = RequestContext {
    head_request: false,
    client_version: Version::Http11,
    client_keep_alive: true,
    upgrade: None,
    body_pending: false,
    date: None,
};
const CTX10: RequestContext = RequestContext {
    head_request: false,
    client_version: Version::Http10,
    client_keep_alive: false,
    upgrade: None,
    body_pending: false,
    date: None,
};

#[test]
fn simple_get_is_forwarded_with_host_and_xff() {
    let (h, out) = req("GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n").unwrap();
    assert_eq!(h.method, Method::Get);
    assert_eq!(h.framing, Framing::None);
    assert!(h.keep_alive);
    assert_eq!(
        out,
        "GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\nX-Forwarded-For: 10.0.0.9\r\n\
         Via: 1.1 ekilibri\r\n\r\n"
    );
}

#[test]
fn hop_by_hop_fields_are_dropped() {
    let (h, out) = req(
        "GET / HTTP/1.1\r\nHost: h\r\nConnection: close, X-Secret\r\nX-Secret: 1\r\nKeep-Alive: 5\r\n\
         Proxy-Connection: x\r\nTE: gzip\r\nUpgrade: websocket\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n",
    )
    .unwrap();
    assert!(!h.keep_alive);
    assert_eq!(
        out,
        "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.2.3.4, 10.0.0.9\r\nVia: 1.1 ekilibri\r\n\r\n"
    );
}

#[test]
fn bodies_are_framed() {
    let (h, out) = req("POST /e HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\n").unwrap();
    assert_eq!(h.framing, Framing::Length(5));
    assert!(out.contains("Content-Length: 5\r\n"));
    let (h, out) =
        req("POST /e HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n").unwrap();
    assert_eq!(h.framing, Framing::Chunked);
    assert!(out.contains("Transfer-Encoding: chunked\r\n"));
    let (h, out) = req("POST /e HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n").unwrap();
    assert_eq!(h.framing, Framing::None);
    assert!(out.contains("Content-Length: 0\r\n"));
}

#[test]
fn content_length_leading_zeros_are_not_significant() {
    // 20 digits, value 5 (nginx and HAProxy accept it); any number of zeros.
    assert_eq!(parse_content_length(b"00000000000000000005"), Ok(5));
    assert_eq!(parse_content_length(&[b'0'; 1000]), Ok(0));
    assert_eq!(parse_content_length(b"0"), Ok(0));
    assert_eq!(
        parse_content_length(b"0009223372036854775807"),
        Ok(i64::MAX as u64)
    );
    // Folding compares values: `5` and `005` are the same length.
    assert_eq!(parse_content_length(b"5, 005"), Ok(5));
    assert_eq!(
        parse_content_length(b"005, 6"),
        Err(HeadError::Malformed("conflicting Content-Length"))
    );
    for bad in [
        &b"0009223372036854775808"[..],
        b"0099999999999999999999",
        b"00+5",
        b"+005",
        b"-0",
        b"00 5",
        b"0x5",
        b"005a",
        b"",
        b"0, ",
    ] {
        assert_eq!(
            parse_content_length(bad),
            Err(HeadError::Malformed("invalid Content-Length")),
            "{bad:?}"
        );
    }
}

#[test]
fn content_length_is_forwarded_without_leading_zeros() {
    let (h, out) =
        req("POST /e HTTP/1.1\r\nHost: h\r\nContent-Length: 00000000000000000005\r\n\r\n").unwrap();
    assert_eq!(h.framing, Framing::Length(5));
    assert!(out.contains("\r\nContent-Length: 5\r\n"), "{out}");
    let (h, out) =
        req("POST /e HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 005\r\n\r\n")
            .unwrap();
    assert_eq!(h.framing, Framing::Length(5));
    assert_eq!(out.matches("Content-Length").count(), 1, "{out}");
    assert!(
        req("POST /e HTTP/1.1\r\nHost: h\r\nContent-Length: 005\r\nContent-Length: 006\r\n\r\n")
            .is_err()
    );
    let (h, out) = resp(
        "HTTP/1.1 200 OK\r\nContent-Length: 00000000000000000003\r\n\r\n",
        CTX11,
    )
    .unwrap();
    assert_eq!(h.framing, Framing::Length(3));
    assert!(out.contains("\r\nContent-Length: 3\r\n"), "{out}");
}

#[test]
fn smuggling_shapes_are_rejected() {
    for raw in [
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 6\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9223372036854775808\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n",
        "GET / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "GET nothing HTTP/1.1\r\nHost: a\r\n\r\n",
    ] {
        let e = req(raw).unwrap_err();
        assert_eq!(e.status(), 400, "{raw:?} gave {e:?}");
    }
}

#[test]
fn versions_and_methods() {
    assert_eq!(
        req("GET / HTTP/2.0\r\nHost: h\r\n\r\n")
            .unwrap_err()
            .status(),
        505
    );
    assert_eq!(
        req("CONNECT h:443 HTTP/1.1\r\nHost: h\r\n\r\n")
            .unwrap_err()
            .status(),
        501
    );
    let (h, out) = req("GET / HTTP/1.0\r\n\r\n").unwrap();
    assert_eq!(h.version, Version::Http10);
    assert!(!h.keep_alive);
    assert!(
        out.starts_with("GET / HTTP/1.1\r\nHost: backend:80\r\n"),
        "{out}"
    );
    let (h, _) = req("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").unwrap();
    assert!(h.keep_alive);
}

#[test]
fn absolute_form_becomes_origin_form() {
    let (_, out) = req("GET http://example.com:81/x?y HTTP/1.1\r\nHost: other\r\n\r\n").unwrap();
    assert!(
        out.starts_with("GET /x?y HTTP/1.1\r\nHost: example.com:81\r\n"),
        "{out}"
    );
    assert!(!out.contains("other"));
    // The scheme in any case (RFC 3986 §3.1); other schemes are refused.
    let (_, out) = req("GET Http://example.com/x HTTP/1.1\r\nHost: e\r\n\r\n").unwrap();
    assert!(
        out.starts_with("GET /x HTTP/1.1\r\nHost: example.com\r\n"),
        "{out}"
    );
    assert!(req("GET ftp://example.com/x HTTP/1.1\r\nHost: e\r\n\r\n").is_err());
}

/// The fuzzer's `GET http://h?p` was forwarded as `GET ?p`, which is no
/// valid request target (`tests/fuzz_regressions/request-absolute-form-query.bin`).
#[test]
fn absolute_form_with_a_query_and_no_path() {
    let (_, out) = req("GET http://h?p HTTP/1.1\r\n\r\n").unwrap();
    assert!(out.starts_with("GET /?p HTTP/1.1\r\nHost: h\r\n"), "{out}");
    let (_, out) = req("GET http://h HTTP/1.1\r\n\r\n").unwrap();
    assert!(out.starts_with("GET / HTTP/1.1\r\nHost: h\r\n"), "{out}");
    let (_, out) = req("OPTIONS http://h:8 HTTP/1.1\r\n\r\n").unwrap();
    assert!(
        out.starts_with("OPTIONS * HTTP/1.1\r\nHost: h:8\r\n"),
        "{out}"
    );
    let (_, out) = req("OPTIONS http://h/x HTTP/1.1\r\n\r\n").unwrap();
    assert!(out.starts_with("OPTIONS /x HTTP/1.1\r\n"), "{out}");
}

/// `Connection: host` dropped the Host field, leaving a request without
/// one (`tests/fuzz_regressions/request-connection-lists-host.bin`).
#[test]
fn connection_listing_host_keeps_host() {
    let (_, out) =
        req("GET / HTTP/1.1\r\nHost: a\r\nConnection: host, x-b\r\nX-B: 1\r\n\r\n").unwrap();
    assert_eq!(out.matches("Host: a\r\n").count(), 1, "{out}");
    assert!(!out.contains("X-B"), "{out}");
    let (_, out) = req("GET http://h/ HTTP/1.1\r\nHost: a\r\nConnection: host\r\n\r\n").unwrap();
    assert!(
        out.contains("Host: h\r\n") && !out.contains("Host: a"),
        "{out}"
    );
}

#[test]
fn limits() {
    let long = format!("GET /{} HTTP/1.1\r\n", "a".repeat(MAX_REQUEST_LINE));
    assert_eq!(
        check_partial_request(long.as_bytes()),
        Err(HeadError::UriTooLong)
    );
    let big = format!("GET / HTTP/1.1\r\nX: {}\r\n", "a".repeat(MAX_HEADER_BYTES));
    assert_eq!(
        check_partial_request(big.as_bytes()),
        Err(HeadError::HeadersTooLarge)
    );
    let mut many = String::from("GET / HTTP/1.1\r\nHost: h\r\n");
    for i in 0..MAX_HEADERS {
        many.push_str(&format!("X-{i}: v\r\n"));
    }
    many.push_str("\r\n");
    assert_eq!(req(&many).unwrap_err(), HeadError::HeadersTooLarge);
}

#[test]
fn head_end_is_found_across_splits_without_rescanning() {
    let raw = b"GET / HTTP/1.1\r\nHost: h\r\n\r\nNEXT";
    for cut in 0..raw.len() {
        let mut scan = HeadScan::default();
        let first = scan.find_end(&raw[..cut]);
        let found = first.or_else(|| scan.find_end(raw));
        assert_eq!(found, Some(raw.len() - 4), "cut at {cut}");
    }
    let mut scan = HeadScan::default();
    for n in 1..20 {
        assert_eq!(scan.find_end(&raw[..n]), None);
        assert_eq!(scan.scanned, n);
    }
}

#[test]
fn response_framing_and_rewrite() {
    let (h, out) = resp(
        "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\n",
        CTX11,
    )
    .unwrap();
    assert_eq!(h.framing, Framing::Length(3));
    assert!(h.backend_reusable && h.client_keep_alive);
    assert_eq!(
        out,
        "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nVia: 1.1 ekilibri\r\n\r\n"
    );

    let (h, out) = resp(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        CTX10,
    )
    .unwrap();
    assert_eq!(
        (h.framing, h.out, h.client_keep_alive),
        (Framing::Chunked, OutCoding::Identity, false)
    );
    assert!(!out.contains("chunked") && out.contains("Connection: close\r\n"));

    let (h, out) = resp("HTTP/1.0 200 OK\r\n\r\n", CTX11).unwrap();
    assert_eq!(
        (h.framing, h.out, h.backend_reusable),
        (Framing::UntilClose, OutCoding::Chunked, false)
    );
    assert!(out.contains("Transfer-Encoding: chunked\r\n"));

    let (h, _) = resp(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n",
        CTX11,
    )
    .unwrap();
    assert_eq!(h.framing, Framing::Chunked);

    let head_ctx = RequestContext {
        head_request: true,
        ..CTX11
    };
    let (h, out) = resp("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", head_ctx).unwrap();
    assert_eq!(h.framing, Framing::None);
    assert!(out.contains("Content-Length: 1000\r\n"));

    for status in ["204 No Content", "304 Not Modified"] {
        let (h, _) = resp(&format!("HTTP/1.1 {status}\r\n\r\n"), CTX11).unwrap();
        assert_eq!(h.framing, Framing::None);
    }
    let (h, out) = resp("HTTP/1.1 100 Continue\r\n\r\n", CTX11).unwrap();
    assert_eq!((h.status, h.framing), (100, Framing::None));
    assert_eq!(out, "HTTP/1.1 100 Continue\r\nVia: 1.1 ekilibri\r\n\r\n");
    let (_, out) = resp("HTTP/1.1 100 Continue\r\n\r\n", CTX10).unwrap();
    assert_eq!(out, "");
}

#[test]
fn bad_responses_are_errors() {
    for raw in [
        "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
        "garbage\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",
    ] {
        assert!(resp(raw, CTX11).is_err(), "{raw:?}");
    }
}

#[test]
fn forwarded_fields_when_enabled() {
    let mut scan = HeadScan::default();
    let raw =
        b"GET / HTTP/1.1\r\nHost: h\r\nForwarded: for=1.2.3.4\r\nX-Forwarded-Proto: https\r\n\r\n";
    let len = scan.find_end(raw).unwrap();
    let mut out = Buf::with_capacity(4096);
    let info = ForwardInfo {
        client_ip: b"::1",
        default_host: "b",
        forwarded: true,
    };
    rewrite_request(&raw[..len], &info, &mut out).unwrap();
    let out = String::from_utf8(out.data().to_vec()).unwrap();
    assert!(out.contains("X-Forwarded-For: ::1\r\n"), "{out}");
    assert!(out.contains("X-Forwarded-Proto: http\r\n"), "{out}");
    assert!(!out.contains("https"), "{out}");
    assert!(
        out.contains("Forwarded: for=1.2.3.4, for=\"[::1]\";proto=http\r\n"),
        "{out}"
    );
}

#[test]
fn upgrade_is_offered_and_101_accepted_only_when_offered() {
    let (h, out) =
        req("GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
            .unwrap();
    assert_eq!(h.upgrade, Some(Protocols::of(b"websocket")));
    assert!(
        out.contains("Upgrade: websocket\r\nConnection: upgrade\r\n"),
        "{out}"
    );
    let (h, out) = req("GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n").unwrap();
    assert_eq!(h.upgrade, None);
    assert!(!out.contains("pgrade"), "{out}");

    let raw =
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
    assert!(resp(raw, CTX11).is_err());
    let ctx = RequestContext {
        upgrade: Some(Protocols::of(b"h2c, WebSocket/13")),
        ..CTX11
    };
    let (h, out) = resp(raw, ctx).unwrap();
    assert_eq!(
        (h.status, h.framing, h.backend_reusable),
        (101, Framing::None, false)
    );
    assert!(
        out.contains("Upgrade: websocket\r\nConnection: upgrade\r\n\r\n"),
        "{out}"
    );
    // RFC 9110 §7.8: only to a protocol the client named.
    let only_h2c = RequestContext {
        upgrade: Some(Protocols::of(b"h2c")),
        ..CTX11
    };
    assert_eq!(
        resp(raw, only_h2c).unwrap_err(),
        HeadError::Malformed("unexpected 101")
    );
    let no_name = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: ,\r\nConnection: Upgrade\r\n\r\n";
    assert!(resp(no_name, ctx).is_err());
}

#[test]
fn upgrade_lines_make_one_list() {
    // RFC 9110 §5.3: several Upgrade lines are one list, in order.
    let (h, out) = req(
        "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\
         Upgrade: websocket\r\n\r\n",
    )
    .unwrap();
    assert_eq!(h.upgrade, Some(Protocols::of(b"h2c, websocket")));
    assert!(
        out.contains("Upgrade: h2c\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"),
        "{out}"
    );
    let ctx = RequestContext {
        upgrade: h.upgrade,
        ..CTX11
    };
    let two = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nUpgrade: h2c\r\n\
               Connection: Upgrade\r\n\r\n";
    let (_, out) = resp(two, ctx).unwrap();
    assert!(
        out.contains("Upgrade: websocket\r\nUpgrade: h2c\r\n"),
        "{out}"
    );
    // Every line must name offered protocols only.
    let other = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nUpgrade: foo\r\n\
                 Connection: Upgrade\r\n\r\n";
    assert!(resp(other, ctx).is_err());
}

#[test]
fn transfer_codings_are_normalised() {
    let (_, out) =
        req("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked,\r\n\r\n").unwrap();
    assert!(out.contains("Transfer-Encoding: chunked\r\n"), "{out}");
    // Any coding before chunked in a request: 501 (RFC 9112 §6.1).
    for te in ["gzip ,, chunked", "foo, chunked", "identity, chunked"] {
        assert_eq!(
            req(&format!(
                "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: {te}\r\n\r\n"
            ))
            .unwrap_err(),
            HeadError::NotImplemented,
            "{te}"
        );
    }
    let (_, out) = resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", CTX11).unwrap();
    assert!(
        out.contains("Transfer-Encoding: gzip, chunked\r\n"),
        "{out}"
    );
}

#[test]
fn identity_is_no_transfer_coding() {
    // RFC 2616's `identity` (removed by RFC 7230) means no coding: the body
    // is read until close and re-chunked, labelled plain `chunked`.
    for (raw, want) in [
        (
            "Transfer-Encoding: identity",
            "Transfer-Encoding: chunked\r\n",
        ),
        (
            "Transfer-Encoding: gzip, Identity",
            "Transfer-Encoding: gzip, chunked\r\n",
        ),
        (
            "Transfer-Encoding: identity, chunked",
            "Transfer-Encoding: chunked\r\n",
        ),
    ] {
        let (h, out) = resp(&format!("HTTP/1.1 200 OK\r\n{raw}\r\n\r\n"), CTX11).unwrap();
        assert!(out.contains(want), "{raw}: {out}");
        assert!(
            !out.to_ascii_lowercase().contains("identity"),
            "{raw}: {out}"
        );
        assert_eq!(h.out, OutCoding::Chunked, "{raw}");
    }
    // An HTTP/1.0 client gets the plain body, no Transfer-Encoding.
    let (h, out) = resp(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\n",
        CTX10,
    )
    .unwrap();
    assert_eq!(h.out, OutCoding::Identity);
    assert!(
        !out.to_ascii_lowercase().contains("transfer-encoding"),
        "{out}"
    );
}

/// Byte strings over an alphabet that stresses the word-at-a-time scans
/// (CR, LF, their neighbours with one bit flipped, high bytes), from a
/// fixed-seed generator.
fn scan_inputs() -> Vec<Vec<u8>> {
    const ALPHABET: &[u8] = b"\r\n\r\na\x0b\x0c\x8a\x8d\x09\x01\x00 ";
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    (0..20_000)
        .map(|i| {
            let len = i % 41;
            (0..len)
                .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
                .collect()
        })
        .collect()
}

#[test]
fn word_scans_agree_with_byte_by_byte_ones() {
    for input in scan_inputs() {
        assert_eq!(
            memchr(b'\n', &input),
            input.iter().position(|&b| b == b'\n'),
            "{input:?}"
        );
        let naive_end = (0..input.len()).find(|&nl| {
            input[nl] == b'\n'
                && nl >= 1
                && (input[nl - 1] == b'\n' || (nl >= 2 && &input[nl - 2..nl] == b"\n\r"))
        });
        assert_eq!(
            HeadScan::default().find_end(&input),
            naive_end.map(|nl| nl + 1),
            "{input:?}"
        );
        let naive_ok = input.iter().enumerate().all(|(i, &b)| match b {
            b'\n' => i > 0 && input[i - 1] == b'\r',
            b'\r' => input.get(i + 1) == Some(&b'\n'),
            _ => true,
        });
        assert_eq!(check_line_endings(&input).is_ok(), naive_ok, "{input:?}");
    }
}

#[test]
fn find_end_resumes_where_it_stopped() {
    let head = b"GET / HTTP/1.1\r\nHost: a\r\nX-Long-Field-Name: some value\r\n\r\n";
    for cut in 0..head.len() {
        let mut scan = HeadScan::default();
        assert_eq!(scan.find_end(&head[..cut]), None, "cut {cut}");
        assert_eq!(scan.find_end(head), Some(head.len()), "cut {cut}");
    }
}

#[test]
fn a_higher_http1_minor_version_is_handled_as_http11() {
    // RFC 9110 §2.5.
    let (h, out) = req("GET /x HTTP/1.2\r\nHost: h\r\n\r\n").unwrap();
    assert_eq!((h.version, h.keep_alive), (Version::Http11, true));
    assert!(out.starts_with("GET /x HTTP/1.1\r\nHost: h\r\n"), "{out}");
    assert!(req("GET /x HTTP/1.9\r\nHost: h\r\n\r\n").is_ok());
    for other in ["HTTP/2.0", "HTTP/0.9", "HTTP/1.10", "HTTP/3.1"] {
        let raw = format!("GET /x {other}\r\nHost: h\r\n\r\n");
        assert!(req(&raw).is_err(), "{other}");
    }
}

#[test]
fn a_request_line_without_a_version_is_refused_when_it_ends() {
    // HTTP/0.9 style: 400 at once, not a wait for a head that never ends.
    for partial in [
        &b"GET /x\r\n"[..],
        b"GET /x\n",
        b"\r\nGET\r\n",
        b"GET / FOO\r\nHost: a\r\n",
    ] {
        assert_eq!(
            check_partial_request(partial),
            Err(HeadError::Malformed("no HTTP version in the request line")),
            "{partial:?}"
        );
    }
    for partial in [
        &b"GET / HTTP/1.1\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: a\r\n",
        b"\r\nGET / HTTP/1.1\r\n",
        b"GET /x",
        b"PRI * HTTP/2.0\r\n",
    ] {
        assert_eq!(check_partial_request(partial), Ok(()), "{partial:?}");
    }
}

#[test]
fn field_names_match_in_any_case_and_only_exactly() {
    assert_eq!(Field::of(b"Content-Length"), Field::ContentLength);
    assert_eq!(Field::of(b"CONTENT-LENGTH"), Field::ContentLength);
    assert_eq!(Field::of(b"x-FORWARDED-for"), Field::XForwardedFor);
    assert_eq!(Field::of(b"Transfer-Encoding"), Field::TransferEncoding);
    assert_eq!(Field::of(b"X-Forwarded-Proto"), Field::XForwardedProto);
    assert_eq!(Field::of(b"tE"), Field::Te);
    assert_eq!(Field::of(b"Content-Lengt_"), Field::Other);
    assert_eq!(Field::of(b"Content-Lengthh"), Field::Other);
    // The underscore spelling is classified apart, to be dropped.
    assert_eq!(Field::of(b"Transfer_Encoding"), Field::Alias);
    assert_eq!(Field::of(b"Content_Lengt_"), Field::Other);
    assert_eq!(Field::of(b"Content-Type"), Field::Other);
    assert_eq!(Field::of(b"Hosts"), Field::Other);
}

#[test]
fn canonical_lines_are_copied_and_others_normalised() {
    // Extra whitespace around a value is not forwarded; the other fields
    // keep their bytes and order.
    let (_, out) = req(
        "GET /a HTTP/1.1\r\nHost: h\r\nA:1\r\nB:   2  \r\nC: 3\r\nConnection: x\r\nX: 4\r\nD: 5\r\n\r\n",
    )
    .unwrap();
    assert_eq!(
        out,
        "GET /a HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 5\r\n\
         X-Forwarded-For: 10.0.0.9\r\nVia: 1.1 ekilibri\r\n\r\n"
    );
}

#[test]
fn a_transfer_coding_an_http10_client_cannot_receive_is_refused() {
    // RFC 9112 §6.1: no Transfer-Encoding to an HTTP/1.0 client; the gzip
    // coding cannot be dropped either, so the response is refused (502).
    for raw in [
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    ] {
        assert_eq!(
            resp(raw, CTX10).unwrap_err(),
            HeadError::Undeliverable,
            "{raw:?}"
        );
    }
    // Plain chunked is decoded for it and sent close-delimited.
    let (h, out) = resp(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        CTX10,
    )
    .unwrap();
    assert_eq!(h.out, OutCoding::Identity);
    assert!(
        !out.to_ascii_lowercase().contains("transfer-encoding"),
        "{out}"
    );
}

#[test]
fn an_error_before_the_whole_request_body_announces_the_close() {
    let pending = RequestContext {
        body_pending: true,
        ..CTX11
    };
    let (h, out) = resp(
        "HTTP/1.1 413 Too Large\r\nContent-Length: 0\r\n\r\n",
        pending,
    )
    .unwrap();
    assert!(!h.client_keep_alive);
    assert!(out.contains("Connection: close\r\n"), "{out}");
    // A success streamed while the body still arrives (an echo) keeps the
    // connection.
    let (h, out) = resp("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", pending).unwrap();
    assert!(h.client_keep_alive);
    assert!(!out.contains("Connection:"), "{out}");
}

#[test]
fn forwarded_fields_named_in_connection_are_dropped() {
    // With forwarded_headers off, Forwarded and X-Forwarded-Proto pass
    // through, unless Connection names them (RFC 9110 §7.6.1).
    for field in ["Forwarded: for=1.2.3.4", "X-Forwarded-Proto: https"] {
        let name = field.split(':').next().unwrap();
        let (_, out) = req(&format!("GET / HTTP/1.1\r\nHost: h\r\n{field}\r\n\r\n")).unwrap();
        assert!(out.contains(field), "{out}");
        let (_, out) = req(&format!(
            "GET / HTTP/1.1\r\nHost: h\r\nConnection: {name}\r\n{field}\r\n\r\n"
        ))
        .unwrap();
        assert!(!out.contains(field), "{out}");
    }
}

#[test]
fn a_head_that_grows_when_rewritten_fits_the_output() {
    // 100 fields written `name:value` with bare LF (accepted from
    // backends) each grow by two bytes, beyond the fixed slack; the output
    // buffer must grow, not panic.
    // Close-delimited, to a client that closes: Via, Transfer-Encoding and
    // Connection are added too.
    let mut raw = String::from("HTTP/1.1 200\n");
    for i in 0..100 {
        raw.push_str(&format!("X{i:02}:{}\n", "v".repeat(150)));
    }
    raw.push('\n');
    let closing = RequestContext {
        client_keep_alive: false,
        ..CTX11
    };
    let mut out = Buf::with_capacity(raw.len());
    let head = rewrite_response(raw.as_bytes(), &closing, &mut out).unwrap();
    assert_eq!(head.len, raw.len());
    assert!(out.len() > raw.len() + 256, "{}", out.len());
    let mut out = Buf::with_capacity(1024);
    let mut big = String::from("GET / HTTP/1.1\r\nHost: h\r\n");
    for i in 0..99 {
        big.push_str(&format!("X{i:02}:{}\r\n", "v".repeat(150)));
    }
    big.push_str("\r\n");
    let mut scan = HeadScan::default();
    let len = scan.find_end(big.as_bytes()).unwrap();
    rewrite_request(&big.as_bytes()[..len], &INFO, &mut out).unwrap();
}

#[test]
fn host_values() {
    for good in [
        "example.com",
        "example.com:8080",
        "127.0.0.1:18083",
        "[::1]",
        "[2001:db8::1]:443",
        "a-b_c~d%41",
        "",
        ":80",
        "h:",
    ] {
        assert!(super::valid_host(good.as_bytes()), "{good:?} rejected");
    }
    for bad in [
        "a b",
        "user@host",
        "host/path",
        "host:80a",
        "host:80:81",
        "h,h",
        "[::1",
        "[]",
        "[::g]",
        "[::1]x",
        "[::1]:8a",
        "h\u{e9}",
    ] {
        assert!(!super::valid_host(bad.as_bytes()), "{bad:?} accepted");
    }
}

/// `X_Forwarded_For` reaches CGI-style backends as the same variable as
/// `X-Forwarded-For`: it is handled as that field (folded into ekilibri's
/// chain), never passed on under its own name.
#[test]
fn underscore_spellings_of_framing_fields_are_dropped() {
    // A backend that reads `_` as `-` would otherwise see both framings.
    let (h, out) = req("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\
         Transfer_Encoding: chunked\r\nkeep_alive: 1\r\nContent_Length: 9\r\n\
         Proxy_Connection: x\r\nX_Other_Field_Name: kept\r\n\r\n")
    .unwrap();
    assert_eq!(h.framing, Framing::Length(3));
    let lower = out.to_ascii_lowercase();
    for gone in [
        "transfer_encoding",
        "keep_alive",
        "content_length",
        "proxy_connection",
    ] {
        assert!(!lower.contains(gone), "{gone}: {out}");
    }
    assert!(out.contains("Content-Length: 3\r\n"), "{out}");
    assert!(out.contains("X_Other_Field_Name: kept\r\n"), "{out}");
    let (_, out) = resp(
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer_Encoding: chunked\r\n\r\n",
        CTX11,
    )
    .unwrap();
    assert!(!out.contains("Transfer_Encoding"), "{out}");
}

#[test]
fn underscored_forwarding_fields_are_not_passed_on() {
    let (_, out) = req(
        "GET / HTTP/1.1\r\nHost: h\r\nx_forwarded_for: 6.6.6.6\r\nX-Forwarded_Proto: https\r\n\
         X_Other: kept\r\n\r\n",
    )
    .unwrap();
    assert!(!out.contains("x_forwarded_for"), "{out}");
    assert!(
        out.contains("X-Forwarded-For: 6.6.6.6, 10.0.0.9\r\n"),
        "{out}"
    );
    // forwarded_headers off: X-Forwarded-Proto passes, so does its alias.
    assert!(out.contains("X-Forwarded_Proto: https\r\n"), "{out}");
    assert!(out.contains("X_Other: kept\r\n"), "{out}");
    // forwarded_headers on: the client's X-Forwarded-Proto is replaced,
    // whatever its spelling.
    let raw = b"GET / HTTP/1.1\r\nHost: h\r\nX_FORWARDED_PROTO: https\r\n\r\n";
    let mut out = Buf::with_capacity(4096);
    let info = ForwardInfo {
        forwarded: true,
        ..INFO
    };
    rewrite_request(raw, &info, &mut out).unwrap();
    let out = String::from_utf8(out.data().to_vec()).unwrap();
    assert!(!out.contains("https"), "{out}");
    assert!(out.contains("X-Forwarded-Proto: http\r\n"), "{out}");
}

#[test]
fn a_long_transfer_coding_list_is_rewritten_without_overflowing() {
    // `a,a,...` comes out as `a, a, ..., chunked`: larger than the head.
    let mut raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding:".to_vec();
    for _ in 0..6000 {
        raw.extend_from_slice(b"a,");
    }
    raw.extend_from_slice(b"a\r\n\r\n");
    let mut out = Buf::with_capacity(crate::buf::BUF_SIZE);
    let head = rewrite_response(&raw, &CTX11, &mut out).unwrap();
    assert_eq!(head.out, OutCoding::Chunked);
    let text = String::from_utf8(out.data().to_vec()).unwrap();
    let te = text
        .lines()
        .find(|l| l.starts_with("Transfer-Encoding: "))
        .unwrap();
    assert_eq!(te.matches("a, ").count(), 6001, "{}", &te[..80]);
    assert!(te.ends_with("a, chunked"));
}

#[test]
fn empty_lines_before_the_request_line_change_nothing() {
    // The limits and the version checks apply to the request line after
    // them (RFC 9112 §2.2).
    let long = format!("\r\nGET /{} HTTP/1.1\r\n", "a".repeat(MAX_REQUEST_LINE));
    assert_eq!(
        check_partial_request(long.as_bytes()),
        Err(HeadError::UriTooLong)
    );
    assert_eq!(
        req(&format!("{long}Host: h\r\n\r\n")).unwrap_err(),
        HeadError::UriTooLong
    );
    assert_eq!(
        req("\r\nGET / HTTP/2.0\r\nHost: h\r\n\r\n").unwrap_err(),
        HeadError::Version
    );
    let raw = "\r\nGET / HTTP/1.2\r\nHost: h\r\n\r\n";
    let (h, out) = req(raw).unwrap();
    assert_eq!((h.version, h.len), (Version::Http11, raw.len()));
    assert!(out.starts_with("GET / HTTP/1.1\r\nHost: h\r\n"), "{out}");
    assert_eq!(leading_empty_lines(b"\r\n\r\nGET"), 4);
    assert_eq!(leading_empty_lines(b"\r\n\rGET"), 2);
    assert_eq!(leading_empty_lines(b"\nGET"), 0);
}

#[test]
fn a_higher_http1_minor_from_the_backend_is_http11() {
    let (h, out) = resp("HTTP/1.2 200 OK\r\nContent-Length: 2\r\n\r\n", CTX11).unwrap();
    assert_eq!((h.status, h.framing), (200, Framing::Length(2)));
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(resp("HTTP/2.0 200 OK\r\n\r\n", CTX11).is_err());
}

#[test]
fn expect_named_in_connection_is_not_forwarded() {
    let (h, out) =
        req("POST / HTTP/1.1\r\nHost: h\r\nConnection: Expect\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n")
            .unwrap();
    assert!(!out.to_ascii_lowercase().contains("expect"), "{out}");
    assert!(!h.expect_continue);
    let (h, out) =
        req("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n")
            .unwrap();
    assert!(out.contains("Expect: 100-continue\r\n"), "{out}");
    assert!(h.expect_continue);
}

#[test]
fn max_forwards_is_decremented_and_stops_at_zero() {
    // RFC 9110 §7.6.2, for TRACE and OPTIONS only.
    let (h, out) = req("TRACE / HTTP/1.1\r\nHost: h\r\nMax-Forwards: 5\r\n\r\n").unwrap();
    assert!(!h.final_hop);
    assert!(
        out.contains("Max-Forwards: 4\r\n") && !out.contains("Max-Forwards: 5"),
        "{out}"
    );
    let (h, _) = req("OPTIONS * HTTP/1.1\r\nHost: h\r\nmax-forwards: 0\r\n\r\n").unwrap();
    assert!(h.final_hop);
    let (h, out) = req("GET / HTTP/1.1\r\nHost: h\r\nMax-Forwards: 0\r\n\r\n").unwrap();
    assert!(!h.final_hop);
    assert!(out.contains("Max-Forwards: 0\r\n"), "{out}");
    let (h, out) = req("TRACE / HTTP/1.1\r\nHost: h\r\nMax-Forwards: x\r\n\r\n").unwrap();
    assert!(!h.final_hop && out.contains("Max-Forwards: x\r\n"), "{out}");
    // Of two fields the smallest number counts, and one field goes on.
    let (h, _) =
        req("OPTIONS / HTTP/1.1\r\nHost: h\r\nMax-Forwards: 1\r\nMax-Forwards: 0\r\n\r\n").unwrap();
    assert!(h.final_hop);
    let (h, out) =
        req("OPTIONS / HTTP/1.1\r\nHost: h\r\nMax-Forwards: 5\r\nMax-Forwards: 2\r\n\r\n").unwrap();
    assert!(!h.final_hop);
    assert_eq!(out.matches("Max-Forwards").count(), 1, "{out}");
    assert!(out.contains("Max-Forwards: 1\r\n"), "{out}");
    let (_, out) =
        req("OPTIONS / HTTP/1.1\r\nHost: h\r\nMax-Forwards: x\r\nMax-Forwards: 1\r\n\r\n").unwrap();
    assert_eq!(out.matches("Max-Forwards").count(), 1, "{out}");
    assert!(out.contains("Max-Forwards: 0\r\n"), "{out}");
    let (_, out) =
        req("OPTIONS / HTTP/1.1\r\nHost: h\r\nMax-Forwards: x\r\nMax-Forwards: y\r\n\r\n").unwrap();
    assert_eq!(out.matches("Max-Forwards").count(), 1, "{out}");
    assert!(out.contains("Max-Forwards: x\r\n"), "{out}");
    // Leading zeros, and a number too large for 64 bits: decremented all
    // the same (the lesser of it less one and the proxy's maximum).
    let (h, out) =
        req("TRACE / HTTP/1.1\r\nHost: h\r\nMax-Forwards: 0000000000000000000000003\r\n\r\n")
            .unwrap();
    assert!(!h.final_hop && out.contains("Max-Forwards: 2\r\n"), "{out}");
    let (h, out) =
        req("TRACE / HTTP/1.1\r\nHost: h\r\nMax-Forwards: 99999999999999999999999\r\n\r\n")
            .unwrap();
    assert!(!h.final_hop, "{out}");
    assert!(
        out.contains("Max-Forwards: 9223372036854775807\r\n"),
        "{out}"
    );
    let (h, _) = req("TRACE / HTTP/1.1\r\nHost: h\r\nMax-Forwards: 000\r\n\r\n").unwrap();
    assert!(h.final_hop);
}

#[test]
fn an_http10_request_offers_no_upgrade_and_asks_for_no_trailers() {
    // RFC 9110 §7.8: a server ignores Upgrade in an HTTP/1.0 request; the
    // backend gets HTTP/1.1, so the offer must not reach it. Nor may TE:
    // trailers, which an HTTP/1.0 client cannot be sent.
    let (h, out) = req(
        "GET /ws HTTP/1.0\r\nHost: h\r\nUpgrade: websocket\r\nConnection: upgrade, TE\r\nTE: trailers\r\n\r\n",
    )
    .unwrap();
    assert!(h.upgrade.is_none());
    let lower = out.to_ascii_lowercase();
    assert!(
        !lower.contains("upgrade") && !lower.contains("te:"),
        "{out}"
    );
    let (h, out) = req(
        "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: upgrade, TE\r\nTE: trailers\r\n\r\n",
    )
    .unwrap();
    assert!(h.upgrade.is_some());
    assert!(
        out.contains("Upgrade: websocket\r\n") && out.contains("TE: trailers\r\n"),
        "{out}"
    );
}

#[test]
fn a_response_without_date_gets_the_proxys_and_one_with_date_keeps_it() {
    let ctx = RequestContext {
        date: Some(*b"Sun, 06 Nov 1994 08:49:37 GMT"),
        ..CTX11
    };
    let (_, out) = resp("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", ctx).unwrap();
    assert!(
        out.contains("\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n"),
        "{out}"
    );
    let (_, out) = resp(
        "HTTP/1.1 200 OK\r\ndate: Mon, 07 Nov 1994 00:00:00 GMT\r\nContent-Length: 0\r\n\r\n",
        ctx,
    )
    .unwrap();
    assert_eq!(out.matches("ate: ").count(), 1, "{out}");
    assert!(out.contains("date: Mon, 07 Nov 1994"), "{out}");
    // Not on an interim response: the final one gets it.
    let (_, out) = resp("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n", ctx).unwrap();
    assert!(!out.contains("Date"), "{out}");
    // A Date the backend named in Connection is dropped, and replaced.
    let (_, out) = resp(
        "HTTP/1.1 200 OK\r\nConnection: Date\r\nDate: Mon, 07 Nov 1994 00:00:00 GMT\r\nContent-Length: 0\r\n\r\n",
        ctx,
    )
    .unwrap();
    assert!(!out.contains("Mon, 07 Nov"), "{out}");
    assert!(
        out.contains("\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n"),
        "{out}"
    );
}

#[test]
fn a_reason_phrase_with_obs_text_is_passed_on() {
    // RFC 9112 §4: reason-phrase = 1*( HTAB / SP / VCHAR / obs-text ).
    let (_, out) = resp(
        "HTTP/1.1 200 Caf\u{e9} \t ok\r\nContent-Length: 0\r\n\r\n",
        CTX11,
    )
    .unwrap();
    assert!(out.starts_with("HTTP/1.1 200 Caf\u{e9} \t ok\r\n"), "{out}");
    let (_, out) = resp(
        "HTTP/1.0 404 Nicht gef\u{fc}hrt\r\nContent-Length: 0\r\n\r\n",
        CTX11,
    )
    .unwrap();
    assert!(
        out.starts_with("HTTP/1.1 404 Nicht gef\u{fc}hrt\r\n"),
        "{out}"
    );
    let (_, out) = resp("HTTP/1.1 204\r\n\r\n", CTX11).unwrap();
    assert!(out.starts_with("HTTP/1.1 204 \r\n"), "{out}");
}

#[test]
fn a_426_keeps_its_upgrade_field() {
    // RFC 9110 §15.5.22: a 426 must say which protocol is required.
    let (_, out) = resp(
        "HTTP/1.1 426 Upgrade Required\r\nUpgrade: TLS/1.2, HTTP/1.1\r\nConnection: Upgrade\r\nContent-Length: 0\r\n\r\n",
        CTX11,
    )
    .unwrap();
    assert!(out.contains("\r\nUpgrade: TLS/1.2, HTTP/1.1\r\n"), "{out}");
    assert!(out.contains("\r\nConnection: upgrade\r\n"), "{out}");
    // Any other status loses it, as a hop-by-hop field.
    let (_, out) = resp(
        "HTTP/1.1 200 OK\r\nUpgrade: h2c\r\nConnection: Upgrade\r\nContent-Length: 0\r\n\r\n",
        CTX11,
    )
    .unwrap();
    assert!(!out.to_ascii_lowercase().contains("upgrade"), "{out}");
}

#[test]
fn via_names_the_version_received() {
    let (_, out) = req("GET / HTTP/1.0\r\nHost: h\r\n\r\n").unwrap();
    assert!(out.contains("\r\nVia: 1.0 ekilibri\r\n"), "{out}");
    let (_, out) = req("GET / HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    assert!(out.contains("\r\nVia: 1.1 ekilibri\r\n"), "{out}");
    let (_, out) = resp("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", CTX11).unwrap();
    assert!(out.contains("\r\nVia: 1.0 ekilibri\r\n"), "{out}");
    let (_, out) = resp("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", CTX11).unwrap();
    assert!(out.contains("\r\nVia: 1.1 ekilibri\r\n"), "{out}");
}

#[test]
fn connection_options_are_kept_for_the_trailers() {
    let (h, _) = req(
        "POST / HTTP/1.1\r\nHost: h\r\nConnection: X-Secret, close\r\n\
         Transfer-Encoding: chunked\r\n\r\n",
    )
    .unwrap();
    assert!(h.hop_names.contains(b"x-secret") && !h.hop_names.contains(b"close"));
    let (h, _) = resp(
        "HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Hop\r\nTransfer-Encoding: chunked\r\n\r\n",
        CTX11,
    )
    .unwrap();
    assert!(h.hop_names.contains(b"X-HOP") && !h.hop_names.contains(b"x-other"));
    // Beyond HopNames::MAX names, every trailer field counts as named.
    let many = HopNames::of([&b"a"[..], b"b", b"c", b"d", b"e"]);
    assert!(many.contains(b"anything"));
    assert!(!HopNames::default().contains(b"a"));
}

#[test]
fn a_default_host_is_retargeted_in_bytes_already_written() {
    let (_, sent) = req("POST /p HTTP/1.0\r\nContent-Length: 5\r\n\r\n").unwrap();
    assert!(sent.contains("\r\nHost: backend:80\r\n"), "{sent}");
    let sent = sent + "hello";
    let mut out = Buf::with_capacity(8);
    assert!(retarget_default_host(
        sent.as_bytes(),
        "backend:80",
        "10.0.0.2:8080",
        &mut out
    ));
    let got = String::from_utf8(out.data().to_vec()).unwrap();
    assert_eq!(got, sent.replace("Host: backend:80", "Host: 10.0.0.2:8080"));
    // A Host in the body, or a different one, is not touched.
    let body_host = "POST / HTTP/1.1\r\nHost: h\r\n\r\n\r\nHost: backend:80\r\n";
    let mut out = Buf::with_capacity(8);
    assert!(!retarget_default_host(
        body_host.as_bytes(),
        "backend:80",
        "x",
        &mut out
    ));
    assert!(out.is_empty());
}
