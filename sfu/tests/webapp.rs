//! The web app is served next to the other routes of the running server:
//! `/` and its assets, while `/healthz`, `/metrics` and `/rtc` keep
//! working and unknown paths are 404.

use std::net::SocketAddr;
use testkit::http::get;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// The head of the answer to `HEAD path` (the wasm body is binary).
async fn head(addr: SocketAddr, path: &str) -> String {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!("HEAD {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    tcp.write_all(req.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    tokio::time::timeout(testkit::wait::LIMIT, tcp.read_to_end(&mut out))
        .await
        .expect("answer in time")
        .expect("read");
    String::from_utf8(out).expect("a head is text")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_is_served_beside_signaling_metrics_and_health() {
    let s = testkit::server::sfu().await;
    let addr = s.http_addr();

    let (status, page) = get(addr, "/").await;
    assert_eq!(status, 200);
    let lower = page.to_ascii_lowercase();
    assert!(
        lower.contains("content-type: text/html; charset=utf-8\r\n"),
        "{page}"
    );
    assert!(lower.contains("content-security-policy: default-src 'none';"));
    assert!(page.contains("<script type=\"module\" src=\"app.js\"></script>"));

    let (status, page) = get(addr, "/?room=standup&token=x").await;
    assert_eq!(status, 200, "a query string still gets the page: {page}");

    let wasm = head(addr, "/wasm/e2ee_wasm_bg.wasm")
        .await
        .to_ascii_lowercase();
    assert!(wasm.starts_with("http/1.1 200"), "{wasm}");
    assert!(
        wasm.contains("content-type: application/wasm\r\n"),
        "{wasm}"
    );
    assert!(wasm.contains("'wasm-unsafe-eval'"), "{wasm}");
    let worker = head(addr, "/e2ee-worker.js").await.to_ascii_lowercase();
    assert!(
        worker.contains("content-type: text/javascript; charset=utf-8\r\n"),
        "{worker}"
    );

    assert_eq!(get(addr, "/healthz").await.0, 200);
    assert_eq!(get(addr, "/readyz").await.0, 200);
    let (status, metrics) = get(addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(metrics.contains("sfu_"), "{metrics}");
    // Without the upgrade headers the WebSocket route refuses, but it is there.
    let (status, _) = get(addr, "/rtc").await;
    assert!(
        status != 404 && (400..500).contains(&status),
        "/rtc answered {status}"
    );
    for path in [
        "/nope",
        "/app.js.map",
        "/wasm/other.wasm",
        "/api/nothing-here",
    ] {
        assert_eq!(get(addr, path).await.0, 404, "{path}");
    }

    s.shutdown();
    s.join().await.expect("clean stop");
}
