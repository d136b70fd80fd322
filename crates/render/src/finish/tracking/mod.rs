//! Click and open tracking, UTM parameters and unsubscribe links.
//!
//! The template compiler has already found every link (see
//! `template::links`); here each request decides, once, what each link
//! becomes, and each recipient pays only for what is personal to them: one
//! signature that covers all the template's fixed links, one for the
//! unsubscribe URL, one for the pixel, and one per link whose URL comes from
//! data.
//!
//! What a token lets its holder do:
//! - `/c/<links token>.<n>` (a fixed link of a stored template version):
//!   reach link `n` of that version, with the message's UTM parameters,
//!   counted as a click by that recipient. The signature covers the
//!   recipient, message, template version and UTM parameters but not `n`,
//!   so a holder can change `n` only to reach another link that the same
//!   template version contains.
//! - `/c/<link token>` (a link built from data, or any link of an inline
//!   template): reach the one destination signed for that recipient. A
//!   destination that appears several times in one message (a product's
//!   image, title and text-part line) is signed once, and the token names
//!   the first link that led there.
//! - `/o/<open token>`: record an open by that recipient.
//! - `/u/<unsubscribe token>`: unsubscribe that recipient from that
//!   message's list. Its own kind, so a pixel URL cannot unsubscribe.
//!
//! Tokens carry the company, message and recipient ids and, for links, the
//! template id and version or the destination; never the email address or
//! profile properties.

pub mod token;
pub mod url;

use std::borrow::Cow;
use std::sync::{Arc, Mutex, OnceLock};

use minijinja::value::{Object, Value};
use minijinja::{Error, State};
use serde::{Deserialize, Serialize};

pub use token::{ClaimKind, Claims, Signer, SigningKey, TokenError};

use crate::request::{EmailAddress, RenderRecipient};
use crate::template::links::{LinkTarget, TRACKING_VAR, decode_href, script_scheme};
use crate::template::{CompiledTemplate, PartName};

/// Where tracked links, pixels and unsubscribe URLs point, and the keys that
/// sign them. Comes from the renderer's configuration, never the request.
#[derive(Debug, Clone)]
pub struct TrackingConfig {
    domain: String,
    signer: Signer,
    unsubscribe_mailto: Option<EmailAddress>,
}

