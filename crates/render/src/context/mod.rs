//! The variables a template sees: `profile`, `event`, `recipient`, `message`
//! and `now`. Built so that a render pays only for the data it reads.

pub mod audit;
mod json;

use std::sync::Arc;

use minijinja::value::{Enumerator, Object, Value};

pub use json::json_root;

use crate::request::{ChannelSettings, RenderRecipient, RenderRequest};

/// The top-level variables, in the order `enumerate` reports them.
pub const VARIABLES: &[&str] = &[
    "profile",
    "event",
    "recipient",
    "message",
    "now",
    "unsubscribe_url",
];

/// What every recipient of one request shares: built once per request.
#[derive(Debug, Clone)]
pub struct RequestVars {
    message: Value,
    /// The document `message` views, for the audited context.
    message_json: Arc<serde_json::Value>,
    now: Value,
}

impl RequestVars {
    /// `message` and `now` alone: the context of values rendered once per
    /// message, such as UTM parameters.
    pub fn message_context(&self) -> Value {
        minijinja::context! { message => self.message.clone(), now => self.now.clone() }
    }

    pub fn new(request: &RenderRequest) -> Self {
        let settings = request.channel_settings();
        let mut message = serde_json::Map::new();
        message.insert("channel".into(), settings.channel().as_str().into());
        message.insert("message_id".into(), request.message_id().as_str().into());
        let mut put = |key: &str, value: Option<&str>| {
            if let Some(value) = value {
                message.insert(key.into(), value.into());
            }
        };
        put("message_name", settings.message_name());
        match settings {
            ChannelSettings::Email(email) => {
                put("from_email", Some(email.from_email.as_str()));
                put("from_label", email.from_label.as_ref().map(|l| l.as_str()));
                put(
                    "reply_to_email",
                    email.reply_to_email.as_ref().map(|a| a.as_str()),
                );
            }
            ChannelSettings::Sms(sms) => put("from_number", Some(&sms.from_number)),
        }
        let message_json = Arc::new(serde_json::Value::Object(message));
        Self {
            message: json_root(&message_json),
            message_json,
            now: Value::from(
                request
                    .send_time()
                    .strftime("%Y-%m-%dT%H:%M:%SZ")
                    .to_string(),
            ),
        }
    }
}

/// The root context of one recipient's render.
#[derive(Debug)]
struct RecipientContext {
    profile: Value,
    event: Value,
    recipient: Value,
    message: Value,
    now: Value,
    finishing: FinishingVars,
}

/// Variables the finishing stage supplies for one recipient's email.
#[derive(Debug, Default)]
pub struct FinishingVars {
    /// `unsubscribe_url`, when a tracking domain is configured.
    pub unsubscribe_url: Option<Value>,
    /// The object rewritten link tags read (`__ap`).
    pub tracking: Option<Value>,
}

impl RecipientContext {
    fn get(&self, key: &str) -> Option<&Value> {
        match key {
            "profile" => Some(&self.profile),
            "event" => Some(&self.event),
            "recipient" => Some(&self.recipient),
            "message" => Some(&self.message),
            "now" => Some(&self.now),
            "unsubscribe_url" => self.finishing.unsubscribe_url.as_ref(),
            crate::template::links::TRACKING_VAR => self.finishing.tracking.as_ref(),
            _ => None,
        }
    }
}

impl Object for RecipientContext {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.get_value_by_str(key.as_str()?)
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        self.get(key).cloned()
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(VARIABLES)
    }
}

/// The context for one recipient: `properties` is the recipient's profile,
/// shared, never copied.
pub fn recipient_context(
    vars: &RequestVars,
    recipient: &RenderRecipient,
    properties: &Arc<serde_json::Value>,
    finishing: FinishingVars,
) -> Value {
    Value::from_object(RecipientContext {
        profile: json_root(properties),
        event: json_root(&recipient.context),
        recipient: Value::from_object(RecipientVars {
            recipient_id: Value::from(recipient.recipient_id.as_str()),
            profile_id: Value::from(recipient.profile_id.as_str()),
        }),
        message: vars.message.clone(),
        now: vars.now.clone(),
        finishing,
    })
}

#[derive(Debug)]
struct RecipientVars {
    recipient_id: Value,
    profile_id: Value,
}

impl Object for RecipientVars {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.get_value_by_str(key.as_str()?)
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        match key {
            "recipient_id" => Some(self.recipient_id.clone()),
            "profile_id" => Some(self.profile_id.clone()),
            _ => None,
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&["recipient_id", "profile_id"])
    }
}

#[cfg(test)]
mod tests;
