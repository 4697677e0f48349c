//! `/service`: requests per minute, p50/p95/p99 latency, error and fallback rates over
//! 1 h / 24 h / 7 d / 30 d from the rollup store (`service_metrics.db` or PostgreSQL),
//! with model reloads marked.
//!
//! The rollups are folded into at most [`MAX_BUCKETS`] buckets per range
//! (30 days of minutes become 720 buckets of 60 min): counts are summed, p50 is the
//! request-weighted mean of the minutes' p50, p95 and p99 the worst minute's, so a
//! latency spike is never averaged away.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::{Ctx, When};
use crate::charts::{Chart, Mark};
use crate::store::{self, Panel};

const HINT: &str = "no service metrics yet: start the recommender and send it requests";
/// Most buckets in a chart.
pub(crate) const MAX_BUCKETS: i64 = 720;

/// The time ranges offered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Range {
    /// Last hour.
    #[serde(rename = "1h")]
    Hour,
    /// Last day.
    #[default]
    #[serde(rename = "24h")]
    Day,
    /// Last week.
    #[serde(rename = "7d")]
    Week,
    /// Last 30 days.
    #[serde(rename = "30d")]
    Month,
}

impl Range {
    /// Every range, in order.
    pub(crate) const ALL: [Range; 4] = [Range::Hour, Range::Day, Range::Week, Range::Month];

    /// Its length in seconds.
    pub(crate) fn seconds(self) -> i64 {
        match self {
            Range::Hour => 3_600,
            Range::Day => 86_400,
            Range::Week => 7 * 86_400,
            Range::Month => 30 * 86_400,
        }
    }

    /// `1h`, `24h`, `7d`, `30d`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Range::Hour => "1h",
            Range::Day => "24h",
            Range::Week => "7d",
            Range::Month => "30d",
        }
    }

    /// Bucket width in seconds: a whole number of minutes, at most [`MAX_BUCKETS`].
    pub(crate) fn bucket_seconds(self) -> i64 {
        let minutes = (self.seconds() / 60 + MAX_BUCKETS - 1) / MAX_BUCKETS;
        minutes.max(1) * 60
    }
}

/// The query string of `/service`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct ServiceQuery {
    pub(crate) range: Range,
}

/// One bucket.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Bucket {
    /// Start, Unix seconds.
    pub(crate) t: i64,
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    pub(crate) fallbacks: u64,
    pub(crate) p50_ms: Option<f64>,
    pub(crate) p95_ms: Option<f64>,
    pub(crate) p99_ms: Option<f64>,
}

/// Totals of the range.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Totals {
    pub(crate) requests: u64,
    pub(crate) requests_per_minute: f64,
    pub(crate) error_rate: Option<f64>,
    pub(crate) fallback_rate: Option<f64>,
    pub(crate) worst_p99_ms: Option<f64>,
    pub(crate) last_minute: Option<When>,
}

/// Everything `/service` shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct ServiceView {
    pub(crate) range: Range,
    pub(crate) bucket_seconds: i64,
    pub(crate) totals: Panel<Totals>,
}

/// Which chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ServiceChart {
    /// Requests per minute.
    Requests,
    /// p50 / p95 / p99.
    Latency,
    /// Error and fallback rates.
    Rates,
}

/// Reads `/service`.
pub(crate) fn load(ctx: &Ctx, q: ServiceQuery) -> ServiceView {
    let buckets = buckets(ctx, q.range);
    ServiceView {
        range: q.range,
        bucket_seconds: q.range.bucket_seconds(),
        totals: (*buckets).clone().map(|b| totals(ctx, &b, q.range)),
    }
}

