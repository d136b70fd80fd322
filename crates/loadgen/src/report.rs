//! Recording a run (counts, errors and latency histograms per priority lane)
//! and the summary printed at its end, as a table or as JSON.
//!
//! Latencies go into an HdrHistogram per lane at microsecond resolution and
//! three significant figures, so percentiles are within 0.1% of the true
//! value however long the tail; the histograms grow as needed, so a request
//! that takes an hour is recorded, not clamped.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use artifact_render::request::Priority;
use hdrhistogram::Histogram;
use serde::Serialize;

/// The lanes in the order they are reported.
const LANES: [Priority; 3] = [Priority::High, Priority::Normal, Priority::Low];

fn lane_index(priority: Priority) -> usize {
    match priority {
        Priority::High => 0,
        Priority::Normal => 1,
        Priority::Low => 2,
    }
}

/// Request and recipient counts, for one lane or all of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Requests sent.
    pub requests_offered: u64,
    /// Requests that finished successfully.
    pub requests_completed: u64,
    /// Requests that failed, whatever the kind of error.
    pub requests_failed: u64,
    /// Recipients in the requests sent.
    pub recipients_offered: u64,
    /// Recipients in the requests that finished: renders done.
    pub recipients_completed: u64,
}

impl Counts {
    /// Requests sent and neither completed nor failed yet.
    pub fn requests_in_flight(&self) -> u64 {
        self.requests_offered
            .saturating_sub(self.requests_completed + self.requests_failed)
    }

    fn add(&mut self, other: &Counts) {
        self.requests_offered += other.requests_offered;
        self.requests_completed += other.requests_completed;
        self.requests_failed += other.requests_failed;
        self.recipients_offered += other.recipients_offered;
        self.recipients_completed += other.recipients_completed;
    }
}

/// What a progress bar shows: the counts over all lanes so far.
pub type Progress = Counts;

/// Records a run; a cheap handle to shared state, so clone it into every
/// task that sends or completes requests.
///
/// Each call holds an internal mutex for a counter update or one histogram
/// record, so contention stays low at tens of thousands of calls a second.
/// A panic while the lock is held does not poison the recording: counters
/// are always consistent after each call.
///
/// ```
/// use artifact_loadgen::report::Recorder;
/// use artifact_render::request::Priority;
/// use std::time::Duration;
///
/// let recorder = Recorder::new();
/// recorder.offered(Priority::High, 3);
/// recorder.completed(Priority::High, 3, Duration::from_millis(12));
/// let summary = recorder.summary(Duration::from_secs(1), None);
/// assert_eq!(summary.renders_per_second, 3.0);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    state: Arc<Mutex<State>>,
}

#[derive(Debug)]
struct State {
    lanes: [Lane; 3],
    /// Latency of every lane together, for the totals.
    all: Histogram<u64>,
    errors: BTreeMap<String, u64>,
}

impl Default for State {
    fn default() -> Self {
        Self {
            lanes: [Lane::default(), Lane::default(), Lane::default()],
            all: latency_histogram(),
            errors: BTreeMap::new(),
        }
    }
}

#[derive(Debug)]
struct Lane {
    counts: Counts,
    /// Latency in microseconds.
    latency: Histogram<u64>,
}

impl Default for Lane {
    fn default() -> Self {
        Self {
            counts: Counts::default(),
            latency: latency_histogram(),
        }
    }
}

/// Microseconds, 3 significant figures, sized for an hour up front and
/// growing beyond it.
fn latency_histogram() -> Histogram<u64> {
    const HOUR_MICROS: u64 = 3_600 * 1_000_000;
    let mut histogram =
        Histogram::new_with_bounds(1, HOUR_MICROS, 3).expect("constant histogram bounds are valid");
    histogram.auto(true);
    histogram
}

fn record(histogram: &mut Histogram<u64>, micros: u64) {
    // Only fails for values beyond what even a resized histogram can
    // hold (centuries); keep them as the largest value instead.
    if histogram.record(micros).is_err() {
        histogram.saturating_record(micros);
    }
}

