//! Port contract tests: what every adapter must do, written once. Each
//! adapter's own tests build a fresh, empty instance per function and call
//! it (see `adapters/embedded/tests.rs`); a function panics on the first
//! violation, naming it.
//!
//! The queue functions rely on the adapter being configured as
//! [`QUEUE_CONFIG`] says (small batches, short backoff, two attempts), so
//! that batching, retries and dead letters show up in a few calls.

use std::sync::Arc;
use std::time::{Duration, Instant};

use artifact_render::request::{
    CompanyId, Priority, ProfileId, RecipientId, RequestId, TemplateId,
};
use artifact_render::template::{Channel, ProfileProjection, TemplateParts};
use artifact_render::{
    Artifact, PreparedRequest, RenderRequest, RequestLimits, TemplateCache, TemplateKey,
};
use jiff::Timestamp;
use serde_json::json;

use crate::{
    ArtifactKey, ArtifactStore, Completion, Counts, EngagementEvent, EngagementKind, EngagementLog,
    Error, Lane, LaneDepths, Lease, MirrorJob, MirrorQueue, ProfileStore, RequestQueue,
    RequestState, ResponseEvent, ResponseLog, Retry, Submitted, TemplateStore, Unmirrored,
};

/// How a queue under contract test must be configured.
#[derive(Debug, Clone, Copy)]
pub struct QueueConfig {
    /// Recipients per batch (the sample requests are SMS).
    pub batch_size: usize,
    /// Deliveries before a batch is dead-lettered.
    pub max_attempts: u32,
    /// Delay before the first retry.
    pub retry_backoff: Duration,
    /// How long a lease lasts. Long enough that no test outlives a lease it
    /// did not mean to expire, even on a loaded machine.
    pub lease_timeout: Duration,
}

/// The configuration every queue contract function assumes.
pub const QUEUE_CONFIG: QueueConfig = QueueConfig {
    batch_size: 2,
    max_attempts: 2,
    retry_backoff: Duration::from_millis(20),
    lease_timeout: Duration::from_secs(2),
};

/// Long enough for anything that should happen to happen.
const PATIENCE: Duration = Duration::from_secs(5);

/// A company id, for tests.
pub fn company(name: &str) -> CompanyId {
    CompanyId::parse(name).expect("valid company id")
}

/// A valid SMS request with recipients `r0..` and profiles `p0..`, whose
/// inline template greets `profile.first_name`.
pub fn sample_request(
    company: &str,
    request_id: &str,
    priority: Priority,
    recipients: usize,
) -> Arc<RenderRequest> {
    let recipients: Vec<_> = (0..recipients)
        .map(|i| json!({"recipient_id": format!("r{i}"), "profile_id": format!("p{i}")}))
        .collect();
    let body = json!({
        "request_id": request_id,
        "company_id": company,
        "client_id": "flows",
        "message_id": "m1",
        "priority": priority,
        "send_time": "2026-11-26T09:00:00Z",
        "response_metadata": {"trace": request_id},
        "channel_settings": {
            "channel": "sms",
            "from_number": "+15550100",
            "template": {"inline": {"sms": "Hi {{ profile.first_name | default('there') }}"}},
        },
        "render_recipients": recipients,
    });
    let limits = RequestLimits {
        max_recipients: usize::MAX,
        ..RequestLimits::default()
    };
    let bytes = serde_json::to_vec(&body).expect("sample request serializes");
    Arc::new(RenderRequest::from_json(&bytes, &limits).expect("sample request is valid"))
}

/// `request` bound to its inline template, ready to render artifacts.
pub fn sample_prepared(request: &Arc<RenderRequest>) -> Arc<PreparedRequest> {
    let artifact_render::request::TemplateRef::Inline(parts) =
        request.channel_settings().template()
    else {
        panic!("sample requests use inline templates");
    };
    let cache = TemplateCache::new(8, Default::default());
    let key = TemplateKey::new(request.company_id().clone(), None, None, parts);
    let template = cache
        .get_or_compile(&key, request.channel_settings().channel(), parts)
        .expect("sample template compiles");
    Arc::new(
        PreparedRequest::new(Arc::clone(request), template, None).expect("sample request prepares"),
    )
}

/// Every recipient of `prepared` rendered with `first_name` as its name.
pub fn sample_artifacts(prepared: &PreparedRequest, first_name: &str) -> Vec<Artifact> {
    let profile = Arc::new(json!({"first_name": first_name}));
    prepared
        .request()
        .render_recipients()
        .iter()
        .map(|recipient| prepared.render(recipient, Some(&profile)))
        .collect()
}

fn request_id(value: &str) -> RequestId {
    RequestId::parse(value).expect("valid request id")
}

fn sms_body(artifact: &Artifact) -> &str {
    match &artifact.outcome {
        artifact_render::Outcome::Sms(sms) => &sms.body,
        other => panic!("expected an sms artifact, got {other:?}"),
    }
}

async fn submit(queue: &dyn RequestQueue, request: Arc<RenderRequest>) -> Submitted {
    queue.submit(request).await.expect("submit")
}

async fn lease_now(queue: &dyn RequestQueue) -> Option<Lease> {
    queue.lease(Duration::ZERO).await.expect("lease")
}

async fn lease_soon(queue: &dyn RequestQueue) -> Lease {
    queue
        .lease(PATIENCE)
        .await
        .expect("lease")
        .expect("a batch is ready within the wait")
}

