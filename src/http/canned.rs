//! Complete error responses the proxy sends on its own behalf.

macro_rules! canned {
    ($code:literal, $reason:literal, $len:literal, $body:literal) => {
        (
            concat!(
                "HTTP/1.1 ",
                $code,
                " ",
                $reason,
                "\r\nContent-Type: text/plain\r\nContent-Length: ",
                $len,
                "\r\nConnection: close\r\n\r\n",
                $body
            )
            .as_bytes(),
            concat!(
                "HTTP/1.1 ",
                $code,
                " ",
                $reason,
                "\r\nContent-Type: text/plain\r\nContent-Length: ",
                $len,
                "\r\n\r\n",
                $body
            )
            .as_bytes(),
        )
    };
}

/// The response for `status`, as (`Connection: close` form, keep-alive form).
/// Unknown codes map to 500.
pub fn response(status: u16) -> (&'static [u8], &'static [u8]) {
    match status {
        400 => canned!("400", "Bad Request", "12", "Bad Request\n"),
        408 => canned!("408", "Request Timeout", "16", "Request Timeout\n"),
        414 => canned!("414", "URI Too Long", "13", "URI Too Long\n"),
        431 => canned!(
            "431",
            "Request Header Fields Too Large",
            "32",
            "Request Header Fields Too Large\n"
        ),
        501 => canned!("501", "Not Implemented", "16", "Not Implemented\n"),
        502 => canned!("502", "Bad Gateway", "12", "Bad Gateway\n"),
        503 => canned!("503", "Service Unavailable", "20", "Service Unavailable\n"),
        504 => canned!("504", "Gateway Timeout", "16", "Gateway Timeout\n"),
        505 => canned!(
            "505",
            "HTTP Version Not Supported",
            "27",
            "HTTP Version Not Supported\n"
        ),
        _ => canned!(
            "500",
            "Internal Server Error",
            "22",
            "Internal Server Error\n"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::response;

    #[test]
    fn lengths_match_bodies() {
        for status in [400, 408, 414, 431, 500, 501, 502, 503, 504, 505] {
            for bytes in [response(status).0, response(status).1] {
                let text = std::str::from_utf8(bytes).unwrap();
                let (head, body) = text.split_once("\r\n\r\n").unwrap();
                assert!(head.starts_with(&format!("HTTP/1.1 {status} ")));
                let cl: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .unwrap()
                    .parse()
                    .unwrap();
                assert_eq!(cl, body.len(), "{status}");
            }
        }
    }
}