impl Recorder {
    /// An empty recording.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut state)
    }

    /// A request of `recipients` recipients was sent on lane `priority`.
    pub fn offered(&self, priority: Priority, recipients: u64) {
        self.with(|state| {
            let counts = &mut state.lanes[lane_index(priority)].counts;
            counts.requests_offered += 1;
            counts.recipients_offered += recipients;
        });
    }

    /// A request of `recipients` recipients on lane `priority` finished
    /// `latency` after its *scheduled* time.
    pub fn completed(&self, priority: Priority, recipients: u64, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.with(|state| {
            let lane = &mut state.lanes[lane_index(priority)];
            lane.counts.requests_completed += 1;
            lane.counts.recipients_completed += recipients;
            record(&mut lane.latency, micros);
            record(&mut state.all, micros);
        });
    }

    /// A request on lane `priority` failed with an error of `kind` (a short
    /// stable label such as `timeout` or `http_503`).
    pub fn failed(&self, priority: Priority, kind: &str) {
        self.with(|state| {
            state.lanes[lane_index(priority)].counts.requests_failed += 1;
            match state.errors.get_mut(kind) {
                Some(count) => *count += 1,
                None => {
                    state.errors.insert(kind.to_owned(), 1);
                }
            }
        });
    }

    /// The counts so far over all lanes, for a progress bar.
    pub fn snapshot(&self) -> Progress {
        self.with(|state| {
            let mut total = Counts::default();
            for lane in &state.lanes {
                total.add(&lane.counts);
            }
            total
        })
    }

    /// The summary of the run so far, `elapsed` being the length of the
    /// measured run and `peak_rss_bytes` the peak resident memory of the
    /// system under test, if known.
    pub fn summary(&self, elapsed: Duration, peak_rss_bytes: Option<u64>) -> Summary {
        self.with(|state| {
            let lanes: Vec<LaneSummary> = LANES
                .iter()
                .zip(&state.lanes)
                .filter(|(_, lane)| lane.counts != Counts::default())
                .map(|(&priority, lane)| LaneSummary {
                    lane: priority,
                    counts: lane.counts,
                    latency_ms: LatencyMs::from_histogram(&lane.latency),
                })
                .collect();
            let mut counts = Counts::default();
            for lane in &lanes {
                counts.add(&lane.counts);
            }
            let seconds = elapsed.as_secs_f64();
            let renders_per_second = if seconds > 0.0 {
                counts.recipients_completed as f64 / seconds
            } else {
                0.0
            };
            Summary {
                elapsed_seconds: seconds,
                lanes,
                totals: Totals {
                    counts,
                    latency_ms: LatencyMs::from_histogram(&state.all),
                },
                renders_per_second,
                renders_per_minute: renders_per_second * 60.0,
                errors: state.errors.clone(),
                peak_rss_mib: peak_rss_bytes.map(|bytes| bytes as f64 / (1024.0 * 1024.0)),
            }
        })
    }
}

/// Latency percentiles in milliseconds, measured from each request's
/// scheduled time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencyMs {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub max: f64,
    pub mean: f64,
}

impl LatencyMs {
    /// `None` when nothing was recorded: an empty histogram has no
    /// percentiles, and zeros would read as "instant".
    fn from_histogram(histogram: &Histogram<u64>) -> Option<Self> {
        if histogram.is_empty() {
            return None;
        }
        let ms = |micros: u64| micros as f64 / 1_000.0;
        let mut quantiles = histogram
            .value_at_quantiles([0.5, 0.9, 0.99, 0.999])
            .map(ms);
        let mut next = || quantiles.next().unwrap_or(f64::NAN);
        Some(Self {
            p50: next(),
            p90: next(),
            p99: next(),
            p99_9: next(),
            max: ms(histogram.max()),
            mean: histogram.mean() / 1_000.0,
        })
    }
}

/// One lane of the summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LaneSummary {
    /// `high`, `normal` or `low`.
    pub lane: Priority,
    #[serde(flatten)]
    pub counts: Counts,
    /// `None` (`null`) when no request of the lane completed.
    pub latency_ms: Option<LatencyMs>,
}

