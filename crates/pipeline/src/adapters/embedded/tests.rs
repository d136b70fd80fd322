//! Runs every port contract against a fresh store, then the embedded
//! adapter's own promises: what survives closing and reopening the file.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use artifact_render::RenderRequest;
use artifact_render::request::Priority;
use tempfile::TempDir;

use super::{EmbeddedOptions, EmbeddedStore};
use crate::contract::{self, QUEUE_CONFIG, company, sample_request};
use crate::{Completion, Counts, Error, RequestQueue, RequestState, Submitted};

fn options() -> EmbeddedOptions {
    EmbeddedOptions {
        batch_size: QUEUE_CONFIG.batch_size,
        sms_batch_size: QUEUE_CONFIG.batch_size,
        max_attempts: QUEUE_CONFIG.max_attempts,
        retry_backoff: QUEUE_CONFIG.retry_backoff,
        lease_timeout: QUEUE_CONFIG.lease_timeout,
        ..EmbeddedOptions::default()
    }
}

fn open(path: &Path) -> Arc<EmbeddedStore> {
    EmbeddedStore::open(path, options()).expect("open store")
}

fn fresh() -> (TempDir, Arc<EmbeddedStore>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir.path().join("pipeline.db"));
    (dir, store)
}

macro_rules! contract_tests {
    ($($name:ident),* $(,)?) => {
        mod contract_tests {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let (_dir, store) = fresh();
                    contract::$name(&*store).await;
                }
            )*
        }
    };
}

contract_tests!(
    queue_submit_is_idempotent,
    queue_status_is_tenant_scoped,
    queue_batches_cover_every_recipient_once,
    queue_leases_high_before_normal_before_low,
    queue_companies_take_turns_within_a_lane,
    queue_complete_counts_once_and_finishes_once,
    queue_stale_answers_change_nothing,
    queue_expired_lease_is_delivered_again,
    queue_fail_retries_then_dead_letters,
    queue_dead_letter_fails_the_request_and_the_rest_still_counts,
    queue_release_does_not_burn_an_attempt,
    queue_lease_waits_and_wakes_on_submit,
    queue_depths_count_unfinished_batches,
    queue_unannounced_lists_finished_requests_until_announced,
    queue_reject_dead_letters_at_once,
    profiles_fetch_returns_only_existing_ids,
    profiles_fetch_projects_top_level_keys,
    profiles_are_tenant_scoped,
    profiles_put_rejects_non_objects,
    templates_versions_increment,
    templates_are_tenant_scoped,
    artifacts_overwrite_on_redelivery,
    artifacts_list_pages_by_recipient,
    artifacts_are_tenant_scoped,
    artifacts_list_lane_pages_across_companies,
    responses_list_in_order_per_company,
    engagement_list_in_order_per_company,
);

#[tokio::test]
async fn mirror_queue_holds_jobs_per_lane() {
    let (_dir, store) = fresh();
    contract::mirror_queue_holds_jobs_per_lane(&*store, &*store).await;
}

fn rendered(count: usize) -> Counts {
    Counts {
        rendered: count as u64,
        ..Counts::default()
    }
}

#[tokio::test]
async fn reopen_delivers_unfinished_batches_again_and_counts_exactly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("pipeline.db");
    let store = open(&path);
    store
        .submit(sample_request("acme", "req-1", Priority::Normal, 5))
        .await
        .expect("submit");
    let done = store
        .lease(Duration::ZERO)
        .await
        .expect("lease")
        .expect("batch");
    assert_eq!(done.recipients, 0..2);
    store.complete(&done, rendered(2)).await.expect("complete");
    let abandoned = store
        .lease(Duration::ZERO)
        .await
        .expect("lease")
        .expect("batch");
    assert_eq!(abandoned.recipients, 2..4);
    drop(store); // the process "dies" holding the lease

    let store = open(&path);
    let again = store
        .submit(sample_request("acme", "req-1", Priority::Normal, 5))
        .await
        .expect("submit");
    assert!(
        matches!(again, Submitted::Existing(_)),
        "idempotent across reopen"
    );
    let mut leases = Vec::new();
    while let Some(lease) = store.lease(Duration::ZERO).await.expect("lease") {
        leases.push(lease);
    }
    let delivered: Vec<_> = leases
        .iter()
        .map(|lease| (lease.recipients.clone(), lease.attempt))
        .collect();
    assert_eq!(
        delivered,
        [(2..4, 2), (4..5, 1)],
        "completed batches are not delivered again"
    );
    let mut finished = None;
    for lease in &leases {
        if let Completion::Finished(status) = store
            .complete(lease, rendered(lease.recipients.len()))
            .await
            .expect("complete")
        {
            finished = Some(status);
        }
    }
    let status = finished.expect("the last batch finishes the request");
    assert_eq!(status.state, RequestState::Done);
    assert_eq!(status.counts, rendered(5));
}

