//! The runner: offers requests from one or more streams, each open-loop (a
//! fixed rate of renders, whatever the target does) or closed-loop (a fixed
//! number of requests in flight), matches the target's completions to what
//! was offered, and records latency from each request's scheduled time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use artifact_render::request::Priority;
use jiff::Timestamp;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::data::{Rng, Shape};
use crate::rate::OpenLoop;
use crate::report::Recorder;
use crate::target::{Finished, Target};

/// How a stream offers its requests.
#[derive(Debug, Clone, Copy)]
pub enum Pace {
    /// This many renders (recipients) per second, spread over requests at
    /// fixed times.
    Open { renders_per_second: f64 },
    /// This many requests in flight; a new one as soon as one finishes.
    Closed { in_flight: usize },
}

/// One kind of traffic: a pace and a weighted mix of request shapes.
#[derive(Debug, Clone)]
pub struct Stream {
    pub name: String,
    pub pace: Pace,
    pub shapes: Vec<(Shape, u32)>,
}

/// What to run, and when to stop.
#[derive(Debug, Clone)]
pub struct Plan {
    pub streams: Vec<Stream>,
    /// Offering stops after this long…
    pub duration: Duration,
    /// …or after this many requests per stream, whichever comes first.
    pub max_requests: Option<u64>,
    /// How long to wait for requests in flight once offering stopped;
    /// whatever is still out then counts as `unfinished`.
    pub drain: Duration,
    /// Picks shapes from the mixes, the same way for the same seed.
    pub seed: u64,
}

/// An offered request, until its completion arrives.
struct Outstanding {
    scheduled: Timestamp,
    priority: Priority,
    recipients: u64,
    /// Held by closed-loop requests: finishing frees a place.
    _place: Option<tokio::sync::OwnedSemaphorePermit>,
}

type Pending = Arc<Mutex<HashMap<(String, String), Outstanding>>>;

/// The clock the runner schedules with, and the wall clock completions are
/// reported in, tied together once.
#[derive(Debug, Clone, Copy)]
struct Clock {
    start: Instant,
    wall: Timestamp,
}

impl Clock {
    fn now() -> Self {
        Self {
            start: Instant::now(),
            wall: Timestamp::now(),
        }
    }

    fn wall(&self, at: Instant) -> Timestamp {
        let since = at.saturating_duration_since(self.start);
        self.wall.checked_add(since).unwrap_or(self.wall)
    }
}

/// Runs `plan` against `target`, whose completions arrive on `finished`,
/// recording into `recorder`. Returns how long it took, from the first
/// scheduled request to the last completion (or the end of the drain).
pub async fn run(
    target: Arc<dyn Target>,
    mut finished: mpsc::UnboundedReceiver<Finished>,
    plan: Plan,
    recorder: Recorder,
) -> Duration {
    let clock = Clock::now();
    let pending: Pending = Arc::default();
    let run_id = format!("{:x}", clock.wall.as_nanosecond() as u64 & 0xffff_ffff_ffff);
    let last_completion = Arc::new(Mutex::new(clock.start));

    let matcher = {
        let (pending, recorder, last) =
            (pending.clone(), recorder.clone(), last_completion.clone());
        tokio::spawn(async move {
            while let Some(done) = finished.recv().await {
                let key = (done.company, done.request_id);
                let Some(outstanding) = pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&key)
                else {
                    continue; // not ours: an earlier run's, or announced again
                };
                if done.failed {
                    recorder.failed(outstanding.priority, "request failed");
                } else {
                    let latency = done
                        .finished_at
                        .duration_since(outstanding.scheduled)
                        .try_into()
                        .unwrap_or(Duration::ZERO);
                    recorder.completed(outstanding.priority, outstanding.recipients, latency);
                }
                *last.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
            }
        })
    };

    let deadline = clock.start + plan.duration;
    let mut streams = JoinSet::new();
    for (index, stream) in plan.streams.into_iter().enumerate() {
        let context = StreamContext {
            target: target.clone(),
            pending: pending.clone(),
            recorder: recorder.clone(),
            clock,
            deadline,
            max_requests: plan.max_requests.unwrap_or(u64::MAX),
            prefix: format!("lg-{run_id}-{index}"),
            rng: Rng::new(plan.seed.wrapping_add(index as u64)),
        };
        streams.spawn(context.offer(stream));
    }
    while streams.join_next().await.is_some() {}

    let drain_until = Instant::now() + plan.drain;
    while Instant::now() < drain_until
        && !pending.lock().unwrap_or_else(|e| e.into_inner()).is_empty()
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    matcher.abort();
    for (_, outstanding) in pending.lock().unwrap_or_else(|e| e.into_inner()).drain() {
        recorder.failed(outstanding.priority, "unfinished");
    }
    let last = *last_completion.lock().unwrap_or_else(|e| e.into_inner());
    last.saturating_duration_since(clock.start)
}

