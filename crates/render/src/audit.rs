//! The access audit over many renders: which paths each template read, how
//! often and where, the minimal payload as a JSON Schema, and the profile
//! fields nobody reads.
//!
//! Counts are per render: a path read ten times in one recipient's render
//! counts once, so a branch only some recipients take shows as a lower count.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt::Write as _;

use serde::Serialize;

use crate::context::audit::{AccessRecorder, JsonKind, Seen};
use crate::template::analysis::push_key;
use crate::template::{CompiledTemplate, PartName, Read};

/// Roots the renderer computes itself: no payload carries them.
const COMPUTED_ROOTS: &[&str] = &["now", "unsubscribe_url"];

/// Reads aggregated over renders, and the profile fields seen.
#[derive(Debug, Default)]
pub struct Audit {
    /// By template name and stored version: versions read differently.
    templates: BTreeMap<(String, Option<u32>), TemplateAudit>,
    /// Leaf paths of the profiles rendered, with how many profiles have each.
    profile_fields: BTreeMap<String, usize>,
    profiles: HashSet<String>,
}

#[derive(Debug, Default)]
struct TemplateAudit {
    renders: usize,
    may_read: Vec<(PartName, Vec<Read>)>,
    seen: BTreeMap<(PartName, String), Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    renders: usize,
    present: usize,
    used: bool,
    kinds: BTreeSet<JsonKind>,
}

impl Audit {
    /// Adds one render of `template`: what `recorder` noted, which it is
    /// emptied of.
    pub fn add_render(&mut self, template: &CompiledTemplate, recorder: &AccessRecorder) {
        let entry = self
            .templates
            .entry((template.name().to_owned(), template.version()))
            .or_default();
        if entry.renders == 0 {
            entry.may_read = PartName::ALL
                .into_iter()
                .filter(|part| template.has_part(*part))
                .map(|part| (part, template.reads(part).to_vec()))
                .collect();
        }
        entry.renders += 1;
        for (
            key,
            Seen {
                present,
                used,
                kinds,
                ..
            },
        ) in recorder.take()
        {
            let counts = entry.seen.entry(key).or_default();
            counts.renders += 1;
            counts.present += usize::from(present);
            counts.used |= used;
            counts.kinds.extend(kinds);
        }
    }

    /// Notes the fields of profile `id`, to find those never read. A
    /// profile rendered twice counts once.
    pub fn add_profile(&mut self, id: &str, properties: &serde_json::Value) {
        if !self.profiles.insert(id.to_owned()) {
            return;
        }
        let mut leaves = BTreeSet::new();
        collect_leaves(properties, &mut "profile".to_owned(), &mut leaves);
        for leaf in leaves {
            *self.profile_fields.entry(leaf).or_default() += 1;
        }
    }

    pub fn report(&self) -> AuditReport {
        let templates: Vec<TemplateReport> = self
            .templates
            .iter()
            .map(|((name, version), audit)| audit.report(name, *version))
            .collect();
        let read: Vec<&str> = templates
            .iter()
            .flat_map(|t| t.reads.iter().map(|row| row.path.as_str()))
            .collect();
        let unread_profile_fields = self
            .profile_fields
            .iter()
            .filter(|(field, _)| !is_read(field, &read))
            .map(|(field, profiles)| UnreadField {
                path: field.clone(),
                profiles: *profiles,
            })
            .collect();
        AuditReport {
            profiles: self.profiles.len(),
            templates,
            unread_profile_fields,
        }
    }
}

/// Whether `field` is read: it is a read path, or lies inside one that
/// nothing reads further into (the template read that value as a whole).
fn is_read(field: &str, read: &[&str]) -> bool {
    read.iter().any(|path| {
        *path == field
            || (is_inside(field, path) && !read.iter().any(|other| is_inside(other, path)))
    })
}