impl TrackingConfig {
    /// `domain` is a host name, optionally with a port (`t.shop.example`).
    /// The first of `keys` signs; all of them verify.
    pub fn new(
        domain: &str,
        keys: Vec<SigningKey>,
        unsubscribe_mailto: Option<EmailAddress>,
    ) -> Result<Self, String> {
        check_domain(domain)?;
        Ok(Self {
            domain: domain.to_ascii_lowercase(),
            signer: Signer::new(keys)?,
            unsubscribe_mailto,
        })
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    pub fn signer(&self) -> &Signer {
        &self.signer
    }

    pub fn unsubscribe_mailto(&self) -> Option<&EmailAddress> {
        self.unsubscribe_mailto.as_ref()
    }

    /// `https://<domain>/<path>/`, with room for the token that follows.
    fn url(&self, path: &str) -> String {
        let mut url = String::with_capacity(self.domain.len() + 256);
        url.push_str("https://");
        url.push_str(&self.domain);
        url.push('/');
        url.push_str(path);
        url.push('/');
        url
    }

    /// Where a click token leads. Fixed links are looked up in the
    /// template version the token names, through `links`.
    pub fn resolve_click(
        &self,
        token: &str,
        links: &dyn TemplateLinks,
    ) -> Result<Click, ResolveError> {
        let (signed, index) = match token.rsplit_once('.') {
            Some((signed, index)) => (signed, Some(parse_index(index)?)),
            None => (token, None),
        };
        let claims = self.signer.verify(signed)?;
        let recipient = RecipientRef::from_claims(&claims);
        match (claims.kind, index) {
            (
                ClaimKind::TemplateLinks {
                    template_id,
                    template_version,
                    utm,
                },
                Some(index),
            ) => {
                let base = links
                    .fixed_link(&recipient.company_id, &template_id, template_version, index)
                    .ok_or(ResolveError::UnknownLink {
                        template_id: template_id.to_string(),
                        template_version,
                        index,
                    })?;
                let destination =
                    url::add_query_params(&base, &url::decode_query(&utm)).into_owned();
                Ok(Click {
                    recipient,
                    index,
                    destination,
                })
            }
            (ClaimKind::Link { index, destination }, None) => Ok(Click {
                recipient,
                index,
                destination: destination.into_owned(),
            }),
            _ => Err(ResolveError::WrongKind("click")),
        }
    }

    /// Who opened which message.
    pub fn resolve_open(&self, token: &str) -> Result<RecipientRef, ResolveError> {
        let claims = self.signer.verify(token)?;
        match claims.kind {
            ClaimKind::Open => Ok(RecipientRef::from_claims(&claims)),
            _ => Err(ResolveError::WrongKind("open")),
        }
    }

    /// Who unsubscribes from which message.
    pub fn resolve_unsubscribe(&self, token: &str) -> Result<RecipientRef, ResolveError> {
        let claims = self.signer.verify(token)?;
        match claims.kind {
            ClaimKind::Unsubscribe => Ok(RecipientRef::from_claims(&claims)),
            _ => Err(ResolveError::WrongKind("unsubscribe")),
        }
    }
}

fn check_domain(domain: &str) -> Result<(), String> {
    let (host, port) = match domain.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (domain, None),
    };
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    let port_ok = port.is_none_or(|port| port.parse::<u16>().is_ok_and(|p| p > 0));
    if host_ok && port_ok {
        Ok(())
    } else {
        Err(format!(
            "tracking domain {domain:?} is not a host name (such as `t.shop.example`, no scheme or path)"
        ))
    }
}

fn parse_index(index: &str) -> Result<u32, ResolveError> {
    if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ResolveError::BadLinkNumber(index.to_owned()));
    }
    index
        .parse()
        .map_err(|_| ResolveError::BadLinkNumber(index.to_owned()))
}

/// The fixed links of stored template versions, for resolving clicks: the
/// template store compiles the version a token names and answers with
/// [`CompiledTemplate::fixed_link`].
pub trait TemplateLinks {
    fn fixed_link(
        &self,
        company_id: &str,
        template_id: &str,
        version: u32,
        index: u32,
    ) -> Option<String>;
}

/// Who a token was made for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientRef {
    pub company_id: String,
    pub message_id: String,
    pub recipient_id: String,
}

impl RecipientRef {
    fn from_claims(claims: &Claims<'_>) -> Self {
        Self {
            company_id: claims.company_id.to_string(),
            message_id: claims.message_id.to_string(),
            recipient_id: claims.recipient_id.to_string(),
        }
    }
}

/// A resolved click: who, which link, and where to send them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Click {
    pub recipient: RecipientRef,
    pub index: u32,
    pub destination: String,
}

/// Why a tracking token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("token is not a {0} token")]
    WrongKind(&'static str),
    #[error("link number {0:?} after the token is not a number")]
    BadLinkNumber(String),
    #[error("template {template_id:?} version {template_version} has no fixed link {index}")]
    UnknownLink {
        template_id: String,
        template_version: u32,
        index: u32,
    },
}

/// One link the artifact tracks: its number in the template and the URL it
/// leads to before tracking and UTM parameters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TrackedLink {
    pub index: u32,
    pub url: Arc<str>,
}

/// What one request does with the template's links, decided once.
#[derive(Debug)]
pub(crate) struct MessageTracking {
    config: Option<Arc<TrackingConfig>>,
    company_id: String,
    message_id: String,
    click_tracking: bool,
    open_tracking: bool,
    utm: url::QueryParams,
    /// The UTM parameters as carried in template-links tokens.
    utm_query: String,
    exclusions: Vec<String>,
    /// Fixed links are signed once per recipient when the template is a
    /// stored version a click can be resolved against.
    stored: Option<(String, u32)>,
    links: Vec<PlannedLink>,
}

