//! The queue contract on the NATS server and PostgreSQL of this machine
//! (`ARTIFACT_TEST_NATS_URL` and `ARTIFACT_TEST_POSTGRES_URL` to use
//! others). Each test has a stream and a schema of its own. Where a server
//! does not answer, the tests say they were skipped, except in CI (`CI`
//! set), where they fail.

use std::sync::Arc;

use artifact_render::request::Priority;

use super::queue::{batch_message, batch_of};
use super::{NatsOptions, NatsQueue};
use crate::adapters::postgres::tests::{batch_messages_kept, drop_schema, fresh, test_name};
use crate::adapters::postgres::{BatchRef, PostgresStore};
use crate::contract::{self, QUEUE_CONFIG};
use crate::{Completion, RequestQueue, Submitted};

pub(crate) fn nats_url() -> String {
    std::env::var("ARTIFACT_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// A queue configured as the contract says, on a fresh stream and schema,
/// or `None` (said aloud) when a server does not answer outside CI.
pub(crate) async fn fresh_queue(
    test: &str,
    options: NatsOptions,
) -> Option<(NatsQueue, Arc<PostgresStore>, String)> {
    let (store, schema) = fresh(test).await?;
    let options = NatsOptions {
        url: nats_url(),
        name: test_name(test),
        ..options
    };
    let queue = match NatsQueue::connect(options.clone(), store.clone()).await {
        Ok(queue) => queue,
        Err(error @ crate::Error::Backend { .. }) if std::env::var_os("CI").is_none() => {
            eprintln!(
                "skipped {test}: NATS not reachable at {} ({error})",
                nats_url()
            );
            drop_schema(&store, &schema).await;
            return None;
        }
        Err(error) => panic!("NATS must be reachable at {} in CI: {error}", nats_url()),
    };
    // A stream left by an earlier run under the same process id.
    queue.delete_stream().await;
    let queue = NatsQueue::connect(options, store.clone())
        .await
        .expect("reconnect after clearing the stream");
    Some((queue, store, schema))
}

/// Every lease `queue` gives, unanswered, until none comes within `wait`.
async fn lease_all(queue: &NatsQueue, wait: std::time::Duration) -> Vec<crate::Lease> {
    let mut leases = Vec::new();
    while let Some(lease) = queue.lease(wait).await.unwrap() {
        leases.push(lease);
    }
    leases
}

pub(crate) fn contract_options() -> NatsOptions {
    NatsOptions {
        batch_size: QUEUE_CONFIG.batch_size,
        sms_batch_size: QUEUE_CONFIG.batch_size,
        max_attempts: QUEUE_CONFIG.max_attempts,
        retry_backoff: QUEUE_CONFIG.retry_backoff,
        lease_timeout: QUEUE_CONFIG.lease_timeout,
        ..NatsOptions::default()
    }
}

macro_rules! contract_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let Some((queue, store, schema)) =
                    fresh_queue(stringify!($name), contract_options()).await
                else {
                    return;
                };
                contract::$name(&queue).await;
                queue.delete_stream().await;
                drop_schema(&store, &schema).await;
            }
        )*
    };
}

contract_tests!(
    queue_submit_is_idempotent,
    queue_companies_take_turns_within_a_lane,
    queue_status_is_tenant_scoped,
    queue_batches_cover_every_recipient_once,
    queue_leases_high_before_normal_before_low,
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
);

/// A lease carries its batch's recipients alone, at their submitted
/// positions, so no message holds the whole list.
#[tokio::test]
async fn a_batch_message_carries_only_its_recipients() {
    let Some((queue, store, schema)) = fresh_queue("batch_alone", contract_options()).await else {
        return;
    };
    queue
        .submit(contract::sample_request(
            "acme",
            "req-1",
            Priority::Normal,
            5,
        ))
        .await
        .unwrap();
    let mut seen = Vec::new();
    while let Some(lease) = queue.lease(std::time::Duration::ZERO).await.unwrap() {
        assert_eq!(
            lease.request.render_recipients().len(),
            lease.recipients.len()
        );
        assert_eq!(lease.offset, lease.recipients.start);
        let ids: Vec<_> = lease
            .batch()
            .iter()
            .map(|r| r.recipient_id.as_str().to_owned())
            .collect();
        let expected: Vec<_> = lease.recipients.clone().map(|i| format!("r{i}")).collect();
        assert_eq!(ids, expected);
        seen.extend(ids);
    }
    assert_eq!(seen.len(), 5);
    queue.delete_stream().await;
    drop_schema(&store, &schema).await;
}