/// `inner` is a path below `outer`.
fn is_inside(inner: &str, outer: &str) -> bool {
    inner.len() > outer.len()
        && inner.starts_with(outer)
        && matches!(inner.as_bytes()[outer.len()], b'.' | b'[')
}

fn collect_leaves(value: &serde_json::Value, path: &mut String, into: &mut BTreeSet<String>) {
    let len = path.len();
    match value {
        serde_json::Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                push_key(path, key);
                collect_leaves(child, path, into);
                path.truncate(len);
            }
        }
        serde_json::Value::Array(items) if !items.is_empty() => {
            path.push_str("[]");
            for item in items {
                collect_leaves(item, path, into);
            }
            path.truncate(len);
        }
        _ => {
            into.insert(path.clone());
        }
    }
}

impl TemplateAudit {
    fn report(&self, name: &str, version: Option<u32>) -> TemplateReport {
        // The lines reading the path itself; for a path the render stopped
        // at (it was missing), the lines reading inside it.
        let lines = |part: PartName, path: &str| -> Vec<usize> {
            let reads = || {
                self.may_read
                    .iter()
                    .filter(move |(p, _)| *p == part)
                    .flat_map(|(_, reads)| reads)
            };
            let mut lines: Vec<usize> = reads()
                .filter(|read| read.path == path)
                .map(|read| read.line)
                .collect();
            if lines.is_empty() {
                lines = reads()
                    .filter(|read| is_inside(&read.path, path))
                    .map(|read| read.line)
                    .collect();
            }
            lines.sort_unstable();
            lines.dedup();
            lines
        };
        let mut rows: Vec<ReadRow> = Vec::new();
        for ((part, path), counts) in &self.seen {
            // A path only walked through to what is inside it says nothing
            // the deeper rows do not.
            let walked_through = !counts.used
                && self
                    .seen
                    .keys()
                    .any(|(p, other)| p == part && is_inside(other, path));
            if walked_through {
                continue;
            }
            rows.push(ReadRow {
                path: path.clone(),
                part: *part,
                lines: lines(*part, path),
                renders: counts.renders,
                present: counts.present,
                missing: counts.renders - counts.present,
                types: counts.kinds.iter().map(|k| k.as_str()).collect(),
            });
        }
        // What the template may read that no audited render did.
        for (part, reads) in &self.may_read {
            for read in reads {
                let reached = self.seen.keys().any(|(p, path)| {
                    p == part && (*path == read.path || is_inside(path, &read.path))
                }) || rows
                    .iter()
                    .any(|row| row.part == *part && row.path == read.path);
                if !reached {
                    rows.push(ReadRow {
                        path: read.path.clone(),
                        part: *part,
                        lines: lines(*part, &read.path),
                        renders: 0,
                        present: 0,
                        missing: 0,
                        types: Vec::new(),
                    });
                }
            }
        }
        rows.sort_by(|a, b| (&a.path, a.part).cmp(&(&b.path, b.part)));
        rows.dedup_by(|a, b| a.path == b.path && a.part == b.part);
        let titled = match version {
            Some(version) => format!("{name} (version {version})"),
            None => name.to_owned(),
        };
        let schema = payload_schema(&titled, self.renders, &rows);
        TemplateReport {
            name: name.to_owned(),
            version,
            renders: self.renders,
            reads: rows,
            schema,
        }
    }
}

/// What an audit found.
#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    /// Profiles rendered.
    pub profiles: usize,
    pub templates: Vec<TemplateReport>,
    /// Profile fields present in the data and read by no template.
    pub unread_profile_fields: Vec<UnreadField>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TemplateReport {
    pub name: String,
    /// The stored version audited; `None` for an inline template.
    pub version: Option<u32>,
    pub renders: usize,
    pub reads: Vec<ReadRow>,
    /// The minimal payload: what the profile and the request must carry.
    pub schema: serde_json::Value,
}