#[derive(Debug)]
enum PlannedLink {
    Fixed {
        url: Arc<str>,
        /// The URL with UTM parameters: what untracked recipients get, and
        /// what an unversioned template's token signs.
        destination: String,
        /// `destination` as its site writes it (HTML-escaped in the HTML
        /// part), escaped once per request rather than per recipient.
        plain: Value,
        tracked: bool,
    },
    Expression {
        part: PartName,
    },
}

/// Everything [`MessageTracking::new`] needs from the request.
pub(crate) struct MessageTrackingInput<'a> {
    pub config: Option<Arc<TrackingConfig>>,
    pub company_id: &'a str,
    pub message_id: &'a str,
    pub click_tracking: bool,
    pub open_tracking: bool,
    pub utm: Vec<(String, String)>,
    pub exclusions: &'a [String],
    pub template: &'a CompiledTemplate,
}

impl MessageTracking {
    pub fn new(input: MessageTrackingInput<'_>) -> Self {
        let click_tracking = input.click_tracking && input.config.is_some();
        let utm = url::QueryParams::new(&input.utm);
        let links = input
            .template
            .links()
            .iter()
            .map(|site| match &site.target {
                LinkTarget::Fixed(url) => {
                    let destination = url::add_params(url, &utm).into_owned();
                    let plain = Value::from_safe_string(if site.part.is_html() {
                        crate::template::escape::html_escape(&destination)
                    } else {
                        destination.clone()
                    });
                    PlannedLink::Fixed {
                        destination,
                        plain,
                        tracked: click_tracking && !url::is_excluded(url, input.exclusions),
                        url: Arc::from(url.as_str()),
                    }
                }
                LinkTarget::Expression => PlannedLink::Expression { part: site.part },
            })
            .collect();
        Self {
            company_id: input.company_id.to_owned(),
            message_id: input.message_id.to_owned(),
            click_tracking,
            open_tracking: input.open_tracking && input.config.is_some(),
            stored: input
                .template
                .version()
                .map(|version| (input.template.name().to_owned(), version)),
            config: input.config,
            utm_query: utm.query(),
            utm,
            exclusions: input.exclusions.to_vec(),
            links,
        }
    }

    fn claims<'a>(&'a self, recipient_id: &'a str, kind: ClaimKind<'a>) -> Claims<'a> {
        Claims {
            company_id: self.company_id.as_str().into(),
            message_id: self.message_id.as_str().into(),
            recipient_id: recipient_id.into(),
            kind,
        }
    }

    /// The per-recipient state of one render.
    pub fn for_recipient(self: &Arc<Self>, recipient: &RenderRecipient) -> RecipientTracking {
        let recipient_id = recipient.recipient_id.as_str();
        let tracked = !recipient.tracking_opt_out;
        let Some(config) = &self.config else {
            return RecipientTracking::new(self.clone(), recipient_id, None);
        };
        let mut unsubscribe_url = config.url("u");
        let claims = self.claims(recipient_id, ClaimKind::Unsubscribe);
        config.signer.sign_into(&claims, &mut unsubscribe_url);
        let click_prefix = match &self.stored {
            Some((template_id, version)) if tracked && self.click_tracking => {
                let mut prefix = config.url("c");
                let claims = self.claims(
                    recipient_id,
                    ClaimKind::TemplateLinks {
                        template_id: template_id.as_str().into(),
                        template_version: *version,
                        utm: self.utm_query.as_str().into(),
                    },
                );
                config.signer.sign_into(&claims, &mut prefix);
                prefix.push('.');
                Some(prefix)
            }
            _ => None,
        };
        let signed = Signed {
            unsubscribe_url,
            click_prefix,
            tracked,
        };
        RecipientTracking::new(self.clone(), recipient_id, Some(signed))
    }
}

