//! The queue's scheduling state, in memory: per priority lane a ring of
//! companies taking turns, each with a FIFO of its ready batches; the
//! batches waiting for a retry; and the leases out. No I/O here: `queue.rs`
//! writes the durable record and then updates this.
//!
//! Batches name their request by key and do not hold it: a queue of many
//! large requests costs a few bytes per batch, and `queue.rs` loads a
//! request when one of its batches is leased.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::ops::Range;
use std::time::Instant;

use artifact_render::request::{CompanyId, Priority, RequestId};

use crate::LaneDepths;

/// A batch's row id in the `batches` table.
pub(super) type BatchId = i64;

/// A batch as stored: its row id, recipients and attempts so far.
pub(super) type StoredBatch = (BatchId, Range<usize>, u32);

/// A request's key, as every table has it.
pub(super) type RequestKey = (CompanyId, RequestId);

/// A batch that is not done or dead-lettered: ready, delayed or leased.
#[derive(Debug)]
pub(super) struct Batch {
    pub key: RequestKey,
    pub priority: Priority,
    pub range: Range<usize>,
    /// Deliveries so far, including a lease that is out.
    pub attempts: u32,
    /// Its last lease expired in this process (rather than dying with an
    /// earlier one): only changes how a dead letter explains itself.
    pub expired: bool,
}

/// A batch just leased: what the holder needs, once its request is loaded.
#[derive(Debug)]
pub(super) struct Granted {
    pub lease: u64,
    pub key: RequestKey,
    pub range: Range<usize>,
    pub attempt: u32,
}

#[derive(Debug)]
struct Leased {
    batch: BatchId,
    /// `None` when `lease_timeout` is too long to represent: never expires.
    deadline: Option<Instant>,
}

/// One priority lane: companies take turns, one batch per turn.
#[derive(Debug, Default)]
struct Lane {
    /// The companies with ready batches, next turn first. A company is here
    /// exactly when it has an entry in `ready`.
    turns: VecDeque<CompanyId>,
    ready: HashMap<CompanyId, VecDeque<BatchId>>,
    len: usize,
}

impl Lane {
    fn push(&mut self, company: &CompanyId, batch: BatchId, front: bool) {
        self.len += 1;
        match self.ready.entry(company.clone()) {
            Entry::Occupied(mut fifo) if front => fifo.get_mut().push_front(batch),
            Entry::Occupied(mut fifo) => fifo.get_mut().push_back(batch),
            Entry::Vacant(slot) => {
                slot.insert(VecDeque::from([batch]));
                if front {
                    self.turns.push_front(company.clone());
                } else {
                    self.turns.push_back(company.clone());
                }
            }
        }
    }

    /// The next company's oldest ready batch; that company goes to the back
    /// of the ring.
    fn pop(&mut self) -> Option<BatchId> {
        let company = self.turns.pop_front()?;
        let fifo = self.ready.get_mut(&company)?;
        let batch = fifo.pop_front();
        if fifo.is_empty() {
            self.ready.remove(&company);
        } else {
            self.turns.push_back(company);
        }
        self.len -= usize::from(batch.is_some());
        batch
    }
}

fn lane_index(priority: Priority) -> usize {
    match priority {
        Priority::High => 0,
        Priority::Normal => 1,
        Priority::Low => 2,
    }
}

#[derive(Debug, Default)]
pub(super) struct Scheduler {
    /// High, normal, low.
    lanes: [Lane; 3],
    batches: HashMap<BatchId, Batch>,
    /// Batches not yet done or dead-lettered, per request.
    outstanding: HashMap<RequestKey, usize>,
    /// Failed batches waiting for their retry time.
    delayed: BTreeSet<(Instant, BatchId)>,
    leases: HashMap<u64, Leased>,
    next_lease: u64,
}

impl Scheduler {
    /// Queues a request's batches, ready at once, after what is queued.
    pub fn add(&mut self, key: &RequestKey, priority: Priority, batches: Vec<StoredBatch>) {
        if batches.is_empty() {
            return;
        }
        *self.outstanding.entry(key.clone()).or_default() += batches.len();
        for (id, range, attempts) in batches {
            self.batches.insert(
                id,
                Batch {
                    key: key.clone(),
                    priority,
                    range,
                    attempts,
                    expired: false,
                },
            );
            self.make_ready(id, false);
        }
    }

    fn make_ready(&mut self, id: BatchId, front: bool) {
        if let Some(batch) = self.batches.get(&id) {
            self.lanes[lane_index(batch.priority)].push(&batch.key.0, id, front);
        }
    }

