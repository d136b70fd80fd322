//! `canary verify`: pairs the canary's artifacts with production's by key
//! and compares them part by part. Renders are deterministic, so every
//! difference means something: a content change, a whitespace-only change
//! in HTML or text, or noise (the same part also differs between
//! production and its control copy).

use std::collections::BTreeMap;

use artifact_render::{Artifact, Outcome};
use serde::Serialize;

use crate::{ArtifactKey, ArtifactStore, Lane, MirrorQueue, PortResult, Unmirrored};

/// What to leave out of the comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ignore {
    /// A whole part: `subject`, `html`, `links`, …
    Part(String),
    /// One email header, by name (case-insensitive).
    Header(String),
}

impl Ignore {
    /// `html`, or `header:X-Campaign`.
    pub fn parse(rule: &str) -> Result<Self, String> {
        match rule.split_once(':') {
            Some(("header", name)) if !name.is_empty() => Ok(Self::Header(name.to_owned())),
            None if PARTS.contains(&rule) => Ok(Self::Part(rule.to_owned())),
            _ => Err(format!(
                "ignore rule {rule:?}: give a part ({}) or header:NAME",
                PARTS.join(", ")
            )),
        }
    }
}

/// The parts compared, in report order.
pub const PARTS: &[&str] = &[
    "outcome",
    "subject",
    "from",
    "reply_to",
    "headers",
    "html",
    "text",
    "links",
    "warnings",
    "sms",
    "sms_layout",
];

/// How one part differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DiffKind {
    /// The content changed.
    Content,
    /// Only whitespace changed (HTML and text compared token by token).
    Whitespace,
}

/// One part that differs between production and the canary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartDiff {
    pub part: &'static str,
    pub kind: DiffKind,
    /// The same part also differs between production and the control
    /// copy: noise, not a regression.
    pub noise: bool,
    pub production: String,
    pub canary: String,
}

/// A pair of artifacts that differ.
#[derive(Debug, Clone, Serialize)]
pub struct ArtifactDiff {
    pub key: ArtifactKey,
    pub parts: Vec<PartDiff>,
}

impl ArtifactDiff {
    /// A content difference that is not noise.
    pub fn is_unexpected(&self) -> bool {
        self.parts
            .iter()
            .any(|part| part.kind == DiffKind::Content && !part.noise)
    }
}

/// What verification found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Verification {
    /// Keys found in both lanes.
    pub pairs: usize,
    pub identical: usize,
    /// Pairs with a content difference that is not noise.
    pub unexpected: usize,
    /// Pairs whose only differences are whitespace or noise.
    pub expected: usize,
    /// Differing pairs by part (a pair counts once per part).
    pub by_part: BTreeMap<&'static str, usize>,
    pub diffs: Vec<ArtifactDiff>,
    /// Canary artifacts production has no counterpart for.
    pub missing_production: Vec<ArtifactKey>,
    /// Sampled recipients the canary has not rendered (waiting) or gave
    /// up on (with the reason).
    pub missing_canary: Vec<Unmirrored>,
    /// Pairs that also had a control copy to tell noise from regressions.
    pub control_pairs: usize,
}

/// Pages through the canary lane and compares each artifact with
/// production's (and the control copy's, when there is one).
pub async fn verify(
    store: &dyn ArtifactStore,
    queue: &dyn MirrorQueue,
    ignore: &[Ignore],
) -> PortResult<Verification> {
    let mut found = Verification::default();
    let mut after: Option<ArtifactKey> = None;
    loop {
        let page = store.list_lane(Lane::Canary, after.as_ref(), 500).await?;
        let Some((last, _)) = page.last() else { break };
        after = Some(last.clone());
        for (key, canary) in page {
            let production = store
                .get(&ArtifactKey {
                    lane: Lane::Production,
                    ..key.clone()
                })
                .await?;
            let Some(production) = production else {
                found.missing_production.push(key);
                continue;
            };
            let control = store
                .get(&ArtifactKey {
                    lane: Lane::Control,
                    ..key.clone()
                })
                .await?;
            found.pairs += 1;
            found.control_pairs += usize::from(control.is_some());
            let parts = compare(&production, &canary, control.as_ref(), ignore);
            if parts.is_empty() {
                found.identical += 1;
                continue;
            }
            for part in &parts {
                *found.by_part.entry(part.part).or_default() += 1;
            }
            let diff = ArtifactDiff {
                key: ArtifactKey {
                    lane: Lane::Canary,
                    ..key
                },
                parts,
            };
            if diff.is_unexpected() {
                found.unexpected += 1;
            } else {
                found.expected += 1;
            }
            found.diffs.push(diff);
        }
    }
    found.missing_canary = queue.unmirrored(Lane::Canary).await?;
    Ok(found)
}

