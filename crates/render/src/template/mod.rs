//! Templates: bundles of Jinja parts per channel, compiled once into a
//! sandboxed environment and cached.

pub mod analysis;
pub mod authoring;
mod cache;
mod check;
mod env;
pub mod escape;
pub mod filters;
mod folder;
pub(crate) mod links;
mod projection;

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use minijinja::Environment;
use serde::{Deserialize, Serialize};

pub use analysis::{ProfileProjection, Read};
pub use cache::{TemplateCache, TemplateKey};
pub use check::{TemplateCheck, check};
pub use env::{GLOBALS, TESTS, allowed_filters};
pub use folder::{MANIFEST, TemplateFolder};
pub use links::{CompileWarning, LinkSite, LinkTarget};

/// The channel a message goes out on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Email,
    Sms,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Sms => "sms",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One part of a template bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PartName {
    Subject,
    Preheader,
    Html,
    Text,
    Sms,
}

impl PartName {
    pub const ALL: [PartName; 5] = [
        Self::Subject,
        Self::Preheader,
        Self::Html,
        Self::Text,
        Self::Sms,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Subject => "subject",
            Self::Preheader => "preheader",
            Self::Html => "html",
            Self::Text => "text",
            Self::Sms => "sms",
        }
    }

    /// Parts whose output is HTML, and so is auto-escaped. The preheader is
    /// placed inside the HTML body.
    pub fn is_html(self) -> bool {
        matches!(self, Self::Html | Self::Preheader)
    }

    pub(crate) fn from_template_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|part| part.as_str() == name)
    }

    fn required_for(self, channel: Channel) -> bool {
        matches!(
            (channel, self),
            (Channel::Email, Self::Subject | Self::Html) | (Channel::Sms, Self::Sms)
        )
    }

    fn allowed_for(self, channel: Channel) -> bool {
        match channel {
            Channel::Email => self != Self::Sms,
            Channel::Sms => self == Self::Sms,
        }
    }
}

impl fmt::Display for PartName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a render does when a template reads data the recipient does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MissingData {
    /// Missing values render as empty, and `profile.location.city` is empty
    /// when `location` is missing.
    #[default]
    Empty,
    /// The recipient is skipped, with the missing value named as the reason.
    Skip,
    /// The recipient gets an error artifact.
    Fail,
}

/// The source of a template: its parts and its missing-data policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateParts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preheader: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sms: Option<String>,
    /// The HTML part authored in MJML, compiled to HTML once, at template
    /// compile time; instead of `html`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mjml: Option<String>,
    /// Inline the `<style>` rules of the HTML part into `style` attributes,
    /// at template compile time.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub inline_css: bool,
    #[serde(default)]
    pub missing_data: MissingData,
}

impl TemplateParts {
    pub fn get(&self, part: PartName) -> Option<&str> {
        match part {
            PartName::Subject => self.subject.as_deref(),
            PartName::Preheader => self.preheader.as_deref(),
            PartName::Html => self.html.as_deref(),
            PartName::Text => self.text.as_deref(),
            PartName::Sms => self.sms.as_deref(),
        }
    }

    pub fn set(&mut self, part: PartName, source: String) {
        let slot = match part {
            PartName::Subject => &mut self.subject,
            PartName::Preheader => &mut self.preheader,
            PartName::Html => &mut self.html,
            PartName::Text => &mut self.text,
            PartName::Sms => &mut self.sms,
        };
        *slot = Some(source);
    }

    /// The parts present, in a fixed order.
    pub fn iter(&self) -> impl Iterator<Item = (PartName, &str)> {
        PartName::ALL
            .into_iter()
            .filter_map(|part| self.get(part).map(|source| (part, source)))
    }

    /// The parts as their author wrote them: the HTML part is its MJML
    /// source when it has one, so lines point into what the author edits.
    pub fn authored(&self) -> impl Iterator<Item = (PartName, &str)> {
        PartName::ALL.into_iter().filter_map(|part| match part {
            PartName::Html => self
                .mjml
                .as_deref()
                .or(self.html.as_deref())
                .map(|source| (part, source)),
            _ => self.get(part).map(|source| (part, source)),
        })
    }

    /// Checks that the bundle has the parts `channel` needs and no others.
    pub fn check_channel(&self, channel: Channel) -> Result<(), String> {
        if let Some((part, _)) = self.iter().find(|(part, _)| !part.allowed_for(channel)) {
            return Err(format!("part `{part}` does not apply to channel {channel}"));
        }
        if self.mjml.is_some() {
            if channel != Channel::Email {
                return Err(format!("part `mjml` does not apply to channel {channel}"));
            }
            if self.html.is_some() {
                return Err("give the HTML part as `html` or as `mjml`, not both".into());
            }
        }
        let has = |part: PartName| {
            self.get(part).is_some() || (part == PartName::Html && self.mjml.is_some())
        };
        match PartName::ALL
            .into_iter()
            .find(|part| part.required_for(channel) && !has(*part))
        {
            Some(part) => Err(format!("channel {channel} needs a `{part}` part")),
            None => Ok(()),
        }
    }

