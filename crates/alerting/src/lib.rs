//! recops-alerting: the alerts every recops job sends (spec Component 5).
//!
//! - [`AlertManager`]: loads `config/alerts_config.yaml` ([`AlertsConfig`]) and sends
//!   alerts on four [`Channel`]s: **email** (lettre over SMTP, STARTTLS by default,
//!   HTML body, subject `[SEVERITY] alert_name`), **slack** (incoming webhook, the
//!   spec's emoji per [`Severity`], 10 s timeout), **log** (`logs/service/alerts.log`,
//!   `YYYY-MM-DD HH:MM:SS | WARNING | alerting | high_latency triggered: ...`), and
//!   **alertmanager** (a Prometheus Alertmanager's `POST /api/v2/alerts`, see
//!   [`AlertmanagerConfig`]: labels `alertname`, `severity`, `instance`, `pipeline`,
//!   annotations `summary`/`description`, `startsAt`, `endsAt` when a rule resolves,
//!   `generatorURL` to the dashboard; off while `alertmanager.url` is empty, and then
//!   added to every alert's channels when set, unless `all_alerts: false`).
//!   [`AlertManager::send_alert`] returns a [`SendReport`], whose
//!   [`success_map`](SendReport::success_map) is the spec's `{channel: bool}`. A dead
//!   mail server or Slack never panics or errors: the channel reports `false`, the log
//!   says why (secrets redacted, see [`Secret`]), e-mail, Slack and the Alertmanager
//!   are retried with exponential backoff first.
//! - Rules: [`AlertManager::check_alert_conditions`] is the spec's stateless check
//!   ([`TriggeredAlert`]s); [`AlertManager::process`] adds what on-call people rely on:
//!   `for_evaluations` consecutive breaches before firing, one notification and then
//!   a reminder only after `repeat_interval_hours` (default 4), a resolved notice when
//!   the condition clears (the Alertmanager always gets `endsAt`, even when no resolved
//!   notice is sent), and [silences](AlertManager::silence). [`AlertManager::observe`]
//!   applies the same to a condition a job computes itself.
//! - **Alert store**: [`AlertState`]s and [`Silence`]s live behind the [`AlertStore`]
//!   trait, like the stores of recops-tracking: [`SqliteAlertStore`]
//!   (`logs/alert_state.db`, the default) or [`PgAlertStore`] (tables `alert_state` and
//!   `silences`, same columns, versioned migrations in `recops_schema_migrations`; no
//!   file is written), picked by [`open_alert_store`] from `storage.url` /
//!   `RECOPS_STORAGE_URL` through [`recops_tracking::Storage`]. One evaluation reads,
//!   decides and writes an alert's state in one transaction that excludes every other
//!   writer of that alert name (SQLite: immediate transaction; PostgreSQL: an advisory
//!   lock per name, retried on serialization failures), so two processes never both
//!   notify. Readers (the dashboard) use `open_read_only` / `open_existing`, which never
//!   create or migrate. [`migrate_alert_store`] is the alert step of `recops storage
//!   migrate` (recops-tracking's `copy_table`: resumable, verified by counts and
//!   checksums). See docs/storage.md.
//! - [`AlertManager::send_pipeline_alert`] (and the free [`send_pipeline_alert`]) is the
//!   spec's pipeline helper.
//!
//! Everything is synchronous (jobs are synchronous code); do not call it from inside
//! an async runtime's worker thread (the Slack client runs its own small runtime).
//!
//! ```
//! use recops_alerting::{AlertManager, Channel, Severity};
//! use recops_core::Home;
//!
//! let dir = tempfile::tempdir()?;
//! let home = Home::new(dir.path());
//! // No config in the home: the shipped default applies; with no SMTP or Slack
//! // settings in the environment only the log channel delivers.
//! let alerts = AlertManager::load(&home)?;
//! let report = alerts.send_alert("model_deployed", "als_20250115_103000 is live",
//!                                Severity::Info, Some(&[Channel::Log]));
//! assert_eq!(report.success_map()[&Channel::Log], true);
//!
//! let triggered = alerts.check_alert_conditions(&[("avg_latency_ms", 215.3)]);
//! assert_eq!(triggered[0].message(), "high_latency triggered: avg_latency_ms=215.3 > 200");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod alertmanager;
mod config;
mod duration;
mod email;
mod error;
mod http;
mod manager;
mod migrate;
mod model;
mod notice;
mod report;
mod retry;
mod rules;
mod slack;
mod state;
mod store;
mod store_pg;

pub use config::{
    AlertRule, AlertmanagerConfig, AlertsConfig, DEFAULT_ALERTS, DEFAULT_ALERTS_CONFIG,
    DisabledChannel, EmailConfig, LoggingConfig, NotificationSettings, SPEC_LOG_FORMAT,
    SeverityChannels, SlackConfig, SmtpSecurity, default_metric_for,
};
pub use duration::{format_duration, parse_duration};
pub use error::{Error, Result};
pub use manager::{
    Action, AlertManager, AlertManagerBuilder, AlertOverview, Evaluation, LOGGER_NAME, RuleSummary,
    TEST_ALERT_NAME, send_pipeline_alert,
};
pub use migrate::{copy_alert_store, migrate_alert_store};
pub use model::{Channel, Comparison, Secret, Severity, Threshold};
pub use report::{Delivery, SendReport};
pub use retry::{RetryPolicy, SharedSleeper, Sleeper, ThreadSleeper};
pub use rules::{Metrics, TriggeredAlert};
pub use state::{AlertState, AlertStatus, Silence};
pub use store::{ALERT_STATE_SCHEMA, AlertStore, SqliteAlertStore, open_alert_store};
pub use store_pg::{PG_ALERT_MIGRATIONS, PgAlertStore};
