//! `artifact render`: renders one request from files, the way a worker would.

use std::collections::HashMap;
use std::fs;
use std::io::{self, BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use artifact_render::request::{ProfileId, TemplateId, TemplateRef};
use artifact_render::template::TemplateFolder;
use artifact_render::{
    Artifact, Outcome, PreparedRequest, RenderRequest, RequestLimits, TemplateCache, TemplateKey,
};
use serde::Deserialize;

use crate::config::Config;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The render request (JSON).
    #[arg(long)]
    request: PathBuf,
    /// Profiles, one JSON object a line: {"profile_id": "...", "properties": {...}}.
    #[arg(long)]
    profiles: PathBuf,
    /// Folder of templates: <template_id>/{subject,html,text,preheader,sms}.jinja.
    #[arg(long)]
    templates: PathBuf,
    /// Output folder for <recipient_id>.json (and .eml), or `-` for NDJSON on stdout.
    #[arg(long)]
    out: PathBuf,
    /// The renderer's configuration file (tracking domain and keys); the
    /// ARTIFACT_* environment variables override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Most recipients one request may carry.
    #[arg(long, default_value_t = RequestLimits::default().max_recipients)]
    max_recipients: usize,
}

/// Reads the request at `path` and binds it to its template: inline, or
/// from `<templates>/<template_id>/`.
pub(crate) fn prepare(
    path: &Path,
    templates: &Path,
    limits: &RequestLimits,
    config: &Config,
) -> Result<PreparedRequest> {
    let bytes =
        fs::read(path).with_context(|| format!("cannot read request {}", path.display()))?;
    let request = RenderRequest::from_json(&bytes, limits)
        .with_context(|| format!("invalid request {}", path.display()))?;
    let (template_id, folder) = match request.channel_settings().template() {
        TemplateRef::Inline(parts) => (
            None,
            TemplateFolder {
                parts: parts.clone(),
                version: None,
            },
        ),
        TemplateRef::Stored { id, version } => {
            (Some(id.clone()), load_template(templates, id, *version)?)
        }
    };
    let cache = TemplateCache::new(1, Default::default());
    let key = TemplateKey::new(
        request.company_id().clone(),
        template_id,
        folder.version,
        &folder.parts,
    );
    let template =
        cache.get_or_compile(&key, request.channel_settings().channel(), &folder.parts)?;
    Ok(PreparedRequest::new(
        Arc::new(request),
        template,
        config.tracking.clone(),
    )?)
}

