use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use artifact_render::request::{Priority, ProfileId, TemplateId};
use artifact_render::template::{Channel, ProfileProjection, TemplateParts};
use serde_json::json;

use super::*;
use crate::adapters::embedded::{EmbeddedOptions, EmbeddedStore};
use crate::contract::{company, sample_request};
use crate::{ArtifactStore, ProfileStore, RequestState, ResponseLog, TemplateStore};

struct Harness {
    _dir: tempfile::TempDir,
    store: Arc<EmbeddedStore>,
    pool: WorkerPool,
}

fn open(dir: &tempfile::TempDir) -> Arc<EmbeddedStore> {
    EmbeddedStore::open(
        &dir.path().join("db.sqlite"),
        EmbeddedOptions {
            batch_size: 3,
            sms_batch_size: 3,
            max_attempts: 2,
            retry_backoff: Duration::from_millis(10),
            ..Default::default()
        },
    )
    .unwrap()
}

/// Workers over a fresh store, reading profiles from the store itself or
/// from `profiles`.
fn start_with(profiles: Option<Arc<dyn ProfileStore>>) -> Harness {
    start_with_settings(profiles, WorkerSettings::new(2))
}

fn start_with_settings(
    profiles: Option<Arc<dyn ProfileStore>>,
    settings: WorkerSettings,
) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let profiles = profiles.unwrap_or_else(|| store.clone());
    let renderer = Arc::new(Renderer::new(store.clone(), None, 16, Default::default()));
    let pool = WorkerPool::start(
        settings,
        WorkerPorts {
            queue: store.clone(),
            profiles,
            sink: store.clone(),
            responses: store.clone(),
        },
        renderer,
        Arc::new(Metrics::default()),
    );
    Harness {
        _dir: dir,
        store,
        pool,
    }
}

