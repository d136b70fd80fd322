//! Rendering one recipient: context, sandboxed render of each part,
//! finishing into an artifact. A failure is that recipient's artifact, never
//! the batch's.

use std::collections::BTreeMap;
use std::sync::Arc;

use minijinja::{ErrorKind, Value};

use crate::artifact::{
    Artifact, EmailArtifact, FailureKind, Outcome, RenderFailure, Skipped, SmsArtifact,
};
use crate::context::{RequestVars, recipient_context};
use crate::finish;
use crate::request::{ChannelSettings, EmailSettings, RenderRecipient, RenderRequest};
use crate::sms;
use crate::template::{CompiledTemplate, MissingData, PartName, TemplateError, describe};

/// A request bound to its compiled template, ready to render recipients.
/// Everything recipients share is computed here, once.
#[derive(Debug)]
pub struct PreparedRequest {
    request: Arc<RenderRequest>,
    template: Arc<CompiledTemplate>,
    vars: RequestVars,
    from: String,
}

impl PreparedRequest {
    /// Binds `request` to `template`; the caller resolved the template from
    /// the request's template ref. Fails when the template was compiled for
    /// another channel than the request sends on.
    pub fn new(
        request: Arc<RenderRequest>,
        template: Arc<CompiledTemplate>,
    ) -> Result<Self, TemplateError> {
        let channel = request.channel_settings().channel();
        if template.channel() != channel {
            return Err(TemplateError::new(
                template.name(),
                None,
                None,
                format!(
                    "compiled for channel {}, but the request sends {channel}",
                    template.channel()
                ),
            ));
        }
        let from = match request.channel_settings() {
            ChannelSettings::Email(email) => finish::headers::mailbox(
                email.from_label.as_ref().map(|l| l.as_str()),
                email.from_email.as_str(),
            ),
            ChannelSettings::Sms(sms) => sms.from_number.clone(),
        };
        Ok(Self {
            vars: RequestVars::new(&request),
            request,
            template,
            from,
        })
    }

    pub fn request(&self) -> &RenderRequest {
        &self.request
    }

    pub fn template(&self) -> &CompiledTemplate {
        &self.template
    }

    /// Renders one recipient. `properties` is the recipient's profile, or
    /// `None` when the profile store had none.
    pub fn render(
        &self,
        recipient: &RenderRecipient,
        properties: Option<&Arc<serde_json::Value>>,
    ) -> Artifact {
        let outcome = match properties {
            None => Outcome::Error(RenderFailure {
                kind: FailureKind::ProfileNotFound,
                message: format!("profile {:?} not found", recipient.profile_id.as_str()),
                template: None,
                part: None,
                line: None,
            }),
            Some(properties) => {
                let ctx = recipient_context(&self.vars, recipient, properties);
                let rendered = match self.request.channel_settings() {
                    ChannelSettings::Email(settings) => self.render_email(settings, &ctx),
                    ChannelSettings::Sms(_) => self.render_sms(&ctx),
                };
                rendered.unwrap_or_else(|stop| match stop {
                    Stop::Skipped(skipped) => Outcome::Skipped(skipped),
                    Stop::Failed(failure) => Outcome::Error(failure),
                })
            }
        };
        Artifact {
            request_id: self.request.request_id().clone(),
            company_id: self.request.company_id().clone(),
            message_id: self.request.message_id().clone(),
            recipient_id: recipient.recipient_id.clone(),
            profile_id: recipient.profile_id.clone(),
            channel: self.template.channel(),
            outcome,
        }
    }

    /// An email artifact as an RFC 5322 message a mail client opens;
    /// `None` for other outcomes.
    pub fn eml(&self, artifact: &Artifact) -> Option<String> {
        let (ChannelSettings::Email(settings), Outcome::Email(email)) =
            (self.request.channel_settings(), &artifact.outcome)
        else {
            return None;
        };
        let headers: Vec<(String, String)> = email
            .headers
            .iter()
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        let domain = settings
            .from_email
            .as_str()
            .rsplit_once('@')
            .map_or("artifact.invalid", |(_, domain)| domain);
        let message_id = format!(
            "{}.{}@{domain}",
            message_id_atom(self.request.request_id().as_str()),
            message_id_atom(artifact.recipient_id.as_str())
        );
        Some(finish::eml::render_eml(&finish::eml::Eml {
            from_label: settings.from_label.as_ref().map(|l| l.as_str()),
            from_address: settings.from_email.as_str(),
            reply_to: settings.reply_to_email.as_ref().map(|a| a.as_str()),
            to: None,
            subject: &email.subject,
            date: self.request.send_time(),
            message_id: &message_id,
            headers: &headers,
            html: &email.html,
            text: &email.text,
        }))
    }

