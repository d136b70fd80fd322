//! `artifact canary verify`: pairs the canary lane's artifacts with
//! production's, reports what differs (terminal, JSON, an HTML page with
//! side-by-side diffs), and fails when unexpected differences pass the
//! allowed number, so it can gate a deploy.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use artifact_pipeline::canary::verify::{ArtifactDiff, DiffKind, Ignore, Verification, verify};
use similar::{ChangeTag, TextDiff};

use super::templates::Format;
use super::worker::LaneStore;
use crate::config::Config;
use crate::scaled::{Locations, Scaled};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Compare the canary lane with production, part by part. Exits 1 when
    /// unexpected differences (content, not whitespace, not noise) are more
    /// than --max-unexpected.
    Verify(VerifyArgs),
}

#[derive(Debug, clap::Args)]
struct VerifyArgs {
    /// The data dir of the `artifact serve` whose traffic was mirrored.
    #[arg(long, env = "ARTIFACT_DATA_DIR", default_value = "artifact-data")]
    data_dir: PathBuf,
    /// The scaled-out mode's lanes, in PostgreSQL (`--queue` and `--store`,
    /// as the workers were given), instead of `--data-dir`.
    #[command(flatten)]
    locations: Locations,
    /// `text` for people, `json` for tools.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Also write an HTML report with side-by-side diffs here.
    #[arg(long)]
    html: Option<PathBuf>,
    /// Unexpected differences allowed before the verdict fails. It also
    /// fails when nothing was compared or the canary gave up on a job.
    #[arg(long, default_value_t = 0)]
    max_unexpected: usize,
    /// Leave a part (`subject`, `html`, `links`, …) or a header
    /// (`header:X-Campaign`) out of the comparison. May be repeated.
    #[arg(long = "ignore", value_name = "RULE")]
    ignore: Vec<String>,
    /// POST the summary as JSON here when the verdict fails (http://).
    #[arg(long)]
    webhook: Option<String>,
    /// Write the figures as Prometheus text here, for a textfile collector.
    #[arg(long)]
    metrics_file: Option<PathBuf>,
}

/// Whether the canary passed.
pub enum Verdict {
    Pass,
    Fail,
}

pub fn run(args: &Args) -> Result<Verdict> {
    let Command::Verify(args) = &args.command;
    let ignore = args
        .ignore
        .iter()
        .map(|rule| Ignore::parse(rule))
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    let found = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(async {
            let env = |name: &str| std::env::var(name).ok();
            let scaled = Scaled::resolve(&args.locations, None, &Config::default(), env)?;
            let store = LaneStore::open(&args.data_dir, scaled.as_ref()).await?;
            verify(&*store.artifacts, &*store.mirror, &ignore)
                .await
                .context("cannot read the lanes")
        })?;
    let failed = verdict(&found, args.max_unexpected).is_err();
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&found)?),
        Format::Text => print!("{}", text_report(&found, args.max_unexpected)),
    }
    if let Some(path) = &args.html {
        std::fs::write(path, html_report(&found))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(path) = &args.metrics_file {
        std::fs::write(path, metrics(&found))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if failed && let Some(url) = &args.webhook {
        post_webhook(url, &found, args.max_unexpected)?;
    }
    Ok(if failed { Verdict::Fail } else { Verdict::Pass })
}

fn summary(found: &Verification, max_unexpected: usize) -> serde_json::Value {
    serde_json::json!({
        "pairs": found.pairs,
        "identical": found.identical,
        "unexpected": found.unexpected,
        "expected": found.expected,
        "by_part": found.by_part,
        "missing_production": found.missing_production.len(),
        "missing_canary": found.missing_canary.iter().map(|m| m.job.recipients.len()).sum::<usize>(),
        "max_unexpected": max_unexpected,
    })
}

fn post_webhook(url: &str, found: &Verification, max_unexpected: usize) -> Result<()> {
    if !url.starts_with("http://") {
        bail!("--webhook {url:?}: only http:// URLs are supported");
    }
    ureq::post(url)
        .send_json(summary(found, max_unexpected))
        .with_context(|| format!("cannot POST the verdict to {url}"))?;
    Ok(())
}

fn metrics(found: &Verification) -> String {
    let mut out = String::new();
    let gauge = |out: &mut String, name: &str, help: &str, value: usize| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
        );
    };
    gauge(
        &mut out,
        "artifact_canary_pairs",
        "Artifact pairs compared",
        found.pairs,
    );
    gauge(
        &mut out,
        "artifact_canary_identical",
        "Pairs with no difference",
        found.identical,
    );
    gauge(
        &mut out,
        "artifact_canary_unexpected",
        "Pairs with a content difference that is not noise",
        found.unexpected,
    );
    let _ = writeln!(
        out,
        "# HELP artifact_canary_differing Differing pairs by part\n\
         # TYPE artifact_canary_differing gauge"
    );
    for (part, count) in &found.by_part {
        let _ = writeln!(out, "artifact_canary_differing{{part=\"{part}\"}} {count}");
    }
    out
}