#[tokio::test]
async fn attempts_survive_reopen_so_a_batch_that_kills_the_process_is_dead_lettered() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("pipeline.db");
    let mut store = open(&path);
    store
        .submit(sample_request("acme", "req-1", Priority::Normal, 1))
        .await
        .expect("submit");
    for attempt in 1..=QUEUE_CONFIG.max_attempts {
        let lease = store
            .lease(Duration::ZERO)
            .await
            .expect("lease")
            .expect("batch");
        assert_eq!(lease.attempt, attempt);
        drop(store);
        store = open(&path);
    }
    assert!(store.lease(Duration::ZERO).await.expect("lease").is_none());
    let status = store
        .status(
            &company("acme"),
            &artifact_render::request::RequestId::parse("req-1").expect("id"),
        )
        .await
        .expect("status")
        .expect("exists");
    assert_eq!(status.state, RequestState::Failed);
    let letters = store.dead_letters(10).await.expect("dead letters");
    assert_eq!(letters.len(), 1);
    assert_eq!(
        letters[0].reason,
        "gave up after 2 attempts (the process stopped while rendering it)"
    );
}

#[tokio::test]
async fn a_release_before_the_process_stops_is_not_an_attempt() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("pipeline.db");
    let store = open(&path);
    store
        .submit(sample_request("acme", "req-1", Priority::Normal, 1))
        .await
        .expect("submit");
    let lease = store
        .lease(Duration::ZERO)
        .await
        .expect("lease")
        .expect("batch");
    store.release(&lease).await.expect("release");
    drop(store);
    let store = open(&path);
    let lease = store
        .lease(Duration::ZERO)
        .await
        .expect("lease")
        .expect("batch");
    assert_eq!(lease.attempt, 1);
}

#[tokio::test]
async fn a_stored_request_that_no_longer_parses_is_dead_lettered_when_leased() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("pipeline.db");
    let store = open(&path);
    store
        .submit(sample_request("acme", "req-1", Priority::Normal, 1))
        .await
        .expect("submit");
    drop(store);
    let conn = rusqlite::Connection::open(&path).expect("open file");
    conn.execute("UPDATE request_bodies SET request = '{\"unknown\": 1}'", [])
        .expect("corrupt the request");
    drop(conn);

    let store = open(&path);
    assert!(store.lease(Duration::ZERO).await.expect("lease").is_none());
    let letters = store.dead_letters(10).await.expect("dead letters");
    assert_eq!(letters.len(), 1);
    assert!(
        letters[0]
            .reason
            .starts_with("the stored request no longer parses"),
        "{}",
        letters[0].reason
    );
}

#[tokio::test]
async fn open_refuses_a_newer_schema() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("pipeline.db");
    let conn = rusqlite::Connection::open(&path).expect("open file");
    conn.pragma_update(None, "user_version", 99)
        .expect("set version");
    drop(conn);
    let error = EmbeddedStore::open(&path, options()).expect_err("newer schema");
    assert!(
        matches!(&error, Error::Invalid(message) if message.contains("schema version 99")),
        "{error}"
    );
}

#[tokio::test]
async fn a_request_without_recipients_is_done_at_once() {
    // Validation refuses it, but the type can be deserialized without it.
    let request: RenderRequest = serde_json::from_value(serde_json::json!({
        "request_id": "empty", "company_id": "acme", "client_id": "flows", "message_id": "m1",
        "send_time": "2026-11-26T09:00:00Z",
        "channel_settings": {"channel": "sms", "from_number": "+15550100",
            "template": {"inline": {"sms": "Hi"}}},
        "render_recipients": []
    }))
    .expect("deserializes");
    let (_dir, store) = fresh();
    let submitted = store.submit(Arc::new(request)).await.expect("submit");
    let Submitted::Accepted(status) = submitted else {
        panic!("accepted");
    };
    assert_eq!(status.state, RequestState::Done);
    assert!(status.finished_at.is_some());
    assert!(store.lease(Duration::ZERO).await.expect("lease").is_none());
}