pub fn rendered(count: u64) -> Counts {
    Counts {
        rendered: count,
        ..Counts::default()
    }
}

// ---- RequestQueue ---------------------------------------------------------

/// Resubmitting a request id reports the existing request and queues
/// nothing; the same id under another company is another request.
pub async fn queue_submit_is_idempotent(queue: &dyn RequestQueue) {
    let first = submit(queue, sample_request("acme", "req-1", Priority::Normal, 3)).await;
    let Submitted::Accepted(status) = &first else {
        panic!("first submit must be Accepted, got {first:?}");
    };
    assert_eq!(status.state, RequestState::Queued);
    assert_eq!(status.recipients, 3);
    assert_eq!(status.counts, Counts::default());
    assert_eq!(status.response_metadata, json!({"trace": "req-1"}));

    let again = submit(queue, sample_request("acme", "req-1", Priority::Normal, 3)).await;
    assert_eq!(
        again,
        Submitted::Existing(status.clone()),
        "resubmit must report the existing request"
    );
    assert_eq!(
        queue.depths().await.expect("depths").normal,
        2,
        "resubmit queued batches"
    );

    let other = submit(
        queue,
        sample_request("globex", "req-1", Priority::Normal, 1),
    )
    .await;
    assert!(
        matches!(other, Submitted::Accepted(_)),
        "another company's request id is a new request"
    );
    let mut leased = 0;
    while lease_now(queue).await.is_some() {
        leased += 1;
    }
    assert_eq!(
        leased, 3,
        "two batches of acme/req-1 and one of globex/req-1"
    );
}

/// A request is invisible to every other company.
pub async fn queue_status_is_tenant_scoped(queue: &dyn RequestQueue) {
    submit(queue, sample_request("acme", "req-1", Priority::Normal, 1)).await;
    let status = |company_name: &'static str, id: &'static str| async move {
        queue
            .status(&company(company_name), &request_id(id))
            .await
            .expect("status")
    };
    assert!(status("acme", "req-1").await.is_some());
    assert_eq!(
        status("globex", "req-1").await,
        None,
        "another company sees the request"
    );
    assert_eq!(status("acme", "req-2").await, None);
}

/// A request's batches are consecutive ranges of at most `batch_size` that
/// cover every recipient exactly once.
pub async fn queue_batches_cover_every_recipient_once(queue: &dyn RequestQueue) {
    submit(queue, sample_request("acme", "req-1", Priority::Low, 5)).await;
    let mut ranges = Vec::new();
    while let Some(lease) = lease_now(queue).await {
        assert_eq!(lease.request.request_id().as_str(), "req-1");
        assert_eq!(lease.attempt, 1);
        assert!(
            lease.recipients.len() <= QUEUE_CONFIG.batch_size,
            "batch {:?} too big",
            lease.recipients
        );
        assert!(!lease.recipients.is_empty(), "empty batch");
        ranges.push(lease.recipients);
    }
    ranges.sort_by_key(|range| range.start);
    let mut next = 0;
    for range in &ranges {
        assert_eq!(
            range.start, next,
            "ranges {ranges:?} overlap or leave a gap"
        );
        next = range.end;
    }
    assert_eq!(next, 5, "ranges {ranges:?} do not cover all 5 recipients");
}

/// `high` is leased before `normal`, and `normal` before `low`, whatever the
/// submit order.
pub async fn queue_leases_high_before_normal_before_low(queue: &dyn RequestQueue) {
    for (id, priority) in [
        ("bulk", Priority::Low),
        ("news", Priority::Normal),
        ("otp", Priority::High),
    ] {
        submit(queue, sample_request("acme", id, priority, 3)).await;
    }
    let mut order = Vec::new();
    while let Some(lease) = lease_now(queue).await {
        order.push(lease.request.priority());
    }
    use Priority::{High, Low, Normal};
    assert_eq!(order, [High, High, Normal, Normal, Low, Low]);
}

/// Within a lane companies take turns: a small request does not wait behind
/// another company's bulk request.
pub async fn queue_companies_take_turns_within_a_lane(queue: &dyn RequestQueue) {
    submit(queue, sample_request("acme", "bulk", Priority::Low, 20)).await;
    let first = lease_now(queue).await.expect("acme's first batch");
    assert_eq!(first.request.company_id().as_str(), "acme");
    submit(queue, sample_request("globex", "small", Priority::Low, 1)).await;
    let next_two = [lease_now(queue).await, lease_now(queue).await];
    assert!(
        next_two
            .iter()
            .flatten()
            .any(|lease| lease.request.company_id().as_str() == "globex"),
        "globex's batch must be among the next two leases, got {:?}",
        next_two
            .iter()
            .flatten()
            .map(|l| l.request.company_id().as_str())
            .collect::<Vec<_>>()
    );
}

