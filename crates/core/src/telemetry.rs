//! Logging set-up for binaries: `tracing` events to stderr and to a rotating log file,
//! both in the spec's `YYYY-MM-DD HH:MM:SS | LEVEL | message` format.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::logfile::{LogFile, LogFileOptions, LogLevel, format_line};

/// Environment variable with a tracing filter (`info`, `debug`, `recops_tracking=debug`).
pub const LOG_ENV: &str = "RECOPS_LOG";

/// How a binary logs.
#[derive(Debug, Clone)]
pub struct TelemetryOptions {
    /// Also write every line to this file (rotated daily).
    pub log_file: Option<PathBuf>,
    /// Rotated log files to keep.
    pub max_files: usize,
    /// Filter used when `RECOPS_LOG` is not set (`"info"`).
    pub default_filter: String,
    /// Write lines to stderr.
    pub stderr: bool,
}

impl Default for TelemetryOptions {
    fn default() -> Self {
        TelemetryOptions {
            log_file: None,
            max_files: 14,
            default_filter: "info".to_owned(),
            stderr: true,
        }
    }
}

/// Installs the global `tracing` subscriber. Call once, at the start of `main`.
pub fn init(options: TelemetryOptions) -> Result<()> {
    let filter = EnvFilter::try_from_env(LOG_ENV)
        .or_else(|_| EnvFilter::try_new(&options.default_filter))
        .map_err(|e| Error::Telemetry(format!("bad log filter: {e}")))?;
    let file = match &options.log_file {
        Some(path) => Some(Arc::new(LogFile::open(
            path.clone(),
            LogFileOptions {
                max_files: options.max_files,
                clock: SystemClock::shared(),
            },
        )?)),
        None => None,
    };
    let layer = SpecLineLayer {
        file,
        stderr: options.stderr,
    };
    tracing_subscriber::registry()
        .with(layer.with_filter(filter))
        .try_init()
        .map_err(|e| Error::Telemetry(e.to_string()))
}

/// Writes each event as one spec-format line to stderr and/or a [`LogFile`].
struct SpecLineLayer {
    file: Option<Arc<LogFile>>,
    stderr: bool,
}

impl<S: Subscriber> Layer<S> for SpecLineLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let level = level_of(*event.metadata().level());
        let mut v = MessageVisitor::default();
        event.record(&mut v);
        let message = v.finish();
        if let Some(file) = &self.file {
            // A log line that cannot be written must not take the job down.
            let _ = file.write_line(level, None, &message);
        }
        if self.stderr {
            let line = format_line(SystemClock.now(), level, None, &message);
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        }
    }
}

fn level_of(level: Level) -> LogLevel {
    match level {
        Level::ERROR => LogLevel::Error,
        Level::WARN => LogLevel::Warning,
        Level::INFO => LogLevel::Info,
        _ => LogLevel::Debug,
    }
}

/// Collects the `message` field first, then the other fields as ` key=value`.
#[derive(Default)]
struct MessageVisitor {
    message: String,
    fields: String,
}

impl MessageVisitor {
    fn finish(self) -> String {
        if self.fields.is_empty() {
            self.message
        } else if self.message.is_empty() {
            self.fields.trim_start().to_owned()
        } else {
            format!("{}{}", self.message, self.fields)
        }
    }
}

impl Visit for MessageVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={}", field.name(), value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={:?}", field.name(), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn events_become_spec_lines_with_fields_after_the_message() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/job.log");
        let file = Arc::new(LogFile::open(&path, LogFileOptions::default()).unwrap());
        let subscriber = tracing_subscriber::registry().with(SpecLineLayer {
            file: Some(file),
            stderr: false,
        });
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(model_id = "als_1", "model promoted");
            tracing::warn!("lock is stale");
        });
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            lines[0].ends_with(" | INFO | model promoted model_id=als_1"),
            "{text}"
        );
        assert!(lines[1].ends_with(" | WARNING | lock is stale"), "{text}");
        // `YYYY-MM-DD HH:MM:SS` prefix.
        assert_eq!(lines[0].as_bytes()[4], b'-');
        assert_eq!(&lines[0][19..22], " | ");
    }
}
