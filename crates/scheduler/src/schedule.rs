//! Cron schedules in a time zone, and the pure decisions taken on them: what is due,
//! what is caught up or skipped after a gap, when a job is overdue.
//!
//! Nothing here reads the clock or touches a process: every function takes `now`.

use std::fmt;

use chrono::{DateTime, Duration, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use serde::{Deserialize, Serialize};

/// A fire handled within this time of its scheduled instant runs as a normal `cron`
/// run; later than this (but within the catch-up grace) it is a `catch-up` run.
pub const ON_TIME_TOLERANCE: Duration = Duration::seconds(60);

/// The catch-up grace of a job that sets none is half its period, but at most this.
pub const MAX_DEFAULT_CATCH_UP_GRACE: Duration = Duration::hours(6);

/// Missed fires counted one by one at most; beyond this the count is reported as a
/// lower bound (a minutely job down for a year).
pub const MAX_COUNTED_MISSES: u64 = 10_000;

/// A 5-field cron expression (`minute hour day-of-month month day-of-week`) read in
/// a time zone.
///
/// Daylight-saving changes follow Vixie cron (the Open Cron Pattern Specification,
/// implemented by `croner`):
/// - a fixed time skipped by the spring-forward gap (02:30 when clocks jump from 02:00
///   to 03:00) fires once, at the first instant after the gap;
/// - a fixed time repeated by the fall-back overlap fires once, at its first occurrence;
/// - a schedule with a wildcard or step in the minute or hour field (`0 * * * *`)
///   fires at every real occurrence, so an hourly job stays hourly.
#[derive(Clone)]
pub struct CronSchedule {
    expression: String,
    cron: Cron,
    tz: Tz,
}

impl fmt::Debug for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CronSchedule")
            .field("expression", &self.expression)
            .field("tz", &self.tz.name())
            .finish()
    }
}

impl CronSchedule {
    /// Parses a 5-field cron expression for the time zone `tz`. The error says what is
    /// wrong and what was expected.
    pub fn parse(expression: &str, tz: Tz) -> Result<Self, String> {
        let trimmed = expression.trim();
        let fields = trimmed.split_whitespace().count();
        if !trimmed.starts_with('@') && fields != 5 {
            return Err(format!(
                "invalid cron expression {expression:?}: it has {fields} fields; expected 5 \
                 (minute hour day-of-month month day-of-week), e.g. \"0 2 * * *\""
            ));
        }
        let parser = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build();
        let cron = parser.parse(trimmed).map_err(|e| {
            format!(
                "invalid cron expression {expression:?}: {}; expected 5 fields (minute hour \
                 day-of-month month day-of-week), e.g. \"0 2 * * *\"",
                e.to_string().trim_end_matches('.')
            )
        })?;
        let schedule = CronSchedule {
            expression: trimmed.to_owned(),
            cron,
            tz,
        };
        // A pattern such as "0 0 30 2 *" parses but never fires.
        let reference = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).single();
        if reference.and_then(|r| schedule.next_after(r)).is_none() {
            return Err(format!(
                "cron expression {expression:?} never fires (no matching date exists)"
            ));
        }
        Ok(schedule)
    }

    /// The expression as written (trimmed).
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The time zone the expression is read in.
    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// The first fire strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_next_occurrence(&t.with_timezone(&self.tz), false)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }

    /// The newest fire at or before `t`.
    pub fn latest_at_or_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_previous_occurrence(&t.with_timezone(&self.tz), true)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }

    /// The next `n` fires strictly after `t`, in the schedule's time zone.
    pub fn upcoming(&self, t: DateTime<Utc>, n: usize) -> Vec<DateTime<Tz>> {
        let mut out = Vec::with_capacity(n);
        let mut cursor = t;
        while out.len() < n {
            match self.next_after(cursor) {
                Some(next) => {
                    out.push(next.with_timezone(&self.tz));
                    cursor = next;
                }
                None => break,
            }
        }
        out
    }

    /// The period of the schedule at the fire `fire`: the time to the fire after it.
    /// One day when there is none (cannot happen for a valid schedule).
    pub fn period_after(&self, fire: DateTime<Utc>) -> Duration {
        self.next_after(fire)
            .map(|n| n - fire)
            .unwrap_or(Duration::days(1))
    }

    /// The period of the schedule around `now`: from the last fire at or before `now`
    /// to the next one after it (a weekday job has a period of three days over a
    /// weekend).
    pub fn period_around(&self, now: DateTime<Utc>) -> Duration {
        match (self.latest_at_or_before(now), self.next_after(now)) {
            (Some(prev), Some(next)) => next - prev,
            (None, Some(next)) => self.period_after(next),
            _ => Duration::days(1),
        }
    }

    /// The default catch-up grace of a missed fire: half the period after it, capped at
    /// [`MAX_DEFAULT_CATCH_UP_GRACE`].
    pub fn default_catch_up_grace(&self, fire: DateTime<Utc>) -> Duration {
        (self.period_after(fire) / 2).min(MAX_DEFAULT_CATCH_UP_GRACE)
    }
}

