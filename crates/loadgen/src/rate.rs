//! The open-loop rate controller: when each request is due, and parsing the
//! `--rate` and `--duration` values that set it.
//!
//! Open loop means the schedule never waits for the system under test: the
//! k-th request is due at `start + k / rate` whether or not earlier ones have
//! finished, and its latency is measured from that due time. A runner that
//! falls behind submits the overdue requests at once instead of skipping
//! them, so the offered count stays honest and a stall shows up as latency
//! (no coordinated omission).

use std::time::Duration;

use tokio::time::Instant;

/// Fixed-rate schedule of request slots.
///
/// Slot `k` is `start + k / per_second`, computed from `k` each time rather
/// than by adding an interval to the previous slot, so rounding never
/// accumulates into drift however long the run.
///
/// ```
/// use artifact_loadgen::rate::OpenLoop;
/// use std::time::Duration;
/// use tokio::time::Instant;
///
/// let start = Instant::now();
/// let mut open_loop = OpenLoop::new(4.0, start).unwrap();
/// assert_eq!(open_loop.next_slot(), start);
/// assert_eq!(open_loop.next_slot(), start + Duration::from_millis(250));
/// assert_eq!(open_loop.offered(), 2);
/// ```
///
/// A runner drives it like this, submitting at once when a slot is already
/// past (`sleep_until` returns immediately) and timing from `slot`:
///
/// ```
/// # use artifact_loadgen::rate::OpenLoop;
/// # use tokio::time::Instant;
/// async fn drive(mut open_loop: OpenLoop, submit: impl Fn(Instant)) {
///     loop {
///         let slot = open_loop.next_slot();
///         tokio::time::sleep_until(slot).await;
///         submit(slot);
///     }
/// }
/// ```
#[derive(Debug, Clone)]
pub struct OpenLoop {
    start: Instant,
    per_second: f64,
    next: u64,
}

impl OpenLoop {
    /// A schedule of `per_second` requests a second whose first slot is
    /// `start`. Fails unless the rate is finite and positive.
    pub fn new(per_second: f64, start: Instant) -> Result<Self, String> {
        if !per_second.is_finite() || per_second <= 0.0 {
            return Err(format!(
                "rate {per_second}/s: the rate must be a finite number above zero"
            ));
        }
        Ok(Self {
            start,
            per_second,
            next: 0,
        })
    }

    /// The due time of the next request; each call hands out one slot.
    pub fn next_slot(&mut self) -> Instant {
        let k = self.next;
        self.next += 1;
        self.slot(k)
    }

    /// How many slots have been handed out: the number of requests offered.
    pub fn offered(&self) -> u64 {
        self.next
    }

    /// The target rate, in requests per second.
    pub fn per_second(&self) -> f64 {
        self.per_second
    }

    /// Due time of slot `k`, to the nearest nanosecond. The cast saturates,
    /// so an absurdly late slot is far in the future rather than a panic.
    fn slot(&self, k: u64) -> Instant {
        let nanos = (k as f64 * 1e9 / self.per_second).round() as u64;
        self.start + Duration::from_nanos(nanos)
    }
}

const RATE_FORMS: &str = r#"expected requests per second or per minute, like "2000/s", "2.5/s", "1200/min" or "100" (per second)"#;

/// Parses a request rate into requests per second: `20000/s`, `2.5/s`,
/// `1200/min` or a plain number of requests per second such as `100`.
///
/// ```
/// use artifact_loadgen::rate::parse_rate;
///
/// assert_eq!(parse_rate("20000/s"), Ok(20_000.0));
/// assert_eq!(parse_rate("1200/min"), Ok(20.0));
/// assert_eq!(parse_rate("100"), Ok(100.0));
/// assert!(parse_rate("fast").is_err());
/// ```
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let trimmed = text.trim();
    let (number, per_seconds) = match trimmed.split_once('/') {
        None => (trimmed, 1.0),
        Some((number, unit)) => match unit.trim() {
            "s" | "sec" => (number, 1.0),
            "min" | "m" => (number, 60.0),
            _ => return Err(format!("rate {text:?}: unknown unit; {RATE_FORMS}")),
        },
    };
    let count: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("rate {text:?}: not a number; {RATE_FORMS}"))?;
    if !count.is_finite() || count <= 0.0 {
        return Err(format!(
            "rate {text:?}: must be above zero and finite; {RATE_FORMS}"
        ));
    }
    Ok(count / per_seconds)
}

const DURATION_FORMS: &str =
    r#"expected a number with a unit, like "500ms", "60s", "10m" or "1h", or plain seconds"#;