fn text_report(found: &Verification, max_unexpected: usize) -> String {
    let mut out = String::new();
    let control = if found.control_pairs > 0 {
        format!(" (a control copy for {})", found.control_pairs)
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "canary verify: {} pairs compared{control}",
        found.pairs
    );
    let _ = writeln!(out, "  identical              {}", found.identical);
    let _ = writeln!(
        out,
        "  differing              {} (unexpected {}, whitespace-only or noise {})",
        found.unexpected + found.expected,
        found.unexpected,
        found.expected
    );
    if !found.by_part.is_empty() {
        let parts: Vec<String> = found
            .by_part
            .iter()
            .map(|(p, n)| format!("{p} {n}"))
            .collect();
        let _ = writeln!(out, "  by part                {}", parts.join(", "));
    }
    let waiting: usize = found
        .missing_canary
        .iter()
        .filter(|m| m.abandoned.is_none())
        .map(|m| m.job.recipients.len())
        .sum();
    let _ = writeln!(out, "  missing on canary      {waiting} waiting");
    for missing in found
        .missing_canary
        .iter()
        .filter(|m| m.abandoned.is_some())
    {
        let _ = writeln!(
            out,
            "  given up on            {}/{} recipients {:?}: {}",
            missing.job.company_id,
            missing.job.request_id,
            missing.job.recipients,
            missing.abandoned.as_deref().unwrap_or_default()
        );
    }
    let _ = writeln!(
        out,
        "  missing on production  {}",
        found.missing_production.len()
    );
    for diff in found.diffs.iter().take(10) {
        write_diff(&mut out, diff);
    }
    if found.diffs.len() > 10 {
        let _ = writeln!(
            out,
            "\n… and {} more (see --format json or --html)",
            found.diffs.len() - 10
        );
    }
    let line = match verdict(found, max_unexpected) {
        Err(reason) => format!("FAIL: {reason}"),
        Ok(()) => format!(
            "pass: {} unexpected ≤ {max_unexpected} allowed",
            found.unexpected
        ),
    };
    let _ = writeln!(out, "\n{line}");
    out
}

/// Why the canary fails, if it does: unexpected differences past the
/// allowed number, jobs the canary gave up on (a candidate that crashes
/// renders nothing, and must not pass), or nothing compared at all.
fn verdict(found: &Verification, max_unexpected: usize) -> Result<(), String> {
    let abandoned = found
        .missing_canary
        .iter()
        .filter(|m| m.abandoned.is_some())
        .count();
    if found.unexpected > max_unexpected {
        Err(format!(
            "{} unexpected > {max_unexpected} allowed",
            found.unexpected
        ))
    } else if abandoned > 0 {
        Err(format!("the canary gave up on {abandoned} mirrored jobs"))
    } else if found.pairs == 0 {
        Err("nothing was compared: the canary has rendered no mirrored recipient yet".into())
    } else {
        Ok(())
    }
}

fn label(kind: DiffKind, noise: bool) -> &'static str {
    match (kind, noise) {
        (_, true) => "noise",
        (DiffKind::Whitespace, false) => "whitespace only",
        (DiffKind::Content, false) => "content",
    }
}

fn write_diff(out: &mut String, diff: &ArtifactDiff) {
    let key = &diff.key;
    let _ = writeln!(
        out,
        "\n{}/{}/{} ({})",
        key.company_id,
        key.request_id,
        key.recipient_id,
        key.channel.as_str()
    );
    for part in &diff.parts {
        let _ = writeln!(out, "  {} [{}]", part.part, label(part.kind, part.noise));
        let changes = TextDiff::from_lines(&part.production, &part.canary);
        for change in changes
            .iter_all_changes()
            .filter(|c| c.tag() != ChangeTag::Equal)
            .take(8)
        {
            let sign = if change.tag() == ChangeTag::Delete {
                '-'
            } else {
                '+'
            };
            let _ = writeln!(out, "    {sign} {}", clip(change.value().trim_end()));
        }
    }
}

/// A line cut to what a terminal shows.
fn clip(line: &str) -> String {
    const MAX: usize = 160;
    match line.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}…", &line[..at]),
        None => line.to_owned(),
    }
}

fn html_report(found: &Verification) -> String {
    let mut out = String::from(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Canary verification</title>\
         <style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;width:100%;table-layout:fixed}\
         td,th{border:1px solid #ccc;padding:4px;vertical-align:top;font-family:monospace;font-size:12px;\
         white-space:pre-wrap;word-break:break-all}th{background:#eee}.del{background:#fdd}.ins{background:#dfd}\
         h2{font-size:1.1em;margin-top:2em}</style></head><body><h1>Canary verification</h1>",
    );
    let _ = write!(
        out,
        "<p>{} pairs compared: {} identical, {} with unexpected differences, {} with whitespace-only \
         or noise differences; {} missing on production.</p>",
        found.pairs,
        found.identical,
        found.unexpected,
        found.expected,
        found.missing_production.len()
    );
    for diff in &found.diffs {
        let key = &diff.key;
        let _ = write!(
            out,
            "<h2>{}/{}/{} ({})</h2>",
            escape(key.company_id.as_str()),
            escape(key.request_id.as_str()),
            escape(key.recipient_id.as_str()),
            key.channel.as_str()
        );
        for part in &diff.parts {
            let _ = write!(
                out,
                "<table><tr><th colspan=2>{} — {}</th></tr><tr><th>production</th><th>canary</th></tr>",
                part.part,
                label(part.kind, part.noise)
            );
            let changes = TextDiff::from_lines(&part.production, &part.canary);
            let (mut left, mut right) = (String::new(), String::new());
            for change in changes.iter_all_changes() {
                let text = escape(change.value());
                match change.tag() {
                    ChangeTag::Equal => {
                        left.push_str(&text);
                        right.push_str(&text);
                    }
                    ChangeTag::Delete => {
                        let _ = write!(left, "<span class=\"del\">{text}</span>");
                    }
                    ChangeTag::Insert => {
                        let _ = write!(right, "<span class=\"ins\">{text}</span>");
                    }
                }
            }
            let _ = write!(out, "<tr><td>{left}</td><td>{right}</td></tr></table>");
        }
    }
    out.push_str("</body></html>\n");
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
