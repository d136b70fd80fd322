//! The canary end to end in one process: production workers mirror a
//! sample, a lane worker renders it with a candidate, and verification
//! compares the lanes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use artifact_render::RenderRequest;
use artifact_render::request::{RequestLimits, TemplateId};
use artifact_render::template::{Channel, TemplateParts};
use serde_json::json;
use tokio::sync::watch;

use super::verify::{DiffKind, verify};
use super::*;
use crate::adapters::embedded::{EmbeddedOptions, EmbeddedStore};
use crate::contract::company;
use crate::worker::{WorkerPool, WorkerPorts, WorkerSettings};
use crate::{ProfileStore, RequestQueue, TemplateStore};

#[test]
fn the_same_recipients_are_sampled_every_time_near_the_fraction() {
    let request = request(10_000, "req-sample");
    let sample = CanarySample {
        fraction: 0.1,
        ..CanarySample::default()
    };
    let picked: Vec<bool> = request
        .render_recipients()
        .iter()
        .map(|r| sample.picks(&request, r.recipient_id.as_str()))
        .collect();
    let count = picked.iter().filter(|p| **p).count();
    // 10,000 draws at p = 0.1: the standard deviation is 30.
    assert!((900..=1_100).contains(&count), "{count}");
    let again: Vec<bool> = request
        .render_recipients()
        .iter()
        .map(|r| sample.picks(&request, r.recipient_id.as_str()))
        .collect();
    assert_eq!(picked, again);
    // Fixed across builds and platforms: pinned, so a change of hash that
    // would move every sample shows here.
    assert_eq!(position(&["req-1", "r1"]), 0.23085302489153747);
    assert_eq!(position(&["req-1", "r2"]), 0.08423205527578881);
    assert_ne!(position(&["ab", "c"]), position(&["a", "bc"]));
}

#[test]
fn a_company_or_client_fraction_wins_over_the_global_one() {
    let request = request(1, "req-1");
    let sample = CanarySample {
        fraction: 0.0,
        companies: [("acme".to_owned(), 1.0)].into(),
        clients: [("flows".to_owned(), 0.5)].into(),
    };
    assert_eq!(sample.fraction_for(&request), 1.0);
    let by_client = CanarySample {
        companies: HashMap::new(),
        ..sample.clone()
    };
    assert_eq!(by_client.fraction_for(&request), 0.5);
    let bad = CanarySample {
        fraction: 1.5,
        ..CanarySample::default()
    };
    assert_eq!(
        bad.check().unwrap_err(),
        "canary sample fraction = 1.5: must be between 0 and 1"
    );
}

#[test]
fn template_versions_parse_and_explain_mistakes() {
    let (id, version) = parse_template_version("spring_sale=4").unwrap();
    assert_eq!((id.as_str(), version), ("spring_sale", 4));
    for bad in ["spring_sale", "spring_sale=0", "spring_sale=x", "=4"] {
        assert!(parse_template_version(bad).is_err(), "{bad}");
    }
}

fn request(recipients: usize, id: &str) -> Arc<RenderRequest> {
    let recipients: Vec<_> = (0..recipients)
        .map(|i| {
            // Every other recipient has a cart total.
            let context = if i % 2 == 0 { json!({"total": 40 + i}) } else { json!({}) };
            json!({"recipient_id": format!("r{i}"), "profile_id": format!("p{i}"), "context": context})
        })
        .collect();
    let body = json!({
        "request_id": id, "company_id": "acme", "client_id": "flows", "message_id": "m1",
        "send_time": "2026-11-26T09:00:00Z",
        "channel_settings": {"channel": "email", "from_email": "news@shop.example",
            "template": {"id": "news", "version": 1}},
        "render_recipients": recipients,
    });
    let limits = RequestLimits {
        max_recipients: usize::MAX,
        ..RequestLimits::default()
    };
    Arc::new(RenderRequest::from_json(body.to_string().as_bytes(), &limits).unwrap())
}