/// All lanes together.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Totals {
    #[serde(flatten)]
    pub counts: Counts,
    /// `None` (`null`) when no request completed.
    pub latency_ms: Option<LatencyMs>,
}

/// The result of a run: what was offered and done per lane, latency
/// percentiles, throughput, errors and memory.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Length of the measured run.
    pub elapsed_seconds: f64,
    /// One entry per lane that saw traffic, high first.
    pub lanes: Vec<LaneSummary>,
    pub totals: Totals,
    /// Completed recipients (renders) per second of the run.
    pub renders_per_second: f64,
    /// Completed recipients (renders) per minute of the run.
    pub renders_per_minute: f64,
    /// Failed requests by kind of error.
    pub errors: BTreeMap<String, u64>,
    /// Peak resident memory of the system under test, if known.
    pub peak_rss_mib: Option<f64>,
}

impl Summary {
    /// The summary as an aligned table for a terminal: one row per lane
    /// and a total row, then throughput, errors and memory.
    ///
    /// Columns: `requests` offered, of which `completed` and `failed`;
    /// `recipients` offered, of which `rendered`; then latency in ms.
    pub fn to_text(&self) -> String {
        let header = [
            "lane",
            "requests",
            "completed",
            "failed",
            "recipients",
            "rendered",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "p99.9 ms",
            "max ms",
            "mean ms",
        ];
        let mut rows: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
        for lane in &self.lanes {
            rows.push(row(lane.lane.as_str(), &lane.counts, lane.latency_ms));
        }
        rows.push(row("total", &self.totals.counts, self.totals.latency_ms));

        let mut widths = vec![0; header.len()];
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }

        let mut out = String::new();
        let _ = writeln!(out, "elapsed     {:.2} s", self.elapsed_seconds);
        out.push('\n');
        for row in &rows {
            let mut line = String::new();
            for (i, (cell, width)) in row.iter().zip(&widths).enumerate() {
                if i == 0 {
                    let _ = write!(line, "{cell:<width$}");
                } else {
                    let _ = write!(line, "  {cell:>width$}");
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out.push('\n');
        let _ = writeln!(
            out,
            "throughput  {} renders/s, {} renders/min",
            decimal(self.renders_per_second, 1),
            decimal(self.renders_per_minute, 0),
        );
        if self.errors.is_empty() {
            out.push_str("errors      none\n");
        } else {
            out.push_str("errors\n");
            let width = self.errors.keys().map(|k| k.chars().count()).max();
            let width = width.unwrap_or(0);
            for (kind, count) in &self.errors {
                let _ = writeln!(out, "  {kind:<width$}  {}", grouped(*count));
            }
        }
        match self.peak_rss_mib {
            Some(mib) => {
                let _ = writeln!(out, "peak RSS    {mib:.1} MiB");
            }
            None => out.push_str("peak RSS    unknown\n"),
        }
        out
    }

    /// The summary as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a summary always serializes")
    }
}

fn row(name: &str, counts: &Counts, latency: Option<LatencyMs>) -> Vec<String> {
    let mut cells = vec![
        name.to_owned(),
        grouped(counts.requests_offered),
        grouped(counts.requests_completed),
        grouped(counts.requests_failed),
        grouped(counts.recipients_offered),
        grouped(counts.recipients_completed),
    ];
    match latency {
        Some(l) => {
            cells.extend([l.p50, l.p90, l.p99, l.p99_9, l.max, l.mean].map(|ms| decimal(ms, 2)))
        }
        None => cells.extend(std::iter::repeat_n("-".to_owned(), 6)),
    }
    cells
}

/// `1234567` as `1,234,567`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// `x` with `places` decimals and its whole part grouped: `12,345.67`.
fn decimal(x: f64, places: usize) -> String {
    let text = format!("{x:.places$}");
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (text.as_str(), None),
    };
    match whole.parse::<u64>() {
        Ok(whole) => match fraction {
            Some(fraction) => format!("{}.{fraction}", grouped(whole)),
            None => grouped(whole),
        },
        // Negative or non-finite: not expected, shown as is.
        Err(_) => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `actual` within HdrHistogram's 3-significant-figure precision (0.1%)
    /// of `expected`.
    fn assert_close(actual: f64, expected: f64) {
        let error = (actual - expected).abs() / expected;
        assert!(error <= 0.001, "{actual} is not within 0.1% of {expected}");
    }

    fn one_to_a_thousand_ms() -> Recorder {
        let recorder = Recorder::new();
        for ms in 1..=1_000 {
            recorder.offered(Priority::Normal, 2);
            recorder.completed(Priority::Normal, 2, Duration::from_millis(ms));
        }
        recorder
    }

    #[test]
    fn percentiles_of_a_known_sample() {
        let summary = one_to_a_thousand_ms().summary(Duration::from_secs(10), None);
        let latency = summary.lanes[0].latency_ms.unwrap();
        assert_close(latency.p50, 500.0);
        assert_close(latency.p90, 900.0);
        assert_close(latency.p99, 990.0);
        assert_close(latency.p99_9, 999.0);
        assert_close(latency.max, 1_000.0);
        assert_close(latency.mean, 500.5);
        assert_eq!(summary.totals.latency_ms, Some(latency));
    }

    #[test]
    fn lanes_without_traffic_are_omitted() {
        let recorder = one_to_a_thousand_ms();
        recorder.offered(Priority::High, 1);
        recorder.failed(Priority::High, "timeout");
        let summary = recorder.summary(Duration::from_secs(1), None);
        let lanes: Vec<Priority> = summary.lanes.iter().map(|l| l.lane).collect();
        assert_eq!(lanes, [Priority::High, Priority::Normal]);
        assert_eq!(summary.lanes[0].latency_ms, None, "nothing completed");
        assert!(
            Recorder::new()
                .summary(Duration::from_secs(1), None)
                .lanes
                .is_empty()
        );
    }

    #[test]
    fn errors_are_counted_by_kind_and_lane() {
        let recorder = Recorder::new();
        for (priority, kind) in [
            (Priority::High, "timeout"),
            (Priority::Low, "http_503"),
            (Priority::Low, "timeout"),
            (Priority::Low, "timeout"),
        ] {
            recorder.offered(priority, 10);
            recorder.failed(priority, kind);
        }
        let summary = recorder.summary(Duration::from_secs(1), None);
        assert_eq!(
            summary.errors,
            BTreeMap::from([("http_503".to_owned(), 1), ("timeout".to_owned(), 3)])
        );
        assert_eq!(summary.lanes[0].counts.requests_failed, 1);
        assert_eq!(summary.lanes[1].counts.requests_failed, 3);
        assert_eq!(summary.totals.counts.requests_failed, 4);
        assert_eq!(summary.totals.counts.recipients_offered, 40);
        assert_eq!(summary.totals.counts.recipients_completed, 0);
    }

    #[test]
    fn throughput_is_completed_recipients_over_elapsed() {
        let recorder = Recorder::new();
        recorder.offered(Priority::High, 100);
        recorder.completed(Priority::High, 100, Duration::from_millis(3));
        recorder.offered(Priority::Low, 50);
        recorder.completed(Priority::Low, 50, Duration::from_millis(9));
        recorder.offered(Priority::Low, 1_000);
        recorder.failed(Priority::Low, "timeout");
        let summary = recorder.summary(Duration::from_secs(4), Some(512 * 1024 * 1024));
        assert_eq!(summary.renders_per_second, 37.5);
        assert_eq!(summary.renders_per_minute, 2_250.0);
        assert_eq!(summary.peak_rss_mib, Some(512.0));
        assert_eq!(
            Recorder::new()
                .summary(Duration::ZERO, None)
                .renders_per_second,
            0.0
        );
    }

    #[test]
    fn snapshot_counts_progress_over_all_lanes() {
        let recorder = Recorder::new();
        let handle = recorder.clone();
        handle.offered(Priority::High, 5);
        handle.offered(Priority::Low, 7);
        handle.completed(Priority::Low, 7, Duration::from_millis(1));
        assert_eq!(
            recorder.snapshot(),
            Counts {
                requests_offered: 2,
                requests_completed: 1,
                requests_failed: 0,
                recipients_offered: 12,
                recipients_completed: 7,
            }
        );
        assert_eq!(recorder.snapshot().requests_in_flight(), 1);
    }

    #[test]
    fn latency_of_hours_is_recorded_not_clamped() {
        let recorder = Recorder::new();
        recorder.offered(Priority::Normal, 1);
        recorder.completed(Priority::Normal, 1, Duration::from_secs(5 * 3_600));
        let summary = recorder.summary(Duration::from_secs(1), None);
        assert_close(summary.lanes[0].latency_ms.unwrap().max, 5.0 * 3_600_000.0);
    }

    #[test]
    fn text_has_a_row_per_lane_and_the_numbers() {
        let recorder = one_to_a_thousand_ms();
        recorder.offered(Priority::High, 1_500);
        recorder.failed(Priority::High, "timeout");
        let text = recorder
            .summary(Duration::from_secs(2), Some(300 * 1024 * 1024))
            .to_text();
        let line = |start: &str| {
            text.lines()
                .find(|l| l.starts_with(start))
                .unwrap_or_else(|| panic!("no line starting {start:?} in\n{text}"))
                .split_whitespace()
                .collect::<Vec<_>>()
        };
        assert_eq!(
            line("lane")[..6],
            [
                "lane",
                "requests",
                "completed",
                "failed",
                "recipients",
                "rendered"
            ]
        );
        assert_eq!(
            line("high"),
            [
                "high", "1", "0", "1", "1,500", "0", "-", "-", "-", "-", "-", "-"
            ]
        );
        let normal = line("normal");
        assert_eq!(
            normal[..6],
            ["normal", "1,000", "1,000", "0", "2,000", "2,000"]
        );
        assert!(normal[6].starts_with("500."), "{normal:?}");
        assert_eq!(
            line("total")[..6],
            ["total", "1,001", "1,000", "1", "3,500", "2,000"]
        );
        assert!(
            text.contains("throughput  1,000.0 renders/s, 60,000 renders/min"),
            "{text}"
        );
        assert_eq!(line("  timeout"), ["timeout", "1"]);
        assert!(text.contains("peak RSS    300.0 MiB"), "{text}");

        // Columns line up: every table row is as wide as the header.
        let header_width = text.lines().find(|l| l.starts_with("lane")).unwrap().len();
        for start in ["normal", "total"] {
            let width = text.lines().find(|l| l.starts_with(start)).unwrap().len();
            assert_eq!(width, header_width, "{text}");
        }
    }

    #[test]
    fn json_has_the_expected_fields() {
        let recorder = one_to_a_thousand_ms();
        recorder.failed(Priority::Normal, "timeout");
        let json: serde_json::Value =
            serde_json::from_str(&recorder.summary(Duration::from_secs(2), None).to_json())
                .unwrap();
        assert_eq!(json["elapsed_seconds"], 2.0);
        let lane = &json["lanes"][0];
        assert_eq!(lane["lane"], "normal");
        assert_eq!(lane["requests_offered"], 1_000);
        assert_eq!(lane["requests_completed"], 1_000);
        assert_eq!(lane["requests_failed"], 1);
        assert_eq!(lane["recipients_offered"], 2_000);
        assert_eq!(lane["recipients_completed"], 2_000);
        for key in ["p50", "p90", "p99", "p99_9", "max", "mean"] {
            assert!(lane["latency_ms"][key].is_f64(), "{key}: {lane}");
        }
        assert_eq!(json["totals"]["recipients_completed"], 2_000);
        assert!(json["totals"]["latency_ms"]["p99"].is_f64());
        assert_eq!(json["renders_per_second"], 1_000.0);
        assert_eq!(json["renders_per_minute"], 60_000.0);
        assert_eq!(json["errors"]["timeout"], 1);
        assert!(json["peak_rss_mib"].is_null());
    }
}