    /// Hash of the content, for caching bundles that carry no version.
    pub fn content_hash(&self) -> u64 {
        let mut hasher = std::hash::DefaultHasher::new();
        self.hash(&mut hasher);
        hasher.finish()
    }
}

/// Per-render budgets, so that a runaway template fails one recipient fast.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RenderLimits {
    /// minijinja fuel: roughly one unit per instruction plus one per 64
    /// bytes produced, so it also bounds how much a runaway part writes
    /// (at most `fuel × 64` bytes) before its output is checked against
    /// `max_output_bytes`.
    pub fuel: u64,
    /// Deepest nesting of macro calls, includes and loops.
    pub recursion: usize,
    /// Largest output of one part, in bytes.
    pub max_output_bytes: usize,
}

impl Default for RenderLimits {
    fn default() -> Self {
        Self {
            fuel: 1_000_000,
            recursion: 64,
            max_output_bytes: 2 * 1024 * 1024,
        }
    }
}

/// A template that failed to compile: which, which part, which line, why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct TemplateError {
    pub template: String,
    pub part: Option<PartName>,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl TemplateError {
    pub(crate) fn new(
        template: &str,
        part: Option<PartName>,
        line: Option<usize>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            template: template.to_owned(),
            part,
            line,
            column: None,
            message: message.into(),
        }
    }

    pub(crate) fn at_column(mut self, column: usize) -> Self {
        self.column = Some(column);
        self
    }
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "template {:?}", self.template)?;
        if let Some(part) = self.part {
            write!(f, " part {part}")?;
        }
        if let Some(line) = self.line {
            write!(f, " line {line}")?;
        }
        if let Some(column) = self.column {
            write!(f, " column {column}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// A bundle compiled into its own sandboxed environment. Each bundle gets
/// its own environment so that `{% include %}` can never reach another
/// tenant's template.
#[derive(Debug)]
pub struct CompiledTemplate {
    name: Arc<str>,
    /// The stored version this was compiled from, if it has one: fixed
    /// links are resolved against it.
    version: Option<u32>,
    channel: Channel,
    missing_data: MissingData,
    max_output_bytes: usize,
    env: Environment<'static>,
    links: Vec<LinkSite>,
    warnings: Vec<CompileWarning>,
    uses_unsubscribe_url: bool,
    /// What each part may read, from its syntax tree.
    reads: Vec<(PartName, Vec<Read>)>,
    profile: ProfileProjection,
}

impl CompiledTemplate {
    /// Compiles every part of `parts`, named `name` in errors.
    pub fn compile(
        name: &str,
        channel: Channel,
        parts: &TemplateParts,
        limits: &RenderLimits,
    ) -> Result<Self, TemplateError> {
        parts
            .check_channel(channel)
            .map_err(|message| TemplateError::new(name, None, None, message))?;
        let mut reads = Vec::new();
        let mut profile = ProfileProjection::Keys(Default::default());
        let mut warnings = Vec::new();
        // Reported after the checks below, which explain reserved names better.
        let mut unknown_name = None;
        for (part, source) in parts.authored() {
            let error = |e: analysis::PartError| {
                TemplateError::new(name, Some(part), Some(e.line), e.message).at_column(e.column)
            };
            let analysis = analysis::analyze(part, source).map_err(error)?;
            if unknown_name.is_none() {
                unknown_name = analysis.errors.into_iter().next().map(error);
            }
            warnings.extend(analysis.warnings);
            profile = profile.union(&analysis.profile);
            reads.push((part, analysis.reads));
        }
        let mut env = env::base_environment(limits, parts.missing_data);
        let mut scan = links::LinkScan::default();
        let mut uses_unsubscribe_url = false;
        let html = authored_html(parts)
            .map_err(|e| TemplateError::new(name, Some(PartName::Html), e.line, e.message))?;
        let sources = PartName::ALL.into_iter().filter_map(|part| match part {
            PartName::Html => html.as_deref().map(|source| (part, source)),
            _ => parts.get(part).map(|source| (part, source)),
        });
        for (part, source) in sources {
            let error = |line, message| TemplateError::new(name, Some(part), line, message);
            let compile_error = |e: minijinja::Error| error(e.line(), describe(&e));
            let variables = env
                .template_from_str(source)
                .map_err(compile_error)?
                .undeclared_variables(false);
            if let Some(reserved) = variables
                .iter()
                .find(|name| name.starts_with(links::RESERVED_PREFIX))
                .map(String::as_str)
                .or_else(|| {
                    source
                        .contains(links::TRACK_FILTER)
                        .then_some(links::TRACK_FILTER)
                })
            {
                return Err(error(
                    None,
                    format!("`{reserved}` is reserved for link tracking"),
                ));
            }
            uses_unsubscribe_url |= variables.contains("unsubscribe_url");
            let source = match part {
                PartName::Html => scan.rewrite_html(source),
                PartName::Text => scan.rewrite_text(source),
                _ => source.to_owned(),
            };
            env.add_template_owned(part.as_str(), source)
                .map_err(compile_error)?;
        }
        if let Some(error) = unknown_name {
            return Err(error);
        }
        Ok(Self {
            name: Arc::from(name),
            version: None,
            channel,
            missing_data: parts.missing_data,
            max_output_bytes: limits.max_output_bytes,
            env,
            links: scan.sites,
            warnings: {
                warnings.extend(scan.warnings);
                warnings
            },
            uses_unsubscribe_url,
            reads,
            profile,
        })
    }

    /// Marks this as compiled from stored version `version`, so that its
    /// fixed links are tracked by number rather than signed one by one.
    pub fn with_version(mut self, version: Option<u32>) -> Self {
        self.version = version;
        self
    }

    pub fn version(&self) -> Option<u32> {
        self.version
    }

    /// Every link site in the HTML and text parts; a site's index is its
    /// number in tracked links and click tokens.
    pub fn links(&self) -> &[LinkSite] {
        &self.links
    }

    /// The URL of fixed link `index`, for resolving a click on it.
    pub fn fixed_link(&self, index: u32) -> Option<&str> {
        match &self.links.get(usize::try_from(index).ok()?)?.target {
            LinkTarget::Fixed(url) => Some(url),
            LinkTarget::Expression => None,
        }
    }

    /// What compiling found that the author should know (untracked links).
    pub fn warnings(&self) -> &[CompileWarning] {
        &self.warnings
    }

    /// The data paths `part` may read, by line.
    pub fn reads(&self, part: PartName) -> &[Read] {
        self.reads
            .iter()
            .find(|(p, _)| *p == part)
            .map_or(&[], |(_, reads)| reads)
    }

    /// The profile keys a render of this template can read.
    pub fn profile_projection(&self) -> &ProfileProjection {
        &self.profile
    }

    pub fn uses_unsubscribe_url(&self) -> bool {
        self.uses_unsubscribe_url
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn channel(&self) -> Channel {
        self.channel
    }

    pub fn missing_data(&self) -> MissingData {
        self.missing_data
    }

    pub fn has_part(&self, part: PartName) -> bool {
        self.env.get_template(part.as_str()).is_ok()
    }

    pub(crate) fn max_output_bytes(&self) -> usize {
        self.max_output_bytes
    }

    pub(crate) fn part(&self, part: PartName) -> Option<minijinja::Template<'_, '_>> {
        self.env.get_template(part.as_str()).ok()
    }
}

/// The HTML part as plain Jinja-HTML: compiled from MJML and with its CSS
/// inlined, when the bundle asks for either.
fn authored_html(
    parts: &TemplateParts,
) -> Result<Option<std::borrow::Cow<'_, str>>, authoring::AuthoringError> {
    use std::borrow::Cow;
    let html = match (&parts.mjml, &parts.html) {
        (Some(mjml), _) => Cow::Owned(authoring::mjml_to_html(mjml)?),
        (None, Some(html)) => Cow::Borrowed(html.as_str()),
        (None, None) => return Ok(None),
    };
    Ok(Some(if parts.inline_css {
        Cow::Owned(authoring::inline_css(&html)?)
    } else {
        html
    }))
}

/// The environment for one-off values such as UTM parameters.
fn value_environment() -> &'static Environment<'static> {
    static ENV: std::sync::OnceLock<Environment<'static>> = std::sync::OnceLock::new();
    ENV.get_or_init(|| env::base_environment(&RenderLimits::default(), MissingData::Empty))
}

/// Checks that `source` compiles, for a value rendered later.
pub(crate) fn check_syntax(source: &str) -> Result<(), String> {
    value_environment()
        .template_from_str(source)
        .map(drop)
        .map_err(|error| describe_at_line(&error))
}

/// Renders a one-off value (a UTM parameter) against `ctx`.
pub(crate) fn render_value(source: &str, ctx: minijinja::Value) -> Result<String, String> {
    value_environment()
        .render_str(source, ctx)
        .map_err(|error| describe_at_line(&error))
}

fn describe_at_line(error: &minijinja::Error) -> String {
    match error.line() {
        Some(line) => format!("line {line}: {}", describe(error)),
        None => describe(error),
    }
}

/// minijinja's error text without the location it appends, which is
/// reported separately.
pub(crate) fn describe(error: &minijinja::Error) -> String {
    match error.detail() {
        Some(detail) => detail.to_owned(),
        None => error.kind().to_string(),
    }
}

#[cfg(test)]
mod tests;