async fn wait_finished(
    store: &EmbeddedStore,
    company_name: &str,
    id: &str,
) -> crate::RequestStatus {
    let request_id = artifact_render::request::RequestId::parse(id).unwrap();
    for _ in 0..500 {
        let status = store
            .status(&company(company_name), &request_id)
            .await
            .unwrap()
            .unwrap();
        if status.finished_at.is_some() {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{id} never finished");
}

async fn put_profiles(store: &EmbeddedStore, company_name: &str, count: usize) {
    let profiles = (0..count)
        .map(|i| {
            (
                ProfileId::parse(&format!("p{i}")).unwrap(),
                json!({"first_name": format!("Name{i}")}),
            )
        })
        .collect();
    ProfileStore::put(store, &company(company_name), profiles)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_renders_in_batches_and_announces_itself_once() {
    let harness = start_with(None);
    put_profiles(&harness.store, "acme", 9).await;
    let request = sample_request("acme", "req-1", Priority::Normal, 10);
    harness.store.submit(request).await.unwrap();
    let status = wait_finished(&harness.store, "acme", "req-1").await;
    assert_eq!(status.state, RequestState::Done);
    // p9 has no profile: an error artifact, not a retry.
    assert_eq!(
        status.counts,
        Counts {
            rendered: 9,
            skipped: 0,
            failed: 1
        }
    );

    let artifacts = ArtifactStore::list(
        &*harness.store,
        &company("acme"),
        &status.request_id,
        Lane::Production,
        None,
        100,
    )
    .await
    .unwrap();
    assert_eq!(artifacts.len(), 10);
    let sms = serde_json::to_value(&artifacts[0]).unwrap();
    assert_eq!(sms["recipient_id"], "r0");
    assert_eq!(sms["sms"]["body"], "Hi Name0");
    let missing = serde_json::to_value(&artifacts[9]).unwrap();
    assert_eq!(missing["error"]["kind"], "profile_not_found");

    let events = ResponseLog::list(&*harness.store, &company("acme"), 0, 10)
        .await
        .unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].1.response_metadata, json!({"trace": "req-1"}));
    assert_eq!(events[0].1.counts, status.counts);
    harness.pool.shutdown().await;
}

/// Profiles from the store of `harness`, once it exists, noting each
/// projection asked for.
#[derive(Default)]
struct Recording {
    store: std::sync::OnceLock<Arc<EmbeddedStore>>,
    asked: std::sync::Mutex<Vec<ProfileProjection>>,
}

#[async_trait::async_trait]
impl ProfileStore for Recording {
    async fn fetch(
        &self,
        company: &CompanyId,
        ids: &[ProfileId],
        projection: &ProfileProjection,
    ) -> crate::PortResult<HashMap<ProfileId, Arc<serde_json::Value>>> {
        self.asked.lock().unwrap().push(projection.clone());
        let store = self.store.get().expect("set before submitting");
        store.fetch(company, ids, projection).await
    }

    async fn put(
        &self,
        company: &CompanyId,
        profiles: Vec<(ProfileId, serde_json::Value)>,
    ) -> crate::PortResult<()> {
        let store = self.store.get().expect("set before putting");
        ProfileStore::put(&**store, company, profiles).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_fetch_the_profile_keys_the_template_reads_unless_told_not_to() {
    for projecting in [true, false] {
        let recording = Arc::new(Recording::default());
        let settings = WorkerSettings {
            profile_projection: projecting,
            ..WorkerSettings::new(1)
        };
        let harness = start_with_settings(Some(recording.clone()), settings);
        let _ = recording.store.set(harness.store.clone());
        put_profiles(&harness.store, "acme", 2).await;
        let request = sample_request("acme", "req-projected", Priority::Normal, 2);
        harness.store.submit(request).await.unwrap();
        let status = wait_finished(&harness.store, "acme", "req-projected").await;
        assert_eq!(status.counts.rendered, 2);
        let expected = if projecting {
            ProfileProjection::Keys(["first_name".to_owned()].into())
        } else {
            ProfileProjection::All
        };
        assert_eq!(*recording.asked.lock().unwrap(), [expected]);
        harness.pool.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_projection_flag_wins_over_the_setting_and_changes_without_a_restart() {
    use crate::flags::{Flag, FlagKey, Flags};
    let recording = Arc::new(Recording::default());
    let flags = Arc::new(Flags::default());
    let off = Flag {
        percent: 0.0,
        key: FlagKey::Company,
    };
    flags.set(PROJECTION_FLAG, off).unwrap();
    let settings = WorkerSettings {
        flags: flags.clone(),
        ..WorkerSettings::new(1)
    };
    let harness = start_with_settings(Some(recording.clone()), settings);
    let _ = recording.store.set(harness.store.clone());
    put_profiles(&harness.store, "acme", 2).await;
    let submit = |id: &'static str| {
        let store = harness.store.clone();
        async move {
            store
                .submit(sample_request("acme", id, Priority::Normal, 2))
                .await
                .unwrap();
            wait_finished(&store, "acme", id).await
        }
    };
    submit("req-flag-off").await;
    flags
        .set(
            PROJECTION_FLAG,
            Flag {
                percent: 100.0,
                key: FlagKey::Company,
            },
        )
        .unwrap();
    submit("req-flag-on").await;
    assert_eq!(
        *recording.asked.lock().unwrap(),
        [
            ProfileProjection::All,
            ProfileProjection::Keys(["first_name".to_owned()].into())
        ]
    );
    harness.pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sampled_recipients_are_audited_with_their_whole_profiles() {
    let audit = Arc::new(crate::audit::TrafficAudit::new(0.5).unwrap());
    let recording = Arc::new(Recording::default());
    let settings = WorkerSettings {
        audit: Some(audit.clone()),
        ..WorkerSettings::new(1)
    };
    let harness = start_with_settings(Some(recording.clone()), settings);
    let _ = recording.store.set(harness.store.clone());
    let profiles = (0..40)
        .map(|i| {
            (
                ProfileId::parse(&format!("p{i}")).unwrap(),
                json!({"first_name": format!("Name{i}"), "unused": i}),
            )
        })
        .collect();
    ProfileStore::put(&*harness.store, &company("acme"), profiles)
        .await
        .unwrap();
    let request = sample_request("acme", "req-audited", Priority::Normal, 40);
    harness.store.submit(request).await.unwrap();
    let status = wait_finished(&harness.store, "acme", "req-audited").await;
    assert_eq!(status.counts.rendered, 40);

    let traffic = audit.report(&company("acme")).expect("some were sampled");
    assert!(
        (5..=35).contains(&traffic.audited_renders),
        "about half of 40: {}",
        traffic.audited_renders
    );
    let template = &traffic.report.templates[0];
    let first_name = template
        .reads
        .iter()
        .find(|row| row.path == "profile.first_name")
        .unwrap();
    assert_eq!(first_name.renders, traffic.audited_renders);
    // Fetched whole for the audit, so the unread field shows.
    let unread: Vec<&str> = traffic
        .report
        .unread_profile_fields
        .iter()
        .map(|f| f.path.as_str())
        .collect();
    assert_eq!(unread, ["profile.unused"]);
    assert!(
        recording
            .asked
            .lock()
            .unwrap()
            .contains(&ProfileProjection::All)
    );
    assert!(audit.report(&company("other")).is_none());
    harness.pool.shutdown().await;
}

/// A profile store that is down.
struct Down(AtomicUsize);

#[async_trait::async_trait]
impl ProfileStore for Down {
    async fn fetch(
        &self,
        _company: &CompanyId,
        _ids: &[ProfileId],
        _projection: &ProfileProjection,
    ) -> crate::PortResult<HashMap<ProfileId, Arc<serde_json::Value>>> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Err(Error::backend("profile fetch", "connection refused"))
    }

    async fn put(
        &self,
        _company: &CompanyId,
        _profiles: Vec<(ProfileId, serde_json::Value)>,
    ) -> crate::PortResult<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_that_keeps_failing_is_retried_then_dead_lettered() {
    let down = Arc::new(Down(AtomicUsize::new(0)));
    let harness = start_with(Some(down.clone()));
    let request = sample_request("acme", "req-down", Priority::High, 2);
    harness.store.submit(request).await.unwrap();
    let status = wait_finished(&harness.store, "acme", "req-down").await;
    assert_eq!(status.state, RequestState::Failed);
    let error = status.error.clone().unwrap();
    assert!(error.contains("cannot fetch profiles"), "{error}");
    assert!(error.contains("connection refused"), "{error}");
    // max_attempts is 2: tried twice, then given up.
    assert_eq!(down.0.load(Ordering::SeqCst), 2);
    let dead = harness.store.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].attempts, 2);
    let events = ResponseLog::list(&*harness.store, &company("acme"), 0, 10)
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].1.state, RequestState::Failed);
    harness.pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_templates_render_by_version_and_a_missing_one_is_named() {
    let harness = start_with(None);
    put_profiles(&harness.store, "acme", 1).await;
    let id = TemplateId::parse("welcome").unwrap();
    for body in ["v1 {{ profile.first_name }}", "v2 {{ profile.first_name }}"] {
        let parts = TemplateParts {
            sms: Some(body.into()),
            ..Default::default()
        };
        TemplateStore::put(&*harness.store, &company("acme"), &id, Channel::Sms, parts)
            .await
            .unwrap();
    }
    let renderer = Renderer::new(harness.store.clone(), None, 16, Default::default());
    let v1 = renderer
        .stored(&company("acme"), &id, Some(1))
        .await
        .unwrap();
    assert_eq!(v1.version(), Some(1));
    let latest = renderer.stored(&company("acme"), &id, None).await.unwrap();
    assert_eq!(latest.version(), Some(2));
    // Another company's template is as missing as one that never existed.
    let foreign = renderer
        .stored(&company("other"), &id, None)
        .await
        .unwrap_err();
    assert_eq!(foreign.to_string(), "template \"welcome\" not found");
    assert!(!foreign.is_transient());
    let missing = renderer
        .stored(&company("acme"), &id, Some(7))
        .await
        .unwrap_err();
    assert_eq!(
        missing.to_string(),
        "template \"welcome\" version 7 not found"
    );
    harness.pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_event_missed_by_a_crash_is_published_when_workers_start() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    // A worker that finished the request and died before publishing.
    store
        .submit(sample_request("acme", "req-orphan", Priority::Normal, 2))
        .await
        .unwrap();
    let lease = store.lease(Duration::from_secs(1)).await.unwrap().unwrap();
    let counts = Counts {
        rendered: 2,
        ..Counts::default()
    };
    assert!(matches!(
        store.complete(&lease, counts).await.unwrap(),
        Completion::Finished(_)
    ));
    assert!(
        ResponseLog::list(&*store, &company("acme"), 0, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let renderer = Arc::new(Renderer::new(store.clone(), None, 16, Default::default()));
    let ports = WorkerPorts {
        queue: store.clone(),
        profiles: store.clone(),
        sink: store.clone(),
        responses: store.clone(),
    };
    let pool = WorkerPool::start(
        WorkerSettings::new(1),
        ports,
        renderer,
        Arc::new(Metrics::default()),
    );
    let mut events = Vec::new();
    for _ in 0..200 {
        events = ResponseLog::list(&*store, &company("acme"), 0, 10)
            .await
            .unwrap();
        if !events.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].1.counts, counts);
    let later = jiff::Timestamp::now() + Duration::from_secs(3600);
    assert!(store.unannounced(later, 10).await.unwrap().is_empty());
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_naming_a_missing_template_fails_without_retries() {
    let harness = start_with(None);
    put_profiles(&harness.store, "acme", 1).await;
    let request = serde_json::json!({
        "request_id": "req-missing", "company_id": "acme", "client_id": "flows",
        "message_id": "m1", "send_time": "2026-11-26T09:00:00Z",
        "channel_settings": {"channel": "sms", "from_number": "+15550100",
            "template": {"id": "nowhere", "version": 3}},
        "render_recipients": [{"recipient_id": "r0", "profile_id": "p0"}],
    });
    let request = artifact_render::RenderRequest::from_json(
        request.to_string().as_bytes(),
        &Default::default(),
    )
    .unwrap();
    harness.store.submit(Arc::new(request)).await.unwrap();
    let status = wait_finished(&harness.store, "acme", "req-missing").await;
    assert_eq!(status.state, RequestState::Failed);
    let error = status.error.unwrap();
    assert!(
        error.contains("template \"nowhere\" version 3 not found"),
        "{error}"
    );
    let dead = harness.store.dead_letters(10).await.unwrap();
    assert_eq!(dead[0].attempts, 1, "retried: {dead:?}");
    harness.pool.shutdown().await;
}

/// Counts reads, to show what the compile cache saves.
struct CountingTemplates {
    inner: Arc<EmbeddedStore>,
    reads: AtomicUsize,
}

#[async_trait::async_trait]
impl TemplateStore for CountingTemplates {
    async fn put(
        &self,
        company: &CompanyId,
        id: &TemplateId,
        channel: Channel,
        parts: TemplateParts,
    ) -> crate::PortResult<crate::StoredTemplate> {
        TemplateStore::put(&*self.inner, company, id, channel, parts).await
    }

    async fn get(
        &self,
        company: &CompanyId,
        id: &TemplateId,
        version: Option<u32>,
    ) -> crate::PortResult<Option<crate::StoredTemplate>> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        TemplateStore::get(&*self.inner, company, id, version).await
    }

    async fn versions(&self, company: &CompanyId, id: &TemplateId) -> crate::PortResult<Vec<u32>> {
        self.inner.versions(company, id).await
    }
}

#[tokio::test]
async fn a_compiled_version_is_not_read_from_the_store_again() {
    let dir = tempfile::tempdir().unwrap();
    let templates = Arc::new(CountingTemplates {
        inner: open(&dir),
        reads: AtomicUsize::new(0),
    });
    let id = TemplateId::parse("welcome").unwrap();
    let parts = TemplateParts {
        sms: Some("Hi".into()),
        ..Default::default()
    };
    TemplateStore::put(&*templates, &company("acme"), &id, Channel::Sms, parts)
        .await
        .unwrap();
    let renderer = Renderer::new(templates.clone(), None, 16, Default::default());
    for _ in 0..3 {
        renderer
            .stored(&company("acme"), &id, Some(1))
            .await
            .unwrap();
    }
    assert_eq!(templates.reads.load(Ordering::SeqCst), 1);
    // "Latest" is a question for the store every time.
    renderer.stored(&company("acme"), &id, None).await.unwrap();
    assert_eq!(templates.reads.load(Ordering::SeqCst), 2);
}
