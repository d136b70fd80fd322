//! `templates check`: everything wrong with a bundle at once, and what it
//! reads, without rendering it.

use super::analysis::{self, ProfileProjection, Read};
use super::{
    Channel, CompileWarning, CompiledTemplate, PartName, RenderLimits, TemplateError, TemplateParts,
};

/// What checking one bundle found.
#[derive(Debug, Clone)]
pub struct TemplateCheck {
    pub channel: Channel,
    /// Every error the checks can find before the first one stops them:
    /// syntax errors and unknown filters, tests and functions of every part.
    pub errors: Vec<TemplateError>,
    pub warnings: Vec<CompileWarning>,
    /// What each part may read, by line.
    pub reads: Vec<(PartName, Vec<Read>)>,
    pub profile: ProfileProjection,
}

/// Checks bundle `name`. The channel is the one its parts are for: SMS when
/// it has an `sms` part, email otherwise.
pub fn check(name: &str, parts: &TemplateParts, limits: &RenderLimits) -> TemplateCheck {
    let channel = if parts.sms.is_some() {
        Channel::Sms
    } else {
        Channel::Email
    };
    let mut check = TemplateCheck {
        channel,
        errors: Vec::new(),
        warnings: Vec::new(),
        reads: Vec::new(),
        profile: ProfileProjection::Keys(Default::default()),
    };
    if let Err(message) = parts.check_channel(channel) {
        check
            .errors
            .push(TemplateError::new(name, None, None, message));
    }
    for (part, source) in parts.authored() {
        let error = |e: analysis::PartError| {
            TemplateError::new(name, Some(part), Some(e.line), e.message).at_column(e.column)
        };
        match analysis::analyze(part, source) {
            Ok(found) => {
                check.errors.extend(found.errors.into_iter().map(error));
                check.warnings.extend(found.warnings);
                check.profile = check.profile.union(&found.profile);
                check.reads.push((part, found.reads));
            }
            Err(syntax) => check.errors.push(error(syntax)),
        }
    }
    if check.errors.is_empty() {
        // What only a full compile finds: MJML and CSS errors, reserved
        // names, and the link warnings.
        match CompiledTemplate::compile(name, channel, parts, limits) {
            Ok(compiled) => check.warnings = compiled.warnings().to_vec(),
            Err(error) => check.errors.push(error),
        }
    }
    check
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(subject: &str, html: &str) -> TemplateParts {
        TemplateParts {
            subject: Some(subject.into()),
            html: Some(html.into()),
            ..TemplateParts::default()
        }
    }

    #[test]
    fn every_part_is_checked_and_every_error_reported() {
        let found = check(
            "news",
            &parts(
                "Hi {{ profile.first_name | shout }}",
                "<p>\n{{ profile.x }\n</p>",
            ),
            &RenderLimits::default(),
        );
        let errors: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(
            errors[0],
            "template \"news\" part subject line 1 column 28: unknown filter `shout`"
        );
        assert!(
            errors[1].starts_with("template \"news\" part html line 2 column 14: "),
            "{errors:?}"
        );
    }

    #[test]
    fn a_clean_bundle_has_its_reads_and_link_warnings() {
        let found = check(
            "news",
            &parts(
                "Hi {{ profil.first_name }}",
                "<a href=\"ftp://files.example/x\">x</a>{{ profile.location.city }}",
            ),
            &RenderLimits::default(),
        );
        assert!(found.errors.is_empty(), "{:?}", found.errors);
        assert_eq!(found.channel, Channel::Email);
        let warnings: Vec<String> = found.warnings.iter().map(ToString::to_string).collect();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("`profil` is not in the context"))
        );
        assert!(warnings.iter().any(|w| w.contains("not http(s)")));
        assert_eq!(
            found.reads,
            [
                (PartName::Subject, vec![]),
                (
                    PartName::Html,
                    vec![Read {
                        path: "profile.location.city".into(),
                        line: 1
                    }]
                )
            ]
        );
    }

    #[test]
    fn an_sms_bundle_is_checked_for_the_sms_channel() {
        let found = check(
            "sms",
            &TemplateParts {
                sms: Some("Hi {{ profile.first_name }}".into()),
                subject: Some("stray".into()),
                ..TemplateParts::default()
            },
            &RenderLimits::default(),
        );
        assert_eq!(found.channel, Channel::Sms);
        assert_eq!(
            found.errors[0].to_string(),
            "template \"sms\": part `subject` does not apply to channel sms"
        );
    }
}