/// A request whose batches would pass the server's max payload is split
/// into smaller batches; one whose single recipient does not fit is
/// refused, naming the recipient, and nothing is queued.
#[tokio::test]
async fn batches_stay_under_the_max_payload_and_an_oversize_recipient_is_refused() {
    let options = NatsOptions {
        sms_batch_size: 1_000,
        ..contract_options()
    };
    let Some((queue, store, schema)) = fresh_queue("max_payload", options).await else {
        return;
    };
    let max_payload = queue.client().server_info().max_payload;
    // 1,000 recipients with ~2 KB of event data each: ~2 MB in one batch.
    let padding = "x".repeat(2_000);
    let big = request_with_event_data("acme", "big", 1_000, &padding);
    let Submitted::Accepted(_) = queue.submit(big).await.unwrap() else {
        panic!("accepted");
    };
    let mut covered = 0;
    while let Some(lease) = queue.lease(std::time::Duration::ZERO).await.unwrap() {
        covered += lease.recipients.len();
        let size = lease.request.stored_json().unwrap().len();
        assert!(size < max_payload, "{size} bytes");
        queue
            .complete(&lease, contract::rendered(lease.recipients.len() as u64))
            .await
            .unwrap();
    }
    assert_eq!(covered, 1_000);

    let huge = request_with_event_data("acme", "huge", 2, &"y".repeat(max_payload));
    let error = queue.submit(huge).await.unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("render_recipients[0] alone makes a batch of"),
        "{error}"
    );
    let status = queue
        .status(
            &contract::company("acme"),
            &artifact_render::request::RequestId::parse("huge").unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(status, None, "nothing is recorded for a refused request");
    queue.delete_stream().await;
    drop_schema(&store, &schema).await;
}

fn request_with_event_data(
    company: &str,
    id: &str,
    recipients: usize,
    padding: &str,
) -> Arc<artifact_render::RenderRequest> {
    let base = contract::sample_request(company, id, Priority::Normal, recipients);
    let mut body: serde_json::Value = serde_json::from_str(&base.stored_json().unwrap()).unwrap();
    for recipient in body["render_recipients"].as_array_mut().unwrap() {
        recipient["context"] = serde_json::json!({ "padding": padding });
    }
    let limits = artifact_render::RequestLimits {
        max_recipients: usize::MAX,
        max_bytes: usize::MAX,
    };
    Arc::new(
        artifact_render::RenderRequest::from_json(&serde_json::to_vec(&body).unwrap(), &limits)
            .unwrap(),
    )
}

/// A submit that died after publishing its first batch reads as absent,
/// and submitting it again publishes that batch once more (the server
/// drops it) and the rest once, cut as the first time even where the
/// retry's batch size differs.
#[tokio::test]
async fn a_resubmit_after_a_half_published_submit_publishes_each_batch_once() {
    let Some((queue, store, schema)) = fresh_queue("half_published", contract_options()).await
    else {
        return;
    };
    let request = contract::sample_request("acme", "req-1", Priority::Normal, 5);
    // Batched by 1 the first time, by 2 (this queue's size) on the retry.
    let messages = batches_of_one(&request);
    store.record_submit(&request, &messages).await.unwrap();
    let shard = super::shard_of(request.company_id());
    queue.publish(1, shard, messages[0].clone()).await.unwrap();
    let company = contract::company("acme");
    assert_eq!(
        queue.status(&company, request.request_id()).await.unwrap(),
        None
    );
    assert!(matches!(
        queue.submit(request.clone()).await.unwrap(),
        Submitted::Accepted(_)
    ));
    assert!(matches!(
        queue.submit(request.clone()).await.unwrap(),
        Submitted::Existing(_)
    ));
    // Unanswered while leasing, so a second copy of a batch would be
    // leased too.
    let leases = lease_all(&queue, std::time::Duration::ZERO).await;
    let ranges: Vec<_> = leases
        .iter()
        .map(|lease| lease.recipients.clone())
        .collect();
    assert_eq!(
        ranges,
        [0..1, 1..2, 2..3, 3..4, 4..5],
        "the first cut, each once, in order"
    );
    let mut finished = 0;
    for lease in &leases {
        let counts = contract::rendered(lease.recipients.len() as u64);
        if let Completion::Finished(_) = queue.complete(lease, counts).await.unwrap() {
            finished += 1;
        }
    }
    assert_eq!(finished, 1);
    assert_eq!(
        batch_messages_kept(&store).await,
        0,
        "a batch's message leaves the ledger when leased"
    );
    queue.delete_stream().await;
    drop_schema(&store, &schema).await;
}

