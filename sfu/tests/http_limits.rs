//! The real `sfu` binary under slow-loris: half-sent request heads and idle
//! connections are closed after their timeouts, one address cannot take
//! every connection (or file descriptor) from everyone else, and the soft
//! file-descriptor limit is raised at start.
//!
//! Settings are given as `SFU_*` environment variables, which a binary
//! that does not know them ignores: run against an older server these
//! tests fail on its behaviour, not on its command line.

use std::net::SocketAddr;
use testkit::http::{closed_by_server, get};
use testkit::sfu_bin::{Options, SfuBin};
use testkit::wait::LIMIT;
use testkit::ws::Client;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};

const HALF_HEAD: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: sfu\r\nX-Slow: ";

fn start(env: &[(&str, &str)], nofile: Option<(u64, Option<u64>)>) -> SfuBin {
    let options = Options {
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        nofile,
        ..Options::default()
    };
    SfuBin::start(env!("CARGO_BIN_EXE_sfu").as_ref(), &options)
}

/// The value of the series `name` (with its labels) on `/metrics`.
async fn metric(http: SocketAddr, series: &str) -> u64 {
    let (status, text) = get(http, "/metrics").await;
    assert_eq!(status, 200, "{text}");
    let prefix = format!("\n{series} ");
    let at = text.find(&prefix).unwrap_or_else(|| panic!("no {series}"));
    let value = &text[at + prefix.len()..];
    value[..value.find('\n').unwrap_or(value.len())]
        .parse()
        .expect("a number")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_heads_and_idle_keep_alives_are_closed() {
    let sfu = start(
        &[
            ("SFU_HTTP_HEADER_TIMEOUT", "1s"),
            ("SFU_HTTP_IDLE_TIMEOUT", "1s"),
        ],
        None,
    );

    // Half a head, then nothing: closed once the header timeout passes.
    let mut slow = TcpStream::connect(sfu.http).await.expect("connect");
    slow.write_all(HALF_HEAD).await.expect("write");
    closed_by_server(&mut slow, "half-sent head").await;

    // A complete request on a keep-alive connection, then silence: closed
    // once idle, after the response.
    let mut idle = TcpStream::connect(sfu.http).await.expect("connect");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: sfu\r\n\r\n")
        .await
        .expect("write");
    let mut head = [0u8; 12];
    idle.read_exact(&mut head).await.expect("response");
    assert_eq!(&head, b"HTTP/1.1 200");
    closed_by_server(&mut idle, "idle keep-alive").await;

    let timed_out = metric(
        sfu.http,
        "sfu_http_connections_timed_out_total{reason=\"header\"}",
    )
    .await
        + metric(
            sfu.http,
            "sfu_http_connections_timed_out_total{reason=\"idle\"}",
        )
        .await;
    assert!(timed_out >= 2, "both closes counted: {timed_out}");
}

/// 300 half-open connections from 127.0.0.2 (loopback too) against a server
/// with 256 file descriptors and 64 connections allowed per address: all
/// but 64 are closed at once, so an honest client on 127.0.0.1 still joins.
/// Before the caps, the attacker's connections used up the descriptors and
/// the honest join was never accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_crowd_out_an_honest_client() {
    const ATTACKERS: u64 = 300;
    const PER_ADDRESS: u64 = 64;
    let per_address = PER_ADDRESS.to_string();
    let sfu = start(
        &[
            ("SFU_HTTP_MAX_CONNECTIONS_PER_ADDRESS", &per_address),
            // Long enough that only the caps can protect the honest client.
            ("SFU_HTTP_HEADER_TIMEOUT", "5m"),
            ("SFU_HTTP_IDLE_TIMEOUT", "5m"),
        ],
        Some((256, Some(256))),
    );
    let mut attackers = Vec::new();
    for _ in 0..ATTACKERS {
        let socket = TcpSocket::new_v4().expect("socket");
        socket
            .bind(SocketAddr::from(([127, 0, 0, 2], 0)))
            .expect("bind 127.0.0.2");
        let mut tcp = socket.connect(sfu.http).await.expect("connect");
        // A refused connection may already be closed: ignore write errors.
        let _ = tcp.write_all(HALF_HEAD).await;
        attackers.push(tcp);
    }

    let token = testkit::token::dev_token("standup", "honest");
    let joined = tokio::time::timeout(LIMIT, async {
        let mut client = Client::connect(&testkit::server::rtc_url(sfu.http)).await;
        client.join(&token).await
    })
    .await;
    assert!(
        joined.is_ok(),
        "the honest client did not join within {LIMIT:?}"
    );

    let refused = metric(
        sfu.http,
        "sfu_http_connections_refused_total{reason=\"max_connections_per_address\"}",
    )
    .await;
    assert!(refused >= ATTACKERS - PER_ADDRESS, "refused {refused}");
    let line = sfu.wait_log("refused at accept");
    assert!(line.contains("127.0.0.2"), "{line}");
    drop(attackers);
}

/// Started with a soft limit of 256 descriptors, the server raises it to
/// the hard limit and logs both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soft_fd_limit_is_raised_to_the_hard_limit() {
    let sfu = start(&[], Some((256, None)));
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", sfu.pid())).expect("limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("Max open files");
    let numbers: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    assert_eq!(numbers.len(), 2, "{line}");
    assert_eq!(numbers[0], numbers[1], "soft raised to hard: {line}");
    assert_ne!(numbers[0], "256", "{line}");
    let logged = sfu.wait_log("file-descriptor limit");
    assert!(logged.contains("\"soft_before\":256"), "{logged}");
    assert!(
        logged.contains(&format!("\"hard\":{}", numbers[1])),
        "{logged}"
    );
}