struct StreamContext {
    target: Arc<dyn Target>,
    pending: Pending,
    recorder: Recorder,
    clock: Clock,
    deadline: Instant,
    max_requests: u64,
    prefix: String,
    rng: Rng,
}

impl StreamContext {
    fn pick(&mut self, shapes: &[(Shape, u32)]) -> Shape {
        let total: u64 = shapes.iter().map(|(_, w)| u64::from(*w)).sum();
        let mut roll = self.rng.below(total.max(1));
        for (shape, weight) in shapes {
            if roll < u64::from(*weight) {
                return shape.clone();
            }
            roll -= u64::from(*weight);
        }
        shapes[0].0.clone()
    }

    async fn offer(mut self, stream: Stream) {
        if stream.shapes.is_empty() {
            return;
        }
        let mean_recipients = stream
            .shapes
            .iter()
            .map(|(s, w)| s.recipients as f64 * f64::from(*w))
            .sum::<f64>()
            / stream
                .shapes
                .iter()
                .map(|(_, w)| f64::from(*w))
                .sum::<f64>();
        let mut sent = JoinSet::new();
        match stream.pace {
            Pace::Open { renders_per_second } => {
                let per_second = renders_per_second / mean_recipients.max(1.0);
                let Ok(mut schedule) = OpenLoop::new(per_second, self.clock.start) else {
                    return;
                };
                for k in 0..self.max_requests {
                    let slot = schedule.next_slot();
                    if slot >= self.deadline {
                        break;
                    }
                    tokio::time::sleep_until(slot).await;
                    let shape = self.pick(&stream.shapes);
                    sent.spawn(self.send(shape, k, slot, None));
                    // Reap finished sends so the set does not grow.
                    while sent.try_join_next().is_some() {}
                }
            }
            Pace::Closed { in_flight } => {
                let places = Arc::new(Semaphore::new(in_flight.max(1)));
                for k in 0..self.max_requests {
                    let place = tokio::select! {
                        place = places.clone().acquire_owned() => place,
                        _ = tokio::time::sleep_until(self.deadline) => break,
                    };
                    let Ok(place) = place else { break };
                    if Instant::now() >= self.deadline {
                        break;
                    }
                    let shape = self.pick(&stream.shapes);
                    sent.spawn(self.send(shape, k, Instant::now(), Some(place)));
                    while sent.try_join_next().is_some() {}
                }
            }
        }
        while sent.join_next().await.is_some() {}
    }

    /// Sends request `k` scheduled at `slot`; the future owns what it needs,
    /// so a slow send never holds up the next slot.
    fn send(
        &self,
        shape: Shape,
        k: u64,
        slot: Instant,
        place: Option<tokio::sync::OwnedSemaphorePermit>,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let id = format!("{}-{k}", self.prefix);
        let key = (shape.company.clone(), id.clone());
        let (target, pending, recorder) = (
            self.target.clone(),
            self.pending.clone(),
            self.recorder.clone(),
        );
        let scheduled = self.clock.wall(slot);
        async move {
            recorder.offered(shape.priority, shape.recipients as u64);
            // Registered before sending: a fast target can finish the
            // request before `submit` returns.
            pending.lock().unwrap_or_else(|e| e.into_inner()).insert(
                key.clone(),
                Outstanding {
                    scheduled,
                    priority: shape.priority,
                    recipients: shape.recipients as u64,
                    _place: place,
                },
            );
            if let Err(kind) = target.submit(&shape, &id).await
                && pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&key)
                    .is_some()
            {
                recorder.failed(shape.priority, &kind);
            }
        }
    }
}
