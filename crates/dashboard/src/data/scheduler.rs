//! `/scheduler`: jobs, cron, next fires in the configured time zone, last result,
//! running and overdue jobs.

use recops_scheduler::{
    JobState, LoadedConfig, PgStateStore, SchedulerStateStore, SqliteStateStore,
};
use serde::Serialize;

use super::{Ctx, When};
use crate::store::{self, Panel};

/// One job.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct JobRow {
    pub(crate) job: String,
    pub(crate) enabled: bool,
    pub(crate) cron: String,
    pub(crate) timeout_minutes: f64,
    pub(crate) next_fires: Vec<When>,
    pub(crate) last_status: Option<String>,
    pub(crate) last_finished: Option<When>,
    pub(crate) last_success: Option<When>,
    pub(crate) last_run_id: Option<String>,
    pub(crate) running_since: Option<When>,
    pub(crate) overdue_since: Option<When>,
}

/// Everything `/scheduler` shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct SchedulerView {
    pub(crate) timezone: String,
    pub(crate) config_file: String,
    pub(crate) jobs: Panel<Vec<JobRow>>,
    /// The state database's panel (empty until the scheduler has run).
    pub(crate) state: Panel<usize>,
}

#[derive(Debug, Default, Clone)]
struct StateRow {
    job: String,
    last_status: Option<String>,
    last_finished: Option<String>,
    last_success: Option<String>,
    last_run_id: Option<String>,
    running_since: Option<String>,
    overdue_since: Option<String>,
}

/// Reads `/scheduler`.
pub(crate) fn load(ctx: &Ctx) -> SchedulerView {
    let config = match LoadedConfig::load(&ctx.home, &ctx.bin_dir) {
        Ok(c) => c,
        Err(e) => {
            return SchedulerView {
                timezone: ctx.tz.name().to_owned(),
                config_file: ctx.home.scheduler_config().display().to_string(),
                jobs: Panel::Unavailable {
                    message: e.to_string(),
                },
                state: Panel::empty(""),
            };
        }
    };
    let hint = "the scheduler has not run yet: start `scheduler` to fire the jobs";
    let states = read_states(&ctx.home, hint);
    let known = states.data().cloned().unwrap_or_default();
    let jobs: Vec<JobRow> = config
        .jobs
        .iter()
        .map(|j| job_row(ctx, j, &known))
        .collect();
    let empty = jobs.is_empty();
    SchedulerView {
        timezone: config.timezone.name().to_owned(),
        config_file: config.file.display().to_string(),
        jobs: Panel::of(
            jobs,
            empty,
            "no jobs configured in config/scheduler_config.json",
        ),
        state: states.map(|s| s.len()),
    }
}

fn job_row(ctx: &Ctx, j: &recops_scheduler::JobSpec, known: &[StateRow]) -> JobRow {
    let st = known
        .iter()
        .find(|s| s.job == j.name)
        .cloned()
        .unwrap_or_default();
    let when = |s: Option<String>| s.and_then(|s| ctx.when_str(&s));
    let next_fires = if j.enabled {
        j.schedule
            .upcoming(ctx.now(), 3)
            .into_iter()
            .map(|t| ctx.when(t.with_timezone(&chrono::Utc)))
            .collect()
    } else {
        Vec::new()
    };
    JobRow {
        job: j.name.clone(),
        enabled: j.enabled,
        cron: j.schedule.expression().to_owned(),
        timeout_minutes: j.timeout.num_seconds() as f64 / 60.0,
        next_fires,
        last_status: st.last_status,
        last_finished: when(st.last_finished),
        last_success: when(st.last_success),
        last_run_id: st.last_run_id,
        running_since: when(st.running_since),
        overdue_since: when(st.overdue_since),
    }
}

/// The scheduler state through [`SchedulerStateStore`], opened for reading only (the
/// SQLite file or the PostgreSQL tables of `storage.url`): nothing is created.
fn read_states(home: &recops_core::Home, hint: &str) -> Panel<Vec<StateRow>> {
    let opened: recops_scheduler::Result<Option<Box<dyn SchedulerStateStore>>> =
        match store::postgres_url(&home.logs_dir()) {
            Some(url) => store::pg_database(&url)
                .map_err(recops_scheduler::Error::from)
                .and_then(|db| PgStateStore::open_existing(&db))
                .map(|s| s.map(|s| Box::new(s) as Box<dyn SchedulerStateStore>)),
            None => SqliteStateStore::open_read_only(&home.scheduler_state_db())
                .map(|s| s.map(|s| Box::new(s) as Box<dyn SchedulerStateStore>)),
        };
    match opened.and_then(|s| s.map(|s| s.all()).transpose()) {
        Ok(None) => Panel::empty(hint),
        Ok(Some(states)) => {
            let rows: Vec<StateRow> = states.into_iter().map(state_row).collect();
            let empty = rows.is_empty();
            Panel::of(rows, empty, hint)
        }
        Err(
            recops_scheduler::Error::Core(recops_core::Error::Sqlite { path, source })
            | recops_scheduler::Error::Tracking(recops_tracking::Error::Core(
                recops_core::Error::Sqlite { path, source },
            )),
        ) => store::classify(&path, source, hint),
        Err(e) => {
            tracing::warn!(error = %e, "dashboard cannot read the scheduler state");
            Panel::Unavailable {
                message: format!("cannot read the scheduler state: {e}"),
            }
        }
    }
}

fn state_row(s: JobState) -> StateRow {
    let ts = |t: Option<chrono::DateTime<chrono::Utc>>| t.map(recops_core::format_timestamp);
    StateRow {
        job: s.job,
        last_status: s.last_status,
        last_finished: ts(s.last_finished),
        last_success: ts(s.last_success),
        last_run_id: s.last_run_id,
        running_since: ts(s.running.map(|r| r.since)),
        overdue_since: ts(s.overdue_since),
    }
}

/// The next fires of every enabled job, soonest first (for the overview).
pub(crate) fn next_jobs(ctx: &Ctx, n: usize) -> Panel<Vec<(String, When)>> {
    let config = match LoadedConfig::load(&ctx.home, &ctx.bin_dir) {
        Ok(c) => c,
        Err(e) => {
            return Panel::Unavailable {
                message: e.to_string(),
            };
        }
    };
    let mut next: Vec<(String, chrono::DateTime<chrono::Utc>)> = config
        .jobs
        .iter()
        .filter(|j| j.enabled)
        .filter_map(|j| {
            let t = j.schedule.upcoming(ctx.now(), 1).into_iter().next()?;
            Some((j.name.clone(), t.with_timezone(&chrono::Utc)))
        })
        .collect();
    next.sort_by_key(|(_, t)| *t);
    let rows: Vec<(String, When)> = next
        .into_iter()
        .take(n)
        .map(|(j, t)| (j, ctx.when(t)))
        .collect();
    let empty = rows.is_empty();
    Panel::of(
        rows,
        empty,
        "no enabled jobs in config/scheduler_config.json",
    )
}