/// Counts are added once per batch, and only the call that completes the
/// last batch reports the request finished.
pub async fn queue_complete_counts_once_and_finishes_once(queue: &dyn RequestQueue) {
    submit(queue, sample_request("acme", "req-1", Priority::Normal, 3)).await;
    let (a, b) = (lease_soon(queue).await, lease_soon(queue).await);
    let status = queue
        .status(&company("acme"), &request_id("req-1"))
        .await
        .expect("status")
        .expect("exists");
    assert_eq!(status.state, RequestState::Rendering);
    assert!(status.started_at.is_some());

    let counts_a = rendered(a.recipients.len() as u64);
    let counts_b = Counts {
        failed: b.recipients.len() as u64,
        ..Counts::default()
    };
    assert_eq!(
        queue.complete(&a, counts_a).await.expect("complete"),
        Completion::Pending
    );
    assert_eq!(
        queue.complete(&a, counts_a).await.expect("complete"),
        Completion::Stale,
        "second answer to a lease"
    );
    let Completion::Finished(finished) = queue.complete(&b, counts_b).await.expect("complete")
    else {
        panic!("completing the last batch must finish the request");
    };
    assert_eq!(
        queue.complete(&b, counts_b).await.expect("complete"),
        Completion::Stale
    );

    let mut total = counts_a;
    total.add(counts_b);
    assert_eq!(finished.state, RequestState::Done);
    assert_eq!(finished.counts, total);
    assert!(finished.finished_at.is_some());
    assert_eq!(finished.response_metadata, json!({"trace": "req-1"}));
    let status = queue
        .status(&company("acme"), &request_id("req-1"))
        .await
        .expect("status");
    assert_eq!(status, Some(finished));
    assert_eq!(queue.depths().await.expect("depths"), LaneDepths::default());
}

/// An answer with an unknown lease id changes nothing.
pub async fn queue_stale_answers_change_nothing(queue: &dyn RequestQueue) {
    submit(queue, sample_request("acme", "req-1", Priority::Low, 1)).await;
    let lease = lease_soon(queue).await;
    let before = queue
        .status(&company("acme"), &request_id("req-1"))
        .await
        .expect("status");
    let unknown = Lease {
        id: lease.id.wrapping_add(1_000_000),
        ..lease.clone()
    };
    assert_eq!(
        queue
            .complete(&unknown, rendered(1))
            .await
            .expect("complete"),
        Completion::Stale
    );
    assert_eq!(
        queue.fail(&unknown, "boom").await.expect("fail"),
        Retry::Stale
    );
    queue.release(&unknown).await.expect("release");
    assert_eq!(
        queue
            .status(&company("acme"), &request_id("req-1"))
            .await
            .expect("status"),
        before
    );
    assert!(
        lease_now(queue).await.is_none(),
        "a stale release made the leased batch ready"
    );
    assert_eq!(queue.depths().await.expect("depths").low, 1);
    let Completion::Finished(status) = queue.complete(&lease, rendered(1)).await.expect("complete")
    else {
        panic!("the live lease still completes");
    };
    assert_eq!(status.counts, rendered(1));
}

/// A lease not answered within `lease_timeout` is delivered again; the late
/// answer to the expired lease is refused.
pub async fn queue_expired_lease_is_delivered_again(queue: &dyn RequestQueue) {
    submit(queue, sample_request("acme", "req-1", Priority::Normal, 1)).await;
    let first = lease_soon(queue).await;
    tokio::time::sleep(QUEUE_CONFIG.lease_timeout + Duration::from_millis(200)).await;
    let second = lease_now(queue)
        .await
        .expect("the expired batch is ready again");
    assert_eq!(second.recipients, first.recipients);
    assert_eq!(second.attempt, 2);
    assert_eq!(
        queue.complete(&first, rendered(1)).await.expect("complete"),
        Completion::Stale
    );
    assert_eq!(
        queue.fail(&first, "late").await.expect("fail"),
        Retry::Stale
    );
    let Completion::Finished(status) = queue
        .complete(&second, rendered(1))
        .await
        .expect("complete")
    else {
        panic!("the new lease completes the request");
    };
    assert_eq!(status.counts, rendered(1), "counted once");
}

/// A failed batch is retried after the backoff, and dead-lettered (failing
/// its request) once it has used `max_attempts`. Dead letters list newest
/// first.
pub async fn queue_fail_retries_then_dead_letters(queue: &dyn RequestQueue) {
    for id in ["req-1", "req-2"] {
        submit(queue, sample_request("acme", id, Priority::Normal, 1)).await;
        let first = lease_soon(queue).await;
        let before = Timestamp::now();
        let Retry::At(at) = queue.fail(&first, "store down").await.expect("fail") else {
            panic!("a first failure is retried");
        };
        let backoff = jiff::SignedDuration::try_from(QUEUE_CONFIG.retry_backoff).expect("small");
        assert!(
            at >= before + backoff,
            "retry at {at} is sooner than the backoff"
        );
        let second = lease_soon(queue).await;
        assert_eq!((second.recipients.clone(), second.attempt), (0..1, 2));
        let Retry::DeadLettered(status) = queue.fail(&second, "store down").await.expect("fail")
        else {
            panic!("failing the last attempt dead-letters the batch");
        };
        assert_eq!(status.state, RequestState::Failed);
        assert_eq!(
            status.error.as_deref(),
            Some("batch 0..1 failed after 2 attempts: store down")
        );
        assert!(status.finished_at.is_some());
        let stored = queue
            .status(&company("acme"), &request_id(id))
            .await
            .expect("status");
        assert_eq!(stored, Some(status));
    }
    assert!(
        lease_now(queue).await.is_none(),
        "a dead letter is not delivered again"
    );
    let letters = queue.dead_letters(10).await.expect("dead letters");
    let ids: Vec<_> = letters
        .iter()
        .map(|letter| letter.request_id.as_str())
        .collect();
    assert_eq!(ids, ["req-2", "req-1"], "newest first");
    let newest = &letters[0];
    assert_eq!(newest.company_id.as_str(), "acme");
    assert_eq!((newest.recipients.clone(), newest.attempts), (0..1, 2));
    assert_eq!(newest.reason, "store down");
    assert_eq!(queue.dead_letters(1).await.expect("dead letters").len(), 1);
    assert_eq!(queue.depths().await.expect("depths"), LaneDepths::default());
}

