//! The SFU's own CPU and memory, scraped from its Prometheus `/metrics`
//! with a bare HTTP/1.1 GET (no HTTP client dependency). Parsing and
//! bookkeeping are pure; only [`scrape`] does IO.

use crate::report::SfuUsage;
use crate::target::Endpoint;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Largest response read.
const MAX_RESPONSE: usize = 8 * 1024 * 1024;

/// Why a scrape gave nothing.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    /// No connection, or it broke.
    #[error("cannot reach {0}: {1}")]
    Io(String, #[source] std::io::Error),
    /// No complete answer in time.
    #[error("no answer from {0} in time")]
    Timeout(String),
    /// Not an HTTP response this parser understands.
    #[error("malformed HTTP response: {0}")]
    Malformed(&'static str),
    /// A status other than 200.
    #[error("HTTP status {0}")]
    Status(u16),
}

/// The process metrics one scrape found.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcessSample {
    /// `process_cpu_seconds_total`.
    pub cpu_seconds: Option<f64>,
    /// `process_resident_memory_bytes`.
    pub rss_bytes: Option<u64>,
}

/// Reads the process metrics out of a Prometheus text exposition.
pub fn parse_metrics(text: &str) -> ProcessSample {
    let mut s = ProcessSample::default();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let mut parts = line.split_whitespace();
        let (Some(name), Some(value)) = (parts.next(), parts.next()) else {
            continue;
        };
        let name = name.split('{').next().unwrap_or(name);
        let Ok(v) = value.parse::<f64>() else {
            continue;
        };
        if !v.is_finite() || v < 0.0 {
            continue;
        }
        match name {
            "process_cpu_seconds_total" if s.cpu_seconds.is_none() => s.cpu_seconds = Some(v),
            "process_resident_memory_bytes" if s.rss_bytes.is_none() => {
                s.rss_bytes = Some(v as u64)
            }
            _ => {}
        }
    }
    s
}

/// The body of a complete HTTP/1.x response with status 200 (chunked or
/// not).
pub fn parse_response(raw: &[u8]) -> Result<Vec<u8>, ScrapeError> {
    let end = find(raw, b"\r\n\r\n").ok_or(ScrapeError::Malformed("no end of headers"))?;
    let head = std::str::from_utf8(&raw[..end])
        .map_err(|_| ScrapeError::Malformed("headers not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or("");
    let mut parts = status.split_whitespace();
    if !parts.next().is_some_and(|v| v.starts_with("HTTP/1.")) {
        return Err(ScrapeError::Malformed("not an HTTP/1 status line"));
    }
    let code: u16 = parts
        .next()
        .and_then(|c| c.parse().ok())
        .ok_or(ScrapeError::Malformed("no status code"))?;
    if code != 200 {
        return Err(ScrapeError::Status(code));
    }
    let chunked = lines.any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("transfer-encoding")
                && v.to_ascii_lowercase().contains("chunked")
        })
    });
    let body = &raw[end + 4..];
    if chunked {
        dechunk(body)
    } else {
        Ok(body.to_vec())
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, ScrapeError> {
    let mut out = Vec::new();
    loop {
        let eol = find(body, b"\r\n").ok_or(ScrapeError::Malformed("chunk size line"))?;
        let size_text =
            std::str::from_utf8(&body[..eol]).map_err(|_| ScrapeError::Malformed("chunk size"))?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| ScrapeError::Malformed("chunk size"))?;
        body = &body[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = body
            .get(..size)
            .ok_or(ScrapeError::Malformed("truncated chunk"))?;
        out.extend_from_slice(chunk);
        body = body
            .get(size + 2..)
            .ok_or(ScrapeError::Malformed("truncated chunk"))?;
    }
}

/// GETs `endpoint` and parses the process metrics, all within `limit`.
pub async fn scrape(endpoint: &Endpoint, limit: Duration) -> Result<ProcessSample, ScrapeError> {
    let authority = endpoint.authority();
    let fetch = async {
        let mut stream = tokio::net::TcpStream::connect(&authority)
            .await
            .map_err(|e| ScrapeError::Io(authority.clone(), e))?;
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nAccept: text/plain\r\nConnection: close\r\n\r\n",
            endpoint.path, authority
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| ScrapeError::Io(authority.clone(), e))?;
        let mut raw = Vec::new();
        (&mut stream)
            .take(MAX_RESPONSE as u64)
            .read_to_end(&mut raw)
            .await
            .map_err(|e| ScrapeError::Io(authority.clone(), e))?;
        Ok::<_, ScrapeError>(raw)
    };
    let raw = tokio::time::timeout(limit, fetch)
        .await
        .map_err(|_| ScrapeError::Timeout(authority.clone()))??;
    let body = parse_response(&raw)?;
    Ok(parse_metrics(&String::from_utf8_lossy(&body)))
}

/// Whether `/metrics` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Not scraped yet, or no URL.
    Unknown,
    /// The last scrape worked.
    Up,
    /// The last scrape failed.
    Down,
}

/// Scrapes over a run, reduced to the run's usage.
#[derive(Debug, Clone, Default)]
pub struct UsageTracker {
    first_cpu: Option<(Instant, f64)>,
    last_cpu: Option<(Instant, f64)>,
    peak_rss: Option<u64>,
    last_ok: Option<bool>,
    ever_ok: bool,
    failures: u64,
}