/// One (path, template part) read, with its lines and counts.
#[derive(Debug, Clone, Serialize)]
pub struct ReadRow {
    pub path: String,
    pub part: PartName,
    /// Where the part reads it (from the template's structure).
    pub lines: Vec<usize>,
    /// Renders that read it (0: the template may read it, none did).
    pub renders: usize,
    pub present: usize,
    pub missing: usize,
    /// The JSON types found.
    pub types: Vec<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct UnreadField {
    pub path: String,
    pub profiles: usize,
}

/// One step of a rendered path.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    Key(String),
    Item,
}

/// Splits a rendered path (`event.cart[].price`, `profile["a b"]`) into its
/// root and steps.
fn split_path(path: &str) -> (&str, Vec<Step>) {
    let root_end = path.find(['.', '[']).unwrap_or(path.len());
    let (root, mut rest) = path.split_at(root_end);
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("[]") {
            steps.push(Step::Item);
            rest = after;
        } else if let Some(after) = rest.strip_prefix('[') {
            let mut strings = serde_json::Deserializer::from_str(after).into_iter::<String>();
            let Some(Ok(key)) = strings.next() else { break };
            let end = strings.byte_offset();
            steps.push(Step::Key(key));
            rest = after[end..].strip_prefix(']').unwrap_or_default();
        } else if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            steps.push(Step::Key(after[..end].to_owned()));
            rest = &after[end..];
        } else {
            break;
        }
    }
    (root, steps)
}

#[derive(Debug, Default)]
struct SchemaNode {
    properties: BTreeMap<String, SchemaNode>,
    items: Option<Box<SchemaNode>>,
    types: BTreeSet<&'static str>,
    required: bool,
    /// A read ends here.
    read: bool,
    /// Some audited render read it.
    reached: bool,
}

impl SchemaNode {
    fn at(&mut self, steps: &[Step]) -> &mut SchemaNode {
        let mut node = self;
        for step in steps {
            node = match step {
                Step::Key(key) => node.properties.entry(key.clone()).or_default(),
                Step::Item => node.items.get_or_insert_with(Default::default),
            };
        }
        node
    }

    fn to_json(&self) -> serde_json::Value {
        let mut schema = serde_json::Map::new();
        let mut types: Vec<&str> = self.types.iter().copied().collect();
        if !self.properties.is_empty() && !types.contains(&"object") {
            types.push("object");
        }
        if self.items.is_some() && !types.contains(&"array") {
            types.push("array");
        }
        // `integer` is a `number`; saying both says nothing more.
        if types.contains(&"number") {
            types.retain(|t| *t != "integer");
        }
        match types.as_slice() {
            [] => {}
            [one] => {
                schema.insert("type".into(), (*one).into());
            }
            many => {
                schema.insert("type".into(), many.into());
            }
        }
        if self.read && !self.reached {
            schema.insert(
                "description".into(),
                "read only on paths the audited renders did not take".into(),
            );
        }
        if !self.properties.is_empty() {
            let properties: serde_json::Map<String, serde_json::Value> = self
                .properties
                .iter()
                .map(|(key, node)| (key.clone(), node.to_json()))
                .collect();
            schema.insert("properties".into(), properties.into());
            let required: Vec<&str> = self
                .properties
                .iter()
                .filter(|(_, node)| node.required)
                .map(|(key, _)| key.as_str())
                .collect();
            if !required.is_empty() {
                schema.insert("required".into(), required.into());
            }
        }
        if let Some(items) = &self.items {
            schema.insert("items".into(), items.to_json());
        }
        schema.into()
    }
}

