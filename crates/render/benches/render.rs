//! The render core against bare minijinja, in one run.
//!
//! "Bare" is what a straightforward Rust service pays: the same template
//! parts, the same marketer filters, the context converted from the same
//! `serde_json` profile and event (`Value::from(Serde(&json))`) once per
//! recipient, then `render(&ctx)` of each part. The core's figure includes
//! everything it does per recipient: context, render, finishing (one-line
//! subject, preheader, artifact). `bare_convert_only` and `bare_preconverted`
//! split the bare figure into its two halves.

mod fixtures;

use std::sync::Arc;

use artifact_render::context::audit::AccessRecorder;
use artifact_render::template::{Channel, ProfileProjection, TemplateParts};
use artifact_render::{CompiledTemplate, Outcome, PreparedRequest, RenderLimits};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use fixtures::{Fixture, template};
use serde_json::json;

fn compare(c: &mut Criterion, group: &str, fixture: &Fixture) {
    let artifact = fixture.render_core(0);
    assert!(artifact.is_rendered(), "{artifact:?}");
    let bare_bytes: usize = fixture.render_bare(0).iter().map(String::len).sum();
    eprintln!("{group}: bare output {bare_bytes} bytes per recipient");
    let count = fixture.profiles.len();
    let preconverted: Vec<_> = (0..count).map(|i| fixture.bare_context(i)).collect();

    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(1));
    let mut next = 0;
    let mut advance = || {
        next = (next + 1) % count;
        next
    };
    g.bench_function("bare_minijinja", |b| {
        b.iter(|| fixture.render_bare(advance()))
    });
    g.bench_function("bare_convert_only", |b| {
        b.iter(|| fixture.bare_context(advance()))
    });
    g.bench_function("bare_preconverted", |b| {
        b.iter(|| fixture.render_bare_with(&preconverted[advance()]))
    });
    g.bench_function("core", |b| b.iter(|| fixture.render_core(advance())));
    g.finish();
}

fn newsletter(c: &mut Criterion) {
    compare(
        c,
        "newsletter",
        &Fixture::new("spring_sale", Channel::Email, template("spring_sale")),
    );
}

/// The newsletter without its text part: the core generates the text from
/// the rendered HTML, as it does for every bundle that has none.
fn newsletter_generated_text(c: &mut Criterion) {
    let mut parts = template("spring_sale");
    parts.text = None;
    let fixture = Fixture::new("spring_sale", Channel::Email, parts);
    let mut g = c.benchmark_group("newsletter_generated_text");
    g.throughput(Throughput::Elements(1));
    let mut next = 0;
    g.bench_function("core", |b| {
        b.iter(|| {
            next = (next + 1) % fixture.profiles.len();
            fixture.render_core(next)
        })
    });
    g.finish();
}

fn sms(c: &mut Criterion) {
    compare(
        c,
        "sms",
        &Fixture::new("spring_sale_sms", Channel::Sms, template("spring_sale_sms")),
    );
}

/// Tracking against no tracking, in one run. `tracking_newsletter` is the
/// newsletter as a send usually looks: 31 fixed links (navigation, banner,
/// category tiles, footer) and a handful per item (a 3-item cart, 4
/// recommendations). `tracking_newsletter_12_picks` is the shipped example
/// event, whose 12 recommendations make most links personal; the link-heavy
/// email has 30 links, every one built from data.
fn tracking(c: &mut Criterion) {
    let newsletter = template("spring_sale");
    compare_tracking(c, "tracking_newsletter", newsletter.clone(), |event| {
        event["recommendations"].as_array_mut().unwrap().truncate(4)
    });
    compare_tracking(c, "tracking_newsletter_12_picks", newsletter, |_| {});
    let link_heavy = TemplateParts {
        subject: Some("Picked for you, {{ profile.first_name }}".into()),
        html: Some(LINK_HEAVY.into()),
        ..Default::default()
    };
    compare_tracking(c, "tracking_link_heavy", link_heavy, |_| {});
}

/// 30 links, every one built from event data.
const LINK_HEAVY: &str = r#"<html><body><h1>Hi {{ profile.first_name }}</h1>
{% for round in range(3) %}{% for product in event.recommendations[:10] %}
<p><a href="{{ product.url }}?slot={{ round }}">{{ product.name }}</a> {{ product.price | currency }}</p>
{% endfor %}{% endfor %}
<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p></body></html>"#;

fn compare_tracking(
    c: &mut Criterion,
    group: &str,
    parts: TemplateParts,
    edit: fn(&mut serde_json::Value),
) {
    let off = Fixture::with_event("tracked", Channel::Email, parts.clone(), json!({}), edit);
    let on = Fixture::with_event(
        "tracked",
        Channel::Email,
        parts,
        fixtures::tracking_on(),
        edit,
    );
    let artifact = on.render_core(0);
    let Outcome::Email(email) = &artifact.outcome else {
        panic!("{artifact:?}");
    };
    let personal = email
        .links
        .iter()
        .filter(|link| on.prepared.template().fixed_link(link.index).is_none())
        .count();
    eprintln!(
        "{group}: {} tracked links ({personal} built from data), html {} bytes",
        email.links.len(),
        email.html.len()
    );
    let count = off.profiles.len();
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(1));
    for (name, fixture) in [("off", &off), ("on", &on)] {
        let mut next = 0;
        g.bench_function(name, |b| {
            b.iter(|| {
                next = (next + 1) % count;
                fixture.render_core(next)
            })
        });
    }
    g.finish();
}

