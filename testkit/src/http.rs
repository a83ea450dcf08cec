//! Plain HTTP/1 probes of a server on loopback, and free ports to put one
//! on.

use crate::wait::LIMIT;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `GET path` on `addr`: the status code (0 if the reply has none) and the
/// whole response, head included. Panics if the server cannot be reached
/// or does not answer within [`LIMIT`].
pub async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut tcp = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    let req = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    tcp.write_all(req.as_bytes()).await.expect("write request");
    let mut out = String::new();
    tokio::time::timeout(LIMIT, tcp.read_to_string(&mut out))
        .await
        .unwrap_or_else(|_| panic!("no answer to GET {path} within {LIMIT:?}"))
        .expect("read response");
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, out)
}

/// Reads `stream` until the server closes it (end of stream or an error
/// such as a reset); panics naming `what` if it is still open after
/// [`LIMIT`].
pub async fn closed_by_server<S: tokio::io::AsyncRead + Unpin>(stream: &mut S, what: &str) {
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(LIMIT, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "{what}: still open after {LIMIT:?}");
}

/// Whether `GET /healthz` on `addr` answers 200 (false, not a panic, when
/// nothing listens yet).
pub async fn healthy(addr: SocketAddr) -> bool {
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
        return false;
    };
    if s.write_all(b"GET /healthz HTTP/1.0\r\n\r\n").await.is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    matches!(
        tokio::time::timeout(Duration::from_secs(2), s.read_exact(&mut head)).await,
        Ok(Ok(_))
    ) && head.ends_with(b" 200")
}

/// A loopback port free for both UDP and TCP when asked. It is released
/// before use, so another process may take it first: callers that bind it
/// in a child process retry on a fresh one.
pub fn free_port() -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let port = udp.local_addr().expect("addr").port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}
