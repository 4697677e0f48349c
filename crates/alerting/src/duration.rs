//! Human durations for silences: `2h`, `30m`, `1d`, `1h30m`, `90s`.

use chrono::Duration;

use crate::error::{Error, Result};

/// Parses `2h`, `30m`, `1d`, `45s`, `1w` and combinations (`1h30m`). A bare number is
/// minutes. The result is positive and at most 366 days.
pub fn parse_duration(text: &str) -> Result<Duration> {
    let bad = |why: &str| Error::InvalidInput {
        what: "duration",
        message: format!("{text:?}: {why} (expected e.g. 2h, 30m, 1d, 1h30m)"),
    };
    let s = text.trim().to_ascii_lowercase();
    if s.is_empty() {
        return Err(bad("empty"));
    }
    if let Ok(minutes) = s.parse::<u32>() {
        return check(Duration::minutes(i64::from(minutes)), &bad);
    }
    let mut total = Duration::zero();
    let mut number = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        if c.is_whitespace() {
            continue;
        }
        let n: i64 = number.parse().map_err(|_| bad("a unit without a number"))?;
        if n > 1_000_000 {
            return Err(bad("too long"));
        }
        number.clear();
        total += match c {
            's' => Duration::seconds(n),
            'm' => Duration::minutes(n),
            'h' => Duration::hours(n),
            'd' => Duration::days(n),
            'w' => Duration::weeks(n),
            _ => return Err(bad(&format!("unknown unit {c:?}"))),
        };
    }
    if !number.is_empty() {
        return Err(bad("a number without a unit at the end"));
    }
    check(total, &bad)
}

fn check(d: Duration, bad: &dyn Fn(&str) -> Error) -> Result<Duration> {
    if d <= Duration::zero() {
        Err(bad("must be longer than zero"))
    } else if d > Duration::days(366) {
        Err(bad("at most 366 days"))
    } else {
        Ok(d)
    }
}

/// Formats a duration compactly (`2h`, `1h30m`, `45s`, `3d4h`).
pub fn format_duration(d: Duration) -> String {
    let mut secs = d.num_seconds().max(0);
    if secs == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_usual_forms() {
        assert_eq!(parse_duration("2h").unwrap(), Duration::hours(2));
        assert_eq!(parse_duration("30m").unwrap(), Duration::minutes(30));
        assert_eq!(parse_duration("1d").unwrap(), Duration::days(1));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::minutes(90));
        assert_eq!(parse_duration("45").unwrap(), Duration::minutes(45));
        for bad in ["", "h", "2x", "0h", "400d", "2h5"] {
            let e = parse_duration(bad).unwrap_err().to_string();
            assert!(e.starts_with("invalid duration"), "{bad}: {e}");
        }
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(secs in 1i64..31_000_000) {
            let d = Duration::seconds(secs);
            prop_assert_eq!(parse_duration(&format_duration(d)).unwrap(), d);
        }
    }
}