/// A dead letter fails its request at once, but the request's other
/// batches still render and count. Only the answer that ends the last batch
/// carries `finished_at`: here the `Finished` of the other batch.
pub async fn queue_dead_letter_fails_the_request_and_the_rest_still_counts(
    queue: &dyn RequestQueue,
) {
    submit(queue, sample_request("acme", "req-1", Priority::Normal, 3)).await;
    let (doomed, other) = (lease_soon(queue).await, lease_soon(queue).await);
    assert!(matches!(
        queue.fail(&doomed, "store down").await.expect("fail"),
        Retry::At(_)
    ));
    let doomed = lease_soon(queue).await;
    let Retry::DeadLettered(failed) = queue.fail(&doomed, "store down").await.expect("fail") else {
        panic!("the second failure dead-letters the batch");
    };
    let error = format!(
        "batch {}..{} failed after 2 attempts: store down",
        doomed.recipients.start, doomed.recipients.end
    );
    assert_eq!(failed.state, RequestState::Failed);
    assert_eq!(failed.error.as_deref(), Some(error.as_str()));
    assert_eq!(failed.finished_at, None, "a batch is still rendering");

    let counts = rendered(other.recipients.len() as u64);
    let Completion::Finished(finished) = queue.complete(&other, counts).await.expect("complete")
    else {
        panic!("completing the last batch finishes the request");
    };
    assert_eq!(
        finished.state,
        RequestState::Failed,
        "a failed request stays failed"
    );
    assert_eq!(finished.error.as_deref(), Some(error.as_str()));
    assert_eq!(finished.counts, counts);
    assert!(finished.finished_at.is_some());
}

/// A released batch is ready again at once, first in its company's line,
/// and the release does not count as an attempt.
pub async fn queue_release_does_not_burn_an_attempt(queue: &dyn RequestQueue) {
    submit(queue, sample_request("acme", "req-1", Priority::Normal, 5)).await;
    let first = lease_soon(queue).await;
    queue.release(&first).await.expect("release");
    queue
        .release(&first)
        .await
        .expect("a second release is a no-op");
    let again = lease_now(queue).await.expect("the released batch is ready");
    assert_eq!(
        (again.recipients.clone(), again.attempt),
        (first.recipients.clone(), 1)
    );
    // With max_attempts 2, a failure after the release is still retried.
    assert!(matches!(
        queue.fail(&again, "store down").await.expect("fail"),
        Retry::At(_)
    ));
    let mut leases = Vec::new();
    for _ in 0..3 {
        leases.push(lease_soon(queue).await);
    }
    for lease in &leases {
        let expected = if lease.recipients == first.recipients {
            2
        } else {
            1
        };
        assert_eq!(
            lease.attempt, expected,
            "attempt of batch {:?}",
            lease.recipients
        );
    }
    let mut finished = 0;
    for lease in &leases {
        let counts = rendered(lease.recipients.len() as u64);
        if let Completion::Finished(status) = queue.complete(lease, counts).await.expect("complete")
        {
            assert_eq!(status.counts, rendered(5));
            finished += 1;
        }
    }
    assert_eq!(finished, 1);
}

/// `lease(wait)` waits for the whole wait when nothing comes, and wakes as
/// soon as a request is submitted during the wait.
pub async fn queue_lease_waits_and_wakes_on_submit(queue: &dyn RequestQueue) {
    let wait = Duration::from_millis(100);
    let start = Instant::now();
    assert!(queue.lease(wait).await.expect("lease").is_none());
    assert!(
        start.elapsed() >= wait,
        "returned after {:?}, before the wait",
        start.elapsed()
    );

    let start = Instant::now();
    let (leased, _) = tokio::join!(queue.lease(PATIENCE), async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        submit(queue, sample_request("acme", "req-1", Priority::Normal, 1)).await
    });
    let lease = leased.expect("lease").expect("woken by the submit");
    assert_eq!(lease.request.request_id().as_str(), "req-1");
    assert!(
        start.elapsed() < PATIENCE,
        "woke only at the end of the wait"
    );
}

/// Depths count every batch not yet done or dead-lettered: ready, waiting
/// for a retry, or leased.
pub async fn queue_depths_count_unfinished_batches(queue: &dyn RequestQueue) {
    submit(queue, sample_request("acme", "otp", Priority::High, 1)).await;
    submit(queue, sample_request("acme", "bulk", Priority::Low, 3)).await;
    let depths = |high, normal, low| LaneDepths { high, normal, low };
    assert_eq!(queue.depths().await.expect("depths"), depths(1, 0, 2));
    let otp = lease_soon(queue).await;
    assert_eq!(
        queue.depths().await.expect("depths"),
        depths(1, 0, 2),
        "leased batches count"
    );
    queue.complete(&otp, rendered(1)).await.expect("complete");
    assert_eq!(queue.depths().await.expect("depths"), depths(0, 0, 2));
    let bulk = lease_soon(queue).await;
    queue.fail(&bulk, "store down").await.expect("fail");
    assert_eq!(
        queue.depths().await.expect("depths"),
        depths(0, 0, 2),
        "batches waiting for a retry count"
    );
}

// ---- ProfileStore ---------------------------------------------------------

fn profile(id: &str) -> ProfileId {
    ProfileId::parse(id).expect("valid profile id")
}