/// The parts of `production` and `canary` that differ, each marked noise
/// when `control` differs from production in it too.
pub fn compare(
    production: &Artifact,
    canary: &Artifact,
    control: Option<&Artifact>,
    ignore: &[Ignore],
) -> Vec<PartDiff> {
    let production_parts = parts(production, ignore);
    let canary_parts = parts(canary, ignore);
    let control_parts = control.map(|control| parts(control, ignore));
    let empty = String::new();
    PARTS
        .iter()
        .filter_map(|&part| {
            let a = production_parts.get(part).unwrap_or(&empty);
            let b = canary_parts.get(part).unwrap_or(&empty);
            if a == b {
                return None;
            }
            let kind = if matches!(part, "html" | "text") && tokens(a) == tokens(b) {
                DiffKind::Whitespace
            } else {
                DiffKind::Content
            };
            let noise = control_parts
                .as_ref()
                .is_some_and(|control| control.get(part).unwrap_or(&empty) != a);
            Some(PartDiff {
                part,
                kind,
                noise,
                production: a.clone(),
                canary: b.clone(),
            })
        })
        .collect()
}

/// An artifact as named parts of text, with ignored parts and headers left
/// out. Artifacts carry no render time or renderer version, so nothing
/// volatile needs ignoring by default.
fn parts(artifact: &Artifact, ignore: &[Ignore]) -> BTreeMap<&'static str, String> {
    let mut parts = BTreeMap::new();
    match &artifact.outcome {
        Outcome::Email(email) => {
            parts.insert("outcome", "email".to_owned());
            parts.insert("subject", email.subject.clone());
            parts.insert("from", email.from.clone());
            parts.insert("reply_to", email.reply_to.clone().unwrap_or_default());
            let headers: Vec<String> = email
                .headers
                .iter()
                .filter(|(name, _)| {
                    !ignore.iter().any(
                        |rule| matches!(rule, Ignore::Header(h) if h.eq_ignore_ascii_case(name)),
                    )
                })
                .map(|(name, value)| format!("{name}: {value}"))
                .collect();
            parts.insert("headers", headers.join("\n"));
            parts.insert("html", email.html.clone());
            parts.insert("text", email.text.clone());
            parts.insert("links", json(&email.links));
            parts.insert("warnings", email.warnings.join("\n"));
        }
        Outcome::Sms(sms) => {
            parts.insert("outcome", "sms".to_owned());
            parts.insert("sms", sms.body.clone());
            parts.insert(
                "sms_layout",
                format!("{} in {} segments", json(&sms.encoding), sms.segments),
            );
        }
        Outcome::Skipped(skipped) => {
            parts.insert("outcome", format!("skipped: {}", json(skipped)));
        }
        Outcome::Error(failure) => {
            parts.insert("outcome", format!("error: {}", json(failure)));
        }
    }
    parts.retain(|part, _| {
        !ignore
            .iter()
            .any(|rule| matches!(rule, Ignore::Part(p) if p == part))
    });
    parts
}

/// A part that is not text, as JSON.
fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// HTML or text as a browser lays it out, near enough for "only
/// whitespace changed": tags and words, with runs of whitespace between
/// them dropped.
fn tokens(markup: &str) -> Vec<&str> {
    let mut tokens = Vec::new();
    let mut rest = markup;
    while !rest.is_empty() {
        if rest.starts_with('<') {
            let end = rest.find('>').map_or(rest.len(), |at| at + 1);
            tokens.push(&rest[..end]);
            rest = &rest[end..];
        } else {
            let end = rest.find('<').unwrap_or(rest.len());
            tokens.extend(rest[..end].split_ascii_whitespace());
            rest = &rest[end..];
        }
    }
    tokens
}

#[cfg(test)]
mod tests;