/// One chart of the range.
pub(crate) fn chart(ctx: &Ctx, range: Range, which: ServiceChart) -> Panel<Chart> {
    let per_minute = 60.0 / range.bucket_seconds() as f64;
    let marks = reload_marks(ctx, range);
    (*buckets(ctx, range)).clone().map(|b| {
        let series = |label: &str, f: &dyn Fn(&Bucket) -> Option<f64>| {
            let points = b.iter().filter_map(|x| Some((x.t as f64, f(x)?))).collect();
            (label.to_owned(), points)
        };
        let rate = |n: u64, d: u64| (d > 0).then(|| n as f64 / d as f64);
        let (label, s) = match which {
            ServiceChart::Requests => (
                "requests / min",
                vec![series("requests / min", &|x| {
                    Some(x.requests as f64 * per_minute)
                })],
            ),
            ServiceChart::Latency => (
                "latency (ms)",
                vec![
                    series("p50", &|x| x.p50_ms),
                    series("p95", &|x| x.p95_ms),
                    series("p99", &|x| x.p99_ms),
                ],
            ),
            ServiceChart::Rates => (
                "rate",
                vec![
                    series("error rate", &|x| rate(x.errors, x.requests)),
                    series("fallback rate", &|x| rate(x.fallbacks, x.requests)),
                ],
            ),
        };
        let mut chart = Chart::time(label).with_series(s);
        chart.marks = marks.clone();
        chart
    })
}

/// The buckets of `range`, cached for a few seconds (the three charts and the totals
/// of one page share one query).
fn buckets(ctx: &Ctx, range: Range) -> Arc<Panel<Vec<Bucket>>> {
    let key = format!("service:{}", range.as_str());
    ctx.cache
        .get_or(&key, Duration::from_secs(5), || read_buckets(ctx, range))
}

/// Reads the minutes of `range` in time order (through the rollup store, SQLite or
/// PostgreSQL) and folds them into buckets. (Grouping in SQL sorts all 43,200 minutes of 30 days in a temporary
/// b-tree: 3-4x slower.)
fn read_buckets(ctx: &Ctx, range: Range) -> Panel<Vec<Bucket>> {
    let from = ctx.now() - chrono::Duration::seconds(range.seconds());
    store::read_rollups(&ctx.home, HINT, Vec::is_empty, |s| {
        let mut folder = Folder::new(range.bucket_seconds());
        for m in s.summaries_since(from, "/recommend")? {
            let Some(t) = minute_epoch(&m.minute) else {
                continue;
            };
            folder.push(
                t,
                &Bucket {
                    t,
                    requests: m.request_count,
                    errors: m.error_count,
                    fallbacks: m.fallback_count,
                    p50_ms: m.p50_ms,
                    p95_ms: m.p95_ms,
                    p99_ms: m.p99_ms,
                },
            );
        }
        Ok(folder.finish())
    })
}

/// Unix seconds of a stored minute (`2025-01-15T10:30:00.000000+00:00`): the fixed
/// layout of `format_timestamp` is read directly, anything else parsed in full.
fn minute_epoch(s: &str) -> Option<i64> {
    let fast = || {
        let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<u32>().ok();
        if s.len() != 32 || !s.ends_with("+00:00") {
            return None;
        }
        let date = chrono::NaiveDate::from_ymd_opt(n(0..4)? as i32, n(5..7)?, n(8..10)?)?;
        Some(
            date.and_hms_opt(n(11..13)?, n(14..16)?, n(17..19)?)?
                .and_utc()
                .timestamp(),
        )
    };
    fast().or_else(|| recops_core::parse_timestamp(s).map(|t| t.timestamp()))
}

/// Folds minutes, in time order, into buckets of a fixed width.
struct Folder {
    width: i64,
    done: Vec<Bucket>,
    current: Option<Bucket>,
    /// Sum of p50 x requests and of the requests with a p50, of the current bucket.
    p50_weighted: (f64, u64),
}

impl Folder {
    fn new(width: i64) -> Self {
        Folder {
            width: width.max(1),
            done: Vec::new(),
            current: None,
            p50_weighted: (0.0, 0),
        }
    }

    fn push(&mut self, t: i64, m: &Bucket) {
        let start = t.div_euclid(self.width) * self.width;
        if self.current.as_ref().is_some_and(|c| c.t != start) {
            self.flush();
        }
        let b = self.current.get_or_insert(Bucket {
            t: start,
            requests: 0,
            errors: 0,
            fallbacks: 0,
            p50_ms: None,
            p95_ms: None,
            p99_ms: None,
        });
        b.requests += m.requests;
        b.errors += m.errors;
        b.fallbacks += m.fallbacks;
        b.p95_ms = max(b.p95_ms, m.p95_ms);
        b.p99_ms = max(b.p99_ms, m.p99_ms);
        if let Some(p50) = m.p50_ms {
            self.p50_weighted.0 += p50 * m.requests as f64;
            self.p50_weighted.1 += m.requests;
        }
    }

