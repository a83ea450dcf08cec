//! Structured logs: `tracing` with an `EnvFilter`, as text or JSON lines on
//! stderr.
//!
//! Two things protect the log from its inputs:
//!
//! - **Escaped fields.** Field values often hold what a client sent (room
//!   and display names, error details). In text logs every control
//!   character, line or paragraph separator and bidirectional override in a
//!   field or message is written as an escape (`\n`, `\u{1b}`), so a value
//!   can never start a line of its own and pass for another event. JSON
//!   logs escape them as JSON does.
//! - **Credentials filtered.** Some dependencies log secrets at debug
//!   level: the ICE agent (`is::agent`, under str0m) logs each side's ICE
//!   username and password when they are set. The targets in
//!   [`CREDENTIAL_TARGETS`] are held at `info` whatever the filter says,
//!   unless the filter names the target itself (`is::agent=debug`), which
//!   an operator does only on purpose.

use crate::config::LogFormat;
use anyhow::Context as _;
use std::fmt::{self, Write as _};
use std::io::IsTerminal as _;
use tracing::Subscriber;
use tracing::field::{Field, Visit};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FormatFields, MakeWriter};
use tracing_subscriber::util::SubscriberInitExt as _;

/// Dependency log targets that write credentials below `info`, held at
/// `info` unless the filter names them.
pub const CREDENTIAL_TARGETS: &[&str] = &[
    // "Set local/remote credentials: IceCreds { ufrag, pass }" at debug.
    "is::agent",
];

/// Installs the global subscriber. `filter` uses `EnvFilter` syntax
/// ("info", "info,signaling=debug"). Fails if the filter does not parse or a
/// subscriber is already installed.
pub fn init(format: LogFormat, filter: &str) -> anyhow::Result<()> {
    let filter = env_filter(filter)?;
    let ansi = std::io::stderr().is_terminal();
    // `try_init` also routes `log` records (dependencies that use `log`)
    // to the subscriber.
    let installed = match format {
        LogFormat::Text => text_subscriber(filter, std::io::stderr, ansi)
            .try_init()
            .map_err(|e| e.to_string()),
        LogFormat::Json => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(ansi)
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(true)
            .try_init()
            .map_err(|e| e.to_string()),
    };
    installed.map_err(|e| anyhow::anyhow!("cannot install the log subscriber: {e}"))
}

/// The operator's filter with [`CREDENTIAL_TARGETS`] held at `info` (those
/// it does not name).
pub fn env_filter(filter: &str) -> anyhow::Result<EnvFilter> {
    let mut env =
        EnvFilter::try_new(filter).with_context(|| format!("invalid log filter {filter:?}"))?;
    for target in CREDENTIAL_TARGETS {
        if !names_target(filter, target) {
            let directive = format!("{target}=info")
                .parse::<tracing_subscriber::filter::Directive>()
                .with_context(|| format!("credential filter for {target}"))?;
            env = env.add_directive(directive);
        }
    }
    Ok(env)
}

/// Whether one of `filter`'s directives is for `target` itself.
fn names_target(filter: &str, target: &str) -> bool {
    filter
        .split(',')
        .any(|d| d.trim().split(['=', '[']).next() == Some(target))
}

/// The text-format subscriber writing to `writer`, every field escaped.
pub fn text_subscriber<W>(
    filter: EnvFilter,
    writer: W,
    ansi: bool,
) -> impl Subscriber + Send + Sync + 'static
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi)
        .fmt_fields(EscapedFields)
        .finish()
}

/// Formats fields as the default text format does (the message, then
/// `name=value` pairs, `log.*` metadata of `log` records left out), every
/// value through [`Escaping`].
struct EscapedFields;

impl<'w> FormatFields<'w> for EscapedFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut visitor = FieldVisitor {
            writer: &mut writer,
            first: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct FieldVisitor<'a, 'w> {
    writer: &'a mut Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl Visit for FieldVisitor<'_, '_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let name = field.name();
        if self.result.is_err() || name.starts_with("log.") {
            return;
        }
        let separator = if std::mem::take(&mut self.first) {
            ""
        } else {
            " "
        };
        self.result = if name == "message" {
            write!(self.writer, "{separator}")
        } else {
            write!(self.writer, "{separator}{name}=")
        }
        .and_then(|()| write!(Escaping(&mut *self.writer), "{value:?}"));
    }
}

/// Writes through to `W`, each character that could break or disguise a
/// log line written as an escape.
struct Escaping<'a, W: fmt::Write>(&'a mut W);

impl<W: fmt::Write> fmt::Write for Escaping<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            if c.is_control() {
                write!(self.0, "{}", c.escape_debug())?;
            } else if needs_escape(c) {
                write!(self.0, "{}", c.escape_unicode())?;
            } else {
                self.0.write_char(c)?;
            }
        }
        Ok(())
    }
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'w self) -> Self::Writer {
            self.clone()
        }
    }

    fn text_log(filter: &str, emit: impl FnOnce()) -> String {
        let buf = Buffer::default();
        let sub = text_subscriber(env_filter(filter).expect("filter"), buf.clone(), false);
        tracing::subscriber::with_default(sub, emit);
        let bytes = buf.0.lock().expect("lock").clone();
        String::from_utf8(bytes).expect("utf-8")
    }

    #[test]
    fn client_strings_cannot_forge_log_lines() {
        let room = "standup\n2026-01-01T00:00:00Z  INFO sfu: admin logged in";
        let name = "eve\r\u{1b}[2K\u{2028}\u{202e}";
        let log = text_log("info", || {
            let span = tracing::info_span!("rtc", participant = %name);
            let _in = span.enter();
            tracing::info!(room = %room, name, "joined");
            tracing::info!("message with {room}");
        });
        assert_eq!(log.lines().count(), 2, "one line per event:\n{log}");
        assert!(log.contains("room=standup\\n2026"), "{log}");
        assert!(log.contains("message with standup\\n2026"), "{log}");
        assert!(log.contains("eve\\r\\u{1b}[2K\\u{2028}\\u{202e}"), "{log}");
        assert!(!log.contains('\u{1b}') && !log.contains('\r'), "{log:?}");
        assert!(log.contains(" INFO rtc{participant=eve"), "{log}");
    }

    #[test]
    fn credential_targets_stay_at_info_unless_named() {
        let emit = || {
            tracing::debug!(target: "is::agent", "Set remote credentials: pass=hunter2");
            tracing::debug!(target: "str0m", "Accept offer");
        };
        for filter in [
            "debug",
            "trace",
            "debug,is=trace",
            "is::agent::x=debug,debug",
        ] {
            let log = text_log(filter, emit);
            assert!(!log.contains("hunter2"), "{filter}: {log}");
            assert!(
                log.contains("Accept offer"),
                "{filter}: other debug logs stay"
            );
        }
        let log = text_log("debug,is::agent=debug", emit);
        assert!(log.contains("hunter2"), "named on purpose: {log}");
    }
}
