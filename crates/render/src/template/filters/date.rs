//! The date filters `date`, `days_until` and `days_since`: reading instants
//! and bare days from values, and the per-thread time-zone cache.

use std::cell::RefCell;
use std::collections::HashMap;

use jiff::civil::Date;
use jiff::fmt::strtime::BrokenDownTime;
use jiff::fmt::temporal::DateTimeParser;
use jiff::tz::{TimeZone, TimeZoneDatabase};
use jiff::{SignedDuration, Timestamp};
use minijinja::Error;
use minijinja::value::{Value, ValueKind};

use super::Text;
use super::args::{Keywords, describe, fail, param, str_param};

/// A date value: an instant, or a calendar day with no time or zone.
///
/// A bare day is kept apart so that `"2026-11-26"|date(tz="America/New_York")`
/// still prints the 26th instead of the evening of the 25th.
#[derive(Debug, Clone, Copy)]
enum When {
    Instant(Timestamp),
    Day(Date),
}

/// Shared parser: const-constructed and configuration-free.
static PARSER: DateTimeParser = DateTimeParser::new();

/// Timestamps outside ±1e15 seconds are beyond jiff's range anyway; the
/// bound keeps the float-to-int conversion exact.
const MAX_FLOAT_SECONDS: f64 = 1e15;

fn when_of(filter: &str, value: &Value) -> Result<When, Error> {
    let not_a_date = || {
        fail(format!(
            "{filter}: {} is not a date (expected e.g. 2026-11-26, \
             2026-11-26T14:00:00Z or a unix timestamp in seconds)",
            describe(value)
        ))
    };
    match value.kind() {
        ValueKind::Number if value.is_integer() => value
            .as_i64()
            .and_then(|s| Timestamp::from_second(s).ok())
            .map(When::Instant)
            .ok_or_else(not_a_date),
        ValueKind::Number => {
            let f = f64::try_from(value.clone()).map_err(|_| not_a_date())?;
            if !f.is_finite() || f.abs() > MAX_FLOAT_SECONDS {
                return Err(not_a_date());
            }
            let whole = f.floor();
            // Both casts are exact: |whole| ≤ 1e15 and the fraction is < 1.
            let mut seconds = whole as i64;
            let mut nanos = ((f - whole) * 1e9).round() as i32;
            if nanos >= 1_000_000_000 {
                seconds += 1;
                nanos -= 1_000_000_000;
            }
            Timestamp::new(seconds, nanos)
                .map(When::Instant)
                .map_err(|_| not_a_date())
        }
        ValueKind::String => {
            let s = value.as_str().unwrap_or_default().trim();
            if let Ok(ts) = PARSER.parse_timestamp(s) {
                return Ok(When::Instant(ts));
            }
            // Only a bare `YYYY-MM-DD` is a day: a date-time without an offset
            // is ambiguous, and guessing its zone would shift send-time copy.
            let b = s.as_bytes();
            if b.len() == 10
                && b[4] == b'-'
                && b[7] == b'-'
                && let Ok(day) = PARSER.parse_date(s)
            {
                return Ok(When::Day(day));
            }
            Err(not_a_date())
        }
        _ => Err(not_a_date()),
    }
}

impl When {
    /// Instant of the value; a bare day counts from midnight UTC.
    fn timestamp(self) -> Result<Timestamp, jiff::Error> {
        match self {
            When::Instant(ts) => Ok(ts),
            When::Day(day) => Ok(day.to_zoned_datetime(TimeZone::UTC)?.timestamp()),
        }
    }
}

/// Zones kept per thread: the tz database has about 600 names, and the bound
/// stops a template spelling them in ever new letter cases from growing the
/// cache for ever.
const MAX_CACHED_ZONES: usize = 1024;

thread_local! {
    /// Zones by the name the template gave. jiff caches parsed zones too, but
    /// behind a process-wide lock and a case-insensitive search; a map per
    /// thread keeps the lookup cheap and uncontended.
    static ZONES: RefCell<HashMap<Box<str>, TimeZone>> = RefCell::new(HashMap::new());
}

fn time_zone(filter: &str, name: &str) -> Result<TimeZone, Error> {
    if let Some(tz) = ZONES.with_borrow(|zones| zones.get(name).cloned()) {
        return Ok(tz);
    }
    // The bundled database explicitly: `jiff::tz::db()` would consult
    // `TZDIR` and the file system.
    let tz = TimeZoneDatabase::bundled()
        .get(name)
        .map_err(|_| fail(format!("{filter}: {name:?} is not a known time zone")))?;
    ZONES.with_borrow_mut(|zones| {
        if zones.len() < MAX_CACHED_ZONES {
            zones.insert(name.into(), tz.clone());
        }
    });
    Ok(tz)
}

