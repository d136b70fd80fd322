//! The port contract on a real PostgreSQL: the one on this machine's
//! standard port (`ARTIFACT_TEST_POSTGRES_URL` to use another). Each test
//! gets a schema of its own. Where no server answers, the tests say they
//! were skipped, except in CI (`CI` set), where they fail.

use std::sync::Arc;

use super::{PostgresOptions, PostgresStore};
use crate::{Error, contract};

fn url() -> String {
    std::env::var("ARTIFACT_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A store in a fresh schema named after the test, or `None` (said aloud)
/// when no server answers outside CI.
/// A name for the test's own schema or stream: unique per test and
/// process, and short enough for PostgreSQL's 63-byte identifiers.
pub(crate) fn test_name(test: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    test.hash(&mut hasher);
    let short: String = test.chars().take(32).collect();
    format!(
        "t_{short}_{:08x}_{}",
        hasher.finish() as u32,
        std::process::id()
    )
}

pub(crate) async fn fresh(test: &str) -> Option<(Arc<PostgresStore>, String)> {
    let schema = test_name(test);
    let options = PostgresOptions {
        url: url(),
        schema: Some(schema.clone()),
        max_connections: 4,
    };
    // A schema left by an earlier run of the same process id.
    let store = match PostgresStore::connect(&options).await {
        Ok(store) => store,
        Err(error @ Error::Backend { .. }) if std::env::var_os("CI").is_none() => {
            eprintln!(
                "skipped {test}: PostgreSQL not reachable at {} ({error})",
                url()
            );
            return None;
        }
        Err(error) => panic!("PostgreSQL must be reachable at {} in CI: {error}", url()),
    };
    let client = store.client().await.expect("client");
    client
        .batch_execute(&format!(
            "DROP SCHEMA {schema} CASCADE; CREATE SCHEMA {schema}"
        ))
        .await
        .expect("reset schema");
    drop(client);
    store.migrate(Some(&schema)).await.expect("migrate");
    Some((store, schema))
}

/// Batch messages the ledger still keeps, of every request.
pub(crate) async fn batch_messages_kept(store: &PostgresStore) -> i64 {
    let client = store.client().await.unwrap();
    client
        .query_one("SELECT count(*) FROM batch_messages", &[])
        .await
        .unwrap()
        .get(0)
}

pub(crate) async fn drop_schema(store: &PostgresStore, schema: &str) {
    if let Ok(client) = store.client().await {
        let _ = client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .await;
    }
}

macro_rules! contract_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let Some((store, schema)) = fresh(stringify!($name)).await else {
                    return;
                };
                contract::$name(&*store).await;
                drop_schema(&store, &schema).await;
            }
        )*
    };
}

contract_tests!(
    profiles_fetch_returns_only_existing_ids,
    profiles_fetch_projects_top_level_keys,
    profiles_are_tenant_scoped,
    profiles_put_rejects_non_objects,
    templates_versions_increment,
    templates_are_tenant_scoped,
    artifacts_overwrite_on_redelivery,
    artifacts_list_pages_by_recipient,
    artifacts_list_lane_pages_across_companies,
    artifacts_are_tenant_scoped,
    responses_list_in_order_per_company,
    engagement_list_in_order_per_company,
);

#[tokio::test]
async fn template_versions_are_numbered_one_at_a_time_under_concurrent_puts() {
    use artifact_render::request::TemplateId;
    use artifact_render::template::{Channel, TemplateParts};

    use crate::TemplateStore;

    let Some((store, schema)) = fresh("concurrent_puts").await else {
        return;
    };
    let company = contract::company("acme");
    let id = TemplateId::parse("welcome").unwrap();
    let puts = (0..8).map(|n| {
        let (store, company, id) = (store.clone(), company.clone(), id.clone());
        tokio::spawn(async move {
            let parts = TemplateParts {
                sms: Some(format!("v{n}")),
                ..TemplateParts::default()
            };
            store
                .put(&company, &id, Channel::Sms, parts)
                .await
                .unwrap()
                .version
        })
    });
    let mut versions = Vec::new();
    for put in puts {
        versions.push(put.await.unwrap());
    }
    versions.sort_unstable();
    assert_eq!(versions, (1..=8).collect::<Vec<u32>>());
    assert_eq!(store.versions(&company, &id).await.unwrap(), versions);
    drop_schema(&store, &schema).await;
}

#[tokio::test]
async fn a_bad_url_or_schema_name_is_refused_before_connecting() {
    let options = |url: &str, schema: Option<&str>| PostgresOptions {
        url: url.to_owned(),
        schema: schema.map(str::to_owned),
        max_connections: 1,
    };
    let error = PostgresStore::connect(&options("mysql://x", None))
        .await
        .unwrap_err();
    assert!(
        error.to_string().starts_with("database URL \"mysql://x\""),
        "{error}"
    );
    let error = PostgresStore::connect(&options(&url(), Some("x; DROP TABLE profiles")))
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("use lower-case letters, digits and `_`"),
        "{error}"
    );
}

