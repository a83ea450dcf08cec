//! Which web pages may open the signaling WebSocket.
//!
//! A browser sends the page's origin with every WebSocket handshake, and a
//! page can open a WebSocket to any server, so the server decides. Ours
//! admits: a handshake without an `Origin` header (not a browser: the
//! native SDK, the load tester), a page served from the server's own
//! address (same origin: the `Origin`'s host and port equal the `Host`
//! header), and the origins the operator lists. The access token in `join`
//! is still what admits a participant; the origin check keeps other sites'
//! pages from using the server with tokens they got hold of, and from
//! costing it connections.

use axum::http::HeaderValue;

/// The origins admitted besides the server's own pages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedOrigins {
    any: bool,
    /// Lowercased `scheme://host[:port]`.
    listed: Vec<String>,
}

/// Why an origin entry is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an origin: write scheme://host or scheme://host:port, or *")]
pub struct BadOrigin(pub String);

impl AllowedOrigins {
    /// Pages of these origins may connect: each `scheme://host[:port]` as
    /// browsers send it (no path, no trailing slash), or `*` for any page.
    ///
    /// ```
    /// use signaling::server::AllowedOrigins;
    /// let o = AllowedOrigins::new(["https://meet.example.com"]).unwrap();
    /// assert!(o.admits(Some("https://meet.example.com"), Some("sfu.example.com")));
    /// assert!(!o.admits(Some("https://evil.example"), Some("sfu.example.com")));
    /// assert!(o.admits(Some("https://sfu.example.com"), Some("sfu.example.com")), "same origin");
    /// assert!(o.admits(None, Some("sfu.example.com")), "not a browser");
    /// assert!(AllowedOrigins::new(["meet.example.com/"]).is_err());
    /// ```
    pub fn new<S: AsRef<str>>(origins: impl IntoIterator<Item = S>) -> Result<Self, BadOrigin> {
        let mut out = Self::default();
        for origin in origins {
            let origin = origin.as_ref().trim();
            if origin == "*" {
                out.any = true;
                continue;
            }
            let host = origin.split_once("://").filter(|(scheme, host)| {
                !scheme.is_empty() && !host.is_empty() && !host.contains(['/', '?', '#', '@', ' '])
            });
            if host.is_none() {
                return Err(BadOrigin(origin.to_owned()));
            }
            out.listed.push(origin.to_ascii_lowercase());
        }
        Ok(out)
    }

    /// Any page may connect.
    pub fn any() -> Self {
        Self {
            any: true,
            listed: Vec::new(),
        }
    }

    /// Whether a handshake with this `Origin` (if any) to this `Host` is
    /// admitted.
    pub fn admits(&self, origin: Option<&str>, host: Option<&str>) -> bool {
        let Some(origin) = origin else {
            return true;
        };
        if self.any {
            return true;
        }
        let same_origin = origin
            .split_once("://")
            .zip(host)
            .is_some_and(|((_, authority), host)| authority.eq_ignore_ascii_case(host));
        same_origin || self.listed.iter().any(|o| o.eq_ignore_ascii_case(origin))
    }

    /// [`admits`](Self::admits) on raw header values; a value that is not
    /// text is refused.
    pub(crate) fn admits_headers(
        &self,
        origin: Option<&HeaderValue>,
        host: Option<&HeaderValue>,
    ) -> bool {
        let origin = match origin.map(HeaderValue::to_str) {
            None => None,
            Some(Ok(o)) => Some(o),
            Some(Err(_)) => return false,
        };
        let host = host.and_then(|h| h.to_str().ok());
        self.admits(origin, host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_origin_listed_and_any() {
        let none = AllowedOrigins::default();
        assert!(none.admits(Some("http://127.0.0.1:7880"), Some("127.0.0.1:7880")));
        assert!(none.admits(Some("HTTPS://SFU.example.com"), Some("sfu.example.com")));
        assert!(!none.admits(Some("http://127.0.0.1:9000"), Some("127.0.0.1:7880")));
        assert!(!none.admits(Some("null"), Some("127.0.0.1:7880")));
        assert!(!none.admits(Some("http://127.0.0.1:7880"), None));
        assert!(none.admits(None, None));

        let listed = AllowedOrigins::new(["http://127.0.0.1:9000", " https://A.example "]).unwrap();
        assert!(listed.admits(Some("http://127.0.0.1:9000"), Some("127.0.0.1:7880")));
        assert!(listed.admits(Some("https://a.example"), Some("127.0.0.1:7880")));
        assert!(!listed.admits(Some("http://a.example"), Some("127.0.0.1:7880")));
        assert!(!listed.admits(Some("https://a.example.evil"), Some("x")));

        assert!(AllowedOrigins::any().admits(Some("null"), None));
        assert_eq!(AllowedOrigins::new(["*"]).unwrap(), AllowedOrigins::any());
    }

    #[test]
    fn entries_that_are_not_origins() {
        for bad in [
            "",
            "example.com",
            "https://",
            "https://a/",
            "https://a/path",
            "://a",
            "https://u@a",
        ] {
            assert_eq!(
                AllowedOrigins::new([bad]),
                Err(BadOrigin(bad.to_owned())),
                "{bad}"
            );
        }
    }

    #[test]
    fn header_bytes_that_are_not_text_are_refused() {
        let bad = HeaderValue::from_bytes(b"http://\xff").unwrap();
        let host = HeaderValue::from_static("a");
        assert!(!AllowedOrigins::any().admits_headers(Some(&bad), Some(&host)));
        assert!(AllowedOrigins::default().admits_headers(None, Some(&host)));
    }
}
