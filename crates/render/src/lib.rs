//! The render core: turns a validated render request, the recipients'
//! profiles and a compiled template bundle into send-ready artifacts.
//!
//! Pure and synchronous: nothing here does I/O, reads the clock or the
//! environment, or knows about queues and databases.
//!
//! ```
//! use std::sync::Arc;
//! use artifact_render::{PreparedRequest, RenderRequest, RequestLimits, TemplateCache, TemplateKey};
//! use artifact_render::request::TemplateRef;
//!
//! let request = RenderRequest::from_json(br#"{
//!     "request_id": "r1", "company_id": "acme", "client_id": "flows", "message_id": "m1",
//!     "send_time": "2026-11-26T09:00:00Z",
//!     "channel_settings": {"channel": "sms", "from_number": "+15550100",
//!         "template": {"inline": {"sms": "Hi {{ profile.first_name | default('there') }}!"}}},
//!     "render_recipients": [{"recipient_id": "a", "profile_id": "p1"}]
//! }"#, &RequestLimits::default()).unwrap();
//! let TemplateRef::Inline(parts) = request.channel_settings().template() else { unreachable!() };
//! let cache = TemplateCache::new(1024, Default::default());
//! let key = TemplateKey::new(request.company_id().clone(), None, None, parts);
//! let template = cache.get_or_compile(&key, request.channel_settings().channel(), parts).unwrap();
//! let prepared = PreparedRequest::new(Arc::new(request), template, None).unwrap();
//! let profile = Arc::new(serde_json::json!({"first_name": "Ada"}));
//! let artifact = prepared.render(&prepared.request().render_recipients()[0], Some(&profile));
//! assert_eq!(serde_json::to_value(&artifact).unwrap()["sms"]["body"], "Hi Ada!");
//! ```

pub mod artifact;
pub mod audit;
pub mod context;
pub mod finish;
mod render;
pub mod request;
pub mod sms;
pub mod template;

pub use artifact::{Artifact, Outcome};
pub use render::{PrepareError, PreparedRequest};
pub use request::{RenderRequest, RequestError, RequestLimits};
pub use template::{CompiledTemplate, RenderLimits, TemplateCache, TemplateError, TemplateKey};