/// `fetch` returns the ids that exist and leaves out the others; `put`
/// replaces.
pub async fn profiles_fetch_returns_only_existing_ids(profiles: &dyn ProfileStore) {
    let acme = company("acme");
    profiles
        .put(
            &acme,
            vec![
                (profile("p1"), json!({"first_name": "Ada"})),
                (profile("p2"), json!({})),
            ],
        )
        .await
        .expect("put");
    let found = profiles
        .fetch(
            &acme,
            &[profile("p1"), profile("p3")],
            &ProfileProjection::All,
        )
        .await
        .expect("fetch");
    assert_eq!(found.len(), 1, "found {found:?}");
    assert_eq!(*found[&profile("p1")], json!({"first_name": "Ada"}));
    assert!(
        profiles
            .fetch(&acme, &[], &ProfileProjection::All)
            .await
            .expect("fetch")
            .is_empty()
    );

    profiles
        .put(&acme, vec![(profile("p1"), json!({"first_name": "Grace"}))])
        .await
        .expect("put");
    let found = profiles
        .fetch(
            &acme,
            &[profile("p1"), profile("p2")],
            &ProfileProjection::All,
        )
        .await
        .expect("fetch");
    assert_eq!(*found[&profile("p1")], json!({"first_name": "Grace"}));
    assert_eq!(*found[&profile("p2")], json!({}));
}

/// `fetch` with a projection holds only the named top-level keys, whole.
pub async fn profiles_fetch_projects_top_level_keys(profiles: &dyn ProfileStore) {
    let acme = company("acme");
    let properties = json!({
        "first_name": "Ada",
        "location": {"city": "London", "country": "GB"},
        "bio": "a long text no template reads",
        "orders": [1, 2, 3],
    });
    profiles
        .put(&acme, vec![(profile("p1"), properties.clone())])
        .await
        .expect("put");
    let keys = ["first_name", "location", "absent"];
    let projection = ProfileProjection::Keys(keys.iter().map(|k| k.to_string()).collect());
    let found = profiles
        .fetch(&acme, &[profile("p1")], &projection)
        .await
        .expect("fetch");
    assert_eq!(
        *found[&profile("p1")],
        json!({"first_name": "Ada", "location": {"city": "London", "country": "GB"}})
    );
    let found = profiles
        .fetch(&acme, &[profile("p1")], &ProfileProjection::All)
        .await
        .expect("fetch");
    assert_eq!(*found[&profile("p1")], properties);
}

/// A company never sees another's profiles, even with the same ids.
pub async fn profiles_are_tenant_scoped(profiles: &dyn ProfileStore) {
    let (acme, globex) = (company("acme"), company("globex"));
    profiles
        .put(&acme, vec![(profile("p1"), json!({"first_name": "Ada"}))])
        .await
        .expect("put");
    assert!(
        profiles
            .fetch(&globex, &[profile("p1")], &ProfileProjection::All)
            .await
            .expect("fetch")
            .is_empty()
    );
    profiles
        .put(
            &globex,
            vec![(profile("p1"), json!({"first_name": "Hank"}))],
        )
        .await
        .expect("put");
    let found = profiles
        .fetch(&acme, &[profile("p1")], &ProfileProjection::All)
        .await
        .expect("fetch");
    assert_eq!(*found[&profile("p1")], json!({"first_name": "Ada"}));
}

/// Properties that are not an object are refused, naming the profile, and
/// nothing of that call is written.
pub async fn profiles_put_rejects_non_objects(profiles: &dyn ProfileStore) {
    let acme = company("acme");
    let error = profiles
        .put(
            &acme,
            vec![(profile("p1"), json!({})), (profile("p2"), json!(42))],
        )
        .await
        .expect_err("a number is not a properties object");
    let Error::Invalid(message) = &error else {
        panic!("expected Error::Invalid, got {error:?}");
    };
    assert!(
        message.contains("p2"),
        "message {message:?} does not name the profile"
    );
    let found = profiles
        .fetch(
            &acme,
            &[profile("p1"), profile("p2")],
            &ProfileProjection::All,
        )
        .await
        .expect("fetch");
    assert!(found.is_empty(), "a refused put wrote {found:?}");
}

// ---- TemplateStore --------------------------------------------------------

fn sms_parts(text: &str) -> TemplateParts {
    TemplateParts {
        sms: Some(text.to_owned()),
        ..TemplateParts::default()
    }
}

/// Versions count up from 1 per template; `get(None)` is the latest.
pub async fn templates_versions_increment(templates: &dyn TemplateStore) {
    let (acme, welcome) = (company("acme"), TemplateId::parse("welcome").expect("id"));
    let v1 = templates
        .put(&acme, &welcome, Channel::Sms, sms_parts("Hi"))
        .await
        .expect("put");
    let v2 = templates
        .put(&acme, &welcome, Channel::Sms, sms_parts("Hello"))
        .await
        .expect("put");
    assert_eq!((v1.version, v2.version), (1, 2));
    assert_eq!(
        templates.get(&acme, &welcome, None).await.expect("get"),
        Some(v2.clone())
    );
    assert_eq!(
        templates.get(&acme, &welcome, Some(1)).await.expect("get"),
        Some(v1)
    );
    assert_eq!(
        templates.get(&acme, &welcome, Some(3)).await.expect("get"),
        None
    );
    assert_eq!(
        templates.versions(&acme, &welcome).await.expect("versions"),
        [1, 2]
    );
    let other = TemplateId::parse("reminder").expect("id");
    let first = templates
        .put(&acme, &other, Channel::Sms, sms_parts("Hey"))
        .await
        .expect("put");
    assert_eq!(first.version, 1, "each template numbers its own versions");
}

