//! In-process metrics: Prometheus counters and histograms, and per-minute rollups that a
//! background task writes to `service_metrics.db` (never on the request path).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Utc};
use recops_tracking::{LatencyHistogram, MinuteRollup, truncate_minute};

/// Upper bounds (seconds) of the request-duration histogram buckets.
const LATENCY_BUCKETS_SECONDS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// The routes the service labels metrics with (anything else is `other`).
const ROUTES: [&str; 7] = [
    "/health",
    "/livez",
    "/readyz",
    "/recommend",
    "/reload_model",
    "/metrics",
    "other",
];

fn route_index(route: &str) -> usize {
    ROUTES
        .iter()
        .position(|r| *r == route)
        .unwrap_or(ROUTES.len() - 1)
}

#[derive(Debug, Default)]
struct RouteHistogram {
    buckets: [AtomicU64; LATENCY_BUCKETS_SECONDS.len()],
    count: AtomicU64,
    /// Sum in nanoseconds.
    sum_ns: AtomicU64,
}

/// Rollups being gathered, by (minute, route index, model id).
type RollupMap = BTreeMap<(DateTime<Utc>, usize, String), MinuteRollup>;

/// Service metrics. All counters are lock-free except the per-minute rollup map.
#[derive(Debug)]
pub(crate) struct Metrics {
    /// (route, status code) -> count.
    requests: Mutex<BTreeMap<(usize, u16), u64>>,
    durations: Vec<RouteHistogram>,
    fallbacks: AtomicU64,
    reload_success: AtomicU64,
    reload_failure: AtomicU64,
    rollups: Mutex<RollupMap>,
    started_at: DateTime<Utc>,
    conn: ConnCounters,
}

/// Connection and slow-client counters (the hardening of docs/operations-hardening.md).
#[derive(Debug, Default)]
struct ConnCounters {
    open: AtomicU64,
    cap_reached: AtomicU64,
    header_timeouts: AtomicU64,
    body_timeouts: AtomicU64,
    body_wait_count: AtomicU64,
    body_wait_ns: AtomicU64,
}

/// Decrements the open-connections gauge when the connection ends.
#[derive(Debug)]
pub(crate) struct OpenConnection<'a>(&'a AtomicU64);