fn batches_of_one(request: &artifact_render::RenderRequest) -> Vec<(BatchRef, bytes::Bytes)> {
    (0..request.render_recipients().len())
        .map(|n| batch_message(request, n..n + 1).unwrap())
        .collect()
}

/// A retry under the same request id with another number of recipients,
/// or another priority, is refused, naming the request: the ledger keeps
/// the first one.
#[tokio::test]
async fn a_resubmit_of_another_request_under_its_id_is_refused() {
    let Some((queue, store, schema)) = fresh_queue("resubmit_other", contract_options()).await
    else {
        return;
    };
    let first = contract::sample_request("acme", "req-1", Priority::Normal, 5);
    // Recorded, never published: as a submit that died.
    store
        .record_submit(&first, &batches_of_one(&first))
        .await
        .unwrap();
    for other in [
        contract::sample_request("acme", "req-1", Priority::Normal, 3),
        contract::sample_request("acme", "req-1", Priority::High, 5),
    ] {
        let error = queue.submit(other).await.unwrap_err();
        assert_eq!(
            error.to_string(),
            "request \"req-1\" was first submitted with 5 recipients at priority normal: \
             submit this one under a new request id"
        );
    }
    assert_eq!(
        queue
            .status(&contract::company("acme"), first.request_id())
            .await
            .unwrap(),
        None
    );
    queue.delete_stream().await;
    drop_schema(&store, &schema).await;
}

/// A response event is kept for polling and published on its company's
/// subject, where a subscriber receives it.
#[tokio::test]
async fn response_events_are_logged_and_published_per_company() {
    use crate::{ResponseEvent, ResponseLog, ResponseSink};
    use futures_util::StreamExt;

    let Some((queue, store, schema)) = fresh_queue("responses", contract_options()).await else {
        return;
    };
    let responses =
        super::NatsResponses::new(queue.client().clone(), queue.options(), store.clone());
    // A dotted id, which the stream's subjects must still capture.
    let acme = contract::company("acme.eu");
    let mut subscription = queue
        .client()
        .subscribe(responses.subject(&acme))
        .await
        .unwrap();
    let event = ResponseEvent {
        company_id: acme.clone(),
        request_id: artifact_render::request::RequestId::parse("req-1").unwrap(),
        state: crate::RequestState::Done,
        counts: contract::rendered(3),
        response_metadata: serde_json::json!({"trace": "req-1"}),
        finished_at: jiff::Timestamp::now(),
        error: None,
    };
    responses.publish(event.clone()).await.unwrap();
    let received = tokio::time::timeout(std::time::Duration::from_secs(5), subscription.next())
        .await
        .expect("published within 5 s")
        .expect("a message");
    let published: ResponseEvent = serde_json::from_slice(&received.payload).unwrap();
    assert_eq!(published, event);
    let listed = responses.list(&acme, 0, 10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].1, event);
    let _ = async_nats::jetstream::new(queue.client().clone())
        .delete_stream(format!(
            "{}_RESPONSES",
            queue.options().name.to_ascii_uppercase()
        ))
        .await;
    queue.delete_stream().await;
    drop_schema(&store, &schema).await;
}