fn news(subject: &str, currency: &str) -> TemplateParts {
    TemplateParts {
        subject: Some(subject.into()),
        html: Some(format!(
            "<p>Hi {{{{ profile.first_name }}}}</p>\
             {{% if event.total %}}<p>Total {{{{ event.total | {currency} }}}}</p>{{% endif %}}"
        )),
        ..TemplateParts::default()
    }
}

/// `workers` production workers on `store` that mirror every recipient to
/// `lanes`, at most `capacity` jobs waiting per lane. They write to `sink`,
/// and the mirror keeps production's sampled artifacts in the store; with
/// no `sink` they write to the store, which then holds them already.
fn mirroring_production(
    store: &Arc<EmbeddedStore>,
    lanes: Vec<Lane>,
    capacity: usize,
    sink: Option<Arc<dyn crate::ArtifactSink>>,
    workers: usize,
    metrics: &Arc<Metrics>,
) -> WorkerPool {
    let sample = CanarySample {
        fraction: 1.0,
        ..CanarySample::default()
    };
    let keep = sink
        .is_some()
        .then(|| store.clone() as Arc<dyn crate::ArtifactSink>);
    let sink = sink.unwrap_or_else(|| store.clone());
    let mirror = Mirror::new(
        sample,
        lanes,
        capacity,
        store.clone(),
        keep,
        metrics.clone(),
    )
    .unwrap();
    WorkerPool::start(
        WorkerSettings {
            mirror: Some(Arc::new(mirror)),
            ..WorkerSettings::new(workers)
        },
        WorkerPorts {
            queue: store.clone(),
            profiles: store.clone(),
            sink,
            responses: store.clone(),
        },
        Arc::new(crate::worker::Renderer::new(
            store.clone(),
            None,
            16,
            Default::default(),
        )),
        metrics.clone(),
    )
}