    /// Makes ready what is due: batches whose retry time has come and
    /// batches whose lease expired (their holder is presumed dead).
    pub fn sweep(&mut self, now: Instant) {
        let expired: Vec<u64> = self
            .leases
            .iter()
            .filter(|(_, lease)| lease.deadline.is_some_and(|deadline| deadline <= now))
            .map(|(id, _)| *id)
            .collect();
        for lease in expired {
            if let Some(Leased { batch, .. }) = self.leases.remove(&lease) {
                if let Some(b) = self.batches.get_mut(&batch) {
                    b.expired = true;
                }
                self.make_ready(batch, false);
            }
        }
        while let Some(&(due, batch)) = self.delayed.first() {
            if due > now {
                break;
            }
            self.delayed.pop_first();
            self.make_ready(batch, false);
        }
    }

    /// When something not ready now becomes ready by itself: the next retry
    /// time or lease deadline.
    pub fn next_wake(&self) -> Option<Instant> {
        let retry = self.delayed.first().map(|(due, _)| *due);
        let expiry = self
            .leases
            .values()
            .filter_map(|lease| lease.deadline)
            .min();
        retry.into_iter().chain(expiry).min()
    }

    /// Takes the next ready batch: highest lane first, companies in turn.
    /// The caller then [`grant`](Self::grant)s it, [`finish`](Self::finish)es
    /// it, or [`unpop`](Self::unpop)s it when the store failed.
    pub fn pop(&mut self) -> Option<BatchId> {
        self.lanes.iter_mut().find_map(Lane::pop)
    }

    pub fn unpop(&mut self, id: BatchId) {
        self.make_ready(id, true);
    }

    pub fn batch(&self, id: BatchId) -> Option<&Batch> {
        self.batches.get(&id)
    }

    /// Leases a popped batch until `deadline`, counting the attempt.
    pub fn grant(&mut self, id: BatchId, deadline: Option<Instant>) -> Option<Granted> {
        let batch = self.batches.get_mut(&id)?;
        batch.attempts += 1;
        self.next_lease += 1;
        self.leases.insert(
            self.next_lease,
            Leased {
                batch: id,
                deadline,
            },
        );
        Some(Granted {
            lease: self.next_lease,
            key: batch.key.clone(),
            range: batch.range.clone(),
            attempt: batch.attempts,
        })
    }

    /// The batch a live lease holds; `None` for an unknown, answered or
    /// expired lease (call [`sweep`](Self::sweep) first).
    pub fn leased(&self, lease: u64) -> Option<BatchId> {
        self.leases.get(&lease).map(|leased| leased.batch)
    }

    /// Moves a live lease's deadline; `false` for an unknown, answered or
    /// expired lease (call [`sweep`](Self::sweep) first).
    pub fn extend(&mut self, lease: u64, deadline: Option<Instant>) -> bool {
        match self.leases.get_mut(&lease) {
            Some(leased) => {
                leased.deadline = deadline;
                true
            }
            None => false,
        }
    }

    /// Whether `id` is the last outstanding batch of its request.
    pub fn is_last(&self, id: BatchId) -> bool {
        self.batches
            .get(&id)
            .and_then(|batch| self.outstanding.get(&batch.key))
            == Some(&1)
    }

    /// Forgets a batch that is done or dead-lettered, and its lease.
    pub fn finish(&mut self, lease: Option<u64>, id: BatchId) {
        if let Some(lease) = lease {
            self.leases.remove(&lease);
        }
        let Some(batch) = self.batches.remove(&id) else {
            return;
        };
        if let Entry::Occupied(mut left) = self.outstanding.entry(batch.key) {
            *left.get_mut() -= 1;
            if *left.get() == 0 {
                left.remove();
            }
        }
    }

    /// Ends a lease and delivers its batch again at `due`.
    pub fn retry_at(&mut self, lease: u64, id: BatchId, due: Instant) {
        self.leases.remove(&lease);
        self.delayed.insert((due, id));
    }

    /// Ends a lease without counting it: the batch goes back to the front of
    /// its company's FIFO.
    pub fn release(&mut self, lease: u64, id: BatchId) {
        self.leases.remove(&lease);
        if let Some(batch) = self.batches.get_mut(&id) {
            batch.attempts = batch.attempts.saturating_sub(1);
        }
        self.make_ready(id, true);
    }

    /// Batches per lane that are ready, waiting for a retry, or leased.
    pub fn depths(&self) -> LaneDepths {
        let mut depth = [0u64; 3];
        for (lane, queue) in self.lanes.iter().enumerate() {
            depth[lane] += queue.len as u64;
        }
        let waiting = self.delayed.iter().map(|(_, id)| *id);
        let leased = self.leases.values().map(|lease| lease.batch);
        for id in waiting.chain(leased) {
            if let Some(batch) = self.batches.get(&id) {
                depth[lane_index(batch.priority)] += 1;
            }
        }
        LaneDepths {
            high: depth[0],
            normal: depth[1],
            low: depth[2],
        }
    }
}