    fn flush(&mut self) {
        if let Some(mut b) = self.current.take() {
            let (sum, n) = std::mem::take(&mut self.p50_weighted);
            b.p50_ms = (n > 0).then(|| sum / n as f64);
            self.done.push(b);
        }
    }

    fn finish(mut self) -> Vec<Bucket> {
        self.flush();
        self.done
    }
}

fn max(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

fn totals(ctx: &Ctx, b: &[Bucket], range: Range) -> Totals {
    let sum = |f: fn(&Bucket) -> u64| b.iter().map(f).sum::<u64>();
    let (requests, errors, fallbacks) =
        (sum(|x| x.requests), sum(|x| x.errors), sum(|x| x.fallbacks));
    let rate = |n: u64| (requests > 0).then(|| n as f64 / requests as f64);
    Totals {
        requests,
        requests_per_minute: requests as f64 / (range.seconds() as f64 / 60.0),
        error_rate: rate(errors),
        fallback_rate: rate(fallbacks),
        worst_p99_ms: b.iter().filter_map(|x| x.p99_ms).reduce(f64::max),
        last_minute: b
            .last()
            .and_then(|x| chrono::DateTime::<Utc>::from_timestamp(x.t, 0))
            .map(|t| ctx.when(t)),
    }
}

/// Deployments and rollbacks in the range, from the deployment history.
fn reload_marks(ctx: &Ctx, range: Range) -> Vec<Mark> {
    let from = ctx.now() - chrono::Duration::seconds(range.seconds());
    let history = super::models::history(ctx);
    let Some(history) = history.data() else {
        return Vec::new();
    };
    history
        .iter()
        .filter_map(|d| {
            let t = recops_core::parse_timestamp(&d.timestamp)?;
            (t >= from).then(|| Mark {
                x: t.timestamp() as f64,
                label: format!("{:?} {}", d.action, d.model_id).to_lowercase(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minute(t: i64, requests: u64, p50: f64, p99: f64) -> Bucket {
        Bucket {
            t,
            requests,
            errors: 1,
            fallbacks: 0,
            p50_ms: Some(p50),
            p95_ms: None,
            p99_ms: Some(p99),
        }
    }

    #[test]
    fn minutes_fold_into_buckets_with_weighted_p50_and_worst_p99() {
        let mut f = Folder::new(3_600);
        f.push(0, &minute(0, 10, 10.0, 50.0));
        f.push(60, &minute(60, 30, 30.0, 400.0));
        f.push(3_600, &minute(3_600, 5, 20.0, 30.0));
        let b = f.finish();
        assert_eq!(b.len(), 2);
        assert_eq!((b[0].t, b[0].requests, b[0].errors), (0, 40, 2));
        assert_eq!(b[0].p50_ms, Some(25.0));
        assert_eq!(b[0].p99_ms, Some(400.0));
        assert_eq!((b[1].t, b[1].requests, b[1].p50_ms), (3_600, 5, Some(20.0)));
    }

    #[test]
    fn stored_minutes_parse_fast_and_other_offsets_still_parse() {
        assert_eq!(
            minute_epoch("1970-01-01T01:02:00.000000+00:00"),
            Some(3_720)
        );
        assert_eq!(minute_epoch("1970-01-01T03:02:00+02:00"), Some(3_720));
        assert_eq!(minute_epoch("garbage"), None);
    }

    #[test]
    fn every_range_has_at_most_720_buckets_of_whole_minutes() {
        for r in Range::ALL {
            let b = r.bucket_seconds();
            assert_eq!(b % 60, 0);
            assert!(r.seconds() / b <= MAX_BUCKETS, "{r:?}");
        }
        assert_eq!(Range::Hour.bucket_seconds(), 60);
        assert_eq!(Range::Month.bucket_seconds(), 3_600);
    }
}