/// The JSON Schema of what `rows` say a render of `name` reads: a field is
/// required when every render found it.
fn payload_schema(name: &str, renders: usize, rows: &[ReadRow]) -> serde_json::Value {
    let mut root = SchemaNode::default();
    for row in rows {
        let (variable, steps) = split_path(&row.path);
        if COMPUTED_ROOTS.contains(&variable) {
            continue;
        }
        let top = root.properties.entry(variable.to_owned()).or_default();
        top.required = true;
        // Every step down to the read was found when the read was.
        let mut node = top;
        for (depth, step) in steps.iter().enumerate() {
            node = node.at(std::slice::from_ref(step));
            let last = depth + 1 == steps.len();
            let in_array = steps[..=depth].contains(&Step::Item);
            let always = if in_array {
                row.missing == 0 && row.present > 0
            } else {
                row.present == renders && renders > 0
            };
            node.required |= always;
            if last {
                node.types.extend(&row.types);
                node.read = true;
                node.reached |= row.renders > 0;
            }
        }
    }
    let mut schema = serde_json::Map::new();
    schema.insert(
        "$schema".into(),
        "https://json-schema.org/draft/2020-12/schema".into(),
    );
    schema.insert("title".into(), format!("what template {name} reads").into());
    if let serde_json::Value::Object(body) = root.to_json() {
        schema.extend(body);
    }
    schema.into()
}

impl AuditReport {
    /// The report as a person reads it: reads by template, each template's
    /// payload schema, and the profile fields nobody reads.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for template in &self.templates {
            let version = template
                .version
                .map(|v| format!(" version {v}"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "template {}{version}: {}",
                template.name,
                plural(template.renders, "render")
            );
            let width = template
                .reads
                .iter()
                .map(|r| r.path.len())
                .max()
                .unwrap_or(0)
                .max(4);
            let wheres: Vec<String> = template
                .reads
                .iter()
                .map(|row| {
                    let lines: Vec<String> = row.lines.iter().map(ToString::to_string).collect();
                    format!("{}:{}:{}", template.name, row.part, lines.join(","))
                })
                .collect();
            let where_width = wheres.iter().map(String::len).max().unwrap_or(0).max(5);
            let _ = writeln!(
                out,
                "  {:width$}  {:where_width$}  {:>5}  {:>7}  {:>7}",
                "path", "where", "reads", "present", "missing"
            );
            for (row, place) in template.reads.iter().zip(&wheres) {
                let _ = writeln!(
                    out,
                    "  {:width$}  {place:where_width$}  {:>5}  {:>7}  {:>7}",
                    row.path, row.renders, row.present, row.missing
                );
            }
            let schema = serde_json::to_string_pretty(&template.schema).expect("JSON serializes");
            let _ = writeln!(out, "\n  payload schema:");
            for line in schema.lines() {
                let _ = writeln!(out, "    {line}");
            }
            out.push('\n');
        }
        let _ = writeln!(
            out,
            "profile fields present in the data and never read ({} audited):",
            plural(self.profiles, "profile")
        );
        for field in &self.unread_profile_fields {
            let _ = writeln!(
                out,
                "  {}  (in {})",
                field.path,
                plural(field.profiles, "profile")
            );
        }
        out
    }
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_back_into_their_steps() {
        assert_eq!(
            split_path("event.cart[].variant.size"),
            (
                "event",
                vec![
                    Step::Key("cart".into()),
                    Step::Item,
                    Step::Key("variant".into()),
                    Step::Key("size".into())
                ]
            )
        );
        assert_eq!(
            split_path(r#"profile["a.b"][].c"#),
            (
                "profile",
                vec![Step::Key("a.b".into()), Step::Item, Step::Key("c".into())]
            )
        );
        assert_eq!(split_path("now"), ("now", vec![]));
    }

    #[test]
    fn a_field_is_read_when_a_read_reaches_it_or_takes_its_parent_whole() {
        let read = [
            "profile.location",
            "profile.loyalty",
            "profile.loyalty.tier",
        ];
        assert!(
            is_read("profile.location.city", &read),
            "location is read whole"
        );
        assert!(is_read("profile.loyalty.tier", &read));
        assert!(
            !is_read("profile.loyalty.points", &read),
            "loyalty is only walked into"
        );
        assert!(
            !is_read("profile.locations", &read),
            "a longer name is another field"
        );
    }
}