/// Why a job runs; recorded as `trigger` in the run's metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trigger {
    /// Its cron time came (handled within [`ON_TIME_TOLERANCE`]).
    Cron,
    /// `scheduler --run-now JOB`.
    Manual,
    /// A fire missed while the scheduler was down (or busy), run late within the grace.
    CatchUp,
}

impl Trigger {
    /// `cron`, `manual` or `catch-up`.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Cron => "cron",
            Trigger::Manual => "manual",
            Trigger::CatchUp => "catch-up",
        }
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A fire to run now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DueFire {
    /// The scheduled instant.
    pub scheduled_at: DateTime<Utc>,
    /// `Cron` when on time, `CatchUp` when late within the grace.
    pub trigger: Trigger,
    /// How late it is handled.
    pub late_by: Duration,
}

/// Fires that passed without a run because they were older than the catch-up grace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SkippedFires {
    /// How many (at least this many when `capped`).
    pub count: u64,
    /// True when counting stopped at [`MAX_COUNTED_MISSES`].
    pub capped: bool,
    /// The oldest skipped fire.
    pub first: DateTime<Utc>,
    /// The newest skipped fire.
    pub last: DateTime<Utc>,
    /// The catch-up grace the newest missed fire was judged by.
    pub grace: Duration,
}

/// What to do about a job at `now`, given the newest fire already handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirePlan {
    /// The fire to run now, if any.
    pub due: Option<DueFire>,
    /// Fires that are skipped (never silently: the caller logs them).
    pub skipped: Option<SkippedFires>,
    /// The newest fire handled after this plan (the new `last_fire` of the job).
    pub last_fire: DateTime<Utc>,
    /// The next fire after `now`.
    pub next_fire: Option<DateTime<Utc>>,
}