impl Drop for OpenConnection<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    /// Empty metrics; `started_at` is reported as the process start time.
    pub(crate) fn new(started_at: DateTime<Utc>) -> Self {
        Metrics {
            requests: Mutex::new(BTreeMap::new()),
            durations: ROUTES.iter().map(|_| RouteHistogram::default()).collect(),
            fallbacks: AtomicU64::new(0),
            reload_success: AtomicU64::new(0),
            reload_failure: AtomicU64::new(0),
            rollups: Mutex::new(BTreeMap::new()),
            started_at,
            conn: ConnCounters::default(),
        }
    }

    /// Counts an open connection until the guard drops.
    pub(crate) fn connection_opened(&self) -> OpenConnection<'_> {
        self.conn.open.fetch_add(1, Ordering::Relaxed);
        OpenConnection(&self.conn.open)
    }

    /// The connection cap was reached (once per episode).
    pub(crate) fn connection_cap_reached(&self) {
        self.conn.cap_reached.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection was closed because its request headers did not arrive in time.
    pub(crate) fn header_timeout(&self) {
        self.conn.header_timeouts.fetch_add(1, Ordering::Relaxed);
    }

    /// A request was refused because its body did not arrive in time. Counted in
    /// `recops_http_requests_total` (code 408) but kept out of the latency figures,
    /// which measure the service, not the client.
    pub(crate) fn body_timeout(&self, route: &str) {
        self.conn.body_timeouts.fetch_add(1, Ordering::Relaxed);
        self.count_only(route, 408);
    }

    /// Counts a request answered before its handler ran (body refused), without
    /// latency.
    pub(crate) fn count_only(&self, route: &str, status: u16) {
        *self
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((route_index(route), status))
            .or_default() += 1;
    }

    /// Time spent waiting for a request body after its headers (reported apart from
    /// the request latency).
    pub(crate) fn body_wait(&self, seconds: f64) {
        self.conn.body_wait_count.fetch_add(1, Ordering::Relaxed);
        self.conn
            .body_wait_ns
            .fetch_add((seconds * 1e9) as u64, Ordering::Relaxed);
    }

    /// Records one finished request.
    pub(crate) fn observe(
        &self,
        at: DateTime<Utc>,
        route: &str,
        status: u16,
        seconds: f64,
        fallback: bool,
        model_id: &str,
    ) {
        let r = route_index(route);
        *self
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((r, status))
            .or_default() += 1;
        let h = &self.durations[r];
        for (i, le) in LATENCY_BUCKETS_SECONDS.iter().enumerate() {
            if seconds <= *le {
                h.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        h.count.fetch_add(1, Ordering::Relaxed);
        h.sum_ns
            .fetch_add((seconds * 1e9) as u64, Ordering::Relaxed);
        if fallback {
            self.fallbacks.fetch_add(1, Ordering::Relaxed);
        }
        let minute = truncate_minute(at);
        let mut rollups = self.rollups.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = rollups
            .entry((minute, r, model_id.to_owned()))
            .or_insert_with(|| MinuteRollup {
                minute,
                endpoint: ROUTES[r].to_owned(),
                model_id: model_id.to_owned(),
                // Labelled with the replica's instance when flushed.
                instance: String::new(),
                request_count: 0,
                error_count: 0,
                fallback_count: 0,
                latency: LatencyHistogram::new(),
            });
        entry.request_count += 1;
        if status >= 500 {
            entry.error_count += 1;
        }
        if fallback {
            entry.fallback_count += 1;
        }
        entry.latency.record(seconds * 1000.0);
    }

    /// Counts a model reload attempt.
    pub(crate) fn reload(&self, success: bool) {
        if success {
            self.reload_success.fetch_add(1, Ordering::Relaxed);
        } else {
            self.reload_failure.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Takes the rollups gathered so far (the store merges partial minutes).
    pub(crate) fn take_rollups(&self) -> Vec<MinuteRollup> {
        std::mem::take(&mut *self.rollups.lock().unwrap_or_else(PoisonError::into_inner))
            .into_values()
            .collect()
    }

    /// Puts rollups back after a failed write, so the next flush retries them.
    pub(crate) fn restore_rollups(&self, rollups: Vec<MinuteRollup>) {
        let mut map = self.rollups.lock().unwrap_or_else(PoisonError::into_inner);
        for r in rollups {
            let key = (r.minute, route_index(&r.endpoint), r.model_id.clone());
            match map.get_mut(&key) {
                Some(e) => {
                    e.request_count += r.request_count;
                    e.error_count += r.error_count;
                    e.fallback_count += r.fallback_count;
                    e.latency.merge(&r.latency);
                }
                None => {
                    map.insert(key, r);
                }
            }
        }
    }

    /// The Prometheus text exposition (format 0.0.4); every sample carries
    /// `instance="<instance>"`.
    pub(crate) fn render(
        &self,
        model: Option<(&str, &str, DateTime<Utc>)>,
        instance: &str,
    ) -> String {
        with_label(&self.render_samples(model), "instance", instance)
    }

    fn render_samples(&self, model: Option<(&str, &str, DateTime<Utc>)>) -> String {
        let mut out = String::with_capacity(4096);
        out.push_str("# HELP recops_http_requests_total HTTP requests by route and status code.\n");
        out.push_str("# TYPE recops_http_requests_total counter\n");
        for ((r, code), n) in self
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(
                out,
                "recops_http_requests_total{{route=\"{}\",code=\"{code}\"}} {n}",
                ROUTES[*r]
            );
        }
        out.push_str(
            "# HELP recops_http_request_duration_seconds Time to answer a request, by route.\n",
        );
        out.push_str("# TYPE recops_http_request_duration_seconds histogram\n");
        for (r, h) in self.durations.iter().enumerate() {
            let count = h.count.load(Ordering::Relaxed);
            if count == 0 {
                continue;
            }
            for (i, le) in LATENCY_BUCKETS_SECONDS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "recops_http_request_duration_seconds_bucket{{route=\"{}\",le=\"{le}\"}} {}",
                    ROUTES[r],
                    h.buckets[i].load(Ordering::Relaxed)
                );
            }
            let _ = writeln!(
                out,
                "recops_http_request_duration_seconds_bucket{{route=\"{}\",le=\"+Inf\"}} {count}",
                ROUTES[r]
            );
            let _ = writeln!(
                out,
                "recops_http_request_duration_seconds_sum{{route=\"{}\"}} {}",
                ROUTES[r],
                h.sum_ns.load(Ordering::Relaxed) as f64 / 1e9
            );
            let _ = writeln!(
                out,
                "recops_http_request_duration_seconds_count{{route=\"{}\"}} {count}",
                ROUTES[r]
            );
        }
        out.push_str("# HELP recops_recommend_fallbacks_total Recommendations answered with popular items (unknown user).\n");
        out.push_str("# TYPE recops_recommend_fallbacks_total counter\n");
        let _ = writeln!(
            out,
            "recops_recommend_fallbacks_total {}",
            self.fallbacks.load(Ordering::Relaxed)
        );
        out.push_str("# HELP recops_model_reloads_total Model reload attempts by result.\n");
        out.push_str("# TYPE recops_model_reloads_total counter\n");
        let _ = writeln!(
            out,
            "recops_model_reloads_total{{result=\"success\"}} {}",
            self.reload_success.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "recops_model_reloads_total{{result=\"failure\"}} {}",
            self.reload_failure.load(Ordering::Relaxed)
        );
        out.push_str("# HELP recops_model_info The model being served (value 1).\n");
        out.push_str("# TYPE recops_model_info gauge\n");
        out.push_str(
            "# HELP recops_model_loaded_timestamp_seconds When the served model was loaded.\n",
        );
        out.push_str("# TYPE recops_model_loaded_timestamp_seconds gauge\n");
        if let Some((id, ty, loaded_at)) = model {
            let _ = writeln!(
                out,
                "recops_model_info{{model_id=\"{id}\",model_type=\"{ty}\"}} 1"
            );
            let _ = writeln!(
                out,
                "recops_model_loaded_timestamp_seconds {}",
                loaded_at.timestamp_millis() as f64 / 1000.0
            );
        }
        let c = &self.conn;
        for (name, help, kind, v) in [
            (
                "recops_http_connections_open",
                "Client connections open now.",
                "gauge",
                c.open.load(Ordering::Relaxed),
            ),
            (
                "recops_http_connection_cap_reached_total",
                "Times the connection cap (service.max_connections) was reached.",
                "counter",
                c.cap_reached.load(Ordering::Relaxed),
            ),
            (
                "recops_http_header_timeouts_total",
                "Connections closed because request headers did not arrive in time.",
                "counter",
                c.header_timeouts.load(Ordering::Relaxed),
            ),
            (
                "recops_http_body_timeouts_total",
                "Requests refused (408) because the body did not arrive in time.",
                "counter",
                c.body_timeouts.load(Ordering::Relaxed),
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
            );
        }
        out.push_str("# HELP recops_http_request_body_wait_seconds Time spent receiving request bodies after the headers (client speed, not service latency).\n");
        out.push_str("# TYPE recops_http_request_body_wait_seconds summary\n");
        let _ = writeln!(
            out,
            "recops_http_request_body_wait_seconds_sum {}\nrecops_http_request_body_wait_seconds_count {}",
            c.body_wait_ns.load(Ordering::Relaxed) as f64 / 1e9,
            c.body_wait_count.load(Ordering::Relaxed)
        );
        out.push_str(
            "# HELP process_start_time_seconds Start time of the process since the Unix epoch.\n",
        );
        out.push_str("# TYPE process_start_time_seconds gauge\n");
        let _ = writeln!(
            out,
            "process_start_time_seconds {}",
            self.started_at.timestamp_millis() as f64 / 1000.0
        );
        out
    }
}

/// Adds `name="value"` first in the label set of every sample line of `text` (the
/// text exposition format; comment lines are kept as they are).
fn with_label(text: &str, name: &str, value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            c => escaped.push(c),
        }
    }
    let mut out = String::with_capacity(text.len() + 64 * (name.len() + escaped.len()));
    for line in text.lines() {
        match line.find(['{', ' ']) {
            Some(i) if !line.starts_with('#') => {
                let (metric, rest) = line.split_at(i);
                out.push_str(metric);
                match rest.strip_prefix('{') {
                    Some(labels) => {
                        let _ = write!(out, "{{{name}=\"{escaped}\",{labels}");
                    }
                    None => {
                        let _ = write!(out, "{{{name}=\"{escaped}\"}}{rest}");
                    }
                }
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn every_sample_carries_the_instance_label() {
        let t0 = Utc.with_ymd_and_hms(2025, 1, 15, 10, 0, 0).unwrap();
        let m = Metrics::new(t0);
        m.observe(t0, "/recommend", 200, 0.002, true, "als_1");
        let text = m.render(Some(("als_1", "als", t0)), "shop-1:8000");
        let samples: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .collect();
        assert!(samples.len() > 20, "{text}");
        for s in &samples {
            assert!(s.contains("{instance=\"shop-1:8000\""), "{s}");
        }
        assert!(text.contains("recops_recommend_fallbacks_total{instance=\"shop-1:8000\"} 1"));
        assert!(text.contains(
            "recops_http_requests_total{instance=\"shop-1:8000\",route=\"/recommend\",code=\"200\"} 1"
        ));
        assert!(text.contains("# TYPE recops_http_requests_total counter\n"));
        assert_eq!(
            with_label("a 1\nb{x=\"1\"} 2\n", "instance", "q\"\\"),
            "a{instance=\"q\\\"\\\\\"} 1\nb{instance=\"q\\\"\\\\\",x=\"1\"} 2\n"
        );
    }

    #[test]
    fn observations_feed_counters_histograms_and_minute_rollups() {
        let t0 = Utc.with_ymd_and_hms(2025, 1, 15, 10, 0, 0).unwrap();
        let m = Metrics::new(t0);
        m.observe(t0, "/recommend", 200, 0.002, false, "als_1");
        m.observe(
            t0 + chrono::Duration::seconds(10),
            "/recommend",
            200,
            0.004,
            true,
            "als_1",
        );
        m.observe(
            t0 + chrono::Duration::seconds(70),
            "/recommend",
            500,
            0.1,
            false,
            "als_1",
        );
        m.observe(t0, "/nope", 404, 0.0001, false, "");
        m.reload(true);
        let text = m.render_samples(Some(("als_1", "als", t0)));
        assert!(
            text.contains("recops_http_requests_total{route=\"/recommend\",code=\"200\"} 2"),
            "{text}"
        );
        assert!(text.contains("recops_http_requests_total{route=\"other\",code=\"404\"} 1"));
        assert!(text.contains(
            "recops_http_request_duration_seconds_bucket{route=\"/recommend\",le=\"0.0025\"} 1"
        ));
        assert!(
            text.contains("recops_http_request_duration_seconds_count{route=\"/recommend\"} 3")
        );
        assert!(text.contains("recops_recommend_fallbacks_total 1"));
        assert!(text.contains("recops_model_reloads_total{result=\"success\"} 1"));
        assert!(text.contains("recops_model_info{model_id=\"als_1\",model_type=\"als\"} 1"));
        let rollups = m.take_rollups();
        let rec: Vec<_> = rollups
            .iter()
            .filter(|r| r.endpoint == "/recommend")
            .collect();
        assert_eq!(rec.len(), 2);
        assert_eq!(
            (
                rec[0].request_count,
                rec[0].fallback_count,
                rec[0].error_count
            ),
            (2, 1, 0)
        );
        assert_eq!((rec[1].request_count, rec[1].error_count), (1, 1));
        assert!(m.take_rollups().is_empty());
        m.restore_rollups(rollups);
        assert_eq!(m.take_rollups().len(), 3);
    }
}
