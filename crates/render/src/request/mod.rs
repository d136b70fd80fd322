//! The render request: the contract between callers and the renderer,
//! parsed and validated at the edge, immutable afterwards.

mod address;
mod error;
mod ids;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use address::{EmailAddress, SenderLabel};
pub use error::RequestError;
pub use ids::{
    ClientId, CompanyId, MAX_ID_LEN, MessageId, ProfileId, RecipientId, RequestId, TemplateId,
};

use crate::template::{Channel, TemplateParts};

/// Limits applied while parsing a request; the edge (HTTP, queue) sets them.
#[derive(Debug, Clone)]
pub struct RequestLimits {
    /// Most recipients one request may carry.
    pub max_recipients: usize,
    /// Largest accepted request body, in bytes.
    pub max_bytes: usize,
}

impl Default for RequestLimits {
    fn default() -> Self {
        Self {
            max_recipients: 10_000,
            max_bytes: 32 * 1024 * 1024,
        }
    }
}

/// Scheduling lane: transactional mail must not wait behind bulk sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    High,
    #[default]
    Normal,
    Low,
}

impl Priority {
    /// Its name in requests: `high`, `normal` or `low`.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::High => "high",
            Priority::Normal => "normal",
            Priority::Low => "low",
        }
    }
}

/// A request to render one message for a list of recipients.
///
/// Built only by [`RenderRequest::from_json`] (or deserialized and then
/// [validated](RenderRequest::validate)), and read-only afterwards.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenderRequest {
    request_id: RequestId,
    company_id: CompanyId,
    client_id: ClientId,
    message_id: MessageId,
    #[serde(default)]
    priority: Priority,
    send_time: jiff::Timestamp,
    #[serde(default)]
    response_metadata: serde_json::Value,
    channel_settings: ChannelSettings,
    render_recipients: Vec<RenderRecipient>,
    #[serde(default)]
    tracking_options: TrackingOptions,
    /// The JSON [`RenderRequest::from_json`] parsed, kept so that storing
    /// the request copies it: serializing a request again costs more than
    /// rendering an SMS batch of it.
    #[serde(skip)]
    source: Option<Arc<str>>,
}

impl RenderRequest {
    /// Parses and validates a JSON request. Every error names the JSON path
    /// of the offending field, and the line and column when the JSON itself
    /// is malformed.
    pub fn from_json(bytes: &[u8], limits: &RequestLimits) -> Result<Self, RequestError> {
        if bytes.len() > limits.max_bytes {
            return Err(RequestError::new(
                "",
                format!(
                    "request is {} bytes, more than the maximum of {}",
                    bytes.len(),
                    limits.max_bytes
                ),
            ));
        }
        // Tracking every field's path costs on every request; only a
        // request that fails to parse needs it, to say where.
        let mut request = match serde_json::from_slice::<Self>(bytes) {
            Ok(request) => request,
            Err(_) => Self::parse_explaining(bytes)?,
        };
        request.validate(limits)?;
        // A request that parsed is UTF-8 outside its strings too: JSON's
        // syntax is ASCII.
        request.source = std::str::from_utf8(bytes).ok().map(Arc::from);
        Ok(request)
    }

