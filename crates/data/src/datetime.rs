//! `cmt_date` parsing and formatting: ISO 8601 dates and datetimes to microseconds
//! since the Unix epoch (UTC).
//!
//! A hand-written parser, because ingest parses one date per row (a million per full
//! refresh) and the general-purpose ones cost several times more.

use chrono::{DateTime, SecondsFormat};

const MICROS_PER_SECOND: i64 = 1_000_000;
const SECONDS_PER_DAY: i64 = 86_400;

/// Parses an ISO 8601 date or datetime into microseconds since the epoch (UTC).
///
/// Accepted, with surrounding whitespace ignored:
/// - `YYYY-MM-DD` (midnight);
/// - `YYYY-MM-DD HH:MM`, `YYYY-MM-DD HH:MM:SS`, with `T` instead of the space, and
///   a fraction of a second of up to 9 digits (`.5`, `.123456`; beyond microseconds
///   truncated);
/// - an optional offset after the time: `Z`, `+HH:MM`, `-HH:MM`, `+HHMM` or `+HH`.
///
/// A value without an offset is read as UTC (what pandas does with naive timestamps).
/// Returns `None` for anything else, including impossible dates (`2025-02-30`).
pub fn parse_cmt_date(text: &str) -> Option<i64> {
    parse_cmt_date_bytes(text.as_bytes())
}

/// [`parse_cmt_date`] on raw bytes (surrounding ASCII whitespace ignored).
pub(crate) fn parse_cmt_date_bytes(b: &[u8]) -> Option<i64> {
    let b = b.trim_ascii();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year = digits(&b[0..4])? as i64;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let mut seconds = days * SECONDS_PER_DAY;
    let mut micros = 0i64;
    let mut rest = &b[10..];
    if !rest.is_empty() {
        if rest[0] != b'T' && rest[0] != b't' && rest[0] != b' ' {
            return None;
        }
        rest = &rest[1..];
        if rest.len() < 5 || rest[2] != b':' {
            return None;
        }
        let hour = digits(&rest[0..2])?;
        let minute = digits(&rest[3..5])?;
        if hour > 23 || minute > 59 {
            return None;
        }
        seconds += i64::from(hour) * 3600 + i64::from(minute) * 60;
        rest = &rest[5..];
        if rest.first() == Some(&b':') {
            if rest.len() < 3 {
                return None;
            }
            let second = digits(&rest[1..3])?;
            if second > 59 {
                return None;
            }
            seconds += i64::from(second);
            rest = &rest[3..];
            if rest.first() == Some(&b'.') || rest.first() == Some(&b',') {
                let n = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
                if n == 0 || n > 9 {
                    return None;
                }
                let mut frac = 0i64;
                for (i, &c) in rest[1..=n].iter().enumerate() {
                    if i < 6 {
                        frac = frac * 10 + i64::from(c - b'0');
                    }
                }
                for _ in n..6 {
                    frac *= 10;
                }
                micros = frac;
                rest = &rest[1 + n..];
            }
        }
        seconds -= offset_seconds(rest)?;
    }
    seconds.checked_mul(MICROS_PER_SECOND)?.checked_add(micros)
}

/// Formats microseconds since the epoch as RFC 3339 UTC
/// (`2025-01-15T10:30:00.000000+00:00`).
pub fn format_micros(micros: i64) -> String {
    match DateTime::from_timestamp_micros(micros) {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::Micros, false),
        None => format!("{micros}us"),
    }
}

/// The offset suffix (`""`, `Z`, `+07:00`, `+0700`, `+07`) in seconds east of UTC.
fn offset_seconds(b: &[u8]) -> Option<i64> {
    match b {
        [] => Some(0),
        [b'Z' | b'z'] => Some(0),
        [sign @ (b'+' | b'-'), rest @ ..] => {
            let (h, m) = match rest {
                [h1, h2] => (digits(&[*h1, *h2])?, 0),
                [h1, h2, b':', m1, m2] | [h1, h2, m1, m2] => {
                    (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?)
                }
                _ => return None,
            };
            if h > 23 || m > 59 {
                return None;
            }
            let s = i64::from(h) * 3600 + i64::from(m) * 60;
            Some(if *sign == b'-' { -s } else { s })
        }
        _ => None,
    }
}

