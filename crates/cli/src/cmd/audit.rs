//! `artifact audit`: renders requests from files with the instrumented
//! context and reports what each template read, the minimal payload, and the
//! profile fields nobody reads.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use artifact_render::RequestLimits;
use artifact_render::audit::Audit;
use artifact_render::context::audit::AccessRecorder;

use super::render::{prepare, read_profiles};
use super::templates::Format;
use crate::config::Config;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Render requests (JSON); give `--request` once per request.
    #[arg(long, required = true)]
    request: Vec<PathBuf>,
    /// Profiles, one JSON object a line: {"profile_id": "...", "properties": {...}}.
    #[arg(long)]
    profiles: PathBuf,
    /// Folder of templates: <template_id>/{subject,html,text,preheader,sms}.jinja.
    #[arg(long)]
    templates: PathBuf,
    /// The renderer's configuration file (tracking domain and keys).
    #[arg(long)]
    config: Option<PathBuf>,
    /// `text` for people, `json` for tools.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

pub fn run(args: &Args) -> Result<()> {
    let config = Config::load(args.config.as_deref(), |name| std::env::var(name).ok())?;
    let limits = RequestLimits {
        max_recipients: usize::MAX,
        ..RequestLimits::default()
    };
    let profiles = read_profiles(&args.profiles)?;
    let mut audit = Audit::default();
    let recorder = Arc::new(AccessRecorder::default());
    let mut missing = 0;
    for path in &args.request {
        let prepared = prepare(path, &args.templates, &limits, &config)?;
        for recipient in prepared.request().render_recipients() {
            let Some(profile) = profiles.get(&recipient.profile_id) else {
                missing += 1;
                continue;
            };
            prepared.render_audited(recipient, Some(profile), &recorder);
            audit.add_render(prepared.template(), &recorder);
            audit.add_profile(recipient.profile_id.as_str(), profile);
        }
    }
    if missing > 0 {
        eprintln!("{missing} recipient(s) left out: their profiles are not in the profiles file");
    }
    let report = audit.report();
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Format::Text => print!("{}", report.to_text()),
    }
    Ok(())
}
