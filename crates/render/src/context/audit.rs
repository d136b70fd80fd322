//! The audited context: the same variables as a recipient's render, seen
//! through views that note every read. A separate set of types, so that the
//! unaudited render pays nothing for the audit.
//!
//! A view must render exactly as the plain context does; the tests render
//! the sample newsletter both ways and compare the artifacts.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use minijinja::value::{Enumerator, Object, ObjectExt, ObjectRepr, Value};
use serde::Serialize;

use super::json::{lookup, scalar};
use super::{FinishingVars, RecipientContext, RequestVars, VARIABLES};
use crate::request::RenderRecipient;
use crate::template::PartName;
use crate::template::analysis::push_key;

/// The JSON type of a value read, for the payload's JSON Schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JsonKind {
    Null,
    Boolean,
    Integer,
    Number,
    String,
    Array,
    Object,
}

impl JsonKind {
    fn of(value: &serde_json::Value) -> Self {
        match value {
            serde_json::Value::Null => Self::Null,
            serde_json::Value::Bool(_) => Self::Boolean,
            serde_json::Value::Number(n) if n.is_f64() => Self::Number,
            serde_json::Value::Number(_) => Self::Integer,
            serde_json::Value::String(_) => Self::String,
            serde_json::Value::Array(_) => Self::Array,
            serde_json::Value::Object(_) => Self::Object,
        }
    }

    /// The JSON Schema `type` name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Boolean => "boolean",
            Self::Integer => "integer",
            Self::Number => "number",
            Self::String => "string",
            Self::Array => "array",
            Self::Object => "object",
        }
    }
}

/// How one path was read during one recipient's render.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seen {
    /// Found at least once (else every read found it missing).
    pub present: bool,
    /// Used as a value (printed, tested, measured), not only walked through
    /// to reach what is inside it.
    pub used: bool,
    /// The JSON types found.
    pub kinds: Vec<JsonKind>,
}

/// Every read of one recipient's render, by part and path.
#[derive(Debug, Default)]
pub struct AccessRecorder {
    state: Mutex<RecorderState>,
}

#[derive(Debug)]
struct RecorderState {
    part: PartName,
    seen: BTreeMap<(PartName, String), Seen>,
}

impl Default for RecorderState {
    fn default() -> Self {
        Self {
            part: PartName::Subject,
            seen: BTreeMap::new(),
        }
    }
}

/// What a read did with the value.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Use {
    /// Looked it up, maybe to go further inside.
    Walk,
    /// Measured, tested or enumerated it.
    Value,
}

impl AccessRecorder {
    /// Reads from now on are `part`'s.
    pub(crate) fn enter(&self, part: PartName) {
        self.lock().part = part;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RecorderState> {
        // A panic while recording leaves a usable map behind.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self, path: &str, value: Option<&serde_json::Value>, how: Use) {
        let mut state = self.lock();
        let part = state.part;
        let seen = state.seen.entry((part, path.to_owned())).or_default();
        if let Some(value) = value {
            seen.present = true;
            let kind = JsonKind::of(value);
            if !seen.kinds.contains(&kind) {
                seen.kinds.push(kind);
            }
            // A scalar has nothing inside: reading it is using it.
            let scalar = !matches!(kind, JsonKind::Array | JsonKind::Object);
            seen.used |= scalar || how != Use::Walk;
        } else {
            seen.used = true;
        }
    }

    /// Everything recorded so far, leaving the recorder empty.
    pub fn take(&self) -> BTreeMap<(PartName, String), Seen> {
        std::mem::take(&mut self.lock().seen)
    }
}

/// The audited counterpart of [`super::recipient_context`].
pub fn audited_recipient_context(
    vars: &RequestVars,
    recipient: &RenderRecipient,
    properties: &Arc<serde_json::Value>,
    finishing: FinishingVars,
    recorder: &Arc<AccessRecorder>,
) -> Value {
    let root = |name: &str, document: Arc<serde_json::Value>| {
        AuditedNode::wrap(
            &Arc::new(AuditedRoot {
                document,
                recorder: recorder.clone(),
            }),
            Vec::new(),
            name.to_owned(),
        )
    };
    let recipient_vars = serde_json::json!({
        "recipient_id": recipient.recipient_id.as_str(),
        "profile_id": recipient.profile_id.as_str(),
    });
    Value::from_object(AuditedContext {
        plain: RecipientContext {
            profile: root("profile", properties.clone()),
            event: root("event", recipient.context.clone()),
            recipient: root("recipient", Arc::new(recipient_vars)),
            message: root("message", vars.message_json.clone()),
            now: vars.now.clone(),
            finishing,
        },
        recorder: recorder.clone(),
    })
}

/// The plain root over audited documents, noting reads of the variables
/// that are not documents.
#[derive(Debug)]
struct AuditedContext {
    plain: RecipientContext,
    recorder: Arc<AccessRecorder>,
}

impl Object for AuditedContext {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.get_value_by_str(key.as_str()?)
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        let value = self.plain.get(key);
        if matches!(key, "now" | "unsubscribe_url") {
            let json = value.and_then(|v| v.as_str()).map(serde_json::Value::from);
            self.recorder.record(key, json.as_ref(), Use::Value);
        }
        value.cloned()
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(VARIABLES)
    }
}