/// `{{ "2026-11-26T14:00:00Z"|date("%A %-I:%M %p %Z", tz="America/New_York") }}`.
pub(super) fn date(
    value: &Value,
    format: Option<Value>,
    tz: Option<Value>,
    kwargs: Keywords,
) -> Result<Value, Error> {
    let format = param("date", "format", format, &kwargs)?;
    let tz = param("date", "tz", tz, &kwargs)?;
    kwargs.assert_all_used()?;
    let format = str_param("date", "format", format.as_ref())?.unwrap_or("%B %-d, %Y");
    let tz = match str_param("date", "tz", tz.as_ref())? {
        Some(name) => time_zone("date", name)?,
        None => TimeZone::UTC,
    };
    let zoned = match when_of("date", value)? {
        When::Instant(ts) => ts.to_zoned_datetime(tz),
        When::Day(day) => day.to_zoned_datetime(tz).map_err(|e| {
            fail(format!(
                "date: {} cannot be placed in that time zone: {e}",
                describe(value)
            ))
        })?,
    };
    let mut out = Text::new();
    BrokenDownTime::from(&zoned)
        .format(format, &mut out)
        .map_err(|e| fail(format!("date: cannot format with {format:?}: {e}")))?;
    Ok(out.to_value())
}

fn whole_days(
    filter: &str,
    from: &Value,
    to: Option<Value>,
    kwargs: &Keywords,
) -> Result<i64, Error> {
    let to = param(filter, "now", to, kwargs)?;
    kwargs.assert_all_used()?;
    let Some(to) = to else {
        return Err(fail(format!(
            "{filter}: needs the send time as its argument, e.g. {filter}(now)"
        )));
    };
    let instant = |v: &Value| {
        when_of(filter, v)?
            .timestamp()
            .map_err(|e| fail(format!("{filter}: {} is out of range: {e}", describe(v))))
    };
    let elapsed: SignedDuration = instant(&to)?.duration_since(instant(from)?);
    // `as_secs` truncates toward zero: 36 hours is 1 day either way round.
    Ok(elapsed.as_secs() / 86_400)
}

/// Whole days from `now` until the value; negative once it has passed.
pub(super) fn days_until(
    value: &Value,
    now: Option<Value>,
    kwargs: Keywords,
) -> Result<i64, Error> {
    whole_days("days_until", value, now, &kwargs).map(|d| -d)
}

/// Whole days from the value until `now`; negative while it is ahead.
pub(super) fn days_since(
    value: &Value,
    now: Option<Value>,
    kwargs: Keywords,
) -> Result<i64, Error> {
    whole_days("days_since", value, now, &kwargs)
}

#[cfg(test)]
mod tests {
    use super::super::tests_support::{err, ok};
    use super::*;
    use minijinja::context;

    fn date(x: impl Into<Value>, args: &str) -> String {
        ok(
            &format!("{{{{ x|date{args} }}}}"),
            context! { x => x.into() },
        )
    }

