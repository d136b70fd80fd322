//! The tracking domain's endpoints: `/c/{token}` (click: redirect),
//! `/o/{token}` (open: a transparent pixel) and `/u/{token}` (unsubscribe:
//! a confirmation page on GET, RFC 8058 one-click on POST).
//!
//! Tokens are verified with the renderer's signing keys; only a valid one
//! is recorded. A bad, tampered or foreign click token gets a small 404
//! page and never a redirect, so the endpoint cannot be used as an open
//! redirect. Unsubscribing never happens on GET, because link scanners
//! fetch every URL in a message.

use std::sync::Arc;

use artifact_pipeline::metrics::KindLabel;
use artifact_pipeline::{EngagementEvent, EngagementKind};
use artifact_render::CompiledTemplate;
use artifact_render::finish::tracking::{ClaimKind, RecipientRef, TemplateLinks, TrackingConfig};
use artifact_render::request::{CompanyId, MessageId, RecipientId, TemplateId};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tracing::{debug, warn};

use crate::error::Problem;
use crate::extract::{PathParams, RawBody, Shared};
use crate::state::AppState;

/// The most a one-click unsubscribe POST may carry: RFC 8058's marker is
/// 26 bytes, and mail providers wrap it in a small form, so anything
/// larger is not a mail client and is not read.
pub(crate) const ONE_CLICK_BODY_BYTES: usize = 4 * 1024;

/// A 1×1 transparent GIF (43 bytes).
const PIXEL: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

/// The fixed links of the one stored template version a click token
/// names, compiled. Answers only for that company, id and version.
struct StoredLinks {
    company: CompanyId,
    template: Option<Arc<CompiledTemplate>>,
}

impl TemplateLinks for StoredLinks {
    fn fixed_link(
        &self,
        company_id: &str,
        template_id: &str,
        version: u32,
        index: u32,
    ) -> Option<String> {
        let template = self.template.as_ref()?;
        let same = company_id == self.company.as_str()
            && template_id == template.name()
            && template.version() == Some(version);
        same.then(|| template.fixed_link(index).map(str::to_owned))
            .flatten()
    }
}

/// A page for people, with caching off: tracking answers are per token.
fn page(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<axum::body::Body>,
) -> Response {
    let mut response = (status, body.into()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    response
}

fn not_found() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "text/html; charset=utf-8",
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Link not found</title></head>\
         <body><p>This link is not valid. It may have been copied incompletely.</p></body></html>",
    )
}

fn unavailable() -> Response {
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        "text/html; charset=utf-8",
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Try again</title></head>\
         <body><p>This link cannot be followed right now. Please try again in a moment.</p></body></html>",
    )
}

fn config(state: &AppState) -> Option<Arc<TrackingConfig>> {
    state.renderer.tracking().cloned()
}

/// Records one engagement and counts it; a failure is logged, never shown
/// to the person who clicked.
async fn record(
    state: &AppState,
    kind: EngagementKind,
    who: &RecipientRef,
    link: Option<u32>,
    destination: Option<String>,
) {
    let ids = (
        CompanyId::parse(&who.company_id),
        MessageId::parse(&who.message_id),
        RecipientId::parse(&who.recipient_id),
    );
    let (Ok(company_id), Ok(message_id), Ok(recipient_id)) = ids else {
        // Signed by us, so this means ids were valid when rendered and are
        // not now: worth a look, not worth failing the click.
        warn!(company = %who.company_id, "a tracking token holds an id that no longer parses");
        return;
    };
    let event = EngagementEvent {
        kind,
        company_id,
        message_id,
        recipient_id,
        link,
        destination,
        at: jiff::Timestamp::now(),
    };
    match state.engagement.record(event).await {
        Ok(()) => {
            state
                .metrics
                .engagement
                .get_or_create(&KindLabel {
                    kind: kind.as_str(),
                })
                .inc();
        }
        Err(error) => warn!(%error, ?kind, company = %who.company_id, "cannot record engagement"),
    }
}