/// One document (a profile, an event) and the recorder its reads go to.
#[derive(Debug)]
struct AuditedRoot {
    document: Arc<serde_json::Value>,
    recorder: Arc<AccessRecorder>,
}

/// A step from a node to its child.
#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

/// An array or object inside an audited document, found again from the
/// root by its steps: slower than a pointer, and needs no `unsafe`.
#[derive(Debug)]
struct AuditedNode {
    root: Arc<AuditedRoot>,
    steps: Vec<Step>,
    /// `event.cart[].price`: indexes collapse to `[]`.
    path: String,
}

impl AuditedNode {
    /// The value at `steps` as a template value: scalars as the plain view
    /// converts them, arrays and objects as audited nodes.
    fn wrap(root: &Arc<AuditedRoot>, steps: Vec<Step>, path: String) -> Value {
        let node = Self {
            root: root.clone(),
            steps,
            path,
        };
        let value = match node.node() {
            None => return Value::UNDEFINED,
            Some(value) if value.is_array() || value.is_object() => None,
            Some(value) => Some(scalar(value)),
        };
        value.unwrap_or_else(|| Value::from_object(node))
    }

    fn node(&self) -> Option<&serde_json::Value> {
        let mut node = &*self.root.document;
        for step in &self.steps {
            node = match (step, node) {
                (Step::Key(key), serde_json::Value::Object(map)) => lookup(map, key)?,
                (Step::Index(i), serde_json::Value::Array(items)) => items.get(*i)?,
                _ => return None,
            };
        }
        Some(node)
    }

    fn record(&self, how: Use) {
        self.root.recorder.record(&self.path, self.node(), how);
    }

    fn key(&self, key: &str) -> Option<Value> {
        let mut path = self.path.clone();
        push_key(&mut path, key);
        let mut steps = self.steps.clone();
        steps.push(Step::Key(key.to_owned()));
        self.child(steps, path)
    }

    fn index(&self, index: usize) -> Option<Value> {
        let path = format!("{}[]", self.path);
        let mut steps = self.steps.clone();
        steps.push(Step::Index(index));
        self.child(steps, path)
    }

    fn child(&self, steps: Vec<Step>, path: String) -> Option<Value> {
        let child = Self {
            root: self.root.clone(),
            steps,
            path,
        };
        let found = child.node();
        self.root.recorder.record(&child.path, found, Use::Walk);
        found?;
        Some(Self::wrap(&child.root, child.steps, child.path))
    }
}

impl Object for AuditedNode {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        match self.node() {
            Some(serde_json::Value::Array(_)) => ObjectRepr::Seq,
            _ => ObjectRepr::Map,
        }
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match self.node()? {
            serde_json::Value::Object(_) => self.key(key.as_str()?),
            serde_json::Value::Array(_) => self.index(usize::try_from(key.as_i64()?).ok()?),
            _ => None,
        }
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        match self.node()? {
            serde_json::Value::Object(_) => self.key(key),
            _ => None,
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        match self.node() {
            Some(serde_json::Value::Object(_)) => {
                self.record(Use::Value);
                self.mapped_key_value_enumerator(|this| {
                    let keys: Vec<String> = match this.node() {
                        Some(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
                        _ => Vec::new(),
                    };
                    Box::new(keys.into_iter().map(|key| {
                        let value = this.key(&key).unwrap_or(Value::UNDEFINED);
                        (Value::from(key), value)
                    }))
                })
            }
            Some(serde_json::Value::Array(items)) => {
                self.record(Use::Value);
                Enumerator::Seq(items.len())
            }
            _ => Enumerator::Empty,
        }
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        self.record(Use::Value);
        match self.node() {
            Some(serde_json::Value::Object(map)) => Some(map.len()),
            Some(serde_json::Value::Array(items)) => Some(items.len()),
            _ => Some(0),
        }
    }
}