    /// The request as JSON, to store: the JSON it was parsed from when it
    /// has it, else serialized. The stored JSON may still carry another
    /// request id, or lack the template version pinned since; whoever
    /// stores it keeps those two beside it and hands them back to
    /// [`RenderRequest::from_stored`].
    pub fn stored_json(&self) -> Result<Cow<'_, str>, serde_json::Error> {
        match &self.source {
            Some(json) => Ok(Cow::Borrowed(json)),
            None => serde_json::to_string(self).map(Cow::Owned),
        }
    }

    /// The template version pinned on a stored template ref (see
    /// [`RenderRequest::pin_template_version`]), to store beside
    /// [`RenderRequest::stored_json`].
    pub fn pinned_template_version(&self) -> Option<u32> {
        match self.channel_settings.template() {
            TemplateRef::Stored { version, .. } => *version,
            TemplateRef::Inline(_) => None,
        }
    }

    /// Reads back a request stored as [`RenderRequest::stored_json`], under
    /// the id and with the pinned template version stored beside it. The
    /// stored request was validated when it was accepted; it is validated
    /// again, against no limits, in case the store was changed under us.
    pub fn from_stored(
        json: &str,
        request_id: RequestId,
        pinned_version: Option<u32>,
    ) -> Result<Self, String> {
        let mut request = serde_json::from_str::<Self>(json).map_err(|e| e.to_string())?;
        let unlimited = RequestLimits {
            max_recipients: usize::MAX,
            max_bytes: usize::MAX,
        };
        request.validate(&unlimited).map_err(|e| e.to_string())?;
        request.request_id = request_id;
        if let Some(version) = pinned_version {
            request.pin_template_version(version);
        }
        Ok(request)
    }

    /// How many bytes of JSON the request keeps for storing.
    pub fn source_len(&self) -> usize {
        self.source.as_ref().map_or(0, |json| json.len())
    }

    /// Parses again, tracking paths, for the error that names the field.
    fn parse_explaining(bytes: &[u8]) -> Result<Self, RequestError> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let request: Self =
            serde_path_to_error::deserialize(&mut de).map_err(RequestError::from_json)?;
        de.end().map_err(RequestError::from_trailing)?;
        Ok(request)
    }

    /// Checks the rules that span fields: recipients present, within the
    /// limit, and unique.
    pub fn validate(&self, limits: &RequestLimits) -> Result<(), RequestError> {
        let count = self.render_recipients.len();
        if count == 0 {
            return Err(RequestError::new(
                "render_recipients",
                "must list at least one recipient",
            ));
        }
        if count > limits.max_recipients {
            return Err(RequestError::new(
                "render_recipients",
                format!(
                    "{count} recipients, more than the maximum of {}",
                    limits.max_recipients
                ),
            ));
        }
        self.tracking_options.validate()?;
        let mut seen: HashMap<&str, usize> = HashMap::with_capacity(count);
        for (index, recipient) in self.render_recipients.iter().enumerate() {
            if let Some(first) = seen.insert(recipient.recipient_id.as_str(), index) {
                return Err(RequestError::new(
                    format!("render_recipients[{index}].recipient_id"),
                    format!(
                        "duplicate recipient_id {:?} (first at render_recipients[{first}])",
                        recipient.recipient_id.as_str()
                    ),
                ));
            }
        }
        Ok(())
    }

    pub fn request_id(&self) -> &RequestId {
        &self.request_id
    }
    pub fn company_id(&self) -> &CompanyId {
        &self.company_id
    }
    pub fn client_id(&self) -> &ClientId {
        &self.client_id
    }
    pub fn message_id(&self) -> &MessageId {
        &self.message_id
    }
    pub fn priority(&self) -> Priority {
        self.priority
    }
    /// The render's notion of "now": renders never read the clock.
    pub fn send_time(&self) -> jiff::Timestamp {
        self.send_time
    }
    /// Opaque caller data, handed back untouched in the response event.
    pub fn response_metadata(&self) -> &serde_json::Value {
        &self.response_metadata
    }
    pub fn channel_settings(&self) -> &ChannelSettings {
        &self.channel_settings
    }
    pub fn render_recipients(&self) -> &[RenderRecipient] {
        &self.render_recipients
    }
    pub fn tracking_options(&self) -> &TrackingOptions {
        &self.tracking_options
    }

    /// A copy of this request under another id: the same message and
    /// recipients (their event data is shared, not copied). For generating
    /// traffic from one request.
    /// The copy keeps the JSON it was parsed from: stored, the id is kept
    /// beside it (see [`RenderRequest::stored_json`]).
    pub fn with_request_id(&self, request_id: RequestId) -> RenderRequest {
        RenderRequest {
            request_id,
            ..self.clone()
        }
    }

    /// A copy holding only the recipients in `range`: one batch, to carry
    /// on a broker whose messages cannot hold the whole list. It has no
    /// source JSON, so [`RenderRequest::stored_json`] serializes it, with
    /// its request id and pinned template version.
    ///
    /// # Panics
    /// When `range` is not within the recipients.
    pub fn batch(&self, range: std::ops::Range<usize>) -> RenderRequest {
        self.with_recipients(self.render_recipients[range].to_vec())
    }

    /// A copy holding only the recipients at `indexes`, in that order: a
    /// sample to keep (see [`RenderRequest::batch`]).
    ///
    /// # Panics
    /// When an index is not within the recipients.
    pub fn picked(&self, indexes: &[usize]) -> RenderRequest {
        self.with_recipients(
            indexes
                .iter()
                .map(|&i| self.render_recipients[i].clone())
                .collect(),
        )
    }

    fn with_recipients(&self, render_recipients: Vec<RenderRecipient>) -> RenderRequest {
        RenderRequest {
            request_id: self.request_id.clone(),
            company_id: self.company_id.clone(),
            client_id: self.client_id.clone(),
            message_id: self.message_id.clone(),
            priority: self.priority,
            send_time: self.send_time,
            response_metadata: self.response_metadata.clone(),
            channel_settings: self.channel_settings.clone(),
            render_recipients,
            tracking_options: self.tracking_options.clone(),
            source: None,
        }
    }

    /// Fixes a stored template reference that names no version to
    /// `version`, the one that was latest when the request was accepted, so
    /// that every batch (and any re-render) uses the same version. A ref
    /// that names a version, or an inline template, is left as it is.
    pub fn pin_template_version(&mut self, version: u32) {
        let template = match &mut self.channel_settings {
            ChannelSettings::Email(email) => &mut email.template,
            ChannelSettings::Sms(sms) => &mut sms.template,
        };
        if let TemplateRef::Stored {
            version: pinned @ None,
            ..
        } = template
        {
            *pinned = Some(version);
        }
    }
}

