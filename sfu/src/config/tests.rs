use super::*;
use crate::cli::{Cli, load_from};
use clap::CommandFactory;
use std::io::Write;

const SECRET: &str = "Hq3v9XkP0aZ7mW2rT5yL8cN1bF4gJ6sD";

type Edit = fn(&mut Config);

fn with_keys() -> Config {
    let mut c = Config::default();
    c.auth.api_key = Some("k".into());
    c.auth.api_secret = Some(SECRET.into());
    c
}

fn file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().expect("temp file");
    f.write_all(text.as_bytes()).expect("write");
    f
}

fn load<S: AsRef<str>>(args: &[S]) -> Config {
    let mut argv = vec!["sfu"];
    argv.extend(args.iter().map(AsRef::as_ref));
    load_from(argv).expect("config loads").0
}

fn load_file(text: &str) -> Config {
    let f = file(text);
    load(&["--config", f.path().to_str().expect("utf-8 path")])
}

/// The error loading a file with `text` gives, and the file's path.
fn file_error(text: &str) -> (String, String) {
    let f = file(text);
    let path = f.path().display().to_string();
    let err = load_from(["sfu", "--config", &path]).expect_err("refused");
    (err.to_string(), path)
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("addr")
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// `--key=value` for a TOML `key = value` line.
fn flag(key: &str, value: &str) -> String {
    // A TOML list is a comma-separated flag value.
    let value = match value.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
        Some(items) => items
            .split(',')
            .map(|i| i.trim().trim_matches('"'))
            .collect::<Vec<_>>()
            .join(","),
        None => value.trim_matches('"').to_owned(),
    };
    format!("--{}={value}", key.replace('_', "-"))
}

#[test]
fn defaults_are_valid_and_match_the_parsed_defaults() {
    assert_eq!(load::<&str>(&[]), Config::default());
    let c = Config::default();
    assert!(c.validate().is_ok());
    assert_eq!(c.network.http_bind.to_string(), "127.0.0.1:7880");
    assert_eq!(c.network.media_bind.to_string(), "127.0.0.1:7882");
    assert_eq!(c.network.media_public_ip(), IpAddr::from([127, 0, 0, 1]));
    assert_eq!(c.auth.api_key, None);
    assert_eq!(c.limits.ping_interval, secs(5));
    assert_eq!(c.limits.ping_timeout, secs(15));
    assert_eq!(c.limits.resume_grace, secs(15));
    assert_eq!(c.limits.ice_timeout, secs(10));
    assert_eq!(c.limits.shutdown_timeout, secs(10));
    assert_eq!(c.limits.max_participants_per_room, 1000);
    assert_eq!(c.limits.max_connections_per_address, 1000);
    assert_eq!(c.limits.max_key_package_bytes, 16 * 1024);
    assert_eq!(c.limits.key_package_rate.to_string(), "5/10s");
    assert_eq!(c.media.rtx_cache_packets, 1024);
    assert_eq!(c.media.rtx_cache_age, ms(3000));
    assert_eq!(c.media.keyframe_min_interval, ms(500));
    assert_eq!(c.media.keyframe_backoff_max, ms(16_000));
    assert_eq!(c.media.bandwidth_estimation_kbps, 0, "off");
    assert_eq!(c.media.shards, 0, "one per core");
    assert!(!c.media.pin_shards);
    assert_eq!(Config::loopback_ephemeral().media.shards, 1);
    assert_eq!(c.logging.log, "info");
    assert_eq!(c.logging.log_format, LogFormat::Text);
    assert_eq!(c.media.media_gso, GsoMode::Auto);
    assert_eq!(c.media.media_io_batch, 32);
    assert_eq!(c.media.media_send_queue, 256);
    assert_eq!(c.media.media_socket_buffer_bytes, 4 * 1024 * 1024);
    assert_eq!(c.http.http_header_timeout, secs(10));
    assert_eq!(c.http.http_handshake_timeout, secs(10));
    assert_eq!(c.http.http_idle_timeout, secs(30));
    assert_eq!(c.http.http_max_connections, 16384);
    assert_eq!(c.http.http_max_connections_per_address, 1024);
    assert_eq!(c.auth.token_max_lifetime, secs(24 * 3600));
}