/// The signatures made for one recipient.
#[derive(Debug)]
struct Signed {
    unsubscribe_url: String,
    /// `https://<domain>/c/<links token>.`, when fixed links are tracked.
    click_prefix: Option<String>,
    /// Whether the recipient allows tracking.
    tracked: bool,
}

/// One recipient's tracking state, read by the rewritten template as
/// `__ap[n]` and `__ap.top`; it records the links it tracked.
#[derive(Debug)]
pub(crate) struct RecipientTracking {
    message: Arc<MessageTracking>,
    recipient_id: String,
    signed: Option<Signed>,
    top: OnceLock<Value>,
    recorded: Mutex<Recorded>,
}

#[derive(Debug, Default)]
struct Recorded {
    links: Vec<TrackedLink>,
    warnings: Vec<String>,
    /// Each destination signed so far, with its tracked URL. Few per
    /// message, so a linear search beats hashing.
    signed_links: Vec<(Box<str>, Value)>,
}

impl RecipientTracking {
    fn new(message: Arc<MessageTracking>, recipient_id: &str, signed: Option<Signed>) -> Self {
        Self {
            message,
            recipient_id: recipient_id.to_owned(),
            signed,
            top: OnceLock::new(),
            recorded: Mutex::default(),
        }
    }

    fn tracks_clicks(&self) -> bool {
        self.message.click_tracking && self.signed.as_ref().is_some_and(|s| s.tracked)
    }

    /// `https://<domain>/u/<token>`, when a tracking domain is configured.
    pub fn unsubscribe_url(&self) -> Option<&str> {
        self.signed.as_ref().map(|s| s.unsubscribe_url.as_str())
    }

    /// `List-Unsubscribe` and `List-Unsubscribe-Post` (RFC 8058).
    pub fn unsubscribe_headers(&self) -> Vec<(String, String)> {
        let (Some(config), Some(url)) = (self.message.config.as_ref(), self.unsubscribe_url())
        else {
            return Vec::new();
        };
        let mut list = format!("<{url}>");
        if let Some(mailto) = &config.unsubscribe_mailto {
            let token = url.rsplit('/').next().unwrap_or_default();
            list.push_str(&format!(
                ", <mailto:{}?subject=unsubscribe-{token}>",
                mailto.as_str()
            ));
        }
        vec![
            ("List-Unsubscribe".to_owned(), list),
            (
                "List-Unsubscribe-Post".to_owned(),
                "List-Unsubscribe=One-Click".to_owned(),
            ),
        ]
    }

    /// Sets what goes at the top of the body: the preheader (already
    /// escaped) and the open pixel.
    pub fn set_top(&self, preheader: Option<&str>) {
        let mut top = String::new();
        if let Some(preheader) = preheader.filter(|p| !p.is_empty()) {
            super::preheader::write_block(&mut top, preheader);
        }
        if let (Some(config), Some(signed)) = (&self.message.config, &self.signed)
            && self.message.open_tracking
            && signed.tracked
        {
            top.push_str("<img src=\"");
            top.push_str(&config.url("o"));
            let claims = self.message.claims(&self.recipient_id, ClaimKind::Open);
            config.signer.sign_into(&claims, &mut top);
            top.push_str(PIXEL_ATTRIBUTES);
        }
        let _ = self.top.set(Value::from_safe_string(top));
    }