/// How the message is sent, tagged by `channel`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(
    tag = "channel",
    rename_all = "lowercase",
    try_from = "ChannelSettingsWire"
)]
pub enum ChannelSettings {
    Email(EmailSettings),
    Sms(SmsSettings),
}

impl ChannelSettings {
    pub fn channel(&self) -> Channel {
        match self {
            Self::Email(_) => Channel::Email,
            Self::Sms(_) => Channel::Sms,
        }
    }

    pub fn template(&self) -> &TemplateRef {
        match self {
            Self::Email(email) => &email.template,
            Self::Sms(sms) => &sms.template,
        }
    }

    pub fn message_name(&self) -> Option<&str> {
        match self {
            Self::Email(email) => email.message_name.as_deref(),
            Self::Sms(sms) => sms.message_name.as_deref(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct EmailSettings {
    pub template: TemplateRef,
    pub from_email: EmailAddress,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_label: Option<SenderLabel>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_to_email: Option<EmailAddress>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_name: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SmsSettings {
    pub template: TemplateRef,
    pub from_number: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_name: Option<String>,
}

/// All fields either channel accepts, so that a typo is reported with its
/// exact path instead of disappearing into an untagged enum.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChannelSettingsWire {
    channel: Channel,
    template: TemplateRef,
    message_name: Option<String>,
    from_email: Option<EmailAddress>,
    from_label: Option<SenderLabel>,
    reply_to_email: Option<EmailAddress>,
    from_number: Option<String>,
}

impl TryFrom<ChannelSettingsWire> for ChannelSettings {
    type Error = String;

    fn try_from(wire: ChannelSettingsWire) -> Result<Self, String> {
        let misplaced = |field: &str, present: bool| {
            if present {
                Err(format!(
                    "field `{field}` does not apply to channel {}",
                    wire.channel.as_str()
                ))
            } else {
                Ok(())
            }
        };
        match wire.channel {
            Channel::Email => {
                misplaced("from_number", wire.from_number.is_some())?;
                check_template_channel(&wire.template, Channel::Email)?;
                Ok(Self::Email(EmailSettings {
                    from_email: wire.from_email.ok_or(
                        "missing field `from_email` (required for channel email)".to_string(),
                    )?,
                    template: wire.template,
                    from_label: wire.from_label,
                    reply_to_email: wire.reply_to_email,
                    message_name: wire.message_name,
                }))
            }
            Channel::Sms => {
                misplaced("from_email", wire.from_email.is_some())?;
                misplaced("from_label", wire.from_label.is_some())?;
                misplaced("reply_to_email", wire.reply_to_email.is_some())?;
                check_template_channel(&wire.template, Channel::Sms)?;
                let from_number = wire
                    .from_number
                    .ok_or("missing field `from_number` (required for channel sms)".to_string())?;
                check_sender_number(&from_number)?;
                Ok(Self::Sms(SmsSettings {
                    template: wire.template,
                    from_number,
                    message_name: wire.message_name,
                }))
            }
        }
    }
}

fn check_template_channel(template: &TemplateRef, channel: Channel) -> Result<(), String> {
    match template {
        TemplateRef::Inline(parts) => parts
            .check_channel(channel)
            .map_err(|e| format!("template.inline: {e}")),
        TemplateRef::Stored { .. } => Ok(()),
    }
}

/// An E.164 number (`+15551234567`), a short code (`12345`) or an
/// alphanumeric sender id (`SHOP`, at most 11 characters).
fn check_sender_number(value: &str) -> Result<(), String> {
    let digits = value.strip_prefix('+').unwrap_or(value);
    let valid = if value.starts_with('+') {
        (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
    } else if value.bytes().all(|b| b.is_ascii_digit()) {
        (3..=8).contains(&value.len())
    } else {
        (1..=11).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b' ')
            && value.bytes().any(|b| b.is_ascii_alphabetic())
    };
    if valid {
        Ok(())
    } else {
        Err(format!(
            "from_number {value:?} is not an E.164 number, a short code or an alphanumeric sender id"
        ))
    }
}

/// Which template renders the message: a stored, versioned bundle, or an
/// inline one (previews and tests).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "TemplateRefWire", into = "TemplateRefWire")]
pub enum TemplateRef {
    Stored {
        id: TemplateId,
        version: Option<u32>,
    },
    Inline(TemplateParts),
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateRefWire {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<TemplateId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    inline: Option<TemplateParts>,
}

impl TryFrom<TemplateRefWire> for TemplateRef {
    type Error = &'static str;

    fn try_from(wire: TemplateRefWire) -> Result<Self, Self::Error> {
        match (wire.id, wire.version, wire.inline) {
            (Some(id), version, None) => Ok(Self::Stored { id, version }),
            (None, None, Some(parts)) => Ok(Self::Inline(parts)),
            (Some(_), _, Some(_)) | (None, Some(_), Some(_)) => {
                Err("give either `id` (with an optional `version`) or `inline`, not both")
            }
            (None, _, None) => Err("missing field `id` (or `inline` for an inline template)"),
        }
    }
}

impl From<TemplateRef> for TemplateRefWire {
    fn from(value: TemplateRef) -> Self {
        match value {
            TemplateRef::Stored { id, version } => Self {
                id: Some(id),
                version,
                inline: None,
            },
            TemplateRef::Inline(parts) => Self {
                id: None,
                version: None,
                inline: Some(parts),
            },
        }
    }
}

/// One recipient: whose profile to fetch and the event data for this send.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenderRecipient {
    pub recipient_id: RecipientId,
    pub profile_id: ProfileId,
    /// Inline event data (`event` in templates); always a JSON object.
    #[serde(default = "empty_object", deserialize_with = "object_only")]
    pub context: Arc<serde_json::Value>,
    /// The recipient has not consented to tracking: their links and pixel
    /// stay untracked (UTM parameters still apply).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tracking_opt_out: bool,
}

fn empty_object() -> Arc<serde_json::Value> {
    static EMPTY: std::sync::OnceLock<Arc<serde_json::Value>> = std::sync::OnceLock::new();
    EMPTY
        .get_or_init(|| Arc::new(serde_json::Value::Object(Default::default())))
        .clone()
}

fn object_only<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Arc<serde_json::Value>, D::Error> {
    let map = Option::<serde_json::Map<String, serde_json::Value>>::deserialize(d)?;
    Ok(map.map_or_else(empty_object, |m| Arc::new(serde_json::Value::Object(m))))
}

/// Link tracking and campaign parameters applied while finishing an email.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackingOptions {
    #[serde(default)]
    pub click_tracking: bool,
    #[serde(default)]
    pub open_tracking: bool,
    /// UTM parameters (`source`, `medium`, `campaign`, `content`, `term`,
    /// `id`, or any other query key); values may be templates, rendered once
    /// per message.
    #[serde(default)]
    pub utm: BTreeMap<String, String>,
    /// Links matching these patterns (`*` matches anything) are never
    /// tracked: `https://shop.example/account/*`.
    #[serde(default)]
    pub link_exclusions: Vec<String>,
}

/// UTM keys written without their `utm_` prefix.
const UTM_NAMES: &[&str] = &["source", "medium", "campaign", "content", "term", "id"];

impl TrackingOptions {
    /// The query parameter a `utm` key adds: `campaign` is `utm_campaign`;
    /// other keys are used as given.
    pub fn parameter_name(key: &str) -> String {
        if UTM_NAMES.contains(&key) {
            format!("utm_{key}")
        } else {
            key.to_owned()
        }
    }

    fn validate(&self) -> Result<(), RequestError> {
        let mut names: HashMap<String, &str> = HashMap::new();
        for (key, value) in &self.utm {
            let path = format!("tracking_options.utm.{key}");
            let valid_key = !key.is_empty()
                && key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
            if !valid_key {
                return Err(RequestError::new(
                    path,
                    "a parameter name uses only letters, digits, `_`, `-` and `.`",
                ));
            }
            if let Some(other) = names.insert(Self::parameter_name(key), key) {
                return Err(RequestError::new(
                    path,
                    format!(
                        "adds the same parameter as tracking_options.utm.{other} ({})",
                        Self::parameter_name(key)
                    ),
                ));
            }
            crate::template::check_syntax(value)
                .map_err(|message| RequestError::new(path, message))?;
        }
        for (index, pattern) in self.link_exclusions.iter().enumerate() {
            if pattern.trim().is_empty() {
                return Err(RequestError::new(
                    format!("tracking_options.link_exclusions[{index}]"),
                    "must not be empty",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