#[test]
fn file_beats_default_and_flag_beats_file() {
    let f =
        file("shards = 3\nrtx_cache_packets = 77\nrtx_cache_age = \"1500ms\"\nlog = \"debug\"\n");
    let path = f.path().to_str().expect("utf-8 path");
    let c = load(&["--config", path, "--shards", "5"]);
    assert_eq!(c.media.shards, 5, "flag beats file");
    assert_eq!(c.media.rtx_cache_packets, 77, "file beats default");
    assert_eq!(c.media.rtx_cache_age, ms(1500), "file beats default");
    assert_eq!(c.logging.log, "debug");
    assert_eq!(c.limits.ice_timeout, secs(10), "default stays");
    // --config after the flags, and `--flag=value` form.
    let c = load(&["--shards=6", "--config", path]);
    assert_eq!(c.media.shards, 6);
    // A flag set to its default value still beats the file.
    let c = load(&["--config", path, "--rtx-cache-packets", "1024"]);
    assert_eq!(c.media.rtx_cache_packets, 1024);
}

/// Every setting in the file, each with a non-default value, gives the
/// same config as the same settings by flag, and every argument is in the
/// list.
#[test]
fn every_setting_is_read_from_the_file() {
    let settings: &[(&str, &str)] = &[
        ("http_bind", "\"127.0.0.2:1000\""),
        ("media_bind", "\"127.0.0.3:1001\""),
        ("media_public_ip", "\"127.0.0.4\""),
        ("api_key", "\"k1\""),
        ("api_secret", "\"Hq3v9XkP0aZ7mW2rT5yL8cN1bF4gJ6sD\""),
        ("log_format", "\"json\""),
        ("log", "\"warn\""),
        ("ping_interval", "\"7s\""),
        ("ping_timeout", "\"21s\""),
        ("resume_grace", "\"1m 5s\""),
        ("mls_founder_timeout", "\"25s\""),
        ("shards", "2"),
        ("pin_shards", "true"),
        ("max_participants_per_room", "9"),
        ("max_connections", "11"),
        ("max_connections_per_address", "12"),
        ("max_participants", "13"),
        ("max_participants_per_address", "14"),
        ("max_rooms", "15"),
        ("max_rooms_per_address", "16"),
        ("outbound_queue_bytes", "17000"),
        ("room_outbound_bytes", "18000"),
        ("max_sdp_bytes", "19000"),
        ("max_key_package_bytes", "2000"),
        ("max_commit_bytes", "21000"),
        ("max_welcome_bytes", "22000"),
        ("max_chat_bytes", "2300"),
        ("key_package_rate", "\"2/1m\""),
        ("commit_rate", "\"3/1s\""),
        ("chat_rate", "\"4/100ms\""),
        ("sdp_rate", "\"6/2s\""),
        ("rtx_cache_packets", "99"),
        ("rtx_cache_age", "\"750ms\""),
        ("keyframe_min_interval", "\"250ms\""),
        ("keyframe_backoff_max", "\"4s\""),
        ("bandwidth_estimation_kbps", "300"),
        ("ice_timeout", "\"4s\""),
        ("shutdown_timeout", "\"3s\""),
        ("media_gso", "\"off\""),
        ("media_io_batch", "16"),
        ("media_send_queue", "64"),
        ("media_socket_buffer_bytes", "1048576"),
        ("http_header_timeout", "\"3s\""),
        ("http_handshake_timeout", "\"4s\""),
        ("http_idle_timeout", "\"5s\""),
        ("http_max_connections", "100"),
        ("http_max_connections_per_address", "7"),
        (
            "allowed_origins",
            "[\"https://app.example\", \"http://127.0.0.1:9000\"]",
        ),
        ("app_token_endpoint", "\"https://app.example/token\""),
        ("token_max_lifetime", "\"2h\""),
        ("sdp_max_media_lines", "16"),
        ("negotiation_time_per_second", "\"5ms\""),
        ("negotiation_time_burst", "\"50ms\""),
        ("shard_stall_timeout", "\"5s\""),
        ("tls_cert", "\"/etc/sfu/cert.pem\""),
        ("tls_key", "\"/etc/sfu/key.pem\""),
    ];
    for arg in Cli::command().get_arguments() {
        let id = arg.get_id().as_str();
        if matches!(id, "config" | "check_config" | "help" | "version") {
            continue;
        }
        assert!(
            settings.iter().any(|(k, _)| *k == id),
            "setting {id} missing from this test"
        );
    }
    let toml: String = settings
        .iter()
        .map(|(k, v)| format!("{k} = {v}\n"))
        .collect();
    let from_file = load_file(&toml);
    let flags: Vec<String> = settings.iter().map(|(k, v)| flag(k, v)).collect();
    let from_flags = load(&flags);
    assert_eq!(from_file, from_flags);
    assert_ne!(from_file, Config::default());
    assert_eq!(from_file.limits.resume_grace, secs(65));
    assert_eq!(
        from_file.auth.api_secret.as_ref().map(Secret::expose),
        Some(SECRET)
    );
}