/// A company never sees another's templates, and numbers its own versions.
pub async fn templates_are_tenant_scoped(templates: &dyn TemplateStore) {
    let (acme, globex) = (company("acme"), company("globex"));
    let welcome = TemplateId::parse("welcome").expect("id");
    templates
        .put(&acme, &welcome, Channel::Sms, sms_parts("Hi"))
        .await
        .expect("put");
    assert_eq!(
        templates.get(&globex, &welcome, None).await.expect("get"),
        None
    );
    assert_eq!(
        templates
            .get(&globex, &welcome, Some(1))
            .await
            .expect("get"),
        None
    );
    assert!(
        templates
            .versions(&globex, &welcome)
            .await
            .expect("versions")
            .is_empty()
    );
    let theirs = templates
        .put(&globex, &welcome, Channel::Sms, sms_parts("Yo"))
        .await
        .expect("put");
    assert_eq!(theirs.version, 1);
    let ours = templates
        .get(&acme, &welcome, None)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(ours.parts, sms_parts("Hi"));
}

// ---- ArtifactSink + ArtifactStore -----------------------------------------

fn artifact_key(company_name: &str, request: &str, recipient: &str, lane: Lane) -> ArtifactKey {
    ArtifactKey {
        company_id: company(company_name),
        request_id: request_id(request),
        recipient_id: RecipientId::parse(recipient).expect("valid recipient id"),
        channel: Channel::Sms,
        lane,
    }
}

/// Writing a batch again (a redelivery) replaces what it wrote; lanes are
/// kept apart.
pub async fn artifacts_overwrite_on_redelivery(artifacts: &dyn ArtifactStore) {
    let request = sample_request("acme", "req-1", Priority::Normal, 3);
    let prepared = sample_prepared(&request);
    let (acme, id) = (company("acme"), request_id("req-1"));
    artifacts
        .write(
            Lane::Production,
            prepared.clone(),
            sample_artifacts(&prepared, "Ada").into(),
        )
        .await
        .expect("write");
    artifacts
        .write(
            Lane::Production,
            prepared.clone(),
            sample_artifacts(&prepared, "Grace").into(),
        )
        .await
        .expect("write");
    artifacts
        .write(
            Lane::Canary,
            prepared.clone(),
            sample_artifacts(&prepared, "Ada").into(),
        )
        .await
        .expect("write");

    let primary = artifacts
        .list(&acme, &id, Lane::Production, None, 100)
        .await
        .expect("list");
    assert_eq!(
        primary,
        sample_artifacts(&prepared, "Grace"),
        "one artifact per recipient, the last written"
    );
    let canary = artifacts
        .list(&acme, &id, Lane::Canary, None, 100)
        .await
        .expect("list");
    assert_eq!(canary, sample_artifacts(&prepared, "Ada"));
    let one = artifacts
        .get(&artifact_key("acme", "req-1", "r1", Lane::Production))
        .await
        .expect("get");
    assert_eq!(one.as_ref().map(sms_body), Some("Hi Grace"));
}

