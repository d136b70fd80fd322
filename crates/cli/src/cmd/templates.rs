//! `artifact templates check`: compiles every bundle of a folder and says what
//! is wrong with each and what each reads, for authors and for CI.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use artifact_render::RenderLimits;
use artifact_render::template::{self, TemplateFolder};
use serde::Serialize;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Check every template of a folder: syntax errors, unknown filters,
    /// tests and functions (errors), names outside the context (warnings),
    /// and the data each template may read. Exits 1 when any template has
    /// an error.
    Check(CheckArgs),
}

#[derive(Debug, clap::Args)]
struct CheckArgs {
    /// A folder of templates (`<template_id>/{subject,html,…}.jinja`), or one
    /// template's folder.
    dir: PathBuf,
    /// `text` for people, `json` for CI.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum Format {
    Text,
    Json,
}

/// What `run` found: whether any template had an error.
pub enum Verdict {
    Clean,
    Errors,
}

pub fn run(args: &Args) -> Result<Verdict> {
    let Command::Check(args) = &args.command;
    let report = check_dir(&args.dir)?;
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &report)?;
            std::io::Write::write_all(&mut out, b"\n")?;
        }
        Format::Text => std::io::Write::write_all(&mut out, report.to_text().as_bytes())?,
    }
    Ok(if report.errors > 0 {
        Verdict::Errors
    } else {
        Verdict::Clean
    })
}

#[derive(Debug, Serialize)]
struct Report {
    templates: Vec<Checked>,
    errors: usize,
    warnings: usize,
}

#[derive(Debug, Serialize)]
struct Checked {
    name: String,
    /// `null` when the folder could not be read as a template.
    channel: Option<&'static str>,
    errors: Vec<Problem>,
    warnings: Vec<Problem>,
    /// Each path the template may read, with the parts and lines reading it.
    reads: Vec<PathRead>,
    /// The top-level profile keys a render fetches; `null` for all of them.
    profile_keys: Option<Vec<String>>,
}

#[derive(Debug, Serialize)]
struct Problem {
    part: Option<&'static str>,
    line: Option<usize>,
    column: Option<usize>,
    message: String,
}

#[derive(Debug, Serialize)]
struct PathRead {
    path: String,
    at: Vec<PartLine>,
}

#[derive(Debug, Serialize)]
struct PartLine {
    part: &'static str,
    line: usize,
}

/// Checks `dir` as one template folder if it holds template files, else
/// every sub-folder as a template.
fn check_dir(dir: &Path) -> Result<Report> {
    let mut folders = Vec::new();
    let mut is_template = false;
    for entry in fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            folders.push(path);
        } else if path
            .extension()
            .is_some_and(|ext| ext == "jinja" || ext == "mjml")
        {
            is_template = true;
        }
    }
    if is_template {
        folders = vec![dir.to_owned()];
    }
    folders.sort();
    let templates: Vec<Checked> = folders.iter().map(|folder| check_folder(folder)).collect();
    Ok(Report {
        errors: templates.iter().map(|t| t.errors.len()).sum(),
        warnings: templates.iter().map(|t| t.warnings.len()).sum(),
        templates,
    })
}