/// Decides what to do about the fires of `schedule` after `last_fire` up to `now`.
///
/// - No fire in `(last_fire, now]`: nothing is due.
/// - Otherwise only the newest of them may run: on time (within
///   [`ON_TIME_TOLERANCE`]) as `cron`, later but within `grace` as `catch-up`; older
///   than `grace` it is skipped. All older fires are skipped too (a job runs once
///   however many of its fires were missed).
///
/// `grace` is the catch-up grace of the job (`None`: the schedule's default, half the
/// period capped at 6 h).
pub fn plan_fires(
    schedule: &CronSchedule,
    last_fire: DateTime<Utc>,
    now: DateTime<Utc>,
    grace: Option<Duration>,
) -> FirePlan {
    let next_fire = schedule.next_after(now);
    let newest = match schedule.latest_at_or_before(now) {
        Some(f) if f > last_fire => f,
        _ => {
            return FirePlan {
                due: None,
                skipped: None,
                last_fire,
                next_fire,
            };
        }
    };
    let grace = grace.unwrap_or_else(|| schedule.default_catch_up_grace(newest));
    let late_by = now - newest;
    let due = if late_by <= ON_TIME_TOLERANCE {
        Some(Trigger::Cron)
    } else if late_by <= grace {
        Some(Trigger::CatchUp)
    } else {
        None
    }
    .map(|trigger| DueFire {
        scheduled_at: newest,
        trigger,
        late_by,
    });
    // Count the missed fires older than the newest one (and the newest one when it is
    // skipped too).
    let mut count = 0u64;
    let mut first = None;
    let mut last = None;
    let mut capped = false;
    let mut cursor = last_fire;
    while let Some(f) = schedule.next_after(cursor) {
        if f > newest || (f == newest && due.is_some()) {
            break;
        }
        if count == MAX_COUNTED_MISSES {
            capped = true;
            break;
        }
        count += 1;
        first.get_or_insert(f);
        last = Some(f);
        cursor = f;
    }
    if capped {
        // Report the true newest skipped fire even when counting stopped early.
        last = if due.is_some() {
            schedule.latest_at_or_before(newest - Duration::seconds(1))
        } else {
            Some(newest)
        };
    }
    let skipped = match (first, last) {
        (Some(first), Some(last)) if count > 0 => Some(SkippedFires {
            count,
            capped,
            first,
            last,
            grace,
        }),
        _ => None,
    };
    FirePlan {
        due,
        skipped,
        last_fire: newest,
        next_fire,
    }
}

/// A job that has not succeeded for longer than twice its period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overdue {
    /// The last success, or when the scheduler first saw the job if it never succeeded.
    pub since: DateTime<Utc>,
    /// True when `since` is a last success (false: the job never succeeded).
    pub ever_succeeded: bool,
    /// The period of the schedule around now.
    pub period: Duration,
    /// How long it has been without success.
    pub silent_for: Duration,
}

/// The dead-man's switch: `Some` when `now - since` exceeds twice the period of the
/// schedule around `now` (see [`CronSchedule::period_around`]).
pub fn check_overdue(
    schedule: &CronSchedule,
    since: DateTime<Utc>,
    ever_succeeded: bool,
    now: DateTime<Utc>,
) -> Option<Overdue> {
    let period = schedule.period_around(now);
    let silent_for = now - since;
    (silent_for > period * 2).then_some(Overdue {
        since,
        ever_succeeded,
        period,
        silent_for,
    })
}