/// Waits up to 30 s for `done` to hold on the status of `request`.
async fn wait_for_status(
    queue: &NatsQueue,
    request: &str,
    done: impl Fn(&crate::RequestStatus) -> bool,
) -> crate::RequestStatus {
    let id = artifact_render::request::RequestId::parse(request).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let status = queue.status(&contract::company("acme"), &id).await.unwrap();
        if let Some(status) = status.filter(|status| done(status)) {
            return status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{request} never got there"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A sink that panics on request `poison`: a render that crashes every
/// time.
struct PoisonSink(Arc<PostgresStore>);

#[async_trait::async_trait]
impl crate::ArtifactSink for PoisonSink {
    async fn write(
        &self,
        lane: crate::Lane,
        prepared: Arc<artifact_render::PreparedRequest>,
        artifacts: Arc<[artifact_render::Artifact]>,
    ) -> crate::PortResult<()> {
        if prepared.request().request_id().as_str() == "poison" {
            panic!("poison pill");
        }
        self.0.write(lane, prepared, artifacts).await
    }
}

/// A request whose render panics every time is dead-lettered, with the
/// panic as its reason, after `max_attempts`, and the requests behind it
/// still render.
#[tokio::test]
async fn a_poison_request_is_dead_lettered_with_its_reason_and_does_not_block_the_queue() {
    use crate::worker::{Renderer, WorkerPool, WorkerPorts, WorkerSettings};

    let Some((queue, store, schema)) = fresh_queue("poison", contract_options()).await else {
        return;
    };
    let queue = Arc::new(queue);
    let profiles = (0..3)
        .map(|i| {
            let id = artifact_render::request::ProfileId::parse(&format!("p{i}")).unwrap();
            (id, serde_json::json!({"first_name": "Ada"}))
        })
        .collect();
    crate::ProfileStore::put(&*store, &contract::company("acme"), profiles)
        .await
        .unwrap();
    queue
        .submit(contract::sample_request(
            "acme",
            "poison",
            Priority::Normal,
            1,
        ))
        .await
        .unwrap();
    queue
        .submit(contract::sample_request(
            "acme",
            "healthy",
            Priority::Normal,
            3,
        ))
        .await
        .unwrap();
    let renderer = Arc::new(Renderer::new(
        store.clone(),
        None,
        8,
        artifact_render::RenderLimits::default(),
    ));
    let pool = WorkerPool::start(
        WorkerSettings::new(2),
        WorkerPorts {
            queue: queue.clone(),
            profiles: store.clone(),
            sink: Arc::new(PoisonSink(store.clone())),
            responses: store.clone(),
        },
        renderer,
        Arc::default(),
    );
    let healthy = wait_for_status(&queue, "healthy", |s| s.finished_at.is_some()).await;
    assert_eq!(healthy.state, crate::RequestState::Done);
    assert_eq!(healthy.counts, contract::rendered(3));
    let poison = wait_for_status(&queue, "poison", |s| s.finished_at.is_some()).await;
    pool.shutdown().await;
    assert_eq!(poison.state, crate::RequestState::Failed);
    let letters = queue.dead_letters(10).await.unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].request_id.as_str(), "poison");
    assert_eq!(letters[0].attempts, QUEUE_CONFIG.max_attempts);
    assert!(
        letters[0]
            .reason
            .contains("rendering panicked: poison pill"),
        "{}",
        letters[0].reason
    );
    queue.delete_stream().await;
    drop_schema(&store, &schema).await;
}

/// A batch whose holder dies every time (never answers) is dead-lettered
/// once its leases have used `max_attempts`, and the queue moves on.
#[tokio::test]
async fn a_batch_that_kills_its_worker_every_time_is_dead_lettered() {
    let Some((queue, store, schema)) = fresh_queue("killer", contract_options()).await else {
        return;
    };
    queue
        .submit(contract::sample_request(
            "acme",
            "killer",
            Priority::Normal,
            1,
        ))
        .await
        .unwrap();
    for attempt in 1..=QUEUE_CONFIG.max_attempts {
        let lease = queue
            .lease(QUEUE_CONFIG.lease_timeout * 3)
            .await
            .unwrap()
            .expect("delivered again once the lease runs out");
        assert_eq!(lease.attempt, attempt);
        // The worker dies: no answer.
    }
    assert!(
        queue
            .lease(QUEUE_CONFIG.lease_timeout * 2)
            .await
            .unwrap()
            .is_none(),
        "the delivery after the last attempt is dead-lettered, not leased"
    );
    queue
        .submit(contract::sample_request(
            "acme",
            "next",
            Priority::Normal,
            1,
        ))
        .await
        .unwrap();
    let next = queue
        .lease(QUEUE_CONFIG.lease_timeout)
        .await
        .unwrap()
        .expect("the next request");
    assert_eq!(next.request.request_id().as_str(), "next");
    let letters = queue.dead_letters(10).await.unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].request_id.as_str(), "killer");
    assert!(
        letters[0]
            .reason
            .starts_with("gave up after 2 attempts (each ended without an answer"),
        "{}",
        letters[0].reason
    );
    queue.delete_stream().await;
    drop_schema(&store, &schema).await;
}

