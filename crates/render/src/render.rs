//! Rendering one recipient: context, sandboxed render of each part,
//! finishing into an artifact. A failure is that recipient's artifact, never
//! the batch's.

use std::sync::Arc;

use minijinja::{ErrorKind, Value};

use crate::artifact::{
    Artifact, EmailArtifact, FailureKind, Outcome, RenderFailure, Skipped, SmsArtifact,
};
use crate::context::audit::{AccessRecorder, audited_recipient_context};
use crate::context::{FinishingVars, RequestVars, recipient_context};
use crate::finish;
use crate::finish::tracking::{MessageTracking, MessageTrackingInput, TrackingConfig};
use crate::request::{
    ChannelSettings, EmailSettings, RenderRecipient, RenderRequest, RequestError, TrackingOptions,
};
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
    tracking: Arc<MessageTracking>,
    /// The template's compile warnings, as every artifact reports them.
    warnings: Vec<String>,
}

/// Why a request cannot be rendered with a template and configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrepareError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Request(#[from] RequestError),
}

impl PreparedRequest {
    /// Binds `request` to `template`; the caller resolved the template from
    /// the request's template ref. `tracking` is the renderer's tracking
    /// configuration, if it has one. Fails when the template was compiled
    /// for another channel than the request sends on, when a UTM value does
    /// not render, or when the request or template needs tracking that is
    /// not configured.
    pub fn new(
        request: Arc<RenderRequest>,
        template: Arc<CompiledTemplate>,
        tracking: Option<Arc<TrackingConfig>>,
    ) -> Result<Self, PrepareError> {
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
            )
            .into());
        }
        let from = match request.channel_settings() {
            ChannelSettings::Email(email) => finish::headers::mailbox(
                email.from_label.as_ref().map(|l| l.as_str()),
                email.from_email.as_str(),
            ),
            ChannelSettings::Sms(sms) => sms.from_number.clone(),
        };
        let vars = RequestVars::new(&request);
        let options = request.tracking_options();
        if tracking.is_none() && channel == crate::template::Channel::Email {
            let needs = [
                ("click_tracking", options.click_tracking),
                ("open_tracking", options.open_tracking),
            ];
            if let Some((field, _)) = needs.iter().find(|(_, on)| *on) {
                return Err(RequestError::new(
                    format!("tracking_options.{field}"),
                    "needs a tracking domain and signing keys in the renderer's configuration",
                )
                .into());
            }
            if template.uses_unsubscribe_url() {
                return Err(TemplateError::new(
                    template.name(),
                    None,
                    None,
                    "uses `unsubscribe_url`, which needs a tracking domain and signing keys \
                     in the renderer's configuration",
                )
                .into());
            }
        }
        let tracking = Arc::new(MessageTracking::new(MessageTrackingInput {
            config: tracking,
            company_id: request.company_id().as_str(),
            message_id: request.message_id().as_str(),
            click_tracking: options.click_tracking,
            open_tracking: options.open_tracking,
            utm: utm_parameters(options, &vars)?,
            exclusions: &options.link_exclusions,
            template: &template,
        }));
        Ok(Self {
            warnings: template
                .warnings()
                .iter()
                .map(ToString::to_string)
                .collect(),
            tracking,
            vars,
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
        self.render_with(recipient, properties, None)
    }

    /// Renders one recipient as [`render`](Self::render) does, byte for
    /// byte, and notes every read of the context in `recorder`.
    pub fn render_audited(
        &self,
        recipient: &RenderRecipient,
        properties: Option<&Arc<serde_json::Value>>,
        recorder: &Arc<AccessRecorder>,
    ) -> Artifact {
        self.render_with(recipient, properties, Some(recorder))
    }

    fn render_with(
        &self,
        recipient: &RenderRecipient,
        properties: Option<&Arc<serde_json::Value>>,
        audit: Option<&Arc<AccessRecorder>>,
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
                let rendered = match self.request.channel_settings() {
                    ChannelSettings::Email(settings) => {
                        self.render_email(settings, recipient, properties, audit)
                    }
                    ChannelSettings::Sms(_) => {
                        let ctx = self.context(recipient, properties, Default::default(), audit);
                        self.render_sms(&ctx, audit)
                    }
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

    fn context(
        &self,
        recipient: &RenderRecipient,
        properties: &Arc<serde_json::Value>,
        finishing: FinishingVars,
        audit: Option<&Arc<AccessRecorder>>,
    ) -> Value {
        match audit {
            None => recipient_context(&self.vars, recipient, properties, finishing),
            Some(recorder) => {
                audited_recipient_context(&self.vars, recipient, properties, finishing, recorder)
            }
        }
    }

    fn render_email(
        &self,
        settings: &EmailSettings,
        recipient: &RenderRecipient,
        properties: &Arc<serde_json::Value>,
        audit: Option<&Arc<AccessRecorder>>,
    ) -> Result<Outcome, Stop> {
        let tracking = Arc::new(self.tracking.for_recipient(recipient));
        let finishing = FinishingVars {
            unsubscribe_url: tracking.unsubscribe_url().map(Value::from),
            tracking: Some(Value::from_dyn_object(tracking.clone())),
        };
        let ctx = &self.context(recipient, properties, finishing, audit);
        let subject = self.render_part(PartName::Subject, ctx, audit)?;
        let preheader = if self.template.has_part(PartName::Preheader) {
            Some(finish::headers::one_line(&self.render_part(
                PartName::Preheader,
                ctx,
                audit,
            )?))
        } else {
            None
        };
        tracking.set_top(preheader.as_deref());
        let html = self.render_part(PartName::Html, ctx, audit)?;
        let text = if self.template.has_part(PartName::Text) {
            self.render_part(PartName::Text, ctx, audit)?
        } else {
            finish::text::html_to_text(&html)
        };
        let (links, recorded_warnings) = tracking.finish();
        let mut warnings = self.warnings.clone();
        warnings.extend(recorded_warnings);
        Ok(Outcome::Email(EmailArtifact {
            subject: finish::headers::one_line(&subject),
            from: self.from.clone(),
            reply_to: settings.reply_to_email.as_ref().map(|a| a.to_string()),
            headers: tracking.unsubscribe_headers().into_iter().collect(),
            html,
            text,
            links,
            warnings,
        }))
    }

    fn render_sms(
        &self,
        ctx: &Value,
        audit: Option<&Arc<AccessRecorder>>,
    ) -> Result<Outcome, Stop> {
        let body = self.render_part(PartName::Sms, ctx, audit)?;
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
    fn render_part(
        &self,
        part: PartName,
        ctx: &Value,
        audit: Option<&Arc<AccessRecorder>>,
    ) -> Result<String, Stop> {
        if let Some(recorder) = audit {
            recorder.enter(part);
        }
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

/// The request's UTM parameters, rendered once for the message. A value
/// that renders empty adds no parameter.
fn utm_parameters(
    options: &TrackingOptions,
    vars: &RequestVars,
) -> Result<Vec<(String, String)>, RequestError> {
    let ctx = vars.message_context();
    let mut parameters = Vec::with_capacity(options.utm.len());
    for (key, source) in &options.utm {
        let value = crate::template::render_value(source, ctx.clone())
            .map_err(|message| RequestError::new(format!("tracking_options.utm.{key}"), message))?;
        let value = finish::headers::one_line(&value);
        if !value.is_empty() {
            parameters.push((TrackingOptions::parameter_name(key), value));
        }
    }
    Ok(parameters)
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