#[test]
fn open_refuses_a_zero_batch_size() {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = EmbeddedOptions {
        batch_size: 0,
        ..EmbeddedOptions::default()
    };
    let error = EmbeddedStore::open(&dir.path().join("pipeline.db"), options).expect_err("invalid");
    assert!(error.to_string().contains("batch_size"), "{error}");
}

/// More request JSON than is kept parsed: the requests that were dropped
/// are read back from the file when their batches come up, before and after
/// a reopen.
#[tokio::test]
async fn requests_beyond_the_recent_ones_are_loaded_from_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("pipeline.db");
    // A budget smaller than any request: only the newest stays parsed.
    let open = |path: &Path| {
        EmbeddedStore::open(
            path,
            EmbeddedOptions {
                parsed_requests_bytes: 1,
                ..options()
            },
        )
        .expect("open store")
    };
    let (count, per_request) = (6, 4);
    let store = open(&path);
    for n in 0..count {
        // Distinct recipient counts tell the requests apart.
        let request = sample_request(
            "acme",
            &format!("req-{n}"),
            Priority::Normal,
            per_request + n,
        );
        store.submit(request).await.expect("submit");
    }
    let check = |lease: &crate::Lease| {
        let n: usize = lease.request.request_id().as_str()[4..]
            .parse()
            .expect("id");
        assert_eq!(lease.request.render_recipients().len(), per_request + n);
        assert!(lease.recipients.end <= per_request + n);
    };
    // The first batch of every request, oldest first: the oldest were
    // dropped from memory by the newer submissions.
    for _ in 0..count {
        let lease = store
            .lease(Duration::ZERO)
            .await
            .expect("lease")
            .expect("batch");
        check(&lease);
        store.release(&lease).await.expect("release");
        let lease = store
            .lease(Duration::ZERO)
            .await
            .expect("lease")
            .expect("batch");
        store
            .complete(&lease, Counts::default())
            .await
            .expect("complete");
    }
    drop(store);

    let store = open(&path);
    while let Some(lease) = store.lease(Duration::ZERO).await.expect("lease") {
        check(&lease);
        store
            .complete(&lease, Counts::default())
            .await
            .expect("complete");
    }
    for n in 0..count {
        let id = artifact_render::request::RequestId::parse(&format!("req-{n}")).expect("id");
        let status = store
            .status(&company("acme"), &id)
            .await
            .expect("status")
            .expect("exists");
        assert_eq!(status.state, RequestState::Done, "{status:?}");
    }
}

/// A stored-template request is kept as the JSON it arrived as, which may
/// carry another id and no version; read back from the file it has the id
/// it was queued under and the version pinned when it was accepted.
#[tokio::test]
async fn a_request_read_back_from_the_file_keeps_its_queue_id_and_pinned_version() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("pipeline.db");
    let body = serde_json::json!({
        "request_id": "as-sent", "company_id": "acme", "client_id": "flows",
        "message_id": "m1", "send_time": "2026-11-26T09:00:00Z",
        "channel_settings": {"channel": "sms", "from_number": "+15550100",
            "template": {"id": "welcome"}},
        "render_recipients": [{"recipient_id": "r1", "profile_id": "p1"}]
    })
    .to_string();
    let mut request = RenderRequest::from_json(body.as_bytes(), &Default::default())
        .expect("valid")
        .with_request_id(artifact_render::request::RequestId::parse("queued").expect("id"));
    request.pin_template_version(4);
    let store = open(&path);
    store.submit(Arc::new(request)).await.expect("submit");
    drop(store);

    let conn = rusqlite::Connection::open(&path).expect("open file");
    let (stored, version): (String, Option<u32>) = conn
        .query_row(
            "SELECT request, template_version FROM request_bodies",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .expect("stored body");
    assert_eq!((stored.as_str(), version), (body.as_str(), Some(4)));
    drop(conn);

    let store = open(&path);
    let lease = store
        .lease(Duration::ZERO)
        .await
        .expect("lease")
        .expect("batch");
    assert_eq!(lease.request.request_id().as_str(), "queued");
    assert_eq!(lease.request.pinned_template_version(), Some(4));
}