/// Artifacts reach the artifacts stream, one message per artifact keyed by
/// its key, and a batch written again is not stored twice.
#[tokio::test]
async fn the_artifact_stream_keeps_each_artifact_once() {
    use crate::ArtifactSink;

    let Some((queue, store, schema)) = fresh_queue("artifact_stream", contract_options()).await
    else {
        return;
    };
    let sink = super::NatsSink::new(queue.client().clone(), queue.options());
    let request = contract::sample_request("acme.eu", "req-1", Priority::Normal, 3);
    let prepared = contract::sample_prepared(&request);
    let artifacts: Arc<[artifact_render::Artifact]> =
        contract::sample_artifacts(&prepared, "Ada").into();
    for _ in 0..2 {
        sink.write(crate::Lane::Production, prepared.clone(), artifacts.clone())
            .await
            .unwrap();
    }
    let jetstream = async_nats::jetstream::new(queue.client().clone());
    let mut stream = jetstream
        .get_stream(queue.options().artifacts_stream_name())
        .await
        .unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, 3);
    let message = stream.get_raw_message(1).await.unwrap();
    assert_eq!(
        message.subject.as_str(),
        sink.subject(crate::Lane::Production, "acme.eu")
    );
    let line: serde_json::Value = serde_json::from_slice(&message.payload).unwrap();
    assert_eq!(line["lane"], "production");
    assert_eq!(line["recipient_id"], "r0");
    assert_eq!(line["sms"]["body"], "Hi Ada");
    queue.delete_stream().await;
    drop_schema(&store, &schema).await;
}

/// Ids travel in headers escaped: a request id with a `/`, one that
/// spells the first's escape, and one with surrounding spaces are three
/// requests, each leased under its own id and finished.
#[tokio::test]
async fn ids_with_slashes_percents_and_spaces_stay_apart() {
    let Some((queue, store, schema)) = fresh_queue("odd_ids", contract_options()).await else {
        return;
    };
    let ids = ["a/b", "a%2Fb", " r1 "];
    for id in ids {
        let submitted = queue
            .submit(contract::sample_request("acme", id, Priority::Normal, 1))
            .await
            .unwrap();
        assert!(matches!(submitted, Submitted::Accepted(_)), "{id:?}");
    }
    let mut leased = Vec::new();
    while let Some(lease) = queue.lease(std::time::Duration::ZERO).await.unwrap() {
        leased.push(lease.request.request_id().as_str().to_owned());
        let done = queue.complete(&lease, contract::rendered(1)).await.unwrap();
        assert!(matches!(done, Completion::Finished(_)), "{leased:?}");
    }
    leased.sort();
    let mut expected: Vec<_> = ids.iter().map(|id| id.to_string()).collect();
    expected.sort();
    assert_eq!(leased, expected);
    queue.delete_stream().await;
    drop_schema(&store, &schema).await;
}

/// The canary's queue on PostgreSQL, with requests submitted to NATS.
#[tokio::test]
async fn mirror_queue_holds_jobs_per_lane() {
    let Some((queue, store, schema)) = fresh_queue("mirror", contract_options()).await else {
        return;
    };
    contract::mirror_queue_holds_jobs_per_lane(&*store, &queue).await;
    queue.delete_stream().await;
    drop_schema(&store, &schema).await;
}

/// A company whose batches are in `acme`'s shard.
fn company_in_acmes_shard() -> String {
    let acme = super::shard_of(&contract::company("acme"));
    (0..)
        .map(|n| format!("company-{n}"))
        .find(|name| super::shard_of(&contract::company(name)) == acme)
        .expect("some company hashes there")
}

/// Two bulk requests in one shard take turns batch by batch, whichever
/// was submitted first, while nobody answers a lease.
#[tokio::test]
async fn bulk_requests_in_one_shard_take_turns_batch_by_batch() {
    let Some((queue, store, schema)) = fresh_queue("shard_turns", contract_options()).await else {
        return;
    };
    let other = company_in_acmes_shard();
    for company in ["acme", other.as_str()] {
        queue
            .submit(contract::sample_request(company, "bulk", Priority::Low, 8))
            .await
            .unwrap();
    }
    let order: Vec<_> = lease_all(&queue, std::time::Duration::ZERO)
        .await
        .iter()
        .map(|lease| lease.request.company_id().as_str().to_owned())
        .collect();
    let expected: Vec<_> = (0..8)
        .map(|n| if n % 2 == 0 { "acme" } else { other.as_str() })
        .collect();
    assert_eq!(order, expected);
    queue.delete_stream().await;
    drop_schema(&store, &schema).await;
}

