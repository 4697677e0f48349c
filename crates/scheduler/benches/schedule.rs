//! Cost of the scheduler's per-tick decisions: next fire, a fire plan, a plan after a
//! long outage (missed fires counted), and three upcoming fires for `--list`.
#![allow(missing_docs, clippy::unwrap_used)]

use chrono::{Duration, TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use recops_scheduler::{CronSchedule, plan_fires};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let tz = chrono_tz::Europe::Berlin;
    let daily = CronSchedule::parse("0 2 * * *", tz).unwrap();
    let hourly = CronSchedule::parse("0 * * * *", tz).unwrap();
    let dst = Utc.with_ymd_and_hms(2025, 3, 29, 12, 0, 0).unwrap();
    c.bench_function(
        "next_after daily into the spring-forward gap (Berlin)",
        |b| b.iter(|| daily.next_after(black_box(dst))),
    );
    let t = Utc.with_ymd_and_hms(2025, 1, 15, 12, 0, 0).unwrap();
    c.bench_function("next_after daily", |b| {
        b.iter(|| daily.next_after(black_box(t)))
    });
    c.bench_function("plan_fires daily, nothing due", |b| {
        b.iter(|| plan_fires(&daily, black_box(t), t + Duration::hours(3), None))
    });
    c.bench_function("plan_fires hourly after a 7-day outage", |b| {
        b.iter(|| plan_fires(&hourly, black_box(t), t + Duration::days(7), None))
    });
    c.bench_function("upcoming 3 fires weekly", |b| {
        let weekly = CronSchedule::parse("0 3 * * 2", tz).unwrap();
        b.iter(|| weekly.upcoming(black_box(t), 3))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