/// The flag names and file keys every setting had before durations became
/// `Duration`s (the `*_secs` and `*_ms` names), with a value in the old
/// form and what it must set. Their environment variables are checked on
/// the binary in tests/cli.rs.
fn old_names() -> Vec<(&'static str, &'static str, Edit)> {
    vec![
        ("http_bind", "\"127.0.0.2:1000\"", |c| {
            c.network.http_bind = addr("127.0.0.2:1000")
        }),
        ("media_bind", "\"127.0.0.3:1001\"", |c| {
            c.network.media_bind = addr("127.0.0.3:1001")
        }),
        ("media_public_ip", "\"127.0.0.4\"", |c| {
            c.network.media_public_ip = Some(IpAddr::from([127, 0, 0, 4]))
        }),
        ("api_key", "\"k1\"", |c| c.auth.api_key = Some("k1".into())),
        ("api_secret", "\"Hq3v9XkP0aZ7mW2rT5yL8cN1bF4gJ6sD\"", |c| {
            c.auth.api_secret = Some(SECRET.into())
        }),
        ("log_format", "\"json\"", |c| {
            c.logging.log_format = LogFormat::Json
        }),
        ("log", "\"warn\"", |c| c.logging.log = "warn".into()),
        ("ping_interval_secs", "7", |c| {
            c.limits.ping_interval = secs(7)
        }),
        ("ping_timeout_secs", "21", |c| {
            c.limits.ping_timeout = secs(21)
        }),
        ("resume_grace_secs", "5", |c| {
            c.limits.resume_grace = secs(5)
        }),
        ("shards", "2", |c| c.media.shards = 2),
        ("pin_shards", "true", |c| c.media.pin_shards = true),
        ("max_participants_per_room", "9", |c| {
            c.limits.max_participants_per_room = 9
        }),
        ("rtx_cache_packets", "99", |c| {
            c.media.rtx_cache_packets = 99
        }),
        ("rtx_cache_ms", "750", |c| c.media.rtx_cache_age = ms(750)),
        ("keyframe_min_interval_ms", "250", |c| {
            c.media.keyframe_min_interval = ms(250)
        }),
        ("ice_timeout_secs", "4", |c| c.limits.ice_timeout = secs(4)),
        ("shutdown_timeout_secs", "3", |c| {
            c.limits.shutdown_timeout = secs(3)
        }),
        ("media_gso", "\"off\"", |c| c.media.media_gso = GsoMode::Off),
        ("media_io_batch", "16", |c| c.media.media_io_batch = 16),
        ("media_send_queue", "64", |c| c.media.media_send_queue = 64),
        ("media_socket_buffer_bytes", "1048576", |c| {
            c.media.media_socket_buffer_bytes = 1 << 20
        }),
    ]
}

