//! Requests as submitted, whole, kept in memory by a worker process: each
//! lease cuts its request's next batch from one, and reading a request of
//! many recipients from the ledger per batch would cost more than the
//! batch. Bounded by the JSON the requests were stored as; the least
//! recently used go first.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use artifact_render::RenderRequest;
use artifact_render::request::{CompanyId, RequestId};
use tokio::sync::OnceCell;

use crate::adapters::postgres::PostgresStore;
use crate::{Error, PortResult};

/// Stored JSON held, at most: a few of the largest requests the API takes.
const CAPACITY_BYTES: usize = 64 << 20;

type Key = (CompanyId, RequestId);

#[derive(Default)]
pub(super) struct WholeRequests {
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    by_key: HashMap<Key, Entry>,
    bytes: usize,
    clock: u64,
}

struct Entry {
    /// Filled by the first lease that needs it; the others wait for it.
    request: Arc<OnceCell<Arc<RenderRequest>>>,
    bytes: usize,
    used: u64,
}

impl WholeRequests {
    fn entries(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The request, from memory or else from the ledger.
    pub(super) async fn get(
        &self,
        ledger: &PostgresStore,
        company: &CompanyId,
        request_id: &RequestId,
    ) -> PortResult<Arc<RenderRequest>> {
        let key = (company.clone(), request_id.clone());
        let cell = {
            let mut entries = self.entries();
            entries.clock += 1;
            let used = entries.clock;
            let entry = entries.by_key.entry(key.clone()).or_insert_with(|| Entry {
                request: Arc::default(),
                bytes: 0,
                used,
            });
            entry.used = used;
            entry.request.clone()
        };
        let request = cell
            .get_or_try_init(|| async {
                let (request, bytes) = ledger
                    .whole_request(company, request_id)
                    .await?
                    .ok_or_else(|| {
                        Error::Invalid(format!(
                            "request {:?} of company {:?} is not in the ledger",
                            request_id.as_str(),
                            company.as_str()
                        ))
                    })?;
                self.account(&key, bytes);
                Ok::<_, Error>(Arc::new(request))
            })
            .await?
            .clone();
        Ok(request)
    }

    /// Counts a request just loaded, and lets the least recently used go
    /// while over capacity (never the one just loaded).
    fn account(&self, key: &Key, bytes: usize) {
        let mut entries = self.entries();
        let Some(entry) = entries.by_key.get_mut(key) else {
            return;
        };
        entry.bytes = bytes;
        entries.bytes += bytes;
        while entries.bytes > CAPACITY_BYTES {
            let oldest = entries
                .by_key
                .iter()
                .filter(|(other, _)| *other != key)
                .min_by_key(|(_, entry)| entry.used)
                .map(|(other, _)| other.clone());
            match oldest {
                Some(oldest) => entries.forget_key(&oldest),
                None => break,
            }
        }
    }

    /// A finished request: no batch of it is cut again.
    pub(super) fn forget(&self, company: &CompanyId, request_id: &RequestId) {
        self.entries()
            .forget_key(&(company.clone(), request_id.clone()));
    }
}

impl Entries {
    fn forget_key(&mut self, key: &Key) {
        if let Some(entry) = self.by_key.remove(key) {
            self.bytes -= entry.bytes;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: usize) -> Key {
        (
            CompanyId::parse("acme").unwrap(),
            RequestId::parse(&format!("req-{n}")).unwrap(),
        )
    }

    fn insert(whole: &WholeRequests, n: usize) {
        let mut entries = whole.entries();
        entries.clock += 1;
        let used = entries.clock;
        entries.by_key.insert(
            key(n),
            Entry {
                request: Arc::default(),
                bytes: 0,
                used,
            },
        );
    }

    #[test]
    fn the_least_recently_used_go_first_and_the_newest_stays() {
        let whole = WholeRequests::default();
        for n in 0..3 {
            insert(&whole, n);
            whole.account(&key(n), CAPACITY_BYTES / 3);
        }
        assert_eq!(whole.entries().by_key.len(), 3);
        insert(&whole, 3);
        whole.account(&key(3), CAPACITY_BYTES / 2);
        let entries = whole.entries();
        let mut kept: Vec<_> = entries.by_key.keys().cloned().collect();
        kept.sort_by(|a, b| a.1.as_str().cmp(b.1.as_str()));
        assert_eq!(kept, [key(2), key(3)], "req-0 and req-1 were oldest");
        assert_eq!(entries.bytes, CAPACITY_BYTES / 3 + CAPACITY_BYTES / 2);
    }

    #[test]
    fn one_request_over_capacity_is_still_kept_and_forgetting_frees_its_bytes() {
        let whole = WholeRequests::default();
        insert(&whole, 0);
        whole.account(&key(0), 2 * CAPACITY_BYTES);
        assert_eq!(whole.entries().bytes, 2 * CAPACITY_BYTES);
        let (company, id) = key(0);
        whole.forget(&company, &id);
        assert_eq!(whole.entries().bytes, 0);
        assert!(whole.entries().by_key.is_empty());
    }
}
