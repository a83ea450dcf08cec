//! HTTPS and WSS on the HTTP port: a server started with a certificate
//! made by `sfu cert`'s own code answers HTTPS and WSS clients that trust
//! it; a reload switches new handshakes to the new certificate while open
//! calls go on, and a bad one keeps the old; a client that never finishes
//! its TLS handshake is cut off by the header timeout; the binary refuses
//! to start without a usable pair, saying which file and why; `sfu cert`
//! writes a pair the binary serves.
//!
//! Every client here is a rustls client that trusts the test's own
//! certificates, on loopback.

use rustls::ClientConfig;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use signaling::proto::ServerMessage;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use testkit::http::closed_by_server;
use testkit::sfu_bin::{Options, SfuBin};
use testkit::wait::LIMIT;
use testkit::ws::Client;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

/// A certificate and key written by `sfu cert`'s code for localhost and
/// 127.0.0.1, in `dir` under `name`.
struct Pair {
    cert: PathBuf,
    key: PathBuf,
    der: CertificateDer<'static>,
}

fn pair(dir: &Path, name: &str) -> Pair {
    let pem = sfu::cert_cmd::self_signed(&["localhost".into(), "127.0.0.1".into()])
        .expect("self-signed pair");
    let cert = dir.join(format!("{name}.cert.pem"));
    let key = dir.join(format!("{name}.key.pem"));
    std::fs::write(&cert, &pem.cert_pem).expect("write cert");
    std::fs::write(&key, &pem.key_pem).expect("write key");
    let der = CertificateDer::from_pem_slice(pem.cert_pem.as_bytes()).expect("parse cert");
    Pair { cert, key, der }
}

/// Puts `from`'s files in place of `to`'s the way a renewal should: each
/// one renamed over the old, so no reader sees half a file.
fn install(from: &Pair, to: &Pair) {
    for (src, dst) in [(&from.cert, &to.cert), (&from.key, &to.key)] {
        let tmp = dst.with_extension("tmp");
        std::fs::copy(src, &tmp).expect("copy");
        std::fs::rename(&tmp, dst).expect("rename");
    }
}

/// A client that trusts exactly `pairs`' certificates. It never resumes a
/// session: a resumed session skips the certificate, and these tests look
/// at which certificate each connection got.
fn client(pairs: &[&Pair]) -> Arc<ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for p in pairs {
        roots.add(p.der.clone()).expect("trust anchor");
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    Arc::new(config)
}

/// A TLS connection to `addr` that verified the server as `name`.
async fn tls(addr: SocketAddr, config: &Arc<ClientConfig>, name: &str) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::try_from(name.to_string()).expect("server name");
    let connector = tokio_rustls::TlsConnector::from(config.clone());
    tokio::time::timeout(LIMIT, connector.connect(name, tcp))
        .await
        .expect("handshake in time")
        .expect("handshake")
}

/// The certificate the server presented on `stream`.
fn peer(stream: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    let certs = stream
        .get_ref()
        .1
        .peer_certificates()
        .expect("server certificate");
    certs[0].clone().into_owned()
}

/// `GET path` over HTTPS: the status and the body, and the certificate the
/// server presented.
async fn https_get(
    addr: SocketAddr,
    config: &Arc<ClientConfig>,
    path: &str,
) -> (u16, String, CertificateDer<'static>) {
    let mut stream = tls(addr, config, "localhost").await;
    let cert = peer(&stream);
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    // A server that closes without close_notify ends the read with an
    // error after the whole response.
    let _ = tokio::time::timeout(LIMIT, stream.read_to_end(&mut out))
        .await
        .expect("response in time");
    let out = String::from_utf8_lossy(&out).into_owned();
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body, cert)
}

/// The value of the series `series` on `/metrics`, read over HTTPS.
async fn metric(addr: SocketAddr, config: &Arc<ClientConfig>, series: &str) -> u64 {
    let (status, text, _) = https_get(addr, config, "/metrics").await;
    assert_eq!(status, 200, "{text}");
    let prefix = format!("\n{series} ");
    let at = text
        .find(&prefix)
        .unwrap_or_else(|| panic!("no {series}:\n{text}"));
    let value = &text[at + prefix.len()..];
    value[..value.find('\n').unwrap_or(value.len())]
        .parse()
        .expect("a number")
}

