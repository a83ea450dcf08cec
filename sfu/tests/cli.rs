//! The real `sfu` binary: help, token minting, configuration precedence
//! across flags, environment and file, and the development-key rule.

use signaling::token::TokenKeys;
use std::io::Write as _;
use std::process::{Command, Output};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const SECRET: &str = "integration-test-secret-0123456789abcdef";

/// The binary with no inherited `SFU_*` variables.
fn sfu() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sfu"));
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("SFU_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("sfu runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn config_file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().expect("temp file");
    f.write_all(text.as_bytes()).expect("write");
    f
}

/// The effective configuration the binary reports.
fn effective(cmd: &mut Command) -> toml::Table {
    let o = run(cmd.arg("--check-config"));
    assert!(o.status.success(), "check-config failed: {}", stderr(&o));
    stdout(&o).parse().expect("check-config prints TOML")
}

#[test]
fn help_documents_every_setting() {
    let o = run(sfu().arg("--help"));
    assert!(o.status.success());
    let help = stdout(&o);
    for setting in [
        "http-bind",
        "media-bind",
        "media-public-ip",
        "api-key",
        "api-secret",
        "log-format",
        "log",
        "ping-interval",
        "ping-timeout",
        "resume-grace",
        "shards",
        "max-participants-per-room",
        "rtx-cache-packets",
        "rtx-cache-age",
        "keyframe-min-interval",
        "ice-timeout",
        "shutdown-timeout",
        "media-gso",
        "media-io-batch",
        "media-send-queue",
        "media-socket-buffer-bytes",
        "http-header-timeout",
        "http-handshake-timeout",
        "http-idle-timeout",
        "http-max-connections",
        "http-max-connections-per-address",
        "token-max-lifetime",
        "config",
    ] {
        assert!(
            help.contains(&format!("--{setting} ")),
            "--{setting} missing"
        );
        let env = format!("SFU_{}", setting.replace('-', "_").to_uppercase());
        assert!(help.contains(&env), "{env} missing");
    }
    // Takes an optional attached value, so it shows as `--pin-shards[=<BOOL>]`.
    assert!(help.contains("--pin-shards[=<BOOL>]"), "{help}");
    assert!(help.contains("SFU_PIN_SHARDS"), "{help}");
    assert!(help.contains("one per available CPU core"), "{help}");
    assert!(help.contains("127.0.0.1:7880") && help.contains("127.0.0.1:7882"));
    assert!(help.contains("Precedence, highest first: flag, environment variable, config file"));
    assert!(
        help.contains("[default: 3s]"),
        "durations print as durations"
    );
    assert!(help.contains("token"), "subcommand listed");
}