/// Follows a tracked link: 302 to its destination, recorded as a click.
#[utoipa::path(
    get,
    path = "/c/{token}",
    operation_id = "track_click",
    tag = "tracking",
    params(("token" = String, Path, description = "A click token, `<signed>` or `<signed>.<link>`")),
    responses(
        (status = 302, description = "Redirect to the link's destination",
            headers(("location" = String))),
        (status = 404, description = "Invalid token, or tracking is not configured (an HTML page)",
            content_type = "text/html"),
    )
)]
pub(crate) async fn click(
    State(state): State<Shared>,
    PathParams(token): PathParams<String>,
) -> Response {
    let Some(config) = config(&state) else {
        return not_found();
    };
    // Read the claims first: a fixed link needs its template version,
    // fetched here because `TemplateLinks` is synchronous.
    let signed = token
        .rsplit_once('.')
        .map_or(token.as_str(), |(signed, _)| signed);
    let claims = match config.signer().verify(signed) {
        Ok(claims) => claims,
        Err(error) => {
            debug!(%error, "refused a click token");
            return not_found();
        }
    };
    let mut links = StoredLinks {
        company: match CompanyId::parse(&claims.company_id) {
            Ok(company) => company,
            Err(_) => return not_found(),
        },
        template: None,
    };
    if let ClaimKind::TemplateLinks {
        template_id,
        template_version,
        ..
    } = &claims.kind
    {
        let Ok(id) = TemplateId::parse(template_id) else {
            return not_found();
        };
        match state
            .renderer
            .stored(&links.company, &id, Some(*template_version))
            .await
        {
            Ok(template) => links.template = Some(template),
            Err(failure) if failure.is_transient() => {
                warn!(error = %failure, "cannot load the template a click token names");
                return unavailable();
            }
            Err(failure) => {
                debug!(error = %failure, "a click token names a template that cannot be loaded");
                return not_found();
            }
        }
    }
    let click = match config.resolve_click(&token, &links) {
        Ok(click) => click,
        Err(error) => {
            debug!(%error, "refused a click token");
            return not_found();
        }
    };
    // Destinations come from templates the company stored, checked when
    // compiled; a redirect to anything but http(s) is refused all the same.
    let lowered = click.destination.to_ascii_lowercase();
    let Ok(location) = HeaderValue::from_str(&click.destination) else {
        return not_found();
    };
    if !(lowered.starts_with("https://") || lowered.starts_with("http://")) {
        return not_found();
    }
    // Recorded before answering, so that the log never lags what people
    // were sent to; a failure to record still lets them through.
    record(
        &state,
        EngagementKind::Click,
        &click.recipient,
        Some(click.index),
        Some(click.destination.clone()),
    )
    .await;
    let mut response = page(StatusCode::FOUND, "text/plain; charset=utf-8", "");
    response.headers_mut().insert(header::LOCATION, location);
    response
}

/// The open pixel: always a transparent GIF; a valid token is recorded as
/// an open.
#[utoipa::path(
    get,
    path = "/o/{token}",
    operation_id = "track_open",
    tag = "tracking",
    params(("token" = String, Path, description = "An open token")),
    responses(
        (status = 200, description = "A 1×1 transparent GIF, whatever the token", content_type = "image/gif"),
        (status = 404, description = "Tracking is not configured"),
    )
)]
pub(crate) async fn open(
    State(state): State<Shared>,
    PathParams(token): PathParams<String>,
) -> Response {
    let Some(config) = config(&state) else {
        return not_found();
    };
    match config.resolve_open(&token) {
        Ok(who) => record(&state, EngagementKind::Open, &who, None, None).await,
        Err(error) => debug!(%error, "refused an open token"),
    }
    page(StatusCode::OK, "image/gif", PIXEL)
}

/// A confirmation page whose button POSTs the one-click unsubscribe.
#[utoipa::path(
    get,
    path = "/u/{token}",
    operation_id = "unsubscribe_page",
    tag = "tracking",
    params(("token" = String, Path, description = "An unsubscribe token")),
    responses(
        (status = 200, description = "An HTML page with a form that POSTs to the same URL; \
                                      nothing is recorded", content_type = "text/html"),
        (status = 404, description = "Invalid token, or tracking is not configured", content_type = "text/html"),
    )
)]
pub(crate) async fn unsubscribe_page(
    State(state): State<Shared>,
    PathParams(token): PathParams<String>,
) -> Response {
    let Some(config) = config(&state) else {
        return not_found();
    };
    if config.resolve_unsubscribe(&token).is_err() {
        return not_found();
    }
    // A verified token is base64url, so it is safe in the attribute as is.
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>Unsubscribe</title></head>\
         <body><form method=\"post\" action=\"/u/{token}\">\
         <input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
         <p>Stop receiving these messages?</p>\
         <button type=\"submit\">Unsubscribe</button></form></body></html>"
    );
    page(StatusCode::OK, "text/html; charset=utf-8", body)
}

/// RFC 8058 one-click unsubscribe (mail clients POST
/// `List-Unsubscribe=One-Click`), and the confirmation page's form.
#[utoipa::path(
    post,
    path = "/u/{token}",
    operation_id = "unsubscribe_one_click",
    tag = "tracking",
    params(("token" = String, Path, description = "An unsubscribe token")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded",
        description = "List-Unsubscribe=One-Click"),
    responses(
        (status = 200, description = "Recorded", content_type = "text/plain"),
        (status = 404, description = "Invalid token, or tracking is not configured", content_type = "text/html"),
        (status = 413, description = "The body is over 4 KiB", body = Problem,
            content_type = "application/problem+json"),
    )
)]
pub(crate) async fn unsubscribe(
    State(state): State<Shared>,
    PathParams(token): PathParams<String>,
    RawBody(body): RawBody<ONE_CLICK_BODY_BYTES>,
) -> Response {
    let Some(config) = config(&state) else {
        return not_found();
    };
    let who = match config.resolve_unsubscribe(&token) {
        Ok(who) => who,
        Err(error) => {
            debug!(%error, "refused an unsubscribe token");
            return not_found();
        }
    };
    // The signed token is what authorizes this; the body is RFC 8058's
    // marker, which mail providers send form-encoded or as multipart, so
    // its absence is logged rather than refused.
    if !body.windows(9).any(|window| window == b"One-Click") {
        debug!("an unsubscribe POST without List-Unsubscribe=One-Click");
    }
    record(&state, EngagementKind::Unsubscribe, &who, None, None).await;
    page(
        StatusCode::OK,
        "text/plain; charset=utf-8",
        "You are unsubscribed.\n",
    )
}