    #[test]
    fn date_formats_rfc3339_bare_dates_and_timestamps() {
        assert_eq!(date("2026-11-26T14:00:00Z", ""), "November 26, 2026");
        assert_eq!(date("2026-11-05T14:00:00Z", ""), "November 5, 2026");
        assert_eq!(
            date("2026-11-26T14:00:00+01:00", r#"("%Y-%m-%d %H:%M %Z")"#),
            "2026-11-26 13:00 UTC"
        );
        assert_eq!(date("2026-11-26", ""), "November 26, 2026");
        assert_eq!(date(" 2026-11-26 ", r#"("%a %d %b")"#), "Thu 26 Nov");
        // 2026-11-26T14:00:00Z
        assert_eq!(date(1_795_701_600, r#"("%FT%T")"#), "2026-11-26T14:00:00");
        assert_eq!(date(1_795_701_600.25, r#"("%T%.3f")"#), "14:00:00.250");
        assert_eq!(date(-86_400, ""), "December 31, 1969");
    }

    #[test]
    fn date_converts_to_iana_time_zones_across_dst() {
        let ny = r#"("%Y-%m-%d %-I:%M %p %Z", tz="America/New_York")"#;
        assert_eq!(date("2026-07-04T16:00:00Z", ny), "2026-07-04 12:00 PM EDT");
        assert_eq!(date("2026-11-26T14:00:00Z", ny), "2026-11-26 9:00 AM EST");
        // Spring forward, 2026-03-08 at 2am local.
        assert_eq!(date("2026-03-08T06:30:00Z", ny), "2026-03-08 1:30 AM EST");
        assert_eq!(date("2026-03-08T07:30:00Z", ny), "2026-03-08 3:30 AM EDT");
        assert_eq!(
            date(1_795_701_600, r#"(tz="Asia/Tokyo", format="%H:%M %:z")"#),
            "23:00 +09:00"
        );
        assert_eq!(
            date("2026-11-26T14:00:00Z", r#"("%H:%M %Q", "europe/paris")"#),
            "15:00 Europe/Paris"
        );
        // A bare day stays that day wherever it is shown.
        assert_eq!(
            date(
                "2026-11-26",
                r#"("%B %-d %H:%M %Z", tz="America/Los_Angeles")"#
            ),
            "November 26 00:00 PST"
        );
    }

    #[test]
    fn date_errors_name_the_value_and_never_panic() {
        for bad in [
            "tomorrow",
            "2026-13-01",
            "2026-02-30",
            "2026-11-26T14:00:00",
            "26/11/2026",
            "",
        ] {
            let e = err("{{ x|date }}", context! { x => bad });
            assert!(
                e.starts_with(&format!("date: {bad:?} is not a date")),
                "{e}"
            );
        }
        assert_eq!(ok("{{ x|date is none }}", context! { x => () }), "True");
        assert_eq!(ok("{{ x|date }}{{ x|days_until(now) }}", context! {}), "");
        assert!(err("{{ x|date }}", context! { x => i64::MAX }).contains("9223372036854775807"));
        assert!(err("{{ x|date }}", context! { x => f64::NAN }).starts_with("date: NaN"));
        assert!(err("{{ x|date }}", context! { x => 1e300 }).starts_with("date: 1e300"));
        assert_eq!(
            err(r#"{{ 0|date(tz="Mars/Olympus") }}"#, context! {}),
            r#"date: "Mars/Olympus" is not a known time zone"#
        );
        for bad in ["%J", "%", "%Ez", "%-"] {
            let e = err("{{ 0|date(f) }}", context! { f => bad });
            assert!(
                e.starts_with(&format!("date: cannot format with {bad:?}")),
                "{e}"
            );
        }
        let e = err("{{ 0|date(7) }}", context! {});
        assert_eq!(e, "date: format must be a string, got 7");
    }

    #[test]
    fn days_until_and_since_count_whole_days_from_now() {
        let ctx = |at: &str, now: &str| context! { at => at, now => now };
        let t = "{{ at|days_until(now) }}/{{ at|days_since(now) }}";
        assert_eq!(
            ok(t, ctx("2026-11-29T14:00:00Z", "2026-11-26T14:00:00Z")),
            "3/-3"
        );
        assert_eq!(
            ok(t, ctx("2026-11-29T13:59:59Z", "2026-11-26T14:00:00Z")),
            "2/-2"
        );
        assert_eq!(
            ok(t, ctx("2026-11-26T20:00:00Z", "2026-11-26T14:00:00Z")),
            "0/0"
        );
        assert_eq!(
            ok(t, ctx("2026-11-20T14:00:00Z", "2026-11-26T14:00:00Z")),
            "-6/6"
        );
        assert_eq!(
            ok(t, ctx("2026-11-25T00:00:00Z", "2026-11-26T12:00:00Z")),
            "-1/1"
        );
        assert_eq!(ok(t, ctx("2026-12-25", "2026-11-26")), "29/-29");
        assert_eq!(
            ok(t, ctx("2026-11-28", "2026-11-26T12:00:00-05:00")),
            "1/-1"
        );
        assert_eq!(
            ok(
                "{{ x|days_until(now=n) }}",
                context! { x => 1_795_701_600 + 86_400 * 7, n => 1_795_701_600 }
            ),
            "7"
        );
    }

    #[test]
    fn days_errors_name_the_value() {
        assert_eq!(
            err("{{ '2026-11-26'|days_until }}", context! {}),
            "days_until: needs the send time as its argument, e.g. days_until(now)"
        );
        assert!(
            err(
                "{{ x|days_since(now) }}",
                context! { x => "soon", now => 0 }
            )
            .starts_with(r#"days_since: "soon" is not a date"#)
        );
        assert!(
            err("{{ 0|days_until(now) }}", context! { now => "later" })
                .starts_with(r#"days_until: "later" is not a date"#)
        );
    }
}