#[test]
fn old_flag_names_and_file_keys_still_work() {
    for (name, value, edit) in old_names() {
        let mut expected = Config::default();
        edit(&mut expected);
        assert_ne!(expected, Config::default(), "{name}: pick another value");
        assert_eq!(load(&[flag(name, value)]), expected, "--{name}");
        assert_eq!(
            load_file(&format!("{name} = {value}\n")),
            expected,
            "{name} in file"
        );
    }
    // All of them at once, as an old file would hold them.
    let old_file: String = old_names()
        .iter()
        .map(|(k, v, _)| format!("{k} = {v}\n"))
        .collect();
    let mut expected = Config::default();
    for (_, _, edit) in old_names() {
        edit(&mut expected);
    }
    assert_eq!(load_file(&old_file), expected);
}

#[test]
fn durations_take_units_and_a_bare_number_in_the_old_unit() {
    let c = load(&["--ice-timeout", "1500ms", "--rtx-cache-age", "2s"]);
    assert_eq!(c.limits.ice_timeout, ms(1500));
    assert_eq!(c.media.rtx_cache_age, secs(2));
    let c = load(&["--ice-timeout", "3", "--rtx-cache-age", "300"]);
    assert_eq!(c.limits.ice_timeout, secs(3));
    assert_eq!(c.media.rtx_cache_age, ms(300));
    let c = load_file("ice_timeout = 3\nrtx_cache_age = 300\nping_interval = \"1m\"\n");
    assert_eq!(c.limits.ice_timeout, secs(3));
    assert_eq!(c.media.rtx_cache_age, ms(300));
    assert_eq!(c.limits.ping_interval, secs(60));
    // A negative or unit-less non-number is a parse error, not a wrap.
    for bad in ["-1", "soon", "3 parsecs"] {
        assert!(load_from(["sfu", "--rtx-cache-age", bad]).is_err(), "{bad}");
        assert!(load_from(["sfu", "--rtx-cache-ms", bad]).is_err(), "{bad}");
    }
    let (msg, _) = file_error("ice_timeout_secs = -4\n");
    assert!(
        msg.contains("ice_timeout_secs") && msg.contains("line 1"),
        "{msg}"
    );
}

#[test]
fn toml_errors_name_the_file_and_the_problem() {
    let (msg, path) = file_error("shards = \"many\"\n");
    assert!(msg.contains("invalid config file"), "{msg}");
    assert!(msg.contains(&path), "{msg}");
    assert!(msg.contains("shards"), "{msg}");
    assert!(msg.contains("line 1"), "{msg}");

    let (msg, _) = file_error("log = \"info\"\nhttp_bnd = \"127.0.0.1:1\"\n");
    assert!(msg.contains("unknown field `http_bnd`"), "{msg}");
    assert!(msg.contains("line 2"), "{msg}");

    // Groups are not sections: the file is flat.
    let (msg, _) = file_error("[media]\nshards = 2\n");
    assert!(msg.contains("unknown field `media`"), "{msg}");

    let (msg, _) = file_error("shards = \n");
    assert!(msg.contains("invalid config file"), "{msg}");

    let msg = load_from(["sfu", "--config", "/nonexistent/sfu.toml"])
        .expect_err("missing file")
        .to_string();
    assert!(
        msg.contains("cannot read config file /nonexistent/sfu.toml"),
        "{msg}"
    );
}

