//! Times as people read them: in the configured time zone (the scheduler's), and
//! relative to now ("3 min ago", "in 2 h").

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

/// Formats `t` in `tz`: `2025-01-15 17:30 +07`.
pub(crate) fn local(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string()
}

/// `t` relative to `now`: `just now`, `5 min ago`, `in 3 h`, `12 d ago`.
pub(crate) fn relative(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - t).num_seconds();
    let span = span(secs.unsigned_abs());
    match secs {
        -44..=44 => "just now".to_owned(),
        s if s > 0 => format!("{span} ago"),
        _ => format!("in {span}"),
    }
}

fn span(secs: u64) -> String {
    match secs {
        0..=89 => format!("{secs} s"),
        90..=5_399 => format!("{} min", (secs + 30) / 60),
        5_400..=129_599 => format!("{} h", (secs + 1_800) / 3_600),
        _ => format!("{} d", (secs + 43_200) / 86_400),
    }
}

/// A duration in seconds for tables: `850 ms`, `42.0 s`, `3 min 12 s`, `2 h 05 min`.
pub(crate) fn duration(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "-".to_owned();
    }
    let whole = secs as u64;
    match whole {
        0 => format!("{:.0} ms", secs * 1000.0),
        1..=59 => format!("{secs:.1} s"),
        60..=3_599 => format!("{} min {} s", whole / 60, whole % 60),
        _ => format!("{} h {:02} min", whole / 3_600, (whole % 3_600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn local_time_uses_the_zone_and_relative_times_read_naturally() {
        let t = Utc.with_ymd_and_hms(2025, 1, 15, 10, 30, 0).unwrap();
        assert_eq!(
            local(t, chrono_tz::Asia::Ho_Chi_Minh),
            "2025-01-15 17:30 +07"
        );
        assert_eq!(relative(t, t + chrono::Duration::seconds(10)), "just now");
        assert_eq!(relative(t, t + chrono::Duration::minutes(5)), "5 min ago");
        assert_eq!(relative(t + chrono::Duration::hours(3), t), "in 3 h");
        assert_eq!(relative(t, t + chrono::Duration::days(12)), "12 d ago");
        assert_eq!(duration(0.25), "250 ms");
        assert_eq!(duration(192.0), "3 min 12 s");
        assert_eq!(duration(f64::NAN), "-");
    }
}
