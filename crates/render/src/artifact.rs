//! Artifacts: what a render produces for one recipient, keyed by
//! (company_id, request_id, recipient_id, channel).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::finish::tracking::TrackedLink;
use crate::request::{CompanyId, MessageId, ProfileId, RecipientId, RequestId};
use crate::sms::{SmsEncoding, Ucs2Trigger};
use crate::template::{Channel, PartName};

/// One recipient's result. Exactly one of `email`, `sms`, `skipped` or
/// `error` is present in its JSON form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Artifact {
    pub request_id: RequestId,
    pub company_id: CompanyId,
    pub message_id: MessageId,
    pub recipient_id: RecipientId,
    pub profile_id: ProfileId,
    pub channel: Channel,
    #[serde(flatten)]
    pub outcome: Outcome,
}

impl Artifact {
    pub fn is_rendered(&self) -> bool {
        matches!(self.outcome, Outcome::Email(_) | Outcome::Sms(_))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Email(EmailArtifact),
    Sms(SmsArtifact),
    /// The template's missing-data policy chose to skip this recipient.
    Skipped(Skipped),
    Error(RenderFailure),
}

/// A send-ready email.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailArtifact {
    /// One line: no control characters from data can reach the header.
    pub subject: String,
    /// `Label <address>`, the label quoted when it holds specials.
    pub from: String,
    pub reply_to: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub html: String,
    pub text: String,
    /// The links this email tracks, by their number in the template.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<TrackedLink>,
    /// What the author should know: links left untracked, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// A send-ready SMS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmsArtifact {
    pub body: String,
    pub encoding: SmsEncoding,
    pub segments: usize,
    /// When the body needs UCS-2: the first character that forced it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ucs2_trigger: Option<Ucs2Trigger>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    pub reason: String,
    pub template: String,
    pub part: Option<PartName>,
    pub line: Option<usize>,
}

/// Why one recipient's render failed; the rest of the batch goes on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenderFailure {
    pub kind: FailureKind,
    pub message: String,
    pub template: Option<String>,
    pub part: Option<PartName>,
    pub line: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FailureKind {
    ProfileNotFound,
    /// Data the template prints is missing and its policy is `fail`.
    MissingData,
    FuelExhausted,
    RecursionLimit,
    OutputTooLarge,
    /// Any other template error at render time (a bad filter argument, …).
    Template,
}