impl UsageTracker {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the outcome of a scrape made at `now`.
    pub fn record(&mut self, now: Instant, result: Result<ProcessSample, &ScrapeError>) {
        match result {
            Ok(s) => {
                self.last_ok = Some(true);
                self.ever_ok = true;
                if let Some(cpu) = s.cpu_seconds {
                    self.first_cpu.get_or_insert((now, cpu));
                    self.last_cpu = Some((now, cpu));
                }
                if let Some(rss) = s.rss_bytes {
                    self.peak_rss = Some(self.peak_rss.map_or(rss, |p| p.max(rss)));
                }
            }
            Err(_) => {
                self.last_ok = Some(false);
                self.failures += 1;
            }
        }
    }

    /// Whether the SFU's `/metrics` answers now.
    pub fn health(&self) -> Health {
        match self.last_ok {
            None => Health::Unknown,
            Some(true) => Health::Up,
            Some(false) => Health::Down,
        }
    }

    /// Whether any scrape worked.
    pub fn ever_up(&self) -> bool {
        self.ever_ok
    }

    /// Scrapes that failed.
    pub fn failures(&self) -> u64 {
        self.failures
    }

    /// CPU used between the first and the last good scrape, and the peak
    /// memory; `None` if no scrape ever worked.
    pub fn usage(&self) -> Option<SfuUsage> {
        if !self.ever_ok {
            return None;
        }
        let (cpu_seconds, cpu_cores) = match (self.first_cpu, self.last_cpu) {
            (Some((t0, c0)), Some((t1, c1))) => {
                let used = (c1 - c0).max(0.0);
                let wall = t1.saturating_duration_since(t0).as_secs_f64();
                (Some(used), (wall > 0.0).then(|| used / wall))
            }
            _ => (None, None),
        };
        Some(SfuUsage {
            cpu_seconds,
            cpu_cores,
            peak_rss_bytes: self.peak_rss,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP process_cpu_seconds_total Total user and system CPU.\n\
        # TYPE process_cpu_seconds_total counter\n\
        process_cpu_seconds_total 12.5\n\
        process_resident_memory_bytes{kind=\"x\"} 1.048576e6\n\
        process_resident_memory_bytes 5\n\
        sfu_packets_total 99\n\
        garbage\n\
        process_threads NaN\n";

    #[test]
    fn reads_process_metrics() {
        let s = parse_metrics(TEXT);
        assert_eq!(s.cpu_seconds, Some(12.5));
        assert_eq!(s.rss_bytes, Some(1_048_576));
        assert_eq!(parse_metrics(""), ProcessSample::default());
        assert_eq!(
            parse_metrics("process_cpu_seconds_total -1\n").cpu_seconds,
            None
        );
    }

    #[test]
    fn parses_plain_and_chunked_responses() {
        let plain = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        assert_eq!(parse_response(plain).expect("ok"), b"hello");
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2;x=y\r\nlo\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked).expect("ok"), b"hello");
        assert!(matches!(
            parse_response(b"HTTP/1.1 404 Not Found\r\n\r\n"),
            Err(ScrapeError::Status(404))
        ));
        for bad in [
            &b""[..],
            b"HTTP/1.1 200 OK\r\n",
            b"SSH-2.0\r\n\r\n",
            b"HTTP/1.1 abc\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nff\r\nshort",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab",
        ] {
            assert!(
                parse_response(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn usage_is_the_delta_over_the_run() {
        let t0 = Instant::now();
        let mut u = UsageTracker::new();
        assert_eq!(u.health(), Health::Unknown);
        assert_eq!(u.usage(), None);
        let err = ScrapeError::Malformed("x");
        u.record(t0, Err(&err));
        assert_eq!((u.health(), u.ever_up()), (Health::Down, false));
        assert_eq!(u.usage(), None);
        let s = |cpu, rss| ProcessSample {
            cpu_seconds: Some(cpu),
            rss_bytes: Some(rss),
        };
        u.record(t0 + Duration::from_secs(1), Ok(s(10.0, 100)));
        u.record(t0 + Duration::from_secs(3), Ok(s(13.0, 300)));
        u.record(t0 + Duration::from_secs(5), Ok(s(14.0, 200)));
        u.record(t0 + Duration::from_secs(6), Err(&err));
        assert_eq!(u.health(), Health::Down);
        let usage = u.usage().expect("was up");
        assert_eq!(usage.cpu_seconds, Some(4.0));
        assert_eq!(usage.cpu_cores, Some(1.0));
        assert_eq!(usage.peak_rss_bytes, Some(300));
        assert_eq!(u.failures(), 2);
    }

    #[tokio::test]
    async fn scrape_against_a_local_listener() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            if let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let body = "process_cpu_seconds_total 1.5\nprocess_resident_memory_bytes 4096\n";
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            }
        });
        let ep = crate::target::parse_http(&format!("http://{addr}/metrics")).expect("url");
        let got = scrape(&ep, Duration::from_secs(5)).await.expect("scraped");
        assert_eq!(got.cpu_seconds, Some(1.5));
        assert_eq!(got.rss_bytes, Some(4096));
        // Nothing listens there any more.
        assert!(scrape(&ep, Duration::from_secs(1)).await.is_err());
    }
}