    fn render_email(&self, settings: &EmailSettings, ctx: &Value) -> Result<Outcome, Stop> {
        let subject = self.render_part(PartName::Subject, ctx)?;
        let mut html = self.render_part(PartName::Html, ctx)?;
        let preheader = if self.template.has_part(PartName::Preheader) {
            Some(self.render_part(PartName::Preheader, ctx)?)
        } else {
            None
        };
        let text = if self.template.has_part(PartName::Text) {
            self.render_part(PartName::Text, ctx)?
        } else {
            finish::text::html_to_text(&html)
        };
        if let Some(preheader) = preheader {
            finish::preheader::insert(&mut html, &finish::headers::one_line(&preheader));
        }
        Ok(Outcome::Email(EmailArtifact {
            subject: finish::headers::one_line(&subject),
            from: self.from.clone(),
            reply_to: settings.reply_to_email.as_ref().map(|a| a.to_string()),
            headers: BTreeMap::new(),
            html,
            text,
        }))
    }

    fn render_sms(&self, ctx: &Value) -> Result<Outcome, Stop> {
        let body = self.render_part(PartName::Sms, ctx)?;
        let body = body.trim().to_owned();
        let layout = sms::measure(&body);
        Ok(Outcome::Sms(SmsArtifact {
            body,
            encoding: layout.encoding,
            segments: layout.segments,
            ucs2_trigger: layout.ucs2_trigger,
        }))
    }

    /// Renders one part within the output limit. The limit is checked when
    /// the part is done: while it renders, fuel (which charges every byte
    /// written) bounds how far a runaway template gets, and writing straight
    /// into a `String` keeps the common case fast.
    fn render_part(&self, part: PartName, ctx: &Value) -> Result<String, Stop> {
        let template = self
            .template
            .part(part)
            .expect("compiled templates hold the parts their channel needs");
        match template.render(ctx) {
            Ok(out) if out.len() > self.template.max_output_bytes() => {
                Err(self.output_too_large(part, out.len()))
            }
            Ok(out) => Ok(out),
            Err(error) => Err(self.failure(part, &error)),
        }
    }

    fn output_too_large(&self, part: PartName, len: usize) -> Stop {
        Stop::Failed(RenderFailure {
            kind: FailureKind::OutputTooLarge,
            message: format!(
                "output is {len} bytes, more than the limit of {} bytes",
                self.template.max_output_bytes()
            ),
            template: Some(self.template.name().to_owned()),
            part: Some(part),
            line: None,
        })
    }

    fn failure(&self, part: PartName, error: &minijinja::Error) -> Stop {
        let part = error
            .name()
            .and_then(PartName::from_template_name)
            .unwrap_or(part);
        let line = error.line();
        let template = self.template.name().to_owned();
        let (kind, message) = match error.kind() {
            ErrorKind::OutOfFuel => (
                FailureKind::FuelExhausted,
                "ran out of fuel: the template does too much work (a loop too large?)".to_owned(),
            ),
            ErrorKind::InvalidOperation if describe(error).contains("recursion limit") => (
                FailureKind::RecursionLimit,
                "recursion limit exceeded: macros or includes nest too deeply".to_owned(),
            ),
            ErrorKind::UndefinedError => {
                let reason = self.missing_reason(part, error);
                if self.template.missing_data() == MissingData::Skip {
                    return Stop::Skipped(Skipped {
                        reason,
                        template,
                        part: Some(part),
                        line,
                    });
                }
                (FailureKind::MissingData, reason)
            }
            _ => (FailureKind::Template, describe(error)),
        };
        Stop::Failed(RenderFailure {
            kind,
            message,
            template: Some(template),
            part: Some(part),
            line,
        })
    }

    /// Names the missing value by quoting the tag (`{{ … }}` or `{% … %}`)
    /// that read it.
    fn missing_reason(&self, part: PartName, error: &minijinja::Error) -> String {
        let tag = error.range().and_then(|range| {
            let template = self.template.part(part)?;
            enclosing_tag(template.source(), range).map(str::to_owned)
        });
        match tag {
            Some(tag) => format!("missing data in `{tag}`"),
            None => format!("missing data: {}", describe(error)),
        }
    }
}

/// Why a recipient's render stopped short of an artifact.
enum Stop {
    Skipped(Skipped),
    Failed(RenderFailure),
}

/// The template tag around `range`, e.g. `{{ profile.location.city }}`.
fn enclosing_tag(source: &str, range: std::ops::Range<usize>) -> Option<&str> {
    let before = source.get(..range.start)?;
    let open = before.rfind("{{").max(before.rfind("{%"))?;
    let after = source.get(range.end..)?;
    let close = [after.find("}}"), after.find("%}")]
        .into_iter()
        .flatten()
        .min()?;
    source.get(open..range.end + close + 2)
}

/// An id as a Message-ID atom: characters outside the safe set become
/// `=XX`, so distinct ids stay distinct.
fn message_id_atom(id: &str) -> String {
    let mut atom = String::with_capacity(id.len());
    for byte in id.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_') {
            atom.push(byte as char);
        } else {
            atom.push_str(&format!("={byte:02X}"));
        }
    }
    atom
}