pub fn run(args: &Args) -> Result<()> {
    let started = Instant::now();
    let config = Config::load(args.config.as_deref(), |name| std::env::var(name).ok())?;
    let limits = RequestLimits {
        max_recipients: args.max_recipients,
        ..RequestLimits::default()
    };
    let profiles = read_profiles(&args.profiles)?;
    let prepared = prepare(&args.request, &args.templates, &limits, &config)?;

    let mut sink = Sink::open(&args.out)?;
    let mut tally = Tally::default();
    for recipient in prepared.request().render_recipients() {
        let artifact = prepared.render(recipient, profiles.get(&recipient.profile_id));
        tally.count(&artifact);
        let eml = prepared.eml(&artifact);
        sink.write(&artifact, eml.as_deref())?;
    }
    sink.finish()?;
    eprintln!(
        "rendered {}, skipped {}, failed {} in {:.1} ms",
        tally.rendered,
        tally.skipped,
        tally.failed,
        started.elapsed().as_secs_f64() * 1000.0
    );
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileLine {
    profile_id: ProfileId,
    properties: serde_json::Map<String, serde_json::Value>,
}

pub(crate) fn read_profiles(path: &Path) -> Result<HashMap<ProfileId, Arc<serde_json::Value>>> {
    let file =
        fs::File::open(path).with_context(|| format!("cannot read profiles {}", path.display()))?;
    let mut profiles = HashMap::new();
    for (index, line) in io::BufReader::new(file).lines().enumerate() {
        let line_no = index + 1;
        let line =
            line.with_context(|| format!("cannot read {} line {line_no}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let profile: ProfileLine = serde_json::from_str(&line)
            .with_context(|| format!("{} line {line_no}: not a profile", path.display()))?;
        let id = profile.profile_id.clone();
        let properties = Arc::new(serde_json::Value::Object(profile.properties));
        if profiles.insert(profile.profile_id, properties).is_some() {
            bail!(
                "{} line {line_no}: profile {id} appears twice",
                path.display()
            );
        }
    }
    Ok(profiles)
}

/// Reads `<root>/<id>/`: one `<part>.jinja` file per part, and an optional
/// `template.json` with the version and missing-data policy.
fn load_template(root: &Path, id: &TemplateId, version: Option<u32>) -> Result<TemplateFolder> {
    let dir = root.join(id.as_str());
    if !dir.is_dir() {
        bail!("template {id:?} not found: no folder {}", dir.display());
    }
    let folder = super::templates::read_folder(&dir).with_context(|| format!("template {id:?}"))?;
    if let (Some(wanted), Some(have)) = (version, folder.version)
        && wanted != have
    {
        bail!(
            "template {id:?} version {wanted} not found ({} holds version {have})",
            dir.display()
        );
    }
    Ok(folder)
}

#[derive(Default)]
struct Tally {
    rendered: usize,
    skipped: usize,
    failed: usize,
}

impl Tally {
    fn count(&mut self, artifact: &Artifact) {
        match artifact.outcome {
            Outcome::Email(_) | Outcome::Sms(_) => self.rendered += 1,
            Outcome::Skipped(_) => self.skipped += 1,
            Outcome::Error(_) => self.failed += 1,
        }
    }
}

/// Where artifacts go: files in a folder, or NDJSON on stdout.
enum Sink {
    Folder(PathBuf),
    Stdout(BufWriter<io::StdoutLock<'static>>),
}

impl Sink {
    fn open(out: &Path) -> Result<Self> {
        if out == Path::new("-") {
            return Ok(Self::Stdout(BufWriter::new(io::stdout().lock())));
        }
        fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
        Ok(Self::Folder(out.to_owned()))
    }

    fn write(&mut self, artifact: &Artifact, eml: Option<&str>) -> Result<()> {
        match self {
            Self::Stdout(out) => {
                serde_json::to_writer(&mut *out, artifact)?;
                out.write_all(b"\n")?;
            }
            Self::Folder(dir) => {
                let stem = file_stem(artifact.recipient_id.as_str());
                let path = dir.join(format!("{stem}.json"));
                let mut json = serde_json::to_vec_pretty(artifact)?;
                json.push(b'\n');
                fs::write(&path, json)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                if let Some(eml) = eml {
                    let path = dir.join(format!("{stem}.eml"));
                    fs::write(&path, eml)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                }
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<()> {
        if let Self::Stdout(mut out) = self {
            out.flush()?;
        }
        Ok(())
    }
}

/// Longest stem written, leaving room for the extension within the 255-byte
/// file-name limit of common file systems.
const MAX_STEM: usize = 200;

/// A file name for a recipient id: ids may hold any printable character, so
/// everything outside `[A-Za-z0-9_-]` (and a leading `.`) is percent-encoded.
/// A stem that would be too long is cut and made unique again with a hash of
/// the whole id.
fn file_stem(id: &str) -> String {
    let mut stem = String::with_capacity(id.len());
    for (index, byte) in id.bytes().enumerate() {
        let keep = byte.is_ascii_alphanumeric()
            || byte == b'_'
            || byte == b'-'
            || (byte == b'.' && index > 0);
        if keep {
            stem.push(byte as char);
        } else {
            stem.push_str(&format!("%{byte:02X}"));
        }
    }
    if stem.len() > MAX_STEM {
        let mut hasher = std::hash::DefaultHasher::new();
        std::hash::Hash::hash(id, &mut hasher);
        // The stem is ASCII, so any byte offset is a char boundary.
        stem.truncate(MAX_STEM - 17);
        stem.push_str(&format!("~{:016x}", std::hash::Hasher::finish(&hasher)));
    }
    stem
}

#[cfg(test)]
mod tests {
    use super::file_stem;

    #[test]
    fn file_stems_cannot_leave_the_folder() {
        assert_eq!(file_stem("r-1_a.b"), "r-1_a.b");
        assert_eq!(file_stem("../x/y"), "%2E.%2Fx%2Fy");
        assert_eq!(file_stem("a b"), "a%20b");
    }

    #[test]
    fn long_ids_get_short_distinct_stems() {
        let long = "a".repeat(256);
        let longer = format!("{long}b");
        assert_eq!(file_stem(&long).len(), 200);
        assert_ne!(file_stem(&long), file_stem(&longer));
        assert_eq!(file_stem(&"/".repeat(256)).len(), 200);
    }
}