/// `list` pages by recipient id.
pub async fn artifacts_list_pages_by_recipient(artifacts: &dyn ArtifactStore) {
    let request = sample_request("acme", "req-1", Priority::Normal, 5);
    let prepared = sample_prepared(&request);
    artifacts
        .write(
            Lane::Production,
            prepared.clone(),
            sample_artifacts(&prepared, "Ada").into(),
        )
        .await
        .expect("write");
    let (acme, id) = (company("acme"), request_id("req-1"));
    let mut pages = Vec::new();
    let mut after: Option<RecipientId> = None;
    loop {
        let page = artifacts
            .list(&acme, &id, Lane::Production, after.as_ref(), 2)
            .await
            .expect("list");
        let Some(last) = page.last() else { break };
        after = Some(last.recipient_id.clone());
        pages.push(
            page.iter()
                .map(|a| a.recipient_id.as_str().to_owned())
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(pages, [vec!["r0", "r1"], vec!["r2", "r3"], vec!["r4"]]);
}

/// `list_lane` pages through one lane of every company, in key order, and
/// leaves the other lanes out.
pub async fn artifacts_list_lane_pages_across_companies(artifacts: &dyn ArtifactStore) {
    for (company, lane) in [
        ("globex", Lane::Canary),
        ("acme", Lane::Canary),
        ("acme", Lane::Production),
    ] {
        let request = sample_request(company, "req-1", Priority::Normal, 2);
        let prepared = sample_prepared(&request);
        artifacts
            .write(
                lane,
                prepared.clone(),
                sample_artifacts(&prepared, "Ada").into(),
            )
            .await
            .expect("write");
    }
    let mut seen = Vec::new();
    let mut after: Option<ArtifactKey> = None;
    loop {
        let page = artifacts
            .list_lane(Lane::Canary, after.as_ref(), 3)
            .await
            .expect("list_lane");
        let Some((last, _)) = page.last() else { break };
        after = Some(last.clone());
        for (key, artifact) in &page {
            assert_eq!(key.lane, Lane::Canary);
            assert_eq!(key.recipient_id, artifact.recipient_id);
            seen.push(format!("{}/{}", key.company_id, key.recipient_id));
        }
    }
    assert_eq!(seen, ["acme/r0", "acme/r1", "globex/r0", "globex/r1"]);
}

/// A company never sees another's artifacts.
pub async fn artifacts_are_tenant_scoped(artifacts: &dyn ArtifactStore) {
    let request = sample_request("acme", "req-1", Priority::Normal, 1);
    let prepared = sample_prepared(&request);
    artifacts
        .write(
            Lane::Production,
            prepared.clone(),
            sample_artifacts(&prepared, "Ada").into(),
        )
        .await
        .expect("write");
    assert!(
        artifacts
            .get(&artifact_key("acme", "req-1", "r0", Lane::Production))
            .await
            .expect("get")
            .is_some()
    );
    assert_eq!(
        artifacts
            .get(&artifact_key("globex", "req-1", "r0", Lane::Production))
            .await
            .expect("get"),
        None
    );
    assert_eq!(
        artifacts
            .get(&artifact_key("acme", "req-1", "r0", Lane::Canary))
            .await
            .expect("get"),
        None
    );
    let listed = artifacts
        .list(
            &company("globex"),
            &request_id("req-1"),
            Lane::Production,
            None,
            10,
        )
        .await;
    assert!(listed.expect("list").is_empty());
}

// ---- ResponseLog and EngagementLog ----------------------------------------

fn response_event(company_name: &str, request: &str) -> ResponseEvent {
    ResponseEvent {
        company_id: company(company_name),
        request_id: request_id(request),
        state: RequestState::Done,
        counts: rendered(3),
        response_metadata: json!({"trace": request}),
        finished_at: "2026-11-26T09:00:01Z".parse().expect("timestamp"),
        error: None,
    }
}

/// Events list oldest first per company, paged by sequence number.
pub async fn responses_list_in_order_per_company(log: &dyn ResponseLog) {
    for (company_name, request) in [("acme", "req-1"), ("globex", "req-2"), ("acme", "req-3")] {
        log.publish(response_event(company_name, request))
            .await
            .expect("publish");
    }
    let acme = log.list(&company("acme"), 0, 10).await.expect("list");
    let events: Vec<_> = acme.iter().map(|(_, event)| event.clone()).collect();
    assert_eq!(
        events,
        [
            response_event("acme", "req-1"),
            response_event("acme", "req-3")
        ]
    );
    assert!(acme[0].0 < acme[1].0, "sequence numbers increase");
    let after = log
        .list(&company("acme"), acme[0].0, 10)
        .await
        .expect("list");
    assert_eq!(after, acme[1..]);
    assert_eq!(
        log.list(&company("acme"), 0, 1).await.expect("list"),
        acme[..1]
    );
    let globex = log.list(&company("globex"), 0, 10).await.expect("list");
    assert_eq!(globex.len(), 1);
    assert_eq!(globex[0].1, response_event("globex", "req-2"));
}

fn engagement_event(company_name: &str, recipient: &str) -> EngagementEvent {
    EngagementEvent {
        kind: EngagementKind::Click,
        company_id: company(company_name),
        message_id: artifact_render::request::MessageId::parse("m1").expect("id"),
        recipient_id: RecipientId::parse(recipient).expect("id"),
        link: Some(0),
        destination: Some("https://shop.example/".into()),
        at: "2026-11-26T10:00:00Z".parse().expect("timestamp"),
    }
}

/// Engagement events list oldest first per company, paged by sequence
/// number.
pub async fn engagement_list_in_order_per_company(log: &dyn EngagementLog) {
    for (company_name, recipient) in [("acme", "r0"), ("globex", "r1"), ("acme", "r2")] {
        log.record(engagement_event(company_name, recipient))
            .await
            .expect("record");
    }
    let acme = log.list(&company("acme"), 0, 10).await.expect("list");
    let events: Vec<_> = acme.iter().map(|(_, event)| event.clone()).collect();
    assert_eq!(
        events,
        [
            engagement_event("acme", "r0"),
            engagement_event("acme", "r2")
        ]
    );
    let after = log
        .list(&company("acme"), acme[0].0, 10)
        .await
        .expect("list");
    assert_eq!(after, acme[1..]);
    let globex = log.list(&company("globex"), 0, 10).await.expect("list");
    assert_eq!(globex.len(), 1);
}

/// A finished request is unannounced until [`RequestQueue::announced`];
/// unfinished ones never are, and `finished_before` bounds the list.
pub async fn queue_unannounced_lists_finished_requests_until_announced(queue: &dyn RequestQueue) {
    let request = sample_request("acme", "announce", Priority::Normal, 1);
    queue.submit(request.clone()).await.expect("submit");
    queue
        .submit(sample_request("acme", "pending", Priority::Normal, 1))
        .await
        .expect("submit");
    let far_future = Timestamp::now() + std::time::Duration::from_secs(3600);
    assert!(
        queue
            .unannounced(far_future, 10)
            .await
            .expect("unannounced")
            .is_empty(),
        "nothing has finished yet"
    );

    // Lease until the `announce` batch comes up; leave `pending` leased.
    let mut finished = None;
    while finished.is_none() {
        let lease = queue
            .lease(std::time::Duration::from_secs(1))
            .await
            .expect("lease")
            .expect("a batch is ready");
        if lease.request.request_id() == request.request_id() {
            finished = Some(
                queue
                    .complete(
                        &lease,
                        Counts {
                            rendered: 1,
                            ..Counts::default()
                        },
                    )
                    .await
                    .expect("complete"),
            );
        }
    }
    assert!(
        matches!(finished, Some(Completion::Finished(_))),
        "{finished:?}"
    );

    let listed = queue
        .unannounced(far_future, 10)
        .await
        .expect("unannounced");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].request_id, *request.request_id());
    assert_eq!(listed[0].state, RequestState::Done);
    let long_ago = Timestamp::now() - std::time::Duration::from_secs(3600);
    assert!(
        queue
            .unannounced(long_ago, 10)
            .await
            .expect("unannounced")
            .is_empty()
    );

    // Announcing is scoped by company: another company's call changes nothing.
    queue
        .announced(&company("other"), request.request_id())
        .await
        .expect("announced");
    assert_eq!(
        queue
            .unannounced(far_future, 10)
            .await
            .expect("unannounced")
            .len(),
        1
    );
    queue
        .announced(request.company_id(), request.request_id())
        .await
        .expect("announced");
    assert!(
        queue
            .unannounced(far_future, 10)
            .await
            .expect("unannounced")
            .is_empty()
    );
}