/// A worker that recorded its lease and died before publishing the next
/// batch leaves the request stalled only until its batch is delivered
/// again: that lease publishes the next batch, and every batch is leased.
#[tokio::test]
async fn a_worker_that_died_before_publishing_the_next_batch_stalls_nothing() {
    let Some((queue, store, schema)) = fresh_queue("died_before_next", contract_options()).await
    else {
        return;
    };
    let request = contract::sample_request("acme", "req-1", Priority::Normal, 6);
    queue.submit(request.clone()).await.unwrap();
    // The worker that dies: fetches batch 0 and records its lease, no more.
    let shard = super::shard_of(request.company_id());
    let consumer = &queue.consumers[1][shard];
    let message = queue.fetch(consumer).await.unwrap().expect("batch 0");
    let batch = batch_of(&message).unwrap();
    assert_eq!(batch.recipients, 0..2);
    let leased = store.record_lease(&batch).await.unwrap();
    assert_eq!(
        leased.next.map(|(batch, _)| batch.recipients),
        Some(2..4),
        "batch 1 is for this lease to publish"
    );
    assert!(
        queue
            .lease(std::time::Duration::ZERO)
            .await
            .unwrap()
            .is_none(),
        "nothing else is waiting"
    );

    let again = queue
        .lease(QUEUE_CONFIG.lease_timeout * 2)
        .await
        .unwrap()
        .expect("batch 0, delivered again");
    assert_eq!((again.recipients.clone(), again.attempt), (0..2, 2));
    let rest: Vec<_> = lease_all(&queue, std::time::Duration::ZERO)
        .await
        .into_iter()
        .map(|lease| lease.recipients)
        .collect();
    assert_eq!(rest, [2..4, 4..6]);
    queue.delete_stream().await;
    drop_schema(&store, &schema).await;
}

/// A lease that expires after publishing the next batch is delivered
/// again, and its new lease publishes the next batch again: the server
/// drops that copy, so each batch is leased once more at most.
#[tokio::test]
async fn an_expired_lease_does_not_publish_its_next_batch_twice() {
    let Some((queue, store, schema)) = fresh_queue("expired_next", contract_options()).await else {
        return;
    };
    queue
        .submit(contract::sample_request(
            "acme",
            "req-1",
            Priority::Normal,
            4,
        ))
        .await
        .unwrap();
    let first = queue
        .lease(std::time::Duration::ZERO)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.recipients, 0..2);
    // Well past the server's ack_wait, so the batch is due again.
    tokio::time::sleep(QUEUE_CONFIG.lease_timeout + std::time::Duration::from_millis(1_500)).await;
    // Unanswered, so a second copy of a batch would be leased too.
    let leased: Vec<_> = lease_all(&queue, std::time::Duration::from_millis(500))
        .await
        .into_iter()
        .map(|lease| (lease.recipients, lease.attempt))
        .collect();
    // The server delivers the expired batch first, so its new lease runs
    // while batch 1 still waits: the case where publishing again matters.
    assert_eq!(leased, [(0..2, 2), (2..4, 1)]);
    queue.delete_stream().await;
    drop_schema(&store, &schema).await;
}

/// A batch that failed, or was given back, and comes back after the
/// server's duplicate window does not publish its next batch again: the
/// ledger knows its lease published it, and a second copy would render
/// twice.
#[tokio::test]
async fn a_batch_back_after_the_duplicate_window_does_not_publish_its_next_again() {
    let options = NatsOptions {
        duplicate_window: std::time::Duration::from_secs(1),
        ..contract_options()
    };
    let Some((queue, store, schema)) = fresh_queue("late_retry", options).await else {
        return;
    };
    queue
        .submit(contract::sample_request(
            "acme",
            "req-1",
            Priority::Normal,
            6,
        ))
        .await
        .unwrap();
    let wait = std::time::Duration::from_millis(500);
    let first = queue.lease(wait).await.unwrap().unwrap();
    assert_eq!(first.recipients, 0..2);
    queue.fail(&first, "a store was down").await.unwrap();
    let second = queue.lease(wait).await.unwrap().unwrap();
    assert_eq!(second.recipients, 2..4, "published by the first lease");
    queue.release(&second).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;

    let mut leased: Vec<_> = lease_all(&queue, wait)
        .await
        .into_iter()
        .map(|lease| lease.recipients)
        .collect();
    leased.sort_by_key(|range| range.start);
    assert_eq!(leased, [0..2, 2..4, 4..6], "each once");
    queue.delete_stream().await;
    drop_schema(&store, &schema).await;
}
