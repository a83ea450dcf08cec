//! The live display: one progress line on a terminal (indicatif), or a
//! plain status line every few seconds on stderr otherwise.

use crate::stats::Rolling;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// How often the plain line is printed.
pub const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// What the display shows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Status {
    /// Seconds since the start.
    pub elapsed_s: f64,
    /// Planned length of the run (ramp and measurement), seconds.
    pub total_s: f64,
    /// Sessions up now.
    pub live: u64,
    /// Participants meant to connect.
    pub target: u64,
    /// Rolling bitrate, latency and loss.
    pub rolling: Rolling,
    /// Frames the SDK dropped, all participants.
    pub decrypt_failures: u64,
}

/// The status as one line of text.
pub fn status_line(s: &Status) -> String {
    let p99 = s
        .rolling
        .p99_ms
        .map_or("-".to_owned(), |v| format!("{v:.1}ms"));
    let loss = s
        .rolling
        .loss
        .map_or("-".to_owned(), |v| format!("{:.2}%", v * 100.0));
    // Short enough for an 80-column terminal.
    format!(
        "{:.0}/{:.0}s  connected {}/{}  rx {:.0} kbit/s  p99 {}  loss {}  decrypt-fail {}",
        s.elapsed_s, s.total_s, s.live, s.target, s.rolling.kbps, p99, loss, s.decrypt_failures
    )
}

/// The display.
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
    last_plain: Option<Instant>,
}

impl Progress {
    /// A progress bar if `wanted` and stderr is a terminal, else plain lines.
    pub fn new(wanted: bool) -> Self {
        let bar = (wanted && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(4));
            if let Ok(style) = ProgressStyle::with_template("{spinner} {wide_msg}") {
                bar.set_style(style);
            }
            bar
        });
        Self {
            bar,
            last_plain: None,
        }
    }

    /// Shows `status` (the plain line only every [`PLAIN_EVERY`]).
    pub fn update(&mut self, now: Instant, status: &Status) {
        let line = status_line(status);
        match &self.bar {
            Some(bar) => {
                bar.set_message(line);
                bar.tick();
            }
            None => {
                if self
                    .last_plain
                    .is_none_or(|t| now.saturating_duration_since(t) >= PLAIN_EVERY)
                {
                    self.last_plain = Some(now);
                    eprintln!("loadtest: {line}");
                }
            }
        }
    }

    /// Prints a message without tearing the bar.
    pub fn note(&self, msg: &str) {
        match &self.bar {
            Some(bar) => bar.println(format!("loadtest: {msg}")),
            None => eprintln!("loadtest: {msg}"),
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_shows_every_figure() {
        let s = Status {
            elapsed_s: 12.0,
            total_s: 40.0,
            live: 9,
            target: 10,
            rolling: Rolling {
                kbps: 4321.4,
                p99_ms: Some(23.456),
                loss: Some(0.0125),
            },
            decrypt_failures: 3,
        };
        let l = status_line(&s);
        assert!(l.len() <= 80, "{l:?} is {} chars", l.len());
        for part in [
            "12/40s",
            "connected 9/10",
            "4321 kbit/s",
            "p99 23.5ms",
            "loss 1.25%",
            "decrypt-fail 3",
        ] {
            assert!(l.contains(part), "{l:?} lacks {part:?}");
        }
        let empty = status_line(&Status {
            rolling: Rolling::default(),
            ..s
        });
        assert!(
            empty.contains("p99 -") && empty.contains("loss -"),
            "{empty}"
        );
    }
}