/// Waits until `series` reaches `at_least`; panics after [`LIMIT`].
async fn wait_metric(addr: SocketAddr, config: &Arc<ClientConfig>, series: &str, at_least: u64) {
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let now = metric(addr, config, series).await;
        if now >= at_least {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{series} is {now}, not {at_least}, after {LIMIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A WSS connection to `/rtc`, with the `Origin` a page would send, and
/// the certificate the server presented; or the HTTP status that refused
/// the upgrade.
async fn wss(
    addr: SocketAddr,
    config: &Arc<ClientConfig>,
    origin: Option<&str>,
) -> Result<(Client<TlsStream<TcpStream>>, CertificateDer<'static>), u16> {
    let stream = tls(addr, config, "127.0.0.1").await;
    let cert = peer(&stream);
    let mut req = format!("wss://{addr}/rtc")
        .into_client_request()
        .expect("request");
    if let Some(origin) = origin {
        req.headers_mut()
            .insert("origin", origin.parse().expect("origin"));
    }
    match tokio_tungstenite::client_async(req, stream).await {
        Ok((ws, _)) => Ok((Client::from_ws(ws), cert)),
        Err(tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("WSS handshake: {e}"),
    }
}

async fn server_with(pair: &Pair, header_timeout: Option<Duration>) -> sfu::RunningServer {
    testkit::server::sfu_with(|c| {
        c.tls.tls_cert = Some(pair.cert.clone());
        c.tls.tls_key = Some(pair.key.clone());
        if let Some(t) = header_timeout {
            c.http.http_header_timeout = t;
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_and_wss_with_a_self_signed_certificate() {
    let dir = tempfile::tempdir().expect("dir");
    let a = pair(dir.path(), "a");
    let server = server_with(&a, None).await;
    let addr = server.http_addr();
    let trusts_a = client(&[&a]);

    let (status, body, cert) = https_get(addr, &trusts_a, "/healthz").await;
    assert_eq!((status, cert), (200, a.der.clone()), "{body}");

    // A page this server serves over https may open the WebSocket; a page
    // of another origin may not.
    let origin = format!("https://127.0.0.1:{}", addr.port());
    let (mut ws, _) = wss(addr, &trusts_a, Some(&origin))
        .await
        .expect("same origin");
    let (pid, _) = ws.join(&testkit::token::dev_token("room", "alice")).await;
    assert!(!pid.is_empty());
    ws.ping(1).await;
    assert_eq!(
        wss(addr, &trusts_a, Some("https://elsewhere.example"))
            .await
            .err(),
        Some(403)
    );
    let (mut native, _) = wss(addr, &trusts_a, None)
        .await
        .expect("no Origin: not a browser");
    native.ping(2).await;

    // Plain HTTP on the TLS port is not served: a failed handshake.
    let mut plain = TcpStream::connect(addr).await.expect("connect");
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(LIMIT, plain.read_to_end(&mut buf))
        .await
        .expect("closed in time");
    assert!(!String::from_utf8_lossy(&buf).contains("200 OK"));
    wait_metric(addr, &trusts_a, "sfu_tls_handshake_errors_total", 1).await;

    // A client that does not trust the certificate is refused by its own
    // side, and the server counts the failed handshake.
    let b = pair(dir.path(), "b");
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let refused = tokio_rustls::TlsConnector::from(client(&[&b]))
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await;
    assert!(refused.is_err(), "an untrusted certificate");
    wait_metric(addr, &trusts_a, "sfu_tls_handshake_errors_total", 2).await;
    ws.ping(3).await;
}

/// A renewal written over the files is picked up by polling; new
/// handshakes get the new certificate while a call opened before goes on
/// on its old session. A bad pair written next is refused and counted, and
/// the good one stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_switches_new_handshakes_and_keeps_open_calls() {
    let dir = tempfile::tempdir().expect("dir");
    let live = pair(dir.path(), "live");
    let old = pair(dir.path(), "old");
    install(&old, &live);
    let renewed = pair(dir.path(), "renewed");
    let other = pair(dir.path(), "other");
    let server = server_with(&live, None).await;
    let addr = server.http_addr();
    let trusts_all = client(&[&old, &renewed, &other]);

    let (mut call, cert) = wss(addr, &trusts_all, None).await.expect("upgrade");
    assert_eq!(cert, old.der);
    call.join(&testkit::token::dev_token("room", "alice")).await;
    call.ping(1).await;

    install(&renewed, &live);
    wait_metric(addr, &trusts_all, "sfu_tls_reloads_total{result=\"ok\"}", 1).await;
    let (_, _, cert) = https_get(addr, &trusts_all, "/healthz").await;
    assert_eq!(
        cert, renewed.der,
        "a new connection gets the renewed certificate"
    );
    call.ping(2).await;
    let (mut second, cert) = wss(addr, &trusts_all, None).await.expect("upgrade");
    assert_eq!(cert, renewed.der);
    second.join(&testkit::token::dev_token("room", "bob")).await;
    // The call opened on the old certificate hears of the newcomer.
    match call.recv().await {
        ServerMessage::ParticipantJoined { participant } => {
            assert_eq!(participant.identity, "bob");
        }
        other => panic!("expected bob's arrival, got {other:?}"),
    }

    // The other pair's certificate with the renewed key: not a pair.
    std::fs::copy(&other.cert, &live.cert).expect("copy");
    wait_metric(
        addr,
        &trusts_all,
        "sfu_tls_reloads_total{result=\"failed\"}",
        1,
    )
    .await;
    let (status, _, cert) = https_get(addr, &trusts_all, "/healthz").await;
    assert_eq!(
        (status, cert),
        (200, renewed.der.clone()),
        "the good pair stays"
    );
    assert_eq!(
        metric(addr, &trusts_all, "sfu_tls_reloads_total{result=\"ok\"}").await,
        1
    );
    call.ping(3).await;
    second.ping(4).await;
}

/// With TLS the header timeout covers the handshake and the first request
/// head together: a client that sends nothing, half a ClientHello, or
/// finishes the handshake and then sends nothing is closed and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_stall_before_a_request_are_cut_off() {
    let dir = tempfile::tempdir().expect("dir");
    let a = pair(dir.path(), "a");
    let server = server_with(&a, Some(Duration::from_millis(500))).await;
    let addr = server.http_addr();
    let trusts_a = client(&[&a]);

    let mut silent = TcpStream::connect(addr).await.expect("connect");
    let mut half_hello = TcpStream::connect(addr).await.expect("connect");
    // A TLS handshake record header announcing 512 bytes, and 4 of them.
    half_hello
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc])
        .await
        .expect("write");
    let mut no_request = tls(addr, &trusts_a, "localhost").await;
    closed_by_server(&mut silent, "silent").await;
    closed_by_server(&mut half_hello, "half a ClientHello").await;
    closed_by_server(&mut no_request, "handshake but no request").await;
    wait_metric(
        addr,
        &trusts_a,
        "sfu_http_connections_timed_out_total{reason=\"header\"}",
        3,
    )
    .await;
}

/// Runs the binary with `args` (after loopback addresses) and returns its
/// exit success and stderr; it must exit within [`LIMIT`].
fn run(args: &[&str]) -> (bool, String, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_sfu"));
    cmd.args(args);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("SFU_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd.output().expect("run sfu");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The `error:` line of a refused start.
fn refusal(args: &[&str]) -> String {
    let mut all = vec!["--http-bind", "127.0.0.1:0", "--media-bind", "127.0.0.1:0"];
    all.extend_from_slice(args);
    let (ok, _, stderr) = run(&all);
    assert!(!ok, "started with {args:?}:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line:\n{stderr}"));
    line.to_string()
}

#[test]
fn the_binary_refuses_to_start_without_a_usable_pair() {
    let dir = tempfile::tempdir().expect("dir");
    let (a, b) = (pair(dir.path(), "a"), pair(dir.path(), "b"));
    let s = |p: &Path| p.to_str().expect("utf-8").to_string();
    let (a_cert, a_key, b_key) = (s(&a.cert), s(&a.key), s(&b.key));
    let missing = s(&dir.path().join("missing.pem"));
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN PRIVATE KEY-----\nSECRETKEYMATERIAL!!\n-----END PRIVATE KEY-----\n",
    )
    .expect("write");
    let garbage = s(&garbage);

    let cases: [(&[&str], &[&str]); 7] = [
        (
            &["--tls-cert", &a_cert],
            &["tls_key", "set both or neither"],
        ),
        (&["--tls-key", &a_key], &["tls_cert", "set both or neither"]),
        (
            &["--tls-cert", &missing, "--tls-key", &a_key],
            &["cannot read tls_cert", &missing, "No such file"],
        ),
        (
            &["--tls-cert", &a_cert, "--tls-key", &missing],
            &["cannot read tls_key", &missing],
        ),
        (
            &["--tls-cert", &a_cert, "--tls-key", &b_key],
            &["does not match", &b_key, &a_cert],
        ),
        (
            &["--tls-cert", &a_cert, "--tls-key", &a_cert],
            &["holds no PEM private key", &a_cert],
        ),
        (
            &["--tls-cert", &a_cert, "--tls-key", &garbage],
            &["tls_key", &garbage, "not valid PEM"],
        ),
    ];
    for (args, expected) in cases {
        let line = refusal(args);
        for part in expected {
            assert!(line.contains(part), "{args:?}: {line:?} lacks {part:?}");
        }
        assert!(
            !line.contains("SECRETKEYMATERIAL"),
            "key content printed: {line}"
        );
        let mut check = args.to_vec();
        check.push("--check-config");
        assert_eq!(refusal(&check), line, "--check-config says the same");
    }
    // TLS does not lift the development-key rule.
    let (ok, _, stderr) = run(&[
        "--http-bind",
        "0.0.0.0:0",
        "--media-bind",
        "127.0.0.1:0",
        "--tls-cert",
        &a_cert,
        "--tls-key",
        &a_key,
    ]);
    assert!(!ok && stderr.contains("not a loopback address"), "{stderr}");
    let check = ["--tls-cert", &a_cert, "--tls-key", &a_key, "--check-config"];
    let (ok, stdout, stderr) = run(&check);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains(&format!("tls_cert = \"{a_cert}\"")),
        "{stdout}"
    );
}

/// `sfu cert` writes a pair (the key for its owner only) that the binary
/// serves to clients naming it by DNS name or IP address, refuses to
/// overwrite it unasked, and SIGHUP reloads the files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sfu_cert_writes_a_pair_the_binary_serves_and_sighup_reloads() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().expect("dir");
    let out = dir.path().join("tls");
    let out_s = out.to_str().expect("utf-8");
    let cert_args = [
        "cert",
        "--self-signed",
        "localhost",
        "127.0.0.1",
        "--out-dir",
        out_s,
    ];
    let (ok, stdout, stderr) = run(&cert_args);
    assert!(ok, "{stderr}");
    let (cert, key) = (out.join("cert.pem"), out.join("key.pem"));
    let (cert_s, key_s) = (cert.to_str().expect("utf-8"), key.to_str().expect("utf-8"));
    assert!(
        stdout.contains(&format!("--tls-cert {cert_s} --tls-key {key_s}")),
        "{stdout}"
    );
    let mode = std::fs::metadata(&key).expect("key").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "key mode {mode:o}");
    let (ok, _, stderr) = run(&cert_args);
    assert!(!ok && stderr.contains("--force"), "{stderr}");

    let first = Pair {
        der: CertificateDer::from_pem_file(&cert).expect("cert"),
        cert: cert.clone(),
        key: key.clone(),
    };
    let sfu = SfuBin::start(
        env!("CARGO_BIN_EXE_sfu").as_ref(),
        &Options {
            args: ["--tls-cert", cert_s, "--tls-key", key_s]
                .map(String::from)
                .to_vec(),
            ..Options::default()
        },
    );
    let trusts_first = client(&[&first]);
    for name in ["localhost", "127.0.0.1"] {
        let mut stream = tls(sfu.http, &trusts_first, name).await;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .expect("write");
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await.expect("read");
        assert_eq!(&head, b"HTTP/1.1 200", "as {name}");
    }
    let (mut call, _) = wss(sfu.http, &trusts_first, None).await.expect("upgrade");
    call.ping(1).await;

    let mut force = cert_args.to_vec();
    force.push("--force");
    let (ok, _, stderr) = run(&force);
    assert!(ok, "{stderr}");
    let second = Pair {
        der: CertificateDer::from_pem_file(&cert).expect("cert"),
        cert,
        key,
    };
    assert_ne!(second.der, first.der);
    sfu.signal("HUP");
    sfu.wait_log("SIGHUP");
    let trusts_both = client(&[&first, &second]);
    wait_metric(
        sfu.http,
        &trusts_both,
        "sfu_tls_reloads_total{result=\"ok\"}",
        1,
    )
    .await;
    let (_, _, now) = https_get(sfu.http, &trusts_both, "/healthz").await;
    assert_eq!(now, second.der);
    call.ping(2).await;
    sfu.stop();
}

/// Without TLS a SIGHUP has nothing to reload: it is logged, and the
/// server goes on (the signal's default action would end it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_without_tls_is_logged_and_harmless() {
    let sfu = SfuBin::start(env!("CARGO_BIN_EXE_sfu").as_ref(), &Options::default());
    sfu.signal("HUP");
    sfu.wait_log("nothing to reload");
    let (status, body) = testkit::http::get(sfu.http, "/healthz").await;
    assert_eq!(status, 200, "{body}");
    sfu.stop();
}
