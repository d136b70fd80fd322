//! The tracking endpoints: clicks redirect, opens get a pixel, unsubscribes
//! need a POST; valid tokens are recorded, bad ones never redirect.

use artifact_render::finish::tracking::ClaimKind;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::json;

use crate::support::{Options, TestApp, email_request, signed_token, tracking_config};

const HTML: &str = concat!(
    "<html><body>\n",
    "<a href=\"https://shop.example/sale?x=1\">Sale</a>\n",
    "<a href=\"{{ event.url }}\">Your item</a>\n",
    "<a href=\"{{ unsubscribe_url }}\">Unsubscribe</a>\n",
    "</body></html>"
);

/// Every `https://t.shop.example/<kind>/<token>` in `html`, in order.
fn tokens(html: &str, kind: &str) -> Vec<String> {
    let prefix = format!("https://t.shop.example/{kind}/");
    html.match_indices(&prefix)
        .map(|(at, _)| {
            let rest = &html[at + prefix.len()..];
            rest[..rest.find(['"', '\n', ' ']).unwrap_or(rest.len())].to_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracked_links_redirect_and_engagement_is_recorded() {
    let app = TestApp::with(Options {
        tracking: true,
        ..Options::default()
    });
    app.put_template(
        "acme",
        "news",
        json!({"channel": "email", "parts": {"subject": "News", "html": HTML}}),
    )
    .await;
    app.put_profile("acme", "p1", json!({})).await;
    let mut request = email_request("req-t", "acme", "news");
    request["render_recipients"] = json!([{"recipient_id": "r1", "profile_id": "p1",
        "context": {"url": "https://shop.example/p/42"}}]);
    request["tracking_options"] = json!({"click_tracking": true, "open_tracking": true,
        "utm": {"source": "newsletter"}});
    app.submit(&request).await;
    let status = app
        .wait_finished("/v1/render-requests/req-t?company_id=acme")
        .await;
    assert_eq!(status["counts"]["rendered"], 1, "{status}");

    let artifact = app.get("/v1/artifacts/acme/req-t/r1").await.json();
    let html = artifact["email"]["html"].as_str().unwrap().to_owned();
    let clicks = tokens(&html, "c");
    assert_eq!(clicks.len(), 2, "{html}");
    let fixed = &clicks[0];
    assert!(
        fixed.contains('.'),
        "a fixed link of a stored version: {fixed}"
    );

    // The fixed link, through the stored template version.
    let reply = app.get(&format!("/c/{fixed}")).await;
    assert_eq!(reply.status, StatusCode::FOUND, "{}", reply.text());
    assert_eq!(
        reply.header("location"),
        "https://shop.example/sale?x=1&utm_source=newsletter"
    );
    // The link built from data, signed whole.
    let reply = app.get(&format!("/c/{}", clicks[1])).await;
    assert_eq!(reply.status, StatusCode::FOUND);
    assert_eq!(
        reply.header("location"),
        "https://shop.example/p/42?utm_source=newsletter"
    );

    // Tampering: another link number, a changed signature, garbage. None
    // redirects; each is a small page.
    let (signed, _) = fixed.rsplit_once('.').unwrap();
    let mut flipped = clicks[1].clone().into_bytes();
    let last = flipped.len() - 1;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    for bad in [
        format!("{signed}.99"),
        flipped,
        "not-a-token".to_owned(),
        format!("{signed}.x"),
    ] {
        let reply = app.get(&format!("/c/{bad}")).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{bad}");
        assert!(reply.headers.get("location").is_none());
        assert!(reply.header("content-type").starts_with("text/html"));
    }

    // The open pixel: a GIF for a good token and a bad one alike.
    let open = &tokens(&html, "o")[0];
    for token in [open.as_str(), "garbage"] {
        let reply = app.get(&format!("/o/{token}")).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.header("content-type"), "image/gif");
        assert_eq!(reply.header("cache-control"), "no-store");
        assert!(reply.body.starts_with(b"GIF89a"));
    }

    // Unsubscribe: GET shows a form and records nothing; POST records.
    let unsubscribe = &tokens(&html, "u")[0];
    let page = app.get(&format!("/u/{unsubscribe}")).await;
    assert_eq!(page.status, StatusCode::OK);
    let text = page.text();
    assert!(text.contains("method=\"post\""), "{text}");
    assert!(
        text.contains(&format!("action=\"/u/{unsubscribe}\"")),
        "{text}"
    );
    assert_eq!(
        app.get(&format!("/u/{open}")).await.status,
        StatusCode::NOT_FOUND,
        "a pixel token cannot unsubscribe"
    );
    let reply = app
        .send(
            Request::post(format!("/u/{unsubscribe}"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from("List-Unsubscribe=One-Click"))
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);

    let events = app.get("/v1/companies/acme/engagement-events").await.json();
    let kinds: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["click", "click", "open", "unsubscribe"], "{events}");
    let first = &events["events"][0];
    assert_eq!(first["recipient_id"], "r1");
    assert_eq!(first["message_id"], "m1");
    assert_eq!(first["link"], 0);
    assert_eq!(
        first["destination"],
        "https://shop.example/sale?x=1&utm_source=newsletter"
    );
    assert_eq!(events["next_after"], events["events"][3]["seq"]);
    // Another company sees none of them.
    let other = app
        .get("/v1/companies/other/engagement-events")
        .await
        .json();
    assert_eq!(other["events"], json!([]));

    let metrics = app.get("/metrics").await.text();
    assert!(
        metrics.contains("artifact_engagement_events_total{kind=\"click\"} 2"),
        "{metrics}"
    );
    assert!(metrics.contains("artifact_engagement_events_total{kind=\"open\"} 1"));
    assert!(metrics.contains("artifact_engagement_events_total{kind=\"unsubscribe\"} 1"));
}

#[tokio::test]
async fn a_click_token_of_another_tracking_key_is_refused() {
    // Same domain, other key: what a forged or foreign token looks like.
    let app = TestApp::with(Options {
        tracking: true,
        no_workers: true,
        ..Options::default()
    });
    let foreign = artifact_render::finish::tracking::TrackingConfig::new(
        "t.shop.example",
        vec![artifact_render::finish::tracking::SigningKey {
            id: "k1".into(),
            secret: b"another-secret-of-at-least-32-bytes".to_vec(),
        }],
        None,
    )
    .unwrap();
    let claims = artifact_render::finish::tracking::Claims {
        company_id: "acme".into(),
        message_id: "m1".into(),
        recipient_id: "r1".into(),
        kind: artifact_render::finish::tracking::ClaimKind::Link {
            index: 0,
            destination: "https://evil.example/".into(),
        },
    };
    let token = foreign.signer().sign(&claims);
    let reply = app.get(&format!("/c/{token}")).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    // The same claims signed with the server's key do redirect.
    let token = tracking_config().signer().sign(&claims);
    let reply = app.get(&format!("/c/{token}")).await;
    assert_eq!(reply.status, StatusCode::FOUND);
    assert_eq!(reply.header("location"), "https://evil.example/");
}

#[tokio::test]
async fn without_tracking_the_tracking_routes_are_404() {
    let app = TestApp::with(Options {
        no_workers: true,
        ..Options::default()
    });
    for (method, uri) in [
        (Method::GET, "/c/abc"),
        (Method::GET, "/o/abc"),
        (Method::GET, "/u/abc"),
        (Method::POST, "/u/abc"),
    ] {
        let reply = app
            .send(
                Request::builder()
                    .method(method)
                    .uri(uri)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{uri}");
    }
}

#[tokio::test]
async fn a_one_click_unsubscribe_reads_at_most_4_kib() {
    let app = TestApp::with(Options {
        tracking: true,
        no_workers: true,
        ..Options::default()
    });
    let token = signed_token("acme", ClaimKind::Unsubscribe);
    let post = |body: String| {
        Request::post(format!("/u/{token}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap()
    };
    let big = format!("List-Unsubscribe=One-Click&pad={}", "x".repeat(10 * 1024));
    let problem = app
        .send(post(big))
        .await
        .problem(StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        problem["detail"].as_str().unwrap().contains("4096 bytes"),
        "{problem}"
    );
    let events = app.get("/v1/companies/acme/engagement-events").await.json();
    assert_eq!(events["events"], json!([]), "nothing recorded");

    let small = format!("List-Unsubscribe=One-Click&pad={}", "x".repeat(3 * 1024));
    let reply = app.send(post(small)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
}