/// Fetching a recipient's profile is mostly parsing its stored JSON. With
/// 200-property profiles, of which the newsletter reads 6 top-level keys
/// and the SMS 1: parsing the whole text against only the read keys, alone
/// and followed by the render.
fn profile_projection(c: &mut Criterion) {
    let texts: Vec<String> = fixtures::profiles(64)
        .iter()
        .map(|profile| {
            let mut wide = (**profile).clone();
            let map = wide.as_object_mut().unwrap();
            for n in map.len()..200 {
                map.insert(
                    format!("extra_attribute_{n}"),
                    json!({"value": n, "source": "import"}),
                );
            }
            serde_json::to_string(&wide).unwrap()
        })
        .collect();
    let newsletter = Fixture::with_event(
        "tracked",
        Channel::Email,
        template("spring_sale"),
        fixtures::tracking_on(),
        |event| event["recommendations"].as_array_mut().unwrap().truncate(4),
    );
    let sms = Fixture::new("sms", Channel::Sms, template("spring_sale_sms"));
    let mut g = c.benchmark_group("profile_projection");
    g.throughput(Throughput::Elements(1));
    for (name, fixture) in [("newsletter", &newsletter), ("sms", &sms)] {
        let projected = fixture.prepared.template().profile_projection().clone();
        eprintln!("{name}: reads profile keys {:?}", projected.keys());
        for (mode, projection) in [("whole", ProfileProjection::All), ("projected", projected)] {
            let mut next = 0;
            g.bench_function(format!("{name}_parse_{mode}"), |b| {
                b.iter(|| {
                    next = (next + 1) % texts.len();
                    projection.parse(&texts[next]).unwrap()
                })
            });
            g.bench_function(format!("{name}_parse_{mode}_and_render"), |b| {
                b.iter(|| {
                    next = (next + 1) % texts.len();
                    let profile = Arc::new(projection.parse(&texts[next]).unwrap());
                    fixture.prepared.render(&fixture.recipient, Some(&profile))
                })
            });
        }
    }
    g.finish();
}

/// An audited render against the plain one: the audit is a mode, and the
/// plain render does not pay for it.
fn audit(c: &mut Criterion) {
    let fixture = Fixture::with_event(
        "tracked",
        Channel::Email,
        template("spring_sale"),
        fixtures::tracking_on(),
        |event| event["recommendations"].as_array_mut().unwrap().truncate(4),
    );
    let recorder = Arc::new(AccessRecorder::default());
    let count = fixture.profiles.len();
    let mut g = c.benchmark_group("audit");
    g.throughput(Throughput::Elements(1));
    let mut next = 0;
    g.bench_function("plain", |b| {
        b.iter(|| {
            next = (next + 1) % count;
            fixture.render_core(next)
        })
    });
    g.bench_function("audited", |b| {
        b.iter(|| {
            next = (next + 1) % count;
            let artifact = fixture.prepared.render_audited(
                &fixture.recipient,
                Some(&fixture.profiles[next]),
                &recorder,
            );
            (artifact, recorder.take())
        })
    });
    g.finish();
}

/// How long the sandbox takes to stop a 100k × 100k loop.
fn runaway(c: &mut Criterion) {
    let parts = TemplateParts {
        subject: Some("s".into()),
        html: Some(
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}"
                .into(),
        ),
        ..Default::default()
    };
    let compiled =
        CompiledTemplate::compile("runaway", Channel::Email, &parts, &RenderLimits::default())
            .unwrap();
    let prepared = PreparedRequest::new(
        Arc::new(fixtures::tracked_request(
            json!({"channel": "email", "template": {"id": "runaway"}, "from_email": "news@shop.example"}),
            json!({}),
            |_| {},
        )),
        Arc::new(compiled), None)
    .unwrap();
    let recipient = prepared.request().render_recipients()[0].clone();
    let profile = Arc::new(json!({}));
    let mut g = c.benchmark_group("sandbox");
    g.sample_size(10);
    g.bench_function("stop_100k_by_100k_loop", |b| {
        b.iter_batched(
            || (),
            |_| prepared.render(&recipient, Some(&profile)),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

/// Parsing a 1,000-recipient request (the example's event data for every
/// recipient): `from_json` against tracking every field's path while
/// parsing, which it now does only to explain a request that failed.
fn request_parse(c: &mut Criterion) {
    let mut request: serde_json::Value =
        serde_json::from_str(include_str!("../../../examples/request.json")).unwrap();
    let recipient = request["render_recipients"][0].clone();
    request["render_recipients"] = (0..1000)
        .map(|n| {
            let mut recipient = recipient.clone();
            recipient["recipient_id"] = json!(format!("r-{n}"));
            recipient
        })
        .collect();
    let bytes = serde_json::to_vec(&request).unwrap();
    eprintln!("request_parse: {} bytes", bytes.len());
    let limits = artifact_render::RequestLimits::default();
    let mut g = c.benchmark_group("request_parse");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("from_json", |b| {
        b.iter(|| artifact_render::RenderRequest::from_json(&bytes, &limits).unwrap())
    });
    g.bench_function("path_tracked", |b| {
        b.iter(|| {
            let mut de = serde_json::Deserializer::from_slice(&bytes);
            let request: artifact_render::RenderRequest =
                serde_path_to_error::deserialize(&mut de).unwrap();
            request.validate(&limits).unwrap();
            request
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    newsletter,
    newsletter_generated_text,
    tracking,
    sms,
    runaway,
    request_parse,
    profile_projection,
    audit
);
criterion_main!(benches);