/// Parses a duration: `500ms`, `60s`, `10m`, `1h`, or a plain number of
/// seconds. Fractions are allowed (`1.5s`); zero is allowed, negative is not.
///
/// ```
/// use artifact_loadgen::rate::parse_duration;
/// use std::time::Duration;
///
/// assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
/// assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
/// assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    // "ms" before "m" and "s": it ends with both.
    let (number, unit_seconds) = [("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)]
        .into_iter()
        .find_map(|(suffix, seconds)| Some((trimmed.strip_suffix(suffix)?, seconds)))
        .unwrap_or((trimmed, 1.0));
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("duration {text:?}: not a number; {DURATION_FORMS}"))?;
    if !value.is_finite() || value < 0.0 {
        return Err(format!(
            "duration {text:?}: must be zero or more and finite; {DURATION_FORMS}"
        ));
    }
    Duration::try_from_secs_f64(value * unit_seconds)
        .map_err(|_| format!("duration {text:?}: too long; {DURATION_FORMS}"))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    #[test]
    fn parses_rates() {
        assert_eq!(parse_rate("20000/s"), Ok(20_000.0));
        assert_eq!(parse_rate("50/s"), Ok(50.0));
        assert_eq!(parse_rate("1200/min"), Ok(20.0));
        assert_eq!(parse_rate("2.5/s"), Ok(2.5));
        assert_eq!(parse_rate("100"), Ok(100.0));
        assert_eq!(parse_rate(" 30/min "), Ok(0.5));
    }

    #[test]
    fn rate_errors_name_the_text_and_the_forms() {
        for bad in [
            "", "fast", "10/h", "/s", "0/s", "-5/s", "inf", "NaN/s", "1e999/s",
        ] {
            let error = parse_rate(bad).unwrap_err();
            assert!(error.contains(&format!("{bad:?}")), "{error}");
            assert!(error.contains("1200/min"), "{error}");
        }
    }

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn duration_errors_name_the_text_and_the_forms() {
        for bad in ["", "s", "soon", "10d", "-1s", "inf", "1e300h"] {
            let error = parse_duration(bad).unwrap_err();
            assert!(error.contains(&format!("{bad:?}")), "{error}");
            assert!(error.contains("500ms"), "{error}");
        }
    }

    #[test]
    fn rejects_rates_that_are_not_positive_and_finite() {
        let now = Instant::now();
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let error = OpenLoop::new(bad, now).unwrap_err();
            assert!(error.starts_with("rate "), "{error}");
        }
    }

    #[test]
    fn the_kth_slot_is_exactly_k_over_the_rate() {
        let start = Instant::now();
        let mut open_loop = OpenLoop::new(2_000.0, start).unwrap();
        for k in 0..10_000u64 {
            assert_eq!(
                open_loop.next_slot(),
                start + Duration::from_micros(500 * k)
            );
        }
        assert_eq!(open_loop.offered(), 10_000);
    }

    #[test]
    fn slots_do_not_drift_over_a_million_requests() {
        // 1/3 s is not a whole number of nanoseconds: adding a rounded
        // interval a million times would be 333 µs off by the end.
        let start = Instant::now();
        let mut open_loop = OpenLoop::new(3.0, start).unwrap();
        let mut previous = None;
        let mut last = start;
        for _ in 0..1_000_000 {
            last = open_loop.next_slot();
            if let Some(previous) = previous {
                let gap = last - previous;
                assert!(
                    gap == Duration::from_nanos(333_333_333)
                        || gap == Duration::from_nanos(333_333_334),
                    "{gap:?}"
                );
            }
            previous = Some(last);
        }
        // Slot 999 999 is due at 999 999 / 3 s = 333 333 s exactly.
        assert_eq!(last - start, Duration::from_secs(333_333));
        assert_eq!(open_loop.offered(), 1_000_000);
    }

    /// A sink that counts submissions and how late each was against its
    /// slot, and can stall once, like a target that blocks the runner.
    #[derive(Default)]
    struct Sink {
        submitted: AtomicU64,
        max_late_micros: AtomicU64,
        stall_at: Option<(u64, Duration)>,
    }

    impl Sink {
        async fn submit(&self, slot: Instant) {
            let late = Instant::now().saturating_duration_since(slot);
            self.max_late_micros
                .fetch_max(late.as_micros() as u64, Ordering::Relaxed);
            let n = self.submitted.fetch_add(1, Ordering::Relaxed);
            if let Some((at, stall)) = self.stall_at
                && n == at
            {
                tokio::time::sleep(stall).await;
            }
        }
    }

    /// Runs the open loop against `sink` in real time and returns how many
    /// submissions were done by `run` after the start.
    async fn offered_by(per_second: f64, run: Duration, sink: Arc<Sink>) -> u64 {
        let start = Instant::now();
        let mut open_loop = OpenLoop::new(per_second, start).unwrap();
        let runner = tokio::spawn({
            let sink = sink.clone();
            async move {
                loop {
                    let slot = open_loop.next_slot();
                    tokio::time::sleep_until(slot).await;
                    sink.submit(slot).await;
                }
            }
        });
        tokio::time::sleep_until(start + run).await;
        let submitted = sink.submitted.load(Ordering::Relaxed);
        runner.abort();
        submitted
    }

    fn assert_within_two_percent(submitted: u64, expected: f64) {
        let error = (submitted as f64 - expected).abs() / expected;
        assert!(
            error <= 0.02,
            "submitted {submitted}, expected {expected} ± 2% (off by {:.2}%)",
            error * 100.0
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn offered_rate_is_within_two_percent_over_ten_seconds() {
        let sink = Arc::new(Sink::default());
        let submitted = offered_by(2_000.0, Duration::from_secs(10), sink.clone()).await;
        assert_within_two_percent(submitted, 20_000.0);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_runner_that_falls_behind_catches_up_without_skipping() {
        // The sink holds the runner for 300 ms at the 200th request; the
        // 300 slots that pass meanwhile are submitted at once afterwards,
        // so the count by 1 s is still the full 1,000.
        let sink = Arc::new(Sink {
            stall_at: Some((200, Duration::from_millis(300))),
            ..Sink::default()
        });
        let submitted = offered_by(1_000.0, Duration::from_secs(1), sink.clone()).await;
        assert_within_two_percent(submitted, 1_000.0);
        // The overdue requests went out late against their slots, which is
        // what the latency is measured from.
        let max_late = sink.max_late_micros.load(Ordering::Relaxed);
        assert!(max_late >= 250_000, "max lateness {max_late} µs");
    }
}