/// A response event published again (its broker publish failed and the
/// worker retries) is logged once.
#[tokio::test]
async fn a_response_event_is_logged_once_per_request() {
    use crate::{ResponseEvent, ResponseLog, ResponseSink};

    let Some((store, schema)) = fresh("response_once").await else {
        return;
    };
    let event = ResponseEvent {
        company_id: contract::company("acme"),
        request_id: artifact_render::request::RequestId::parse("req-1").unwrap(),
        state: crate::RequestState::Done,
        counts: contract::rendered(1),
        response_metadata: serde_json::json!({}),
        finished_at: jiff::Timestamp::now(),
        error: None,
    };
    store.publish(event.clone()).await.unwrap();
    store.publish(event.clone()).await.unwrap();
    let listed = store.list(&contract::company("acme"), 0, 10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].1, event);
    drop_schema(&store, &schema).await;
}

/// The ledger hands out a request's next batch message to every lease of
/// the batch before it, until that next batch is leased (its message is
/// deleted then) or known to be published (the lease was answered, retried
/// or given back); a retried submit gets the first batch until it is
/// leased.
#[tokio::test]
async fn the_ledger_hands_out_each_next_batch_until_it_is_leased_or_published() {
    use artifact_render::request::Priority;
    use bytes::Bytes;

    use super::BatchRef;
    use crate::{Submitted, contract::sample_request};

    let Some((store, schema)) = fresh("next_batches").await else {
        return;
    };
    let request = sample_request("acme", "req-1", Priority::Normal, 6);
    let batch = |first: usize| BatchRef {
        company_id: request.company_id().clone(),
        request_id: request.request_id().clone(),
        recipients: first..first + 2,
    };
    let messages: Vec<_> = [0, 2, 4]
        .map(|first| (batch(first), Bytes::from(format!("batch {first}"))))
        .into();
    let next_of = |leased: super::Leased| {
        leased
            .next
            .map(|(next, message)| (next.recipients, message))
    };

    let (submitted, head) = store.record_submit(&request, &messages).await.unwrap();
    assert!(matches!(submitted, Submitted::Accepted(_)));
    assert_eq!(
        head,
        Some(messages[0].clone()),
        "a new request's own first batch"
    );
    let (_, head) = store.record_submit(&request, &messages).await.unwrap();
    assert_eq!(
        head,
        Some(messages[0].clone()),
        "a retry publishes it again"
    );

    let first = store.record_lease(&batch(0)).await.unwrap();
    assert_eq!((first.attempt, first.answered), (1, false));
    assert_eq!(next_of(first), Some((2..4, Bytes::from("batch 2"))));
    let (_, head) = store.record_submit(&request, &messages).await.unwrap();
    assert_eq!(head, None, "batch 0 was leased: the broker has it");
    let again = store.record_lease(&batch(0)).await.unwrap();
    assert_eq!(
        next_of(again),
        Some((2..4, Bytes::from("batch 2"))),
        "a lease that died may not have published it"
    );
    store.record_next_published(&batch(0)).await.unwrap();
    let retried = store.record_lease(&batch(0)).await.unwrap();
    assert_eq!((retried.attempt, next_of(retried)), (3, None));

    let second = store.record_lease(&batch(2)).await.unwrap();
    assert_eq!(next_of(second), Some((4..6, Bytes::from("batch 4"))));
    store
        .record_done(&batch(2), contract::rendered(2))
        .await
        .unwrap();
    let after_done = store.record_lease(&batch(2)).await.unwrap();
    assert!(after_done.answered);
    assert_eq!(next_of(after_done), None, "answered: batch 4 is out");
    let last = store.record_lease(&batch(4)).await.unwrap();
    assert_eq!(next_of(last), None, "the last batch has no next");

    let other = sample_request("acme", "req-2", Priority::Normal, 4);
    let other_batch = |first: usize| BatchRef {
        request_id: other.request_id().clone(),
        ..batch(first)
    };
    let other_messages: Vec<_> = [0, 2]
        .map(|first| (other_batch(first), Bytes::from(format!("other {first}"))))
        .into();
    store.record_submit(&other, &other_messages).await.unwrap();
    let dead = store.record_lease(&other_batch(0)).await.unwrap();
    assert!(next_of(dead).is_some());
    store
        .record_dead(&other_batch(0), 1, "poison", "batch 0..2: poison")
        .await
        .unwrap();
    let after_dead = store.record_lease(&other_batch(0)).await.unwrap();
    assert_eq!(next_of(after_dead), None, "dead-lettered: batch 2 is out");
    store.record_lease(&other_batch(2)).await.unwrap();

    assert_eq!(
        batch_messages_kept(&store).await,
        0,
        "every batch was leased"
    );
    drop_schema(&store, &schema).await;
}

/// A mirrored job whose recipient indexes point past its request is
/// refused, naming the indexes, and nothing is queued.
#[tokio::test]
async fn a_mirrored_job_past_its_request_is_refused() {
    use artifact_render::request::Priority;

    use crate::{Lane, MirrorJob, MirrorQueue, contract::sample_request};

    let Some((store, schema)) = fresh("mirror_past").await else {
        return;
    };
    let request = sample_request("acme", "req-1", Priority::Normal, 3);
    let job = MirrorJob {
        company_id: request.company_id().clone(),
        request_id: request.request_id().clone(),
        recipients: vec![1, 3],
    };
    let error = store
        .mirror(Lane::Canary, &job, &request, 10)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Invalid(_)), "{error:?}");
    assert_eq!(
        error.to_string(),
        "mirrored job [1, 3]: a recipient index is past the request's recipients"
    );
    assert!(store.unmirrored(Lane::Canary).await.unwrap().is_empty());
    drop_schema(&store, &schema).await;
}