/// A short human duration: `45s`, `12m`, `2h 5m`, `3d 4h`.
pub fn human_duration(d: Duration) -> String {
    let secs = d.num_seconds().max(0);
    let (days, hours, mins, s) = (
        secs / 86_400,
        (secs % 86_400) / 3600,
        (secs % 3600) / 60,
        secs % 60,
    );
    match (days, hours, mins) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, m) if s == 0 => format!("{m}m"),
        (0, 0, m) => format!("{m}m {s}s"),
        (0, h, 0) => format!("{h}h"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, 0, _) => format!("{d}d"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

/// An instant in the schedule's time zone as `2025-01-15 02:00 +07` (with the zone's
/// abbreviation, `CET`/`CEST` in Berlin).
pub fn format_local(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    fn sched(expr: &str, tz: &str) -> CronSchedule {
        CronSchedule::parse(expr, tz.parse().unwrap()).unwrap()
    }

    #[test]
    fn daily_job_in_ho_chi_minh_is_utc_plus_7_every_day() {
        let s = sched("0 2 * * *", "Asia/Ho_Chi_Minh");
        // Across the dates Europe and America change their clocks: always 19:00 UTC.
        let fires = s.upcoming(utc(2025, 3, 28, 0, 0), 5);
        let got: Vec<_> = fires.iter().map(|f| f.with_timezone(&Utc)).collect();
        assert_eq!(
            got,
            vec![
                utc(2025, 3, 28, 19, 0),
                utc(2025, 3, 29, 19, 0),
                utc(2025, 3, 30, 19, 0),
                utc(2025, 3, 31, 19, 0),
                utc(2025, 4, 1, 19, 0),
            ]
        );
        assert!(got.windows(2).all(|w| w[1] - w[0] == Duration::hours(24)));
        assert_eq!(format_local(got[0], s.timezone()), "2025-03-29 02:00 +07");
        let nov = s.upcoming(utc(2025, 11, 1, 0, 0), 3);
        assert!(nov.windows(2).all(|w| w[1] - w[0] == Duration::hours(24)));
    }

    #[test]
    fn berlin_spring_forward_runs_a_skipped_time_once_after_the_gap() {
        // 2025-03-30: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist.
        let s = sched("30 2 * * *", "Europe/Berlin");
        let fires: Vec<_> = s
            .upcoming(utc(2025, 3, 28, 12, 0), 4)
            .into_iter()
            .map(|f| f.with_timezone(&Utc))
            .collect();
        assert_eq!(
            fires,
            vec![
                utc(2025, 3, 29, 1, 30), // 02:30 CET
                utc(2025, 3, 30, 1, 0),  // 03:00 CEST, right after the gap
                utc(2025, 3, 31, 0, 30), // 02:30 CEST
                utc(2025, 4, 1, 0, 30),
            ]
        );
        // The spec's data_refresh time (02:00) is in the gap too.
        let s = sched("0 2 * * *", "Europe/Berlin");
        assert_eq!(
            s.next_after(utc(2025, 3, 29, 12, 0)),
            Some(utc(2025, 3, 30, 1, 0))
        );
    }

    #[test]
    fn berlin_fall_back_runs_a_fixed_time_once_and_an_hourly_job_every_hour() {
        // 2025-10-26: 03:00 CEST falls back to 02:00 CET; 02:xx happens twice.
        let s = sched("30 2 * * *", "Europe/Berlin");
        let fires: Vec<_> = s
            .upcoming(utc(2025, 10, 25, 12, 0), 3)
            .into_iter()
            .map(|f| f.with_timezone(&Utc))
            .collect();
        assert_eq!(
            fires,
            vec![
                utc(2025, 10, 26, 0, 30), // 02:30 CEST, the first occurrence only
                utc(2025, 10, 27, 1, 30), // 02:30 CET
                utc(2025, 10, 28, 1, 30),
            ]
        );
        let hourly = sched("0 * * * *", "Europe/Berlin");
        let fires: Vec<_> = hourly
            .upcoming(utc(2025, 10, 25, 22, 30), 5)
            .into_iter()
            .map(|f| f.with_timezone(&Utc))
            .collect();
        // 01:00 CEST, 02:00 CEST, 02:00 CET, 03:00 CET, 04:00 CET: one hour apart.
        assert_eq!(fires[0], utc(2025, 10, 25, 23, 0));
        assert!(
            fires.windows(2).all(|w| w[1] - w[0] == Duration::hours(1)),
            "{fires:?}"
        );
    }

    #[test]
    fn new_york_dst_changes_keep_the_wall_clock_time() {
        let s = sched("0 5 * * *", "America/New_York");
        // 2025-03-09 spring forward: 05:00 EST (10:00 UTC) then 05:00 EDT (09:00 UTC).
        assert_eq!(
            s.next_after(utc(2025, 3, 8, 0, 0)),
            Some(utc(2025, 3, 8, 10, 0))
        );
        assert_eq!(
            s.next_after(utc(2025, 3, 8, 10, 0)),
            Some(utc(2025, 3, 9, 9, 0))
        );
        // 2025-11-02 fall back.
        assert_eq!(
            s.next_after(utc(2025, 11, 1, 12, 0)),
            Some(utc(2025, 11, 2, 10, 0))
        );
        // The period of a daily job is 23 h on the short day.
        assert_eq!(s.period_after(utc(2025, 3, 8, 10, 0)), Duration::hours(23));
    }

    #[test]
    fn weekly_spec_jobs_fire_on_their_weekdays() {
        let tue = sched("0 3 * * 2", "Asia/Ho_Chi_Minh");
        let next = tue.upcoming(utc(2025, 1, 15, 0, 0), 1)[0];
        assert_eq!(next.format("%a %H:%M").to_string(), "Tue 03:00");
        let sun = sched("0 3 * * 0", "Asia/Ho_Chi_Minh");
        assert_eq!(
            sun.upcoming(utc(2025, 1, 15, 0, 0), 1)[0]
                .format("%a")
                .to_string(),
            "Sun"
        );
        assert_eq!(tue.period_around(utc(2025, 1, 15, 0, 0)), Duration::days(7));
    }

    #[test]
    fn bad_expressions_are_rejected_with_the_reason() {
        let tz: Tz = "Asia/Ho_Chi_Minh".parse().unwrap();
        let e = CronSchedule::parse("0 0 2 * * *", tz).unwrap_err();
        assert!(e.contains("6 fields") && e.contains("expected 5"), "{e}");
        let e = CronSchedule::parse("61 2 * * *", tz).unwrap_err();
        assert!(e.contains("invalid cron expression"), "{e}");
        let e = CronSchedule::parse("0 0 30 2 *", tz).unwrap_err();
        assert!(e.contains("never fires"), "{e}");
        assert!(CronSchedule::parse("", tz).is_err());
        assert!(CronSchedule::parse("@daily", tz).is_ok());
    }

    #[test]
    fn an_on_time_fire_runs_as_cron() {
        let s = sched("0 2 * * *", "Asia/Ho_Chi_Minh");
        let fire = utc(2025, 1, 14, 19, 0);
        let plan = plan_fires(
            &s,
            fire - Duration::days(1),
            fire + Duration::seconds(1),
            None,
        );
        assert_eq!(
            plan.due,
            Some(DueFire {
                scheduled_at: fire,
                trigger: Trigger::Cron,
                late_by: Duration::seconds(1)
            })
        );
        assert_eq!(plan.skipped, None);
        assert_eq!(plan.last_fire, fire);
        assert_eq!(plan.next_fire, Some(fire + Duration::days(1)));
        // Nothing is due again until the next fire.
        let again = plan_fires(&s, plan.last_fire, fire + Duration::hours(5), None);
        assert_eq!(again.due, None);
        assert_eq!(again.skipped, None);
    }

    #[test]
    fn a_missed_fire_within_the_grace_is_caught_up_once() {
        let s = sched("0 2 * * *", "Asia/Ho_Chi_Minh");
        let fire = utc(2025, 1, 14, 19, 0);
        // Down from before yesterday's fire until 5 h 59 m after today's: the default
        // grace of a daily job is min(24 h / 2, 6 h) = 6 h.
        let plan = plan_fires(
            &s,
            fire - Duration::days(2),
            fire + Duration::minutes(359),
            None,
        );
        let due = plan.due.unwrap();
        assert_eq!(due.trigger, Trigger::CatchUp);
        assert_eq!(due.scheduled_at, fire);
        // Yesterday's fire is skipped, not run twice.
        let skipped = plan.skipped.unwrap();
        assert_eq!(skipped.count, 1);
        assert_eq!(skipped.first, fire - Duration::days(1));
        assert_eq!(skipped.grace, Duration::hours(6));
    }

    #[test]
    fn a_missed_fire_beyond_the_grace_is_skipped_not_run() {
        let s = sched("0 2 * * *", "Asia/Ho_Chi_Minh");
        let fire = utc(2025, 1, 14, 19, 0);
        let plan = plan_fires(
            &s,
            fire - Duration::days(1),
            fire + Duration::minutes(361),
            None,
        );
        assert_eq!(plan.due, None);
        let skipped = plan.skipped.unwrap();
        assert_eq!(
            (skipped.count, skipped.first, skipped.last),
            (1, fire, fire)
        );
        assert_eq!(plan.last_fire, fire);
        // An explicit grace overrides the default.
        let plan = plan_fires(
            &s,
            fire - Duration::days(1),
            fire + Duration::hours(8),
            Some(Duration::hours(10)),
        );
        assert_eq!(plan.due.unwrap().trigger, Trigger::CatchUp);
        // Hourly job: grace is 30 min.
        let h = sched("0 * * * *", "Asia/Ho_Chi_Minh");
        let plan = plan_fires(
            &h,
            fire - Duration::hours(1),
            fire + Duration::minutes(31),
            None,
        );
        assert_eq!(plan.due, None);
        assert_eq!(plan.skipped.unwrap().grace, Duration::minutes(30));
    }

    #[test]
    fn a_long_outage_counts_misses_with_a_bound() {
        let s = sched("* * * * *", "Asia/Ho_Chi_Minh");
        let start = utc(2025, 1, 1, 0, 0);
        let plan = plan_fires(&s, start, start + Duration::days(30), None);
        let skipped = plan.skipped.unwrap();
        assert!(skipped.capped);
        assert_eq!(skipped.count, MAX_COUNTED_MISSES);
        assert_eq!(skipped.first, start + Duration::minutes(1));
        // The newest fire is on time, so it runs and is not among the skipped.
        assert_eq!(plan.due.unwrap().trigger, Trigger::Cron);
        assert_eq!(
            skipped.last,
            start + Duration::days(30) - Duration::minutes(1)
        );
    }

    #[test]
    fn overdue_after_twice_the_period_without_success() {
        let s = sched("0 2 * * *", "Asia/Ho_Chi_Minh");
        let success = utc(2025, 1, 14, 19, 5);
        assert_eq!(
            check_overdue(&s, success, true, success + Duration::hours(47)),
            None
        );
        let o = check_overdue(&s, success, true, success + Duration::hours(49)).unwrap();
        assert_eq!(o.period, Duration::days(1));
        assert_eq!(o.silent_for, Duration::hours(49));
        // A weekday job is not overdue over a weekend: its period there is 3 days.
        let wd = sched("0 9 * * 1-5", "Asia/Ho_Chi_Minh");
        let fri = utc(2025, 1, 17, 2, 5); // Fri 09:05 +07
        assert_eq!(
            check_overdue(&wd, fri, true, fri + Duration::hours(70)),
            None
        );
    }

    #[test]
    fn human_durations() {
        assert_eq!(human_duration(Duration::seconds(90)), "1m 30s");
        assert_eq!(human_duration(Duration::seconds(45)), "45s");
        assert_eq!(human_duration(Duration::minutes(30)), "30m");
        assert_eq!(human_duration(Duration::minutes(125)), "2h 5m");
        assert_eq!(human_duration(Duration::hours(6)), "6h");
        assert_eq!(human_duration(Duration::hours(76)), "3d 4h");
    }

    proptest! {
        #[test]
        fn plans_never_run_a_fire_twice_and_account_for_every_fire(
            start_min in 0i64..200_000,
            gap_min in 0i64..20_000,
            expr_i in 0usize..4,
        ) {
            let exprs = ["0 2 * * *", "0 * * * *", "*/15 * * * *", "0 3 * * 2"];
            let s = sched(exprs[expr_i], "Europe/Berlin");
            let last = utc(2025, 1, 1, 0, 0) + Duration::minutes(start_min);
            let now = last + Duration::minutes(gap_min);
            let plan = plan_fires(&s, last, now, None);
            // Never earlier than the last handled fire, never in the future.
            prop_assert!(plan.last_fire >= last && plan.last_fire <= now);
            if let Some(d) = plan.due {
                prop_assert!(d.scheduled_at > last && d.scheduled_at <= now);
                prop_assert_eq!(d.scheduled_at, plan.last_fire);
            }
            // Planning again at the same instant finds nothing new.
            let again = plan_fires(&s, plan.last_fire, now, None);
            prop_assert!(again.due.is_none() && again.skipped.is_none());
            // Every fire in (last, now] is either run or skipped.
            let mut n = 0u64;
            let mut c = last;
            while let Some(f) = s.next_after(c) { if f > now { break; } n += 1; c = f; }
            let accounted = plan.skipped.map(|x| x.count).unwrap_or(0)
                + u64::from(plan.due.is_some());
            prop_assert_eq!(accounted, n);
            if let Some(next) = plan.next_fire { prop_assert!(next > now); }
        }
    }
}
