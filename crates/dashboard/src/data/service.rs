//! `/service`: requests per minute, p50/p95/p99 latency, error and fallback rates over
//! 1 h / 24 h / 7 d / 30 d from `service_metrics.db`, with model reloads marked.
//!
//! The rollups are aggregated in SQL into at most [`MAX_BUCKETS`] buckets per range
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

fn read_buckets(ctx: &Ctx, range: Range) -> Panel<Vec<Bucket>> {
    let b = range.bucket_seconds();
    let from = ctx.now() - chrono::Duration::seconds(range.seconds());
    store::read(&ctx.home.service_db(), HINT, Vec::is_empty, |c| {
        let mut st = c.prepare_cached(
            "SELECT (unixepoch(substr(minute, 1, 19)) / ?2) * ?2 AS t, sum(request_count), \
             sum(error_count), sum(fallback_count), \
             sum(latency_p50_ms * request_count) / nullif(sum(CASE WHEN latency_p50_ms IS NOT NULL THEN request_count END), 0), \
             max(latency_p95_ms), max(latency_p99_ms) \
             FROM request_rollups WHERE minute >= ?1 AND endpoint = '/recommend' GROUP BY t ORDER BY t",
        )?;
        st.query_map(
            rusqlite::params![recops_core::format_timestamp(from), b],
            |r| {
                Ok(Bucket {
                    t: r.get(0)?,
                    requests: store::count(r, 1)?,
                    errors: store::count(r, 2)?,
                    fallbacks: store::count(r, 3)?,
                    p50_ms: r.get(4)?,
                    p95_ms: r.get(5)?,
                    p99_ms: r.get(6)?,
                })
            },
        )?
        .collect()
    })
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

/// Deployments and rollbacks in the range, from `deployment_history.json`.
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