/// A batch that can never render is dead-lettered at once, on its first
/// attempt, and its request fails; a second answer to the lease is stale.
pub async fn queue_reject_dead_letters_at_once(queue: &dyn RequestQueue) {
    let request = sample_request("acme", "doomed", Priority::Normal, 1);
    submit(queue, request).await;
    let lease = lease_soon(queue).await;
    let answer = queue
        .reject(&lease, "template \"gone\" not found")
        .await
        .expect("reject");
    let Retry::DeadLettered(status) = answer else {
        panic!("expected a dead letter, got {answer:?}");
    };
    assert_eq!(status.state, RequestState::Failed);
    assert!(
        status.finished_at.is_some(),
        "its only batch ended: {status:?}"
    );
    let error = status.error.expect("an error");
    assert!(error.contains("template \"gone\" not found"), "{error}");
    let letters = queue.dead_letters(10).await.expect("dead letters");
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].attempts, 1);
    assert_eq!(letters[0].reason, "template \"gone\" not found");
    assert_eq!(
        queue.reject(&lease, "again").await.expect("reject"),
        Retry::Stale
    );
    assert!(lease_now(queue).await.is_none(), "nothing is retried");
}

// ---- MirrorQueue ----------------------------------------------------------

fn mirror_job(company: &str, request: &str, recipients: &[usize]) -> MirrorJob {
    MirrorJob {
        company_id: self::company(company),
        request_id: request_id(request),
        recipients: recipients.to_vec(),
    }
}

/// Each lane has its own jobs, up to its capacity; a held job is not given
/// to another worker until its lease runs out; a rendered job is forgotten
/// and an abandoned one kept with its reason.
pub async fn mirror_queue_holds_jobs_per_lane(
    queue: &dyn MirrorQueue,
    requests: &dyn RequestQueue,
) {
    let request = sample_request("acme", "req-1", Priority::Normal, 4);
    requests.submit(request.clone()).await.expect("submit");
    let (first, second) = (
        mirror_job("acme", "req-1", &[0, 2]),
        mirror_job("acme", "req-1", &[3]),
    );
    for lane in [Lane::Canary, Lane::Control] {
        assert!(
            queue
                .mirror(lane, &first, &request, 2)
                .await
                .expect("mirror")
        );
        assert!(
            queue
                .mirror(lane, &second, &request, 2)
                .await
                .expect("mirror")
        );
    }
    assert!(
        !queue
            .mirror(Lane::Canary, &first, &request, 2)
            .await
            .expect("mirror"),
        "a full lane takes nothing"
    );
    assert!(
        queue
            .mirror(Lane::Production, &first, &request, 2)
            .await
            .is_err()
    );

    let held = queue
        .take_mirrored(Lane::Canary, Duration::from_secs(60))
        .await
        .expect("take")
        .expect("a job");
    let recipients = |lease: &crate::MirrorLease| -> Vec<String> {
        lease
            .recipients
            .iter()
            .map(|&i| {
                lease.request.render_recipients()[i]
                    .recipient_id
                    .as_str()
                    .to_owned()
            })
            .collect()
    };
    assert_eq!(
        (recipients(&held), held.attempts),
        (vec!["r0".into(), "r2".into()], 1)
    );
    assert_eq!(held.request.request_id().as_str(), "req-1");
    let next = queue
        .take_mirrored(Lane::Canary, Duration::ZERO)
        .await
        .expect("take")
        .expect("the other job");
    assert_eq!(recipients(&next), ["r3"]);
    // Its lease ran out at once: taken again, one more attempt.
    let again = queue
        .take_mirrored(Lane::Canary, Duration::from_secs(60))
        .await
        .expect("take")
        .expect("the expired job");
    assert_eq!((again.id, again.attempts), (next.id, 2));
    assert!(
        queue
            .take_mirrored(Lane::Canary, Duration::from_secs(60))
            .await
            .expect("take")
            .is_none()
    );

    queue.mirrored(held.id).await.expect("done");
    queue
        .abandon_mirrored(again.id, "the candidate crashed 3 times")
        .await
        .expect("abandon");
    assert_eq!(
        queue.unmirrored(Lane::Canary).await.expect("unmirrored"),
        [Unmirrored {
            job: second.clone(),
            abandoned: Some("the candidate crashed 3 times".into()),
        }]
    );
    // The control lane's copies are untouched.
    let control = queue.unmirrored(Lane::Control).await.expect("unmirrored");
    assert_eq!(control.len(), 2);
    assert!(control.iter().all(|job| job.abandoned.is_none()));
}