    /// The links tracked in this render, in template order, and the
    /// warnings about links found only when they rendered.
    pub fn finish(&self) -> (Vec<TrackedLink>, Vec<String>) {
        let mut recorded = std::mem::take(&mut *self.lock());
        recorded.links.sort_unstable();
        recorded.links.dedup();
        (recorded.links, recorded.warnings)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recorded> {
        self.recorded.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self, index: usize, url: Arc<str>) {
        self.lock().links.push(TrackedLink {
            index: index as u32,
            url,
        });
    }

    /// Link `index` of the template, for a fixed link.
    fn fixed(&self, index: usize) -> Option<Value> {
        let PlannedLink::Fixed {
            url,
            destination,
            plain,
            tracked,
        } = self.message.links.get(index)?
        else {
            return None;
        };
        if !(*tracked && self.tracks_clicks()) {
            return Some(plain.clone());
        }
        self.record(index, url.clone());
        let signed = self.signed.as_ref()?;
        let Some(prefix) = &signed.click_prefix else {
            return Some(self.sign_link(index, destination));
        };
        let mut link = String::with_capacity(prefix.len() + 4);
        link.push_str(prefix);
        link.push_str(itoa::Buffer::new().format(index));
        // A tracked URL is the validated domain and base64url: nothing in it
        // needs escaping, so it is written as is.
        Some(Value::from_safe_string(link))
    }

    /// The tracked URL for `destination`, signed on its first use in this
    /// render and reused after that.
    fn sign_link(&self, index: usize, destination: &str) -> Value {
        let Some(config) = &self.message.config else {
            return Value::from(destination);
        };
        if let Some((_, signed)) = self
            .lock()
            .signed_links
            .iter()
            .find(|(signed, _)| **signed == *destination)
        {
            return signed.clone();
        }
        let mut out = config.url("c");
        let claims = self.message.claims(
            &self.recipient_id,
            ClaimKind::Link {
                index: index as u32,
                destination: destination.into(),
            },
        );
        config.signer.sign_into(&claims, &mut out);
        // A tracked URL is the validated domain and base64url: nothing in it
        // needs escaping.
        let signed = Value::from_safe_string(out);
        self.lock()
            .signed_links
            .push((destination.into(), signed.clone()));
        signed
    }

    /// A link built by expressions, as rendered at site `index`.
    fn expression(&self, index: usize, rendered: &str) -> Value {
        let Some(PlannedLink::Expression { part }) = self.message.links.get(index) else {
            return Value::from_safe_string(rendered.to_owned());
        };
        let url = if part.is_html() {
            decode_href(rendered)
        } else {
            Cow::Borrowed(rendered.trim())
        };
        if !url::is_http(&url) {
            if let Some(scheme) = script_scheme(&url) {
                self.lock().warnings.push(format!(
                    "link {index} rendered as a `{scheme}` URL, left untouched"
                ));
            }
            return Value::from_safe_string(rendered.to_owned());
        }
        let destination = url::add_params(&url, &self.message.utm);
        if !self.tracks_clicks() || url::is_excluded(&url, &self.message.exclusions) {
            return Value::from(destination.into_owned());
        }
        self.record(index, Arc::from(url.as_ref()));
        self.sign_link(index, &destination)
    }
}

const PIXEL_ATTRIBUTES: &str = "\" width=\"1\" height=\"1\" alt=\"\" style=\"display:block;width:1px;height:1px;border:0;margin:0;padding:0\">";

impl Object for RecipientTracking {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        if let Some(index) = key.as_usize() {
            return self.fixed(index);
        }
        match key.as_str()? {
            "top" => Some(
                self.top
                    .get()
                    .cloned()
                    .unwrap_or_else(|| Value::from_safe_string(String::new())),
            ),
            _ => None,
        }
    }
}

/// The `__ap_track(n)` filter around a link built by expressions. Outside a
/// tracked email render it gives the link back as it rendered.
pub(crate) fn track_filter(state: &State, rendered: &str, index: usize) -> Result<Value, Error> {
    let tracking = state.lookup(TRACKING_VAR);
    Ok(
        match tracking
            .as_ref()
            .and_then(|value| value.downcast_object_ref::<RecipientTracking>())
        {
            Some(tracking) => tracking.expression(index, rendered),
            None => Value::from_safe_string(rendered.to_owned()),
        },
    )
}

#[cfg(test)]
mod tests;