/// Production (mirroring everything) and a canary lane worker whose
/// renderer renders `candidate_version` of template `news`, over one store
/// holding versions 1 (which requests name), 2 (a changed filter) and 3 (a
/// changed subject).
async fn run_lanes(
    candidate_version: Option<u32>,
    recipients: usize,
) -> super::verify::Verification {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(
        &dir.path().join("db.sqlite"),
        EmbeddedOptions {
            batch_size: 7,
            ..EmbeddedOptions::default()
        },
    )
    .unwrap();
    let acme = company("acme");
    let id = TemplateId::parse("news").unwrap();
    for parts in [
        news("Hi {{ profile.first_name }}", "currency"),
        news("Hi {{ profile.first_name }}", "currency('EUR')"),
        news("Hello {{ profile.first_name }}", "currency"),
    ] {
        TemplateStore::put(&*store, &acme, &id, Channel::Email, parts)
            .await
            .unwrap();
    }
    let profiles = (0..recipients)
        .map(|i| {
            (
                artifact_render::request::ProfileId::parse(&format!("p{i}")).unwrap(),
                json!({"first_name": format!("Name{i}")}),
            )
        })
        .collect();
    ProfileStore::put(&*store, &acme, profiles).await.unwrap();

    let metrics = Arc::new(Metrics::default());
    // Production's sink discards: the mirror keeps the sample.
    let production = mirroring_production(
        &store,
        vec![Lane::Canary, Lane::Control],
        10_000,
        Some(Arc::new(crate::sinks::DiscardSink::default())),
        2,
        &metrics,
    );
    let versions: HashMap<TemplateId, u32> = candidate_version
        .map(|v| (id.clone(), v))
        .into_iter()
        .collect();
    let candidate = crate::worker::Renderer::new(store.clone(), None, 16, Default::default())
        .with_template_versions(versions);
    let (stop, stopped) = watch::channel(false);
    // The candidate, and a control copy rendering as production does.
    let production_renderer =
        crate::worker::Renderer::new(store.clone(), None, 16, Default::default());
    let lanes: Vec<_> = [
        (Lane::Canary, candidate),
        (Lane::Control, production_renderer),
    ]
    .into_iter()
    .map(|(lane, renderer)| {
        tokio::spawn(
            LaneWorker {
                lane,
                ports: LanePorts {
                    queue: store.clone(),
                    profiles: store.clone(),
                    store: store.clone(),
                },
                renderer: Arc::new(renderer),
                metrics: metrics.clone(),
            }
            .run(stopped.clone()),
        )
    })
    .collect();

    // The live version is pinned at submit.
    let request = request(recipients, "req-canary");
    store.submit(request.clone()).await.unwrap();
    let mut verification = None;
    // Up to 30 s: CI machines are slow and shared.
    for _ in 0..1500 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let status = store
            .status(&acme, request.request_id())
            .await
            .unwrap()
            .unwrap();
        let found = verify(&*store, &*store, &[]).await.unwrap();
        if status.finished_at.is_some()
            && found.pairs == recipients
            && found.control_pairs == recipients
            && found.missing_canary.is_empty()
        {
            verification = Some(found);
            break;
        }
    }
    let _ = stop.send(true);
    for lane in lanes {
        lane.await.unwrap();
    }
    production.shutdown().await;
    verification.expect("every sampled recipient was rendered by both lanes")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identical_candidate_shows_no_diff() {
    let found = run_lanes(None, 30).await;
    assert_eq!(
        (found.pairs, found.identical, found.unexpected),
        (30, 30, 0)
    );
    assert!(found.diffs.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_filter_shows_in_exactly_the_artifacts_that_use_it() {
    let found = run_lanes(Some(2), 30).await;
    // Only recipients with a cart total print it through the filter.
    assert_eq!(
        (found.pairs, found.unexpected, found.identical),
        (30, 15, 15)
    );
    // The control copy renders as production does: nothing is noise.
    assert!(found.diffs.iter().flat_map(|d| &d.parts).all(|p| !p.noise));
    // The text part is generated from the HTML, so it changes with it.
    assert_eq!(found.by_part, [("html", 15), ("text", 15)].into());
    for diff in &found.diffs {
        let index: usize = diff.key.recipient_id.as_str()[1..].parse().unwrap();
        assert_eq!(index % 2, 0, "{} has no total", diff.key.recipient_id);
        let part = &diff.parts[0];
        assert_eq!((part.part, part.kind), ("html", DiffKind::Content));
        assert!(
            part.production.contains("$") && part.canary.contains("€"),
            "{part:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_version_that_changes_the_subject_differs_in_the_subject_only() {
    let found = run_lanes(Some(3), 12).await;
    assert_eq!((found.pairs, found.unexpected), (12, 12));
    assert_eq!(found.by_part, [("subject", 12)].into());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_mirror_queue_skips_and_counts_and_production_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(
        &dir.path().join("db.sqlite"),
        EmbeddedOptions {
            batch_size: 5,
            ..EmbeddedOptions::default()
        },
    )
    .unwrap();
    let acme = company("acme");
    let id = TemplateId::parse("news").unwrap();
    TemplateStore::put(&*store, &acme, &id, Channel::Email, news("Hi", "currency"))
        .await
        .unwrap();
    let metrics = Arc::new(Metrics::default());
    // Room for one job, and no lane worker to take it; production's sink is
    // the store, which keeps the sample itself.
    let pool = mirroring_production(&store, vec![Lane::Canary], 1, None, 1, &metrics);
    let request = request(40, "req-full");
    store.submit(request.clone()).await.unwrap();
    let counted = |outcome: &'static str| {
        metrics
            .mirrored
            .get_or_create(&crate::metrics::MirrorLabel {
                lane: "canary",
                outcome,
            })
            .get()
    };
    // Up to 30 s: CI machines are slow and shared.
    for _ in 0..1500 {
        let status = store
            .status(&acme, request.request_id())
            .await
            .unwrap()
            .unwrap();
        if status.finished_at.is_some()
            && counted("mirrored") + counted("full") + counted("busy") == 40
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = store
        .status(&acme, request.request_id())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        status.counts.rendered + status.counts.failed,
        40,
        "production rendered everyone"
    );
    assert_eq!(counted("mirrored"), 5, "one batch of 5 fit");
    assert_eq!(counted("full") + counted("busy"), 35);
    assert_eq!(store.unmirrored(Lane::Canary).await.unwrap().len(), 1);
    pool.shutdown().await;
}
