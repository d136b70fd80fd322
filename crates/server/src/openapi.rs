//! The OpenAPI 3.1 document, generated from the handlers' annotations.
//!
//! Types of the render core and the pipeline do not derive `ToSchema` (the
//! render core stays free of HTTP concerns), so they appear as generic
//! objects, described in words where they are used.

use utoipa::OpenApi;

use crate::error::Problem;
use crate::routes::{
    artifacts, audit, events, flags, ops, previews, profiles, requests, templates, tracking,
};

/// The API's OpenAPI document: `ApiDoc::openapi()`.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "Artifact Pipeline",
        description = "Turns render requests into send-ready, personalized email and SMS \
                       artifacts. Errors are application/problem+json (RFC 9457) with `field`, \
                       `line` and `column` where known."
    ),
    paths(
        requests::submit,
        requests::status,
        previews::preview,
        templates::put,
        templates::get,
        profiles::put,
        profiles::get,
        profiles::import,
        artifacts::list,
        artifacts::get,
        events::responses,
        events::engagement,
        tracking::click,
        tracking::open,
        tracking::unsubscribe_page,
        tracking::unsubscribe,
        ops::dead_letters,
        audit::get,
        audit::reset,
        flags::list,
        flags::put,
        flags::delete,
        ops::metrics,
        ops::healthz,
        ops::readyz,
        ops::openapi,
    ),
    components(schemas(
        Problem,
        requests::SubmitResponse,
        previews::PreviewRequest,
        previews::PreviewResponse,
        templates::TemplateBody,
        templates::TemplateStored,
        profiles::Imported,
        artifacts::ArtifactPage,
        events::EventPageSchema,
        ops::DeadLetterPage,
    )),
    tags(
        (name = "render requests", description = "Queue render requests and poll their status"),
        (name = "previews", description = "Render one recipient synchronously"),
        (name = "templates", description = "Versioned template bundles, compiled before they are stored"),
        (name = "profiles", description = "Recipient profiles, per company"),
        (name = "artifacts", description = "Stored artifacts"),
        (name = "events", description = "Response and engagement events to poll"),
        (name = "tracking", description = "Click, open and unsubscribe endpoints of the tracking domain"),
        (name = "operations", description = "Dead letters, the traffic audit, rollout flags, metrics, health and this document"),
    )
)]
pub struct ApiDoc;