#[test]
fn dev_key_is_refused_off_loopback() {
    let mut c = Config::default();
    assert_eq!(c.validate().expect("loopback ok").1, KeySource::Development);

    for (setting, edit) in [
        (
            "http_bind",
            (|c: &mut Config| c.network.http_bind = addr("0.0.0.0:7880")) as Edit,
        ),
        ("media_bind", |c| {
            c.network.media_bind = addr("192.0.2.1:7882");
            c.network.media_public_ip = Some(IpAddr::from([127, 0, 0, 1]));
        }),
        ("media_public_ip", |c| {
            c.network.media_public_ip = Some(IpAddr::from([203, 0, 113, 5]))
        }),
        ("http_bind", |c| c.network.http_bind = addr("[::]:7880")),
    ] {
        let mut c = Config::default();
        edit(&mut c);
        match c.validate() {
            Err(ConfigError::DevKeyOnNonLoopback { setting: s, .. }) => assert_eq!(s, setting),
            other => panic!("{setting}: expected refusal, got {other:?}"),
        }
        let msg = c.validate().expect_err("refused").to_string();
        assert!(msg.contains("not a loopback address"), "{msg}");

        // With real keys the same addresses are fine.
        c.auth.api_key = Some("prod".into());
        c.auth.api_secret = Some(SECRET.into());
        if c.network.media_public_ip().is_unspecified() {
            c.network.media_public_ip = Some(IpAddr::from([203, 0, 113, 5]));
        }
        assert_eq!(c.validate().expect("keys set").1, KeySource::Configured);
    }

    // IPv6 loopback is loopback.
    c.network.http_bind = addr("[::1]:7880");
    assert!(c.validate().is_ok());
}

/// A configured secret anyone could guess is allowed on loopback (as
/// [`KeySource::Weak`]) and refused on any other address.
#[test]
fn guessable_secrets_are_refused_off_loopback() {
    let dev = signaling::token::DEV_API_SECRET.to_string();
    let cases = [
        (dev, WeakSecret::Development),
        (
            EXAMPLE_SECRETS[1].to_string(),
            WeakSecret::DocumentedExample,
        ),
        (" ".repeat(32), WeakSecret::Blank),
        ("\t".repeat(40), WeakSecret::Blank),
        ("x".repeat(64), WeakSecret::LowEntropy),
        (
            "0123456789abcdef0123456789abcdef".into(),
            WeakSecret::LowEntropy,
        ),
    ];
    for (secret, why) in cases {
        let mut c = with_keys();
        c.auth.api_secret = Some(secret.as_str().into());
        assert_eq!(c.validate().expect("loopback").1, KeySource::Weak(why));
        c.network.http_bind = addr("0.0.0.0:7880");
        match c.validate() {
            Err(e @ ConfigError::WeakSecretOnNonLoopback { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains(&why.to_string()), "{msg}");
                assert!(msg.contains("0.0.0.0"), "{msg}");
                assert!(
                    !msg.contains(secret.trim()) || secret.trim().is_empty(),
                    "{msg}"
                );
            }
            other => panic!("{why:?}: expected refusal, got {other:?}"),
        }
    }
    // An empty secret is refused everywhere, as too short.
    let mut c = with_keys();
    c.auth.api_secret = Some("".into());
    assert!(matches!(
        c.validate(),
        Err(ConfigError::Invalid {
            setting: "api_secret",
            ..
        })
    ));
}

#[test]
fn token_max_lifetime_reaches_the_keys() {
    let mut c = Config::default();
    c.auth.token_max_lifetime = secs(60);
    let keys = c.validate().expect("valid").0;
    assert_eq!(keys.max_lifetime(), secs(60));
}

#[test]
fn key_pair_must_be_complete_and_strong() {
    let mut auth = Auth {
        api_key: Some("k".into()),
        ..Auth::default()
    };
    let refused = |auth: &Auth, which: &str| matches!(auth.token_keys(), Err(ConfigError::Invalid { setting, .. }) if setting == which);
    assert!(refused(&auth, "api_secret"));
    auth.api_secret = Some("short".into());
    assert!(refused(&auth, "api_secret"));
    auth.api_key = Some(String::new());
    assert!(refused(&auth, "api_key"));
    auth.api_key = None;
    assert!(refused(&auth, "api_key"));
}