/// A file written before request JSON was stored as it arrived gains the
/// version column, and its bodies (serialized after pinning) still load;
/// its `primary` artifacts become `production` ones.
#[tokio::test]
async fn a_version_1_file_is_migrated() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("pipeline.db");
    let conn = rusqlite::Connection::open(&path).expect("open file");
    conn.execute_batch(super::schema::SCHEMA_V1)
        .expect("version 1 schema");
    conn.pragma_update(None, "user_version", 1)
        .expect("set version");
    let request = sample_request("acme", "old", Priority::Normal, 1);
    conn.execute(
        "INSERT INTO requests (company_id, request_id, priority, state, recipients,
             response_metadata, accepted_at) VALUES ('acme', 'old', 'normal', 'queued', 1, '{}',
             '2026-11-26T09:00:00Z')",
        [],
    )
    .expect("request row");
    conn.execute(
        "INSERT INTO request_bodies (company_id, request_id, request) VALUES ('acme', 'old', ?1)",
        [serde_json::to_string(&*request).expect("serializes")],
    )
    .expect("body row");
    conn.execute(
        "INSERT INTO batches (company_id, request_id, range_start, range_end)
         VALUES ('acme', 'old', 0, 1)",
        [],
    )
    .expect("batch row");
    conn.execute(
        "INSERT INTO artifacts (company_id, request_id, lane, recipient_id, channel, artifact)
         VALUES ('acme', 'old', 'primary', 'r0', 'sms', '{}')",
        [],
    )
    .expect("artifact row");
    drop(conn);

    let store = open(&path);
    let lease = store
        .lease(Duration::ZERO)
        .await
        .expect("lease")
        .expect("batch");
    assert_eq!(lease.request.request_id().as_str(), "old");
    drop(store);
    let conn = rusqlite::Connection::open(&path).expect("open file");
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .expect("version");
    assert_eq!(version, 3);
    let lane: String = conn
        .query_row("SELECT lane FROM artifacts", [], |row| row.get(0))
        .expect("lane");
    assert_eq!(lane, "production");
}

/// Commits only append to the log; the checkpointer copies it into the
/// database file in the background.
#[tokio::test]
async fn the_log_is_copied_into_the_database_in_the_background() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("pipeline.db");
    let store = open(&path);
    let before = std::fs::metadata(&path).expect("db file").len();
    store
        .submit(sample_request("acme", "big", Priority::Normal, 5_000))
        .await
        .expect("submit");
    let mut after = before;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        after = std::fs::metadata(&path).expect("db file").len();
        if after > before + 100_000 {
            break;
        }
    }
    assert!(
        after > before + 100_000,
        "{before} -> {after}: not checkpointed"
    );
}

/// A stored name this build does not know is an error naming the column
/// and the value, not a guess.
#[tokio::test]
async fn an_unknown_stored_state_is_named_with_its_column() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("pipeline.db");
    let store = open(&path);
    store
        .submit(sample_request("acme", "req-1", Priority::Normal, 1))
        .await
        .expect("submit");
    let conn = rusqlite::Connection::open(&path).expect("open file");
    conn.execute("UPDATE requests SET state = 'paused'", [])
        .expect_err("the schema refuses an unknown state");
    conn.execute("UPDATE requests SET priority = 'urgent'", [])
        .expect("priority has no check");
    let id = artifact_render::request::RequestId::parse("req-1").expect("id");
    let error = store
        .status(&company("acme"), &id)
        .await
        .expect_err("unknown priority")
        .to_string();
    assert!(error.contains("requests.priority"), "{error}");
    assert!(error.contains("\"urgent\""), "{error}");
}

/// A process attached to another's store (a canary lane worker) leases
/// none of its batches and never migrates its schema.
#[tokio::test]
async fn an_attached_store_leaves_the_queue_and_the_schema_alone() {
    let (dir, store) = fresh();
    let path = dir.path().join("pipeline.db");
    store
        .submit(sample_request("acme", "req-1", Priority::Normal, 3))
        .await
        .expect("submit");
    let attached = EmbeddedStore::open(
        &path,
        EmbeddedOptions {
            attach: true,
            ..options()
        },
    )
    .expect("attach");
    assert!(
        attached
            .lease(Duration::ZERO)
            .await
            .expect("lease")
            .is_none()
    );
    assert!(store.lease(Duration::ZERO).await.expect("lease").is_some());
    drop(attached);

    let conn = rusqlite::Connection::open(&path).expect("open file");
    conn.pragma_update(None, "user_version", 2)
        .expect("set version");
    drop(conn);
    let error = EmbeddedStore::open(
        &path,
        EmbeddedOptions {
            attach: true,
            ..options()
        },
    )
    .expect_err("another schema version is refused");
    assert!(error.to_string().contains("never migrates it"), "{error}");
}
