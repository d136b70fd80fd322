//! The folder layout of a template bundle, without the folder: one
//! `<part>.jinja` file per part and an optional `template.json` manifest.
//! Whoever reads the folder (the CLI, a store seeding itself) hands the
//! files' names and contents here.

use serde::Deserialize;

use super::{MissingData, PartName, TemplateParts};

/// Name of the optional manifest beside the parts.
pub const MANIFEST: &str = "template.json";
/// The HTML part authored in MJML.
pub const MJML: &str = "html.mjml";

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Manifest {
    version: Option<u32>,
    #[serde(default)]
    missing_data: MissingData,
    #[serde(default)]
    inline_css: bool,
}

/// A bundle read from its folder, and the version its manifest declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateFolder {
    pub parts: TemplateParts,
    pub version: Option<u32>,
}

impl TemplateFolder {
    /// Builds a bundle from `(file name, contents)` pairs; any other file
    /// is an error, so a misnamed part (`body.jinja`) is never ignored.
    pub fn from_files<'a>(
        files: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, String> {
        let mut parts = TemplateParts::default();
        let mut manifest = Manifest::default();
        for (name, contents) in files {
            if name == MJML {
                parts.mjml = Some(contents.to_owned());
                continue;
            }
            if name == MANIFEST {
                manifest = serde_json::from_str(contents)
                    .map_err(|error| format!("{MANIFEST}: {error}"))?;
                continue;
            }
            let part = name
                .strip_suffix(".jinja")
                .and_then(|stem| PartName::ALL.into_iter().find(|p| p.as_str() == stem))
                .ok_or_else(|| {
                    format!(
                        "unexpected file {name} (a template folder holds subject.jinja, \
                         preheader.jinja, html.jinja or {MJML}, text.jinja, sms.jinja \
                         and {MANIFEST})"
                    )
                })?;
            parts.set(part, contents.to_owned());
        }
        parts.missing_data = manifest.missing_data;
        parts.inline_css = manifest.inline_css;
        Ok(Self {
            parts,
            version: manifest.version,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_parts_and_manifest() {
        let folder = TemplateFolder::from_files([
            ("subject.jinja", "Hi"),
            ("html.jinja", "<p>Hi</p>"),
            (MANIFEST, r#"{"version": 3, "missing_data": "skip"}"#),
        ])
        .unwrap();
        assert_eq!(folder.version, Some(3));
        assert_eq!(folder.parts.subject.as_deref(), Some("Hi"));
        assert_eq!(folder.parts.missing_data, MissingData::Skip);
    }

    #[test]
    fn reads_an_mjml_part_and_the_inline_css_flag() {
        let folder = TemplateFolder::from_files([
            ("subject.jinja", "Hi"),
            (MJML, "<mjml><mj-body></mj-body></mjml>"),
            (MANIFEST, r#"{"inline_css": true}"#),
        ])
        .unwrap();
        assert_eq!(
            folder.parts.mjml.as_deref(),
            Some("<mjml><mj-body></mj-body></mjml>")
        );
        assert!(folder.parts.inline_css);
        assert_eq!(
            folder.parts.check_channel(super::super::Channel::Email),
            Ok(())
        );
        let mut both = folder.parts.clone();
        both.html = Some("<p>x</p>".into());
        assert_eq!(
            both.check_channel(super::super::Channel::Email),
            Err("give the HTML part as `html` or as `mjml`, not both".into())
        );
    }

    #[test]
    fn rejects_stray_files_and_bad_manifests() {
        let error = TemplateFolder::from_files([("body.jinja", "x")]).unwrap_err();
        assert!(error.starts_with("unexpected file body.jinja"), "{error}");
        let error = TemplateFolder::from_files([(MANIFEST, r#"{"missing": "skip"}"#)]).unwrap_err();
        assert!(
            error.starts_with("template.json: unknown field `missing`"),
            "{error}"
        );
    }
}