fn check_folder(dir: &Path) -> Checked {
    let name = dir.file_name().map_or_else(
        || dir.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let folder = match read_folder(dir) {
        Ok(folder) => folder,
        Err(error) => {
            return Checked {
                name,
                channel: None,
                errors: vec![Problem {
                    part: None,
                    line: None,
                    column: None,
                    message: format!("{error:#}"),
                }],
                warnings: Vec::new(),
                reads: Vec::new(),
                profile_keys: None,
            };
        }
    };
    let found = template::check(&name, &folder.parts, &RenderLimits::default());
    let mut reads: BTreeMap<String, Vec<PartLine>> = BTreeMap::new();
    for (part, part_reads) in &found.reads {
        for read in part_reads {
            reads.entry(read.path.clone()).or_default().push(PartLine {
                part: part.as_str(),
                line: read.line,
            });
        }
    }
    Checked {
        name,
        channel: Some(found.channel.as_str()),
        errors: found
            .errors
            .into_iter()
            .map(|e| Problem {
                part: e.part.map(|p| p.as_str()),
                line: e.line,
                column: e.column,
                message: e.message,
            })
            .collect(),
        warnings: found
            .warnings
            .into_iter()
            .map(|w| Problem {
                part: Some(w.part.as_str()),
                line: Some(w.line),
                column: w.column,
                message: w.message,
            })
            .collect(),
        reads: reads
            .into_iter()
            .map(|(path, at)| PathRead { path, at })
            .collect(),
        profile_keys: found
            .profile
            .keys()
            .map(|keys| keys.iter().cloned().collect()),
    }
}

/// Reads one template folder: `<part>.jinja` files and an optional manifest.
pub(crate) fn read_folder(dir: &Path) -> Result<TemplateFolder> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let contents =
            fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        files.push((name, contents));
    }
    TemplateFolder::from_files(files.iter().map(|(n, c)| (n.as_str(), c.as_str())))
        .map_err(|error| anyhow::anyhow!("{}: {error}", dir.display()))
}

impl Report {
    fn to_text(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        for t in &self.templates {
            let verdict = match (t.errors.len(), t.warnings.len()) {
                (0, 0) => "ok".to_owned(),
                (0, w) => plural(w, "warning"),
                (e, 0) => plural(e, "error"),
                (e, w) => format!("{}, {}", plural(e, "error"), plural(w, "warning")),
            };
            let _ = writeln!(out, "{}  {}  {verdict}", t.name, t.channel.unwrap_or("?"));
            for (label, problems) in [("error", &t.errors), ("warning", &t.warnings)] {
                for p in problems {
                    let _ = writeln!(out, "  {label}  {}{}", place(p), p.message);
                }
            }
            if !t.reads.is_empty() {
                let _ = writeln!(out, "  may read");
                let width = t.reads.iter().map(|r| r.path.len()).max().unwrap_or(0);
                for read in &t.reads {
                    let _ = writeln!(out, "    {:width$}  {}", read.path, places(&read.at));
                }
            }
            match &t.profile_keys {
                Some(keys) if t.channel.is_some() => {
                    let keys = if keys.is_empty() {
                        "none".to_owned()
                    } else {
                        keys.join(", ")
                    };
                    let _ = writeln!(out, "  profile keys fetched  {keys}");
                }
                None if t.channel.is_some() => {
                    let _ = writeln!(
                        out,
                        "  profile keys fetched  all (the whole profile is read)"
                    );
                }
                _ => {}
            }
        }
        let _ = writeln!(
            out,
            "\n{}: {}, {}",
            plural(self.templates.len(), "template"),
            plural(self.errors, "error"),
            plural(self.warnings, "warning")
        );
        out
    }
}

/// `subject:1  html:57,58,64`: the lines of each part, part by part.
fn places(at: &[PartLine]) -> String {
    let mut groups: Vec<(&str, Vec<String>)> = Vec::new();
    for a in at {
        match groups.last_mut() {
            Some((part, lines)) if *part == a.part => lines.push(a.line.to_string()),
            _ => groups.push((a.part, vec![a.line.to_string()])),
        }
    }
    groups
        .iter()
        .map(|(part, lines)| format!("{part}:{}", lines.join(",")))
        .collect::<Vec<_>>()
        .join("  ")
}

fn place(p: &Problem) -> String {
    let mut place = String::new();
    if let Some(part) = p.part {
        place.push_str(part);
    }
    if let Some(line) = p.line {
        place.push_str(&format!(" line {line}"));
    }
    if let Some(column) = p.column {
        place.push_str(&format!(" column {column}"));
    }
    if place.is_empty() {
        place
    } else {
        format!("{}: ", place.trim_start())
    }
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