#[test]
fn other_settings_are_range_checked() {
    let cases: [(&str, Edit); 26] = [
        ("shards", |c| c.media.shards = MAX_SHARDS + 1),
        ("app_token_endpoint", |c| {
            c.http.app_token_endpoint = Some("javascript:alert(1)".into())
        }),
        ("tls_key", |c| c.tls.tls_cert = Some("cert.pem".into())),
        ("tls_cert", |c| c.tls.tls_key = Some("key.pem".into())),
        ("allowed_origins", |c| {
            c.http.allowed_origins = vec!["app.example/".into()]
        }),
        ("media_bind", |c| {
            c.network.media_bind = addr("127.0.0.1:65535");
            c.media.shards = 2;
        }),
        ("media_io_batch", |c| c.media.media_io_batch = 0),
        ("media_io_batch", |c| {
            c.media.media_io_batch = MAX_MEDIA_IO_BATCH + 1
        }),
        ("media_send_queue", |c| {
            c.media.media_send_queue = c.media.media_io_batch - 1
        }),
        ("media_send_queue", |c| {
            c.media.media_send_queue = MAX_MEDIA_SEND_QUEUE + 1
        }),
        ("rtx_cache_packets", |c| c.media.rtx_cache_packets = 0),
        ("rtx_cache_age", |c| c.media.rtx_cache_age = Duration::ZERO),
        ("rtx_cache_age", |c| {
            c.media.rtx_cache_age = MAX_RTX_CACHE_AGE + ms(1)
        }),
        ("ice_timeout", |c| c.limits.ice_timeout = Duration::ZERO),
        ("ping_interval", |c| c.limits.ping_interval = Duration::ZERO),
        ("ping_timeout", |c| {
            c.limits.ping_timeout = c.limits.ping_interval
        }),
        ("max_participants_per_room", |c| {
            c.limits.max_participants_per_room = 0
        }),
        ("max_connections_per_address", |c| {
            c.limits.max_connections_per_address = 0
        }),
        ("max_key_package_bytes", |c| {
            c.limits.max_key_package_bytes = 0
        }),
        ("log", |c| c.logging.log = "info,=[".into()),
        ("http_header_timeout", |c| {
            c.http.http_header_timeout = Duration::ZERO
        }),
        ("http_handshake_timeout", |c| {
            c.http.http_handshake_timeout = Duration::ZERO
        }),
        ("http_idle_timeout", |c| {
            c.http.http_idle_timeout = Duration::ZERO
        }),
        ("http_max_connections", |c| c.http.http_max_connections = 0),
        ("http_max_connections_per_address", |c| {
            c.http.http_max_connections_per_address = 0
        }),
        ("token_max_lifetime", |c| {
            c.auth.token_max_lifetime = ms(500)
        }),
    ];
    for (setting, edit) in cases {
        let mut c = Config::default();
        edit(&mut c);
        match c.validate() {
            Err(ConfigError::Invalid { setting: s, .. }) => assert_eq!(s, setting),
            other => panic!("{setting}: expected invalid, got {other:?}"),
        }
    }
    let mut c = with_keys();
    c.network.media_bind = addr("0.0.0.0:7882");
    assert!(matches!(
        c.validate(),
        Err(ConfigError::Invalid {
            setting: "media_public_ip",
            ..
        })
    ));
}

#[test]
fn rtx_cache_age_defaults_to_the_media_plane_default_and_is_bounded() {
    // The default must not change what the media plane did before the
    // setting existed.
    let media = sfu_core::MediaConfig::new(DEFAULT_MEDIA_BIND);
    assert_eq!(Config::default().media.rtx_cache_age, media.rtx_cache_age);

    for ok in [ms(1), ms(3000), MAX_RTX_CACHE_AGE] {
        let mut c = Config::default();
        c.media.rtx_cache_age = ok;
        assert!(c.validate().is_ok(), "{ok:?}");
    }
    let mut c = Config::default();
    c.media.rtx_cache_age = Duration::ZERO;
    let msg = c.validate().expect_err("0 ms").to_string();
    assert!(msg.contains("rtx_cache_age"), "{msg}");
    assert!(msg.contains("between 1ms and 1m"), "{msg}");

    // Flag beats file (the environment is covered by tests/cli.rs, which
    // runs the binary).
    let f = file("rtx_cache_ms = 1200\n");
    let path = f.path().to_str().expect("utf-8 path");
    assert_eq!(load(&["--config", path]).media.rtx_cache_age, ms(1200));
    assert_eq!(
        load(&["--config", path, "--rtx-cache-ms", "900"])
            .media
            .rtx_cache_age,
        ms(900)
    );
    assert_eq!(
        load(&["--config", path, "--rtx-cache-age=800ms"])
            .media
            .rtx_cache_age,
        ms(800)
    );
}