fn digits(b: &[u8]) -> Option<u32> {
    let mut v = 0u32;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Some(v)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, TimeZone, Utc};
    use proptest::prelude::*;

    fn micros(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, us: u32) -> i64 {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s)
            .unwrap()
            .timestamp_micros()
            + i64::from(us)
    }

    #[test]
    fn accepted_forms() {
        assert_eq!(
            parse_cmt_date("2025-01-15"),
            Some(micros(2025, 1, 15, 0, 0, 0, 0))
        );
        assert_eq!(
            parse_cmt_date(" 2025-01-15 10:30 "),
            Some(micros(2025, 1, 15, 10, 30, 0, 0))
        );
        assert_eq!(
            parse_cmt_date("2025-01-15T10:30:05"),
            Some(micros(2025, 1, 15, 10, 30, 5, 0))
        );
        assert_eq!(
            parse_cmt_date("2025-01-15 10:30:05.5"),
            Some(micros(2025, 1, 15, 10, 30, 5, 500_000))
        );
        assert_eq!(
            parse_cmt_date("2025-01-15T10:30:05.123456789Z"),
            Some(micros(2025, 1, 15, 10, 30, 5, 123_456))
        );
        assert_eq!(
            parse_cmt_date("2025-01-15T17:30:05+07:00"),
            Some(micros(2025, 1, 15, 10, 30, 5, 0))
        );
        assert_eq!(
            parse_cmt_date("2025-01-15T03:30:05-0700"),
            Some(micros(2025, 1, 15, 10, 30, 5, 0))
        );
        assert_eq!(
            parse_cmt_date("2024-02-29 00:00:00+00"),
            Some(micros(2024, 2, 29, 0, 0, 0, 0))
        );
        assert_eq!(parse_cmt_date("1969-12-31T23:59:59"), Some(-1_000_000));
    }

    #[test]
    fn rejected_forms() {
        for bad in [
            "",
            "2025",
            "2025-1-5",
            "15/01/2025",
            "2025-02-30",
            "2023-02-29",
            "2025-13-01",
            "2025-01-15 24:00",
            "2025-01-15 10:60",
            "2025-01-15 10:30:61",
            "2025-01-15X10:30",
            "2025-01-15 10:30:00.",
            "2025-01-15 10:30:00+7",
            "2025-01-15 10:30:00 +07:00",
            "2025-01-15 10",
            "abcd-ef-gh",
            "2025-01-15 10:30:00.1234567890",
        ] {
            assert_eq!(parse_cmt_date(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn format_is_rfc3339_utc() {
        assert_eq!(
            format_micros(micros(2025, 1, 15, 10, 30, 0, 7)),
            "2025-01-15T10:30:00.000007+00:00"
        );
    }

    proptest! {
        #[test]
        fn agrees_with_chrono(days in -40_000i64..80_000, secs in 0i64..86_400, us in 0i64..1_000_000, off_min in -720i64..=840) {
            let date = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap() + chrono::Duration::days(days);
            let t = date.and_hms_opt(0, 0, 0).unwrap() + chrono::Duration::seconds(secs) + chrono::Duration::microseconds(us);
            let expected = t.and_utc().timestamp_micros();
            let naive = t.format("%Y-%m-%d %H:%M:%S%.6f").to_string();
            prop_assert_eq!(parse_cmt_date(&naive), Some(expected));
            let off = chrono::FixedOffset::east_opt((off_min * 60) as i32).unwrap();
            let with_offset = t.and_utc().with_timezone(&off).to_rfc3339_opts(SecondsFormat::Micros, false);
            prop_assert_eq!(parse_cmt_date(&with_offset), Some(expected));
            prop_assert_eq!(parse_cmt_date(&date.format("%Y-%m-%d").to_string()), Some(days * 86_400_000_000));
        }
    }
}