#[test]
fn token_subcommand_prints_a_verifiable_token() {
    let before = now();
    let o = run(sfu().args([
        "token",
        "--room",
        "standup",
        "--identity",
        "alice",
        "--name",
        "Alice A.",
        "--ttl",
        "30m",
    ]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("development key"),
        "dev key is announced"
    );
    let token = stdout(&o);
    let token = token.trim();
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    let claims = TokenKeys::development()
        .verify_for_room(token, "standup")
        .expect("verifies with the dev keys");
    assert_eq!(claims.identity(), "alice");
    assert_eq!(claims.name, "Alice A.");
    assert!(claims.grants.publish && claims.grants.subscribe && !claims.grants.admin);
    assert!(
        (before + 1800..=now() + 1800).contains(&claims.exp),
        "exp {} not ~30m from now",
        claims.exp
    );
}

#[test]
fn token_uses_configured_keys_from_env_and_admin_needs_no_room() {
    let o = run(sfu()
        .env("SFU_API_KEY", "prod-key")
        .env("SFU_API_SECRET", SECRET)
        .env("SFU_TOKEN_MAX_LIFETIME", "3d")
        .args(["token", "--identity", "ops", "--admin", "--ttl", "2d"]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("development key"));
    let token = stdout(&o);
    assert!(TokenKeys::development().verify(token.trim()).is_err());
    let claims = TokenKeys::new("prod-key", SECRET)
        .with_max_lifetime(Duration::from_secs(3 * 86400))
        .verify(token.trim())
        .expect("verifies with the configured keys");
    assert!(claims.grants.admin);
    assert_eq!(claims.room, "");
    assert!(claims.exp >= now() + 2 * 86400 - 5);

    // Without --admin a room is required; a bad ttl is refused.
    let o = run(sfu().args(["token", "--identity", "x"]));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--room"), "{}", stderr(&o));
    let o = run(sfu().args(["token", "--room", "r", "--identity", "x", "--ttl", "later"]));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--ttl"), "{}", stderr(&o));
}

#[test]
fn flags_beat_env_beat_file_beat_defaults() {
    // An older file: durations as numbers under their `*_secs`/`*_ms` keys.
    let file = config_file(
        "shards = 2\n\
         rtx_cache_packets = 64\n\
         rtx_cache_ms = 1500\n\
         ice_timeout_secs = 20\n\
         media_bind = \"127.0.0.1:9000\"\n",
    );
    let path = file.path().to_str().expect("utf-8 path");

    // Defaults: one shard per core (0), not pinned.
    let c = effective(&mut sfu());
    assert_eq!(c["shards"].as_integer(), Some(0));
    assert_eq!(c["pin_shards"].as_bool(), Some(false));
    assert_eq!(c["rtx_cache_age"].as_str(), Some("3s"));

    // File over defaults.
    let c = effective(sfu().args(["--config", path]));
    assert_eq!(c["shards"].as_integer(), Some(2));
    assert_eq!(c["rtx_cache_packets"].as_integer(), Some(64));
    assert_eq!(c["rtx_cache_age"].as_str(), Some("1s 500ms"));
    assert_eq!(c["ice_timeout"].as_str(), Some("20s"));
    assert_eq!(c["media_bind"].as_str(), Some("127.0.0.1:9000"));
    assert_eq!(
        c["keyframe_min_interval"].as_str(),
        Some("500ms"),
        "default"
    );

    // Environment over file; the file itself named by SFU_CONFIG. Old and
    // new variable names both count as the environment.
    let c = effective(
        sfu()
            .env("SFU_CONFIG", path)
            .env("SFU_SHARDS", "3")
            .env("SFU_ICE_TIMEOUT_SECS", "30")
            .env("SFU_RTX_CACHE_AGE", "2s"),
    );
    assert_eq!(c["shards"].as_integer(), Some(3));
    assert_eq!(c["ice_timeout"].as_str(), Some("30s"));
    assert_eq!(c["rtx_cache_packets"].as_integer(), Some(64));
    assert_eq!(c["rtx_cache_age"].as_str(), Some("2s"));

    // Flag over environment over file, by old and new flag names.
    let c = effective(
        sfu()
            .env("SFU_SHARDS", "3")
            .env("SFU_ICE_TIMEOUT", "30s")
            .env("SFU_RTX_CACHE_MS", "2000")
            .args(["--config", path, "--shards", "4", "--rtx-cache-ms", "250"]),
    );
    assert_eq!(c["shards"].as_integer(), Some(4));
    assert_eq!(c["rtx_cache_age"].as_str(), Some("250ms"));
    assert_eq!(c["ice_timeout"].as_str(), Some("30s"));
    assert_eq!(c["media_bind"].as_str(), Some("127.0.0.1:9000"));
    let c = effective(
        sfu()
            .env("SFU_ICE_TIMEOUT", "30s")
            .args(["--ice-timeout-secs", "7"]),
    );
    assert_eq!(c["ice_timeout"].as_str(), Some("7s"));

    // A variable's new name beats its old one.
    let c = effective(
        sfu()
            .env("SFU_PING_INTERVAL", "2s")
            .env("SFU_PING_INTERVAL_SECS", "9"),
    );
    assert_eq!(c["ping_interval"].as_str(), Some("2s"));

    // A boolean: the variable takes 1/0 (or true/false), the flag beats it.
    let c = effective(sfu().env("SFU_PIN_SHARDS", "1"));
    assert_eq!(c["pin_shards"].as_bool(), Some(true));
    let c = effective(sfu().env("SFU_PIN_SHARDS", "1").arg("--pin-shards=false"));
    assert_eq!(c["pin_shards"].as_bool(), Some(false));
}

/// Every environment variable the server read before durations became
/// durations (`SFU_*_SECS`, `SFU_*_MS` included), each set to a non-default
/// value in its old form, shows up in the effective configuration.
#[test]
fn every_old_environment_variable_still_works() {
    let old: &[(&str, &str, &str, &str)] = &[
        // variable, value, printed key, printed value
        (
            "SFU_HTTP_BIND",
            "127.0.0.2:1000",
            "http_bind",
            "127.0.0.2:1000",
        ),
        (
            "SFU_MEDIA_BIND",
            "127.0.0.3:1001",
            "media_bind",
            "127.0.0.3:1001",
        ),
        (
            "SFU_MEDIA_PUBLIC_IP",
            "127.0.0.4",
            "media_public_ip",
            "127.0.0.4",
        ),
        ("SFU_API_KEY", "k1", "api_key", "k1"),
        ("SFU_API_SECRET", SECRET, "api_secret", "<redacted>"),
        ("SFU_LOG_FORMAT", "json", "log_format", "json"),
        ("SFU_LOG", "warn", "log", "warn"),
        ("SFU_PING_INTERVAL_SECS", "7", "ping_interval", "7s"),
        ("SFU_PING_TIMEOUT_SECS", "21", "ping_timeout", "21s"),
        ("SFU_RESUME_GRACE_SECS", "5", "resume_grace", "5s"),
        ("SFU_SHARDS", "2", "shards", "2"),
        ("SFU_PIN_SHARDS", "true", "pin_shards", "true"),
        (
            "SFU_MAX_PARTICIPANTS_PER_ROOM",
            "9",
            "max_participants_per_room",
            "9",
        ),
        ("SFU_RTX_CACHE_PACKETS", "99", "rtx_cache_packets", "99"),
        ("SFU_RTX_CACHE_MS", "750", "rtx_cache_age", "750ms"),
        (
            "SFU_KEYFRAME_MIN_INTERVAL_MS",
            "250",
            "keyframe_min_interval",
            "250ms",
        ),
        ("SFU_ICE_TIMEOUT_SECS", "4", "ice_timeout", "4s"),
        ("SFU_SHUTDOWN_TIMEOUT_SECS", "3", "shutdown_timeout", "3s"),
        ("SFU_MEDIA_GSO", "off", "media_gso", "off"),
        ("SFU_MEDIA_IO_BATCH", "16", "media_io_batch", "16"),
        ("SFU_MEDIA_SEND_QUEUE", "64", "media_send_queue", "64"),
        (
            "SFU_MEDIA_SOCKET_BUFFER_BYTES",
            "1048576",
            "media_socket_buffer_bytes",
            "1048576",
        ),
    ];
    let mut cmd = sfu();
    for (var, value, _, _) in old {
        cmd.env(var, value);
    }
    let c = effective(&mut cmd);
    let defaults = effective(&mut sfu());
    for (var, _, key, printed) in old {
        let shown = match &c[*key] {
            toml::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        assert_eq!(&shown, printed, "{var}");
        assert_ne!(
            defaults.get(*key),
            Some(&c[*key]),
            "{var} left {key} at its default"
        );
    }
}

#[test]
fn config_file_errors_are_clear() {
    let file = config_file("shards = 2\nhttp_bind = 7880\n");
    let o = run(sfu().args(["--check-config", "--config"]).arg(file.path()));
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("invalid config file"), "{err}");
    assert!(err.contains(&file.path().display().to_string()), "{err}");
    assert!(err.contains("line 2"), "{err}");

    let file = config_file("shard = 2\n");
    let o = run(sfu().args(["--check-config", "--config"]).arg(file.path()));
    assert!(
        stderr(&o).contains("unknown field `shard`"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn rtx_cache_age_out_of_range_is_refused() {
    let mut by_flag = sfu();
    by_flag.args(["--check-config", "--rtx-cache-ms", "0"]);
    let mut by_env = sfu();
    by_env
        .env("SFU_RTX_CACHE_MS", "60001")
        .arg("--check-config");
    for (name, mut cmd) in [("flag 0", by_flag), ("env 60001", by_env)] {
        let o = run(&mut cmd);
        assert_eq!(o.status.code(), Some(1), "{name}");
        let err = stderr(&o);
        assert!(err.contains("rtx_cache_age"), "{name}: {err}");
        assert!(err.contains("between 1ms and 1m"), "{name}: {err}");
    }
}

#[test]
fn dev_key_is_refused_on_a_non_loopback_address() {
    // Validation only: --check-config never binds.
    let o = run(sfu().args(["--check-config", "--http-bind", "0.0.0.0:7880"]));
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("not a loopback address"), "{err}");
    assert!(err.contains("SFU_API_SECRET"), "{err}");

    let o = run(sfu()
        .env("SFU_MEDIA_PUBLIC_IP", "198.51.100.7")
        .arg("--check-config"));
    assert!(stderr(&o).contains("media_public_ip"), "{}", stderr(&o));

    // With a configured pair the same address is accepted, and the secret
    // is not printed.
    let o = run(sfu()
        .env("SFU_API_KEY", "k")
        .env("SFU_API_SECRET", SECRET)
        .args(["--check-config", "--http-bind", "0.0.0.0:7880"]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stdout(&o).contains(SECRET));
}

/// Setting the public development secret explicitly, a blank one, one of
/// low entropy or one printed in the docs passes the length check but is
/// refused on a non-loopback address, and allowed on loopback.
#[test]
fn guessable_secrets_are_refused_off_loopback() {
    let cases = [
        (
            "the development secret",
            signaling::token::DEV_API_SECRET.to_string(),
        ),
        ("32 spaces", " ".repeat(32)),
        ("one character", "x".repeat(40)),
        ("a counting run", "0123456789abcdef0123456789abcdef".into()),
        (
            "the docs' example",
            "at-least-32-bytes-of-random-secret-data".into(),
        ),
    ];
    for (what, secret) in cases {
        let mut cmd = sfu();
        cmd.env("SFU_API_KEY", "prod")
            .env("SFU_API_SECRET", &secret)
            .args(["--check-config", "--http-bind", "0.0.0.0:7880"]);
        let o = cmd.output().expect("runs");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{what} accepted on 0.0.0.0");
        assert!(err.contains("refusing to start"), "{what}: {err}");
        if !secret.trim().is_empty() {
            assert!(!err.contains(&secret), "{what}: the secret is echoed");
        }
        let o = sfu()
            .env("SFU_API_KEY", "prod")
            .env("SFU_API_SECRET", &secret)
            .arg("--check-config")
            .output()
            .expect("runs");
        assert!(o.status.success(), "{what} refused on loopback");
    }
    let o = sfu()
        .env("SFU_API_KEY", "prod")
        .env("SFU_API_SECRET", "")
        .args(["--check-config", "--http-bind", "0.0.0.0:7880"])
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(1), "empty secret accepted");
}

/// Starts the binary on ephemeral loopback ports, checks /healthz and
/// /metrics, and stops it with SIGTERM.
#[test]
fn serves_and_stops_on_sigterm() {
    use std::io::{BufRead as _, BufReader, Read as _};
    use std::net::TcpStream;

    let mut child = sfu()
        .args([
            "--http-bind",
            "127.0.0.1:0",
            "--media-bind",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawns");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let http = loop {
        let line = lines
            .next()
            .expect("server logs until it listens")
            .expect("utf-8");
        let v: serde_json::Value = serde_json::from_str(&line).expect("JSON log line");
        if v["message"] == "sfu listening" {
            break v["http"].as_str().expect("http field").to_string();
        }
    };
    let get = |path: &str| {
        let mut s = TcpStream::connect(&http).expect("connect");
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: sfu\r\nConnection: close\r\n\r\n"
        )
        .expect("send");
        let mut out = String::new();
        s.read_to_string(&mut out).expect("read");
        out
    };
    assert!(get("/healthz").starts_with("HTTP/1.1 200"));
    let metrics = get("/metrics");
    assert!(metrics.contains("sfu_packets_dropped_total{reason=\"unknown_source\"}"));

    let pid = child.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let rest: Vec<String> = lines.map_while(Result::ok).collect();
            assert!(
                status.success(),
                "clean exit on SIGTERM: {status}; log after listening:\n{}",
                rest.join("\n")
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
}