#[test]
fn shards_default_to_one_per_core_and_their_ports_must_fit() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut media = Media::default();
    assert_eq!(media.effective_shards(), cores.min(MAX_SHARDS));
    media.shards = 4;
    assert_eq!(media.effective_shards(), 4);

    // Shard i binds port + i: 65534 leaves room for two shards, not
    // three; port 0 (one free port each) always fits.
    let mut c = Config::default();
    c.network.media_bind = addr("127.0.0.1:65534");
    c.media.shards = 2;
    assert!(c.validate().is_ok());
    c.media.shards = 3;
    let msg = c.validate().expect_err("past 65535").to_string();
    assert!(msg.contains("media_bind") && msg.contains("65536"), "{msg}");
    c.network.media_bind = addr("127.0.0.1:0");
    c.media.shards = MAX_SHARDS;
    assert!(c.validate().is_ok());
}

#[test]
fn pin_shards_is_a_flag_with_an_optional_value() {
    assert!(load(&["--pin-shards"]).media.pin_shards);
    assert!(load(&["--pin-shards=true"]).media.pin_shards);
    assert!(!load(&["--pin-shards=false"]).media.pin_shards);
    assert!(!load::<&str>(&[]).media.pin_shards);
    // The value must be attached, so a following subcommand is not taken
    // for it.
    let (c, action) =
        load_from(["sfu", "--pin-shards", "token", "--admin", "--identity", "i"]).expect("parses");
    assert!(c.media.pin_shards);
    assert!(matches!(action, crate::cli::Action::Run(_)));
    assert!(load_file("pin_shards = true\n").media.pin_shards);
}

#[test]
fn secrets_never_print() {
    let c = with_keys();
    assert!(!format!("{c:?}").contains(SECRET));
    assert!(!format!("{c:#?}").contains(SECRET));
    assert!(format!("{:?}", c.auth).contains("Secret(<redacted>)"));
    let toml = c.to_toml();
    assert!(!toml.contains(SECRET), "{toml}");
    assert!(toml.contains("api_secret = \"<redacted>\""), "{toml}");
    // The printed form (without the secret) is itself a valid file.
    let back = load_file(&toml.replace("<redacted>", SECRET));
    assert_eq!(back, c);
    // So is the printed form of a config with every duration changed.
    let mut c = c;
    c.limits.ping_interval = ms(2500);
    c.media.keyframe_min_interval = ms(1250);
    let back = load_file(&c.to_toml().replace("<redacted>", SECRET));
    assert_eq!(back, c);
}

#[test]
fn help_mentions_every_setting_and_the_precedence() {
    let help = Cli::command().render_long_help().to_string();
    for arg in Cli::command().get_arguments() {
        if let Some(long) = arg.get_long() {
            assert!(help.contains(&format!("--{long}")), "--{long} missing");
        }
        if let Some(env) = arg.get_env() {
            let env = env.to_str().expect("ascii");
            assert!(help.contains(env), "{env} missing");
        }
    }
    for heading in [
        "Network:",
        "Access tokens:",
        "Logging:",
        "Timeouts and limits:",
        "Media:",
    ] {
        assert!(help.contains(heading), "{heading} missing");
    }
    assert!(help.contains("[default: 500ms]"), "{help}");
    assert!(help.contains("Precedence"), "{help}");
}
