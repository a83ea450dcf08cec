//! The SFU under test: its signaling URL as given, normalised, and the
//! `/metrics` URL derived from it.

use std::net::IpAddr;

/// The SFU's signaling path, added when the URL has none.
pub const SIGNALING_PATH: &str = "/rtc";

/// Why a URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Not `ws://` or `wss://` (signaling), or not `http://` (metrics).
    #[error("unsupported scheme in {0:?} (expected {1})")]
    Scheme(String, &'static str),
    /// No host.
    #[error("no host in {0:?}")]
    NoHost(String),
    /// The port is not a number from 1 to 65535.
    #[error("bad port in {0:?}")]
    Port(String),
}

/// Host, port and path of a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or IP (IPv6 without brackets).
    pub host: String,
    /// Port (the scheme's default when not given).
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl Endpoint {
    /// `host:port` as a socket address string (IPv6 in brackets).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Whether the host is this machine's loopback.
    pub fn is_loopback(&self) -> bool {
        self.host.eq_ignore_ascii_case("localhost")
            || self.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

/// The signaling URL to connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `ws[s]://host:port/path`, with [`SIGNALING_PATH`] when none was given.
    pub url: String,
    /// Its parts.
    pub endpoint: Endpoint,
    /// `wss://`.
    pub secure: bool,
}

impl Target {
    /// Parses `ws://host[:port][/path]` or `wss://…`.
    pub fn parse(url: &str) -> Result<Self, UrlError> {
        let (secure, rest) = if let Some(r) = strip_scheme(url, "ws://") {
            (false, r)
        } else if let Some(r) = strip_scheme(url, "wss://") {
            (true, r)
        } else {
            return Err(UrlError::Scheme(url.to_owned(), "ws:// or wss://"));
        };
        let mut endpoint = split(url, rest, if secure { 443 } else { 80 })?;
        if endpoint.path == "/" {
            endpoint.path = SIGNALING_PATH.to_owned();
        }
        let scheme = if secure { "wss" } else { "ws" };
        Ok(Self {
            url: format!("{scheme}://{}{}", endpoint.authority(), endpoint.path),
            endpoint,
            secure,
        })
    }

    /// `http://host:port/metrics` on the signaling port; `None` for
    /// `wss://` (this tool speaks no TLS: give `--metrics-url` instead).
    pub fn default_metrics(&self) -> Option<Endpoint> {
        (!self.secure).then(|| Endpoint {
            host: self.endpoint.host.clone(),
            port: self.endpoint.port,
            path: "/metrics".to_owned(),
        })
    }
}

/// Parses a plain `http://host[:port][/path]` URL.
pub fn parse_http(url: &str) -> Result<Endpoint, UrlError> {
    let rest =
        strip_scheme(url, "http://").ok_or_else(|| UrlError::Scheme(url.to_owned(), "http://"))?;
    split(url, rest, 80)
}

fn strip_scheme<'a>(url: &'a str, scheme: &str) -> Option<&'a str> {
    let head = url.get(..scheme.len())?;
    head.eq_ignore_ascii_case(scheme)
        .then(|| &url[scheme.len()..])
}

fn split(url: &str, rest: &str, default_port: u16) -> Result<Endpoint, UrlError> {
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_owned()),
        Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
        None => (rest, "/".to_owned()),
    };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| UrlError::NoHost(url.to_owned()))?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(UrlError::NoHost(url.to_owned()));
    }
    let port = match port {
        None => default_port,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| UrlError::Port(url.to_owned()))?,
    };
    Ok(Endpoint {
        host: host.to_owned(),
        port,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_the_signaling_path_only_when_missing() {
        let t = Target::parse("ws://127.0.0.1:7880").expect("valid");
        assert_eq!(t.url, "ws://127.0.0.1:7880/rtc");
        assert!(t.endpoint.is_loopback());
        assert_eq!(
            Target::parse("ws://127.0.0.1:7880/").expect("valid").url,
            "ws://127.0.0.1:7880/rtc"
        );
        assert_eq!(
            Target::parse("ws://127.0.0.1:7880/rtc").expect("valid").url,
            "ws://127.0.0.1:7880/rtc"
        );
        let custom = Target::parse("wss://sfu.example.com/x/rtc?a=1").expect("valid");
        assert_eq!(custom.url, "wss://sfu.example.com:443/x/rtc?a=1");
        assert!(!custom.endpoint.is_loopback());
        assert_eq!(custom.default_metrics(), None);
    }

    #[test]
    fn derives_metrics_from_the_signaling_port() {
        let t = Target::parse("ws://localhost:9000/rtc").expect("valid");
        let m = t.default_metrics().expect("plain ws");
        assert_eq!(
            (m.host.as_str(), m.port, m.path.as_str()),
            ("localhost", 9000, "/metrics")
        );
        assert!(m.is_loopback());
        let v6 = Target::parse("ws://[::1]:7880").expect("valid");
        assert!(v6.endpoint.is_loopback());
        assert_eq!(v6.endpoint.authority(), "[::1]:7880");
        assert_eq!(v6.url, "ws://[::1]:7880/rtc");
        assert!(
            !Target::parse("ws://10.0.0.1")
                .expect("valid")
                .endpoint
                .is_loopback()
        );
    }

    #[test]
    fn refuses_what_it_cannot_use() {
        assert!(matches!(
            Target::parse("http://x"),
            Err(UrlError::Scheme(..))
        ));
        assert!(matches!(Target::parse("ws://"), Err(UrlError::NoHost(_))));
        assert!(matches!(
            Target::parse("ws://:80"),
            Err(UrlError::NoHost(_))
        ));
        assert!(matches!(Target::parse("ws://h:0"), Err(UrlError::Port(_))));
        assert!(matches!(
            Target::parse("ws://h:99999"),
            Err(UrlError::Port(_))
        ));
        assert!(matches!(
            Target::parse("ws://[::1"),
            Err(UrlError::NoHost(_))
        ));
        assert!(matches!(Target::parse("wé"), Err(UrlError::Scheme(..))));
        let m = parse_http("http://127.0.0.1:9100/metrics").expect("valid");
        assert_eq!(m.authority(), "127.0.0.1:9100");
        assert!(parse_http("https://x/metrics").is_err());
    }
}
