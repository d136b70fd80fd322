//! MJML and `<style>` CSS turned into plain Jinja-HTML once, at template compile time.

// Neither `mrml` nor `css-inline` knows Jinja, and both re-parse and re-print the markup, so
// every Jinja tag is swapped for a placeholder the libraries pass through untouched, and the
// original bytes are put back afterwards. The placeholder's shape depends on where the tag sits:
// an HTML comment where markup may follow (comments are never foster-parented out of tables),
// a bare lower-case token inside attribute values and raw text, a lone attribute for tags
// standing between attributes, and a CSS custom property for a `style` attribute the inliner
// must not pick apart. A placeholder that does not come back is an error, never a silently
// broken template.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use css_inline::CSSInliner;
use mrml::prelude::parser::{Error as MjmlError, ParserOptions};
use mrml::prelude::render::RenderOptions;

/// Why an authoring source could not be turned into a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthoringError {
    /// 1-based line in the original source, when the problem has a place.
    pub line: Option<usize>,
    /// Lower-case; starts with the stage (`mjml:` or `css inline:`).
    pub message: String,
}

impl fmt::Display for AuthoringError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{} (line {line})", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for AuthoringError {}

impl AuthoringError {
    fn new(line: Option<usize>, message: String) -> Self {
        Self { line, message }
    }
}

/// MJML (with Jinja tags inside) → HTML (with the same Jinja tags, byte-identical).
pub fn mjml_to_html(source: &str) -> Result<String, AuthoringError> {
    let masked = Masker::new(source, Dialect::Mjml).run()?;
    masked.check_mj_nesting()?;
    // The default loader refuses `mj-include`: resolving it would be file or network I/O.
    let options = ParserOptions::default();
    let parsed =
        mrml::parse_with_options(&masked.text, &options).map_err(|err| masked.mjml_error(&err))?;
    // Comments must be rendered: most structural placeholders are comments.
    let render = RenderOptions {
        disable_comments: false,
        ..RenderOptions::default()
    };
    let html = parsed.element.render(&render).map_err(|err| {
        AuthoringError::new(None, format!("mjml: {}", lower_first(&err.to_string())))
    })?;
    masked.restore(&html)
}

/// HTML whose `<style>` rules get inlined into `style=""` attributes (css-inline), Jinja tags intact.
pub fn inline_css(html: &str) -> Result<String, AuthoringError> {
    let masked = Masker::new(html, Dialect::Html).run()?;
    let inliner = CSSInliner::options()
        // The render core does no I/O; `<link>` stylesheets (web fonts) stay as they are.
        .load_remote_stylesheets(false)
        .keep_link_tags(true)
        // Rules that cannot be inlined (`@media`, `:hover`, rules for markup a Jinja
        // expression produces at render time) stay in their `<style>` blocks.
        .remove_inlined_selectors(true)
        .keep_at_rules(true)
        .build();
    let inlined = if is_document(&masked.text) {
        inliner.inline(&masked.text)
    } else {
        inliner.inline_fragment(&masked.text, "")
    }
    .map_err(|err| {
        AuthoringError::new(
            None,
            format!("css inline: {}", lower_first(&err.to_string())),
        )
    })?;
    let unwrapped = drop_implied_rows(&inlined, &row_marker(&masked.prefix));
    masked.restore(&unwrapped)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Mjml,
    Html,
}

impl Dialect {
    fn stage(self) -> &'static str {
        match self {
            Self::Mjml => "mjml",
            Self::Html => "css inline",
        }
    }

    /// Elements whose content the parsers read as plain text, where a comment would not be one.
    fn is_raw_text(self, name: &str) -> bool {
        let html = matches!(name, "style" | "script" | "title" | "textarea");
        match self {
            Self::Mjml => html || matches!(name, "mj-style" | "mj-title" | "mj-preview"),
            Self::Html => html,
        }
    }
}

/// The shape a placeholder takes, chosen by where the Jinja tag sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// `<!--tok-->` in element content.
    Comment,
    /// `tok` inside an attribute value, a tag name or raw text.
    Token,
    /// ` tok ` standing for a run of attributes wrapped in Jinja tags.
    Attributes,
    /// `--tok:0` standing for a whole `style` value the inliner must not rewrite.
    StyleValue { single_quoted: bool },
}

#[derive(Debug)]
struct Placeholder {
    slot: Slot,
    /// The original bytes the placeholder stands for.
    source: Range<usize>,
    /// The first Jinja tag inside `source`, named in error messages.
    label: Range<usize>,
    /// Expressions and comments may be copied by the converter; a copied statement would
    /// unbalance the template's blocks.
    may_repeat: bool,
}

#[derive(Debug)]
struct Edit {
    range: Range<usize>,
    replacement: String,
}

#[derive(Debug)]
struct Shift {
    masked: Range<usize>,
    source: Range<usize>,
}

#[derive(Debug)]
struct MjTag {
    name: String,
    closing: bool,
    self_closing: bool,
    at: usize,
}

/// An unterminated Jinja tag, by its start offset.
#[derive(Debug)]
struct Unclosed(usize);

struct Masker<'a> {
    src: &'a str,
    dialect: Dialect,
    prefix: String,
    edits: Vec<Edit>,
    placeholders: Vec<Placeholder>,
    mj_tags: Vec<MjTag>,
    /// Placeholders standing for element names, by id.
    element_names: Vec<usize>,
}

/// The source with every Jinja tag replaced, and what is needed to put them back.
#[derive(Debug)]
struct Masked<'a> {
    src: &'a str,
    dialect: Dialect,
    prefix: String,
    text: String,
    placeholders: Vec<Placeholder>,
    shifts: Vec<Shift>,
    mj_tags: Vec<MjTag>,
}

impl<'a> Masker<'a> {
    fn new(src: &'a str, dialect: Dialect) -> Self {
        Self {
            src,
            dialect,
            prefix: pick_prefix(src),
            edits: Vec::new(),
            placeholders: Vec::new(),
            mj_tags: Vec::new(),
            element_names: Vec::new(),
        }
    }

    fn run(mut self) -> Result<Masked<'a>, AuthoringError> {
        self.scan().map_err(|Unclosed(at)| self.unclosed(at))?;
        Ok(self.build())
    }

    fn scan(&mut self) -> Result<(), Unclosed> {
        let src = self.src;
        let bytes = src.as_bytes();
        let mut raw_text: Option<String> = None;
        let mut i = 0;
        while i < bytes.len() {
            if jinja_open(bytes, i) {
                let end = jinja_end(src, i).ok_or(Unclosed(i))?;
                let slot = if raw_text.is_some() {
                    Slot::Token
                } else {
                    Slot::Comment
                };
                self.add(slot, i..end, i..end);
                i = end;
            } else if let Some(name) = &raw_text {
                if closes_element(bytes, i, name) {
                    raw_text = None;
                } else {
                    i += 1;
                }
            } else if bytes[i..].starts_with(b"<!--") {
                // Jinja inside an HTML comment is left alone: both libraries keep comments.
                i = find_from(src, i + 4, "-->").map_or(bytes.len(), |p| p + 3);
            } else if bytes[i..].starts_with(b"<!") || bytes[i..].starts_with(b"<?") {
                i = find_from(src, i, ">").map_or(bytes.len(), |p| p + 1);
            } else if starts_tag(bytes, i) {
                let tag = scan_tag(src, i)?;
                self.mask_tag(&tag);
                if !tag.closing && !tag.self_closing && self.dialect.is_raw_text(&tag.name) {
                    raw_text = Some(tag.name);
                }
                i = tag.end;
            } else {
                i += 1;
            }
        }
        Ok(())
    }

    fn mask_tag(&mut self, tag: &TagScan) {
        if self.dialect == Dialect::Mjml && is_mj_name(&tag.name) {
            self.mj_tags.push(MjTag {
                name: tag.name.clone(),
                closing: tag.closing,
                self_closing: tag.self_closing,
                at: tag.start,
            });
        }
        if self.dialect == Dialect::Html
            && !tag.closing
            && matches!(tag.name.as_str(), "tbody" | "tr")
        {
            // Marks rows the author wrote, so the ones the HTML parser invents can be dropped.
            let marker = format!(" {} ", row_marker(&self.prefix));
            self.edits.push(Edit {
                range: tag.name_end..tag.name_end,
                replacement: marker,
            });
        }
        let region = tag.between_region();
        let stash = match (&region, self.dialect) {
            (None, Dialect::Html) => tag.style_stash(self.src),
            _ => None,
        };
        for item in &tag.items {
            let in_region = region
                .as_ref()
                .is_some_and(|(r, _)| contains(r, &item.range));
            if in_region || (item.place == Place::StyleValue && stash.is_some()) {
                continue;
            }
            if item.place == Place::ElementName {
                self.add_element_name(item.range.clone());
            } else {
                self.add(Slot::Token, item.range.clone(), item.range.clone());
            }
        }
        if let Some((range, label)) = region {
            self.add(Slot::Attributes, range, label);
        }
        if let Some((style, label)) = stash {
            let slot = Slot::StyleValue {
                single_quoted: style.quote == Some(b'\''),
            };
            self.add(slot, style.value, label);
        }
    }

    fn add(&mut self, slot: Slot, source: Range<usize>, label: Range<usize>) {
        let token = format!("{}{}x", self.prefix, self.placeholders.len());
        let replacement = match slot {
            Slot::Comment => format!("<!--{token}-->"),
            Slot::Token => token,
            Slot::Attributes => format!(" {token} "),
            Slot::StyleValue { .. } => format!("--{token}:0"),
        };
        let may_repeat = matches!(self.src.as_bytes().get(label.start + 1), Some(b'{' | b'#'));
        self.edits.push(Edit {
            range: source.clone(),
            replacement,
        });
        self.placeholders.push(Placeholder {
            slot,
            source,
            label,
            may_repeat,
        });
    }

    /// `<{{ tag }}>` and `</{{ tag }}>` must get the same token, or the parser would not see
    /// the closing tag close the element.
    fn add_element_name(&mut self, range: Range<usize>) {
        let text = &self.src[range.clone()];
        let earlier = self
            .element_names
            .iter()
            .copied()
            .find(|&id| &self.src[self.placeholders[id].source.clone()] == text);
        match earlier {
            Some(id) => {
                let replacement = format!("{}{id}x", self.prefix);
                self.edits.push(Edit { range, replacement });
            }
            None => {
                self.element_names.push(self.placeholders.len());
                self.add(Slot::Token, range.clone(), range);
            }
        }
    }

    fn unclosed(&self, at: usize) -> AuthoringError {
        let snippet = shorten(self.src[at..].lines().next().unwrap_or_default());
        AuthoringError::new(
            Some(line_of(self.src, at)),
            format!("{}: unclosed jinja tag `{snippet}`", self.dialect.stage()),
        )
    }

    fn build(mut self) -> Masked<'a> {
        // Stable, so a marker inserted at a tag name's end stays before what follows it.
        self.edits.sort_by_key(|edit| edit.range.start);
        let mut text = String::with_capacity(self.src.len() + 16 * self.edits.len());
        let mut shifts = Vec::with_capacity(self.edits.len());
        let mut copied = 0;
        for edit in &self.edits {
            text.push_str(&self.src[copied..edit.range.start]);
            let start = text.len();
            text.push_str(&edit.replacement);
            shifts.push(Shift {
                masked: start..text.len(),
                source: edit.range.clone(),
            });
            copied = edit.range.end;
        }
        text.push_str(&self.src[copied..]);
        Masked {
            src: self.src,
            dialect: self.dialect,
            prefix: self.prefix,
            text,
            placeholders: self.placeholders,
            shifts,
            mj_tags: self.mj_tags,
        }
    }
}

/// A lower-case prefix that occurs nowhere in the source, so every occurrence in the
/// converter's output is one of ours.
fn pick_prefix(src: &str) -> String {
    let lower = src.to_ascii_lowercase();
    let mut prefix = String::from("jinjaslot");
    while lower.contains(&prefix) {
        prefix.push('q');
    }
    prefix
}

/// An attribute put on every `<tbody>` and `<tr>` the author wrote.
fn row_marker(prefix: &str) -> String {
    format!("{prefix}m")
}

fn jinja_open(bytes: &[u8], i: usize) -> bool {
    bytes.get(i) == Some(&b'{') && matches!(bytes.get(i + 1), Some(b'{' | b'%' | b'#'))
}

/// End (exclusive) of the Jinja tag opening at `start`; a `{% raw %}` block counts as one tag.
fn jinja_end(src: &str, start: usize) -> Option<usize> {
    let bytes = src.as_bytes();
    match bytes.get(start + 1) {
        Some(b'#') => find_from(src, start + 2, "#}").map(|p| p + 2),
        Some(b'{') => delimited_end(bytes, start + 2, b'}'),
        _ => {
            let end = delimited_end(bytes, start + 2, b'%')?;
            if statement_keyword(&src[start..end]) == "raw" {
                endraw_end(src, end)
            } else {
                Some(end)
            }
        }
    }
}

/// Skips string literals, so `{{ "}}" }}` ends at the right place.
fn delimited_end(bytes: &[u8], mut i: usize, close: u8) -> Option<usize> {
    let mut quote: Option<u8> = None;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(_) if b == b'\\' => i += 1,
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'"' || b == b'\'' => quote = Some(b),
            None if b == close && bytes.get(i + 1) == Some(&b'}') => return Some(i + 2),
            None => {}
        }
        i += 1;
    }
    None
}

fn statement_keyword(tag: &str) -> &str {
    let body = tag
        .trim_start_matches("{%")
        .trim_start_matches(['-', '+'])
        .trim_start();
    let end = body
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(body.len());
    &body[..end]
}

fn endraw_end(src: &str, from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(open) = find_from(src, at, "{%") {
        let end = delimited_end(src.as_bytes(), open + 2, b'%')?;
        if statement_keyword(&src[open..end]) == "endraw" {
            return Some(end);
        }
        at = end;
    }
    None
}

fn find_from(src: &str, from: usize, needle: &str) -> Option<usize> {
    src.get(from..)?.find(needle).map(|p| p + from)
}

fn starts_tag(bytes: &[u8], i: usize) -> bool {
    if bytes.get(i) != Some(&b'<') {
        return false;
    }
    let next = i + 1;
    let name_at = if bytes.get(next) == Some(&b'/') {
        next + 1
    } else {
        next
    };
    bytes.get(name_at).is_some_and(u8::is_ascii_alphabetic) || jinja_open(bytes, name_at)
}

fn closes_element(bytes: &[u8], i: usize, name: &str) -> bool {
    let name_at = i + 2;
    let name_end = name_at + name.len();
    bytes[i..].starts_with(b"</")
        && bytes
            .get(name_at..name_end)
            .is_some_and(|found| found.eq_ignore_ascii_case(name.as_bytes()))
        && bytes
            .get(name_end)
            .is_none_or(|b| b.is_ascii_whitespace() || matches!(b, b'>' | b'/'))
}

fn is_mj_name(name: &str) -> bool {
    name == "mjml" || name.starts_with("mj-")
}

fn contains(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end
}

/// A fragment must not come back wrapped in `<html><body>`; css-inline has a mode for each.
fn is_document(html: &str) -> bool {
    let lower = html.to_ascii_lowercase();
    let bytes = lower.as_bytes();
    ["<!doctype", "<html", "<head", "<body"]
        .iter()
        .any(|needle| {
            lower.match_indices(needle).any(|(at, _)| {
                bytes
                    .get(at + needle.len())
                    .is_none_or(|b| b.is_ascii_whitespace() || *b == b'>')
            })
        })
}

/// A Jinja tag found inside a start or end tag.
#[derive(Debug)]
struct TagItem {
    range: Range<usize>,
    place: Place,
}

/// Where inside a tag a Jinja tag stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// In the element name: `<{{ tag }}>`.
    ElementName,
    /// Where an attribute could start.
    Between,
    /// Inside an attribute name or value.
    Attribute,
    StyleValue,
}

#[derive(Debug, Clone)]
struct StyleAttr {
    value: Range<usize>,
    quote: Option<u8>,
}

#[derive(Debug, Default)]
struct TagScan {
    start: usize,
    end: usize,
    name: String,
    name_end: usize,
    closing: bool,
    self_closing: bool,
    items: Vec<TagItem>,
    style: Option<StyleAttr>,
}

/// Reads one start or end tag, stepping over Jinja tags so a `>` or quote inside them
/// does not end the tag or an attribute value.
fn scan_tag(src: &str, start: usize) -> Result<TagScan, Unclosed> {
    let bytes = src.as_bytes();
    let mut tag = TagScan {
        start,
        ..TagScan::default()
    };
    let mut i = start + 1;
    if bytes.get(i) == Some(&b'/') {
        tag.closing = true;
        i += 1;
    }
    i = tag.read_name(src, i)?;
    tag.name_end = i;
    loop {
        i = skip_whitespace(bytes, i);
        match bytes.get(i) {
            None => {
                tag.end = bytes.len();
                return Ok(tag);
            }
            Some(b'>') => {
                tag.end = i + 1;
                return Ok(tag);
            }
            Some(b'/') if bytes.get(i + 1) == Some(&b'>') => {
                tag.self_closing = true;
                tag.end = i + 2;
                return Ok(tag);
            }
            Some(b'/') => i += 1,
            _ if jinja_open(bytes, i) => i = tag.push_item(src, i, Place::Between)?,
            _ => i = tag.read_attribute(src, i)?,
        }
    }
}

fn skip_whitespace(bytes: &[u8], mut i: usize) -> usize {
    while bytes.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    i
}

impl TagScan {
    fn push_item(&mut self, src: &str, at: usize, place: Place) -> Result<usize, Unclosed> {
        let end = jinja_end(src, at).ok_or(Unclosed(at))?;
        self.items.push(TagItem {
            range: at..end,
            place,
        });
        Ok(end)
    }

    fn read_name(&mut self, src: &str, mut i: usize) -> Result<usize, Unclosed> {
        let bytes = src.as_bytes();
        while let Some(&b) = bytes.get(i) {
            if jinja_open(bytes, i) {
                i = self.push_item(src, i, Place::ElementName)?;
            } else if b.is_ascii_whitespace() || b == b'>' || b == b'/' {
                break;
            } else {
                self.name.push(char::from(b.to_ascii_lowercase()));
                i += 1;
            }
        }
        Ok(i)
    }

    fn read_attribute(&mut self, src: &str, start: usize) -> Result<usize, Unclosed> {
        let bytes = src.as_bytes();
        let mut name = String::new();
        let mut i = start;
        while let Some(&b) = bytes.get(i) {
            if jinja_open(bytes, i) {
                // `data-{{ key }}` builds a name; a statement after a name (`checked{% endif %}`)
                // ends it and belongs to the attribute run around it.
                if bytes[i + 1] != b'{' || name.is_empty() {
                    break;
                }
                i = self.push_item(src, i, Place::Attribute)?;
                continue;
            }
            if b.is_ascii_whitespace()
                || b == b'='
                || b == b'>'
                || (b == b'/' && bytes.get(i + 1) == Some(&b'>'))
            {
                break;
            }
            name.push(char::from(b.to_ascii_lowercase()));
            i += 1;
        }
        if i == start {
            return Ok(i + 1);
        }
        let equals = skip_whitespace(bytes, i);
        if bytes.get(equals) != Some(&b'=') {
            return Ok(i);
        }
        // Browsers ignore a repeated `style`; only the first is the element's style.
        let is_style = name == "style" && self.style.is_none();
        self.read_value(src, skip_whitespace(bytes, equals + 1), is_style)
    }

    fn read_value(&mut self, src: &str, mut i: usize, is_style: bool) -> Result<usize, Unclosed> {
        let bytes = src.as_bytes();
        let quote = bytes.get(i).copied().filter(|b| matches!(b, b'"' | b'\''));
        if quote.is_some() {
            i += 1;
        }
        let value_start = i;
        while let Some(&b) = bytes.get(i) {
            let ends = match quote {
                Some(q) => b == q,
                None => b.is_ascii_whitespace() || b == b'>',
            };
            if ends {
                break;
            }
            if jinja_open(bytes, i) {
                let place = if is_style {
                    Place::StyleValue
                } else {
                    Place::Attribute
                };
                i = self.push_item(src, i, place)?;
            } else {
                i += 1;
            }
        }
        if is_style {
            self.style = Some(StyleAttr {
                value: value_start..i,
                quote,
            });
        }
        let closing_quote = usize::from(quote.is_some() && i < bytes.len());
        Ok(i + closing_quote)
    }

    /// Everything from the first to the last Jinja tag standing between attributes, kept as
    /// one opaque run: the parsers reorder attributes (css-inline writes `class` first), which
    /// would move an attribute out of its `{% if %}`.
    fn between_region(&self) -> Option<(Range<usize>, Range<usize>)> {
        let mut between = self
            .items
            .iter()
            .filter(|item| item.place == Place::Between);
        let first = between.next()?;
        let last = between.next_back().unwrap_or(first);
        Some((first.range.start..last.range.end, first.range.clone()))
    }

    /// A `style` value the inliner cannot merge declaration by declaration (a statement, or an
    /// expression standing for whole declarations) is hidden behind one custom property.
    fn style_stash(&self, src: &str) -> Option<(StyleAttr, Range<usize>)> {
        let style = self.style.clone()?;
        let mut after_colon = false;
        let mut cursor = style.value.start;
        for item in self
            .items
            .iter()
            .filter(|item| item.place == Place::StyleValue)
        {
            for b in src[cursor..item.range.start].bytes() {
                match b {
                    b';' => after_colon = false,
                    b':' => after_colon = true,
                    _ => {}
                }
            }
            let expression = src.as_bytes().get(item.range.start + 1) == Some(&b'{');
            if !expression || !after_colon {
                return Some((style, item.range.clone()));
            }
            cursor = item.range.end;
        }
        None
    }
}

impl Masked<'_> {
    fn line(&self, masked_offset: usize) -> usize {
        line_of(self.src, self.to_source(masked_offset))
    }

    fn to_source(&self, masked_offset: usize) -> usize {
        let after = self
            .shifts
            .partition_point(|shift| shift.masked.start <= masked_offset);
        let Some(shift) = after.checked_sub(1).and_then(|i| self.shifts.get(i)) else {
            return masked_offset;
        };
        if masked_offset < shift.masked.end {
            shift.source.start
        } else {
            shift.source.end + (masked_offset - shift.masked.end)
        }
    }

    fn jinja_at(&self, masked_offset: usize) -> Option<&str> {
        let shift = self
            .shifts
            .iter()
            .find(|shift| shift.masked.contains(&masked_offset))?;
        self.src.get(shift.source.clone())
    }

    /// Puts the original Jinja tags back into the converter's output, checking none was lost.
    fn restore(&self, output: &str) -> Result<String, AuthoringError> {
        let mut counts = vec![0_usize; self.placeholders.len()];
        let mut restored = String::with_capacity(output.len() + self.src.len());
        let mut copied = 0;
        let mut search = 0;
        while let Some(found) = find_from(output, search, &self.prefix) {
            let Some((id, token_end)) = self.parse_token(output, found) else {
                search = found + self.prefix.len();
                continue;
            };
            let placeholder = &self.placeholders[id];
            let span = surrounding(placeholder.slot, output, found, token_end);
            restored.push_str(&output[copied..span.start]);
            restored.push_str(&self.original(placeholder));
            copied = span.end;
            search = span.end;
            counts[id] += 1;
        }
        restored.push_str(&output[copied..]);
        self.check_counts(&counts)?;
        Ok(restored)
    }

    fn parse_token(&self, output: &str, at: usize) -> Option<(usize, usize)> {
        let digits_at = at + self.prefix.len();
        let rest = output.get(digits_at..)?;
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || rest.as_bytes().get(digits) != Some(&b'x') {
            return None;
        }
        let id: usize = rest[..digits].parse().ok()?;
        (id < self.placeholders.len()).then_some((id, digits_at + digits + 1))
    }

    fn original(&self, placeholder: &Placeholder) -> Cow<'_, str> {
        let text = &self.src[placeholder.source.clone()];
        match placeholder.slot {
            // The inliner writes every attribute double-quoted.
            Slot::StyleValue {
                single_quoted: true,
            } => Cow::Owned(escape_double_quotes(text)),
            _ => Cow::Borrowed(text),
        }
    }

    fn check_counts(&self, counts: &[usize]) -> Result<(), AuthoringError> {
        let stage = self.dialect.stage();
        for (placeholder, &count) in self.placeholders.iter().zip(counts) {
            let label = shorten(&self.src[placeholder.label.clone()]);
            let problem = match count {
                0 => "was dropped by the converter; it cannot stand in this position",
                1 => continue,
                _ if placeholder.may_repeat => continue,
                _ => {
                    "was copied by the converter; only {{ }} expressions may stand where markup gets duplicated"
                }
            };
            return Err(AuthoringError::new(
                Some(line_of(self.src, placeholder.label.start)),
                format!("{stage}: jinja tag `{label}` {problem}"),
            ));
        }
        Ok(())
    }

    /// Replaces placeholders in a snippet for an error message, without bookkeeping.
    fn reveal(&self, snippet: &str) -> String {
        let mut out = String::with_capacity(snippet.len());
        let mut copied = 0;
        let mut search = 0;
        while let Some(found) = find_from(snippet, search, &self.prefix) {
            search = found + self.prefix.len();
            if let Some((id, token_end)) = self.parse_token(snippet, found) {
                out.push_str(&snippet[copied..found]);
                out.push_str(&self.src[self.placeholders[id].source.clone()]);
                copied = token_end;
                search = token_end;
            }
        }
        out.push_str(&snippet[copied..]);
        out
    }

    /// mrml does not check that a closing tag matches the element it closes, so a
    /// misplaced `</mj-column>` would silently reshape the email.
    fn check_mj_nesting(&self) -> Result<(), AuthoringError> {
        let mut open: Vec<&MjTag> = Vec::new();
        for tag in self.mj_tags.iter().filter(|tag| !tag.self_closing) {
            if !tag.closing {
                open.push(tag);
                continue;
            }
            let message = match open.pop() {
                Some(top) if top.name == tag.name => continue,
                Some(top) => format!(
                    "mjml: unexpected closing tag </{}> (expected </{}>)",
                    tag.name, top.name
                ),
                None => format!("mjml: unexpected closing tag </{}>", tag.name),
            };
            return Err(AuthoringError::new(
                Some(line_of(self.src, tag.at)),
                message,
            ));
        }
        match open.pop() {
            Some(tag) => Err(AuthoringError::new(
                Some(line_of(self.src, tag.at)),
                format!("mjml: <{}> is never closed", tag.name),
            )),
            None => Ok(()),
        }
    }

    fn mjml_error(&self, err: &MjmlError) -> AuthoringError {
        let at = |span: &mrml::prelude::parser::Span, message: String| {
            AuthoringError::new(Some(self.line(span.start)), format!("mjml: {message}"))
        };
        match err {
            MjmlError::UnexpectedElement { position, .. }
            | MjmlError::UnexpectedToken { position, .. } => {
                at(position, describe_unexpected(&self.snippet(position)))
            }
            MjmlError::MissingAttribute { name, position, .. } => at(
                position,
                format!("missing attribute `{name}` on {}", self.snippet(position)),
            ),
            MjmlError::InvalidAttribute { position, .. } => at(
                position,
                format!("invalid attribute `{}`", self.snippet(position)),
            ),
            MjmlError::InvalidFormat { position, .. } => at(
                position,
                format!("invalid value `{}`", self.snippet(position)),
            ),
            MjmlError::IncludeLoaderError { position, .. } => at(
                position,
                "mj-include is not supported: a template must be self-contained".to_owned(),
            ),
            MjmlError::ParserError { source, .. } => {
                let (cause, innermost) = strip_positions(&source.to_string());
                let pos = source.pos();
                let (row, col) = innermost.unwrap_or((pos.row, pos.col));
                let offset = text_pos_offset(&self.text, row, col);
                let mut cause = cause.replace(" cause ", ": ");
                // The parser names the placeholder's first character, not the author's text.
                if let Some(jinja) = self.jinja_at(offset) {
                    cause.push_str(&format!(" (at jinja tag `{}`)", shorten(jinja)));
                }
                AuthoringError::new(
                    Some(self.line(offset)),
                    format!("mjml: malformed markup: {}", lower_first(&cause)),
                )
            }
            MjmlError::EndOfStream { .. } => {
                AuthoringError::new(None, "mjml: unexpected end of document".to_owned())
            }
            MjmlError::SizeLimit { .. } => {
                AuthoringError::new(None, "mjml: template is too large".to_owned())
            }
            MjmlError::NoRootNode => {
                AuthoringError::new(None, "mjml: no <mjml> root element".to_owned())
            }
        }
    }

    fn snippet(&self, span: &mrml::prelude::parser::Span) -> String {
        let text = self.text.get(span.start..span.end).unwrap_or_default();
        shorten(&self.reveal(text.trim())).into_owned()
    }
}

/// The output range a found token stands for, given the shape it was written in.
fn surrounding(slot: Slot, output: &str, start: usize, end: usize) -> Range<usize> {
    let after = &output[end..];
    match slot {
        Slot::Comment if output[..start].ends_with("<!--") && after.starts_with("-->") => {
            start - 4..end + 3
        }
        Slot::Attributes if after.starts_with("=\"\"") => start..end + 3,
        Slot::StyleValue { .. } if output[..start].ends_with("--") => {
            let colon = skip_whitespace(output.as_bytes(), end);
            if output.as_bytes().get(colon) != Some(&b':') {
                return start - 2..end;
            }
            let zero = skip_whitespace(output.as_bytes(), colon + 1);
            let stop = if output.as_bytes().get(zero) == Some(&b'0') {
                zero + 1
            } else {
                colon + 1
            };
            start - 2..stop
        }
        _ => start..end,
    }
}

fn describe_unexpected(snippet: &str) -> String {
    let name = |rest: &str| -> String {
        rest.chars()
            .take_while(|c| !c.is_whitespace() && *c != '>' && *c != '/')
            .collect()
    };
    if let Some(rest) = snippet.strip_prefix("</") {
        format!("unexpected closing tag </{}>", name(rest))
    } else if let Some(rest) = snippet.strip_prefix('<') {
        format!("unexpected element <{}>", name(rest))
    } else {
        format!("unexpected `{snippet}`")
    }
}

/// htmlparser reports 1-based rows and columns counted in characters.
fn text_pos_offset(text: &str, row: u32, col: u32) -> usize {
    let mut line_start = 0;
    for _ in 1..row {
        match text[line_start..].find('\n') {
            Some(newline) => line_start += newline + 1,
            None => return text.len(),
        }
    }
    let skip = usize::try_from(col.saturating_sub(1)).unwrap_or(usize::MAX);
    text[line_start..]
        .char_indices()
        .nth(skip)
        .map_or(text.len(), |(at, _)| line_start + at)
}

/// htmlparser's messages carry `at row:col` positions in the masked text, which would
/// mislead; the last one is the most precise (the cause inside the failing token).
fn strip_positions(message: &str) -> (String, Option<(u32, u32)>) {
    let mut out = String::with_capacity(message.len());
    let mut last = None;
    let mut rest = message;
    while let Some(found) = rest.find(" at ") {
        out.push_str(&rest[..found]);
        let after = &rest[found + 4..];
        match parse_position(after) {
            Some((position, used)) => {
                last = Some(position);
                rest = &after[used..];
            }
            None => {
                out.push_str(" at ");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    (out, last)
}

/// `row:col` at the start of `text`, and how many bytes it takes.
fn parse_position(text: &str) -> Option<((u32, u32), usize)> {
    let row_len = text.bytes().take_while(u8::is_ascii_digit).count();
    let tail = text.get(row_len..)?.strip_prefix(':')?;
    let col_len = tail.bytes().take_while(u8::is_ascii_digit).count();
    let row = text[..row_len].parse().ok()?;
    let col = tail[..col_len].parse().ok()?;
    Some(((row, col), row_len + 1 + col_len))
}

fn line_of(src: &str, offset: usize) -> usize {
    let end = offset.min(src.len());
    src.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

fn shorten(text: &str) -> Cow<'_, str> {
    const LIMIT: usize = 60;
    match text.char_indices().nth(LIMIT) {
        Some((cut, _)) => Cow::Owned(format!("{}…", &text[..cut])),
        None => Cow::Borrowed(text),
    }
}

fn lower_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `"` outside Jinja tags becomes `&quot;`, for a value moving into a double-quoted attribute;
/// quotes inside Jinja tags are gone once the template renders.
fn escape_double_quotes(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if jinja_open(bytes, i) {
            i = jinja_end(text, i).unwrap_or(bytes.len());
        } else if bytes[i] == b'"' {
            out.push_str(&text[copied..i]);
            out.push_str("&quot;");
            i += 1;
            copied = i;
        } else {
            i += 1;
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// The HTML parser wraps bare `<tr>` rows in a `<tbody>` (and bare cells in a `<tr>`), which
/// would pull a `{% for %}` placed before the first row outside the element it loops in.
/// Elements the author did not write carry no marker and are unwrapped again.
fn drop_implied_rows(html: &str, marker: &str) -> String {
    let bytes = html.as_bytes();
    let mut removals: Vec<Range<usize>> = Vec::new();
    let mut open: Vec<(&str, Range<usize>)> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(b"<!--") {
            i = find_from(html, i + 4, "-->").map_or(bytes.len(), |p| p + 3);
        } else if let Some(name) = raw_text_start(bytes, i) {
            i = find_from(html, i + 1, &format!("</{name}")).unwrap_or(bytes.len());
        } else if let Some((name, closing)) = row_tag(bytes, i) {
            let end = find_from(html, i, ">").map_or(bytes.len(), |p| p + 1);
            if !closing {
                open.push((name, i..end));
            } else if let Some(at) = open.iter().rposition(|(open_name, _)| *open_name == name) {
                let (_, start_tag) = open.remove(at);
                if html[start_tag.clone()].len() == name.len() + 2 {
                    removals.push(start_tag);
                    removals.push(i..end);
                }
            }
            i = end;
        } else {
            i += 1;
        }
    }
    removals.sort_by_key(|range| range.start);
    let mut out = String::with_capacity(html.len());
    let mut copied = 0;
    for range in removals {
        out.push_str(&html[copied..range.start]);
        copied = range.end;
    }
    out.push_str(&html[copied..]);
    out.replace(&format!(" {marker}=\"\""), "")
}

fn raw_text_start(bytes: &[u8], i: usize) -> Option<&'static str> {
    ["style", "script"].into_iter().find(|name| {
        let end = i + 1 + name.len();
        bytes[i] == b'<'
            && bytes
                .get(i + 1..end)
                .is_some_and(|found| found.eq_ignore_ascii_case(name.as_bytes()))
            && bytes
                .get(end)
                .is_some_and(|b| b.is_ascii_whitespace() || *b == b'>')
    })
}

fn row_tag(bytes: &[u8], i: usize) -> Option<(&'static str, bool)> {
    if bytes[i] != b'<' {
        return None;
    }
    let closing = bytes.get(i + 1) == Some(&b'/');
    let name_at = i + 1 + usize::from(closing);
    ["tbody", "tr"].into_iter().find_map(|name| {
        let end = name_at + name.len();
        let matches = bytes.get(name_at..end) == Some(name.as_bytes())
            && bytes
                .get(end)
                .is_some_and(|b| b.is_ascii_whitespace() || matches!(b, b'>' | b'/'));
        matches.then_some((name, closing))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(template: &str, context: minijinja::Value) -> String {
        let env = minijinja::Environment::new();
        let compiled = env
            .template_from_str(template)
            .expect("result compiles as jinja");
        compiled.render(context).expect("result renders")
    }

    fn positions(haystack: &str, needles: &[&str]) -> Vec<usize> {
        needles
            .iter()
            .map(|needle| {
                assert_eq!(
                    haystack.matches(needle).count(),
                    1,
                    "{needle} once in:\n{haystack}"
                );
                haystack.find(needle).unwrap_or_default()
            })
            .collect()
    }

    #[test]
    fn inline_keeps_a_for_loop_between_table_rows_in_place() {
        let html = "<style>td { padding: 2px }</style>\
            <table>{% for item in cart %}<tr><td>{{ item.name }}</td></tr>{% endfor %}</table>";
        let out = inline_css(html).expect("inlines");
        assert!(
            out.contains(
                "<table>{% for item in cart %}<tr><td style=\"padding: 2px;\">{{ item.name }}</td></tr>{% endfor %}</table>"
            ),
            "{out}"
        );
        let rendered = render(
            &out,
            minijinja::context! { cart => vec![
                minijinja::context! { name => "tea" },
                minijinja::context! { name => "jam" },
            ]},
        );
        assert!(rendered.contains("<tr><td style=\"padding: 2px;\">tea</td></tr><tr><td style=\"padding: 2px;\">jam</td></tr>"), "{rendered}");
    }

    #[test]
    fn inline_keeps_rows_the_author_wrapped_in_tbody() {
        let html = "<table><tbody class=\"b\">{% for r in rows %}<tr><td>{{ r }}</td></tr>{% endfor %}</tbody></table>";
        let out = inline_css(html).expect("inlines");
        assert!(out.contains(html), "{out}");
    }

    #[test]
    fn inline_keeps_expressions_in_href_and_style_attributes() {
        let html = "<style>.btn { padding: 4px }</style>\
            <a class=\"btn\" href=\"{{ item.url }}\" style=\"border: 1px solid {{ brand.color }}\">go</a>";
        let out = inline_css(html).expect("inlines");
        assert!(out.contains("href=\"{{ item.url }}\""), "{out}");
        assert!(
            out.contains("style=\"padding: 4px;border: 1px solid {{ brand.color }}\""),
            "{out}"
        );
    }

    #[test]
    fn inline_moves_an_expression_from_a_style_rule_into_the_attribute() {
        let html = "<style>.btn { color: {{ brand.color }}; }</style><a class=\"btn\">go</a>";
        let out = inline_css(html).expect("inlines");
        assert!(
            out.contains("<a class=\"btn\" style=\"color: {{ brand.color }};\">go</a>"),
            "{out}"
        );
        assert!(
            !out.contains(".btn"),
            "the inlined rule left its <style>: {out}"
        );
        let rendered = render(
            &out,
            minijinja::context! { brand => minijinja::context! { color => "#f60" } },
        );
        assert!(rendered.contains("style=\"color: #f60;\""), "{rendered}");
    }

    #[test]
    fn inline_keeps_a_conditional_attribute_run_together() {
        let html = "<style>.vip { color: gold }</style><a {% if vip %}class=\"vip\"{% endif %} href=\"/x\">go</a>";
        let out = inline_css(html).expect("inlines");
        assert!(
            out.contains("<a {% if vip %}class=\"vip\"{% endif %} href=\"/x\">go</a>"),
            "{out}"
        );
        // A conditional class cannot be inlined: its rule stays in the <style> block.
        assert!(out.contains(".vip"), "{out}");
        let rendered = render(&out, minijinja::context! { vip => true });
        assert!(
            rendered.contains("<a class=\"vip\" href=\"/x\">go</a>"),
            "{rendered}"
        );
    }

    #[test]
    fn inline_merges_a_style_attribute_holding_a_statement() {
        let html = "<style>.x { margin: 0 }</style><p class=\"x\" style=\"{% if dark %}color: white;{% endif %}\">hi</p>";
        let out = inline_css(html).expect("inlines");
        assert!(
            out.contains(
                "<p class=\"x\" style=\"margin: 0;{% if dark %}color: white;{% endif %}\">hi</p>"
            ),
            "{out}"
        );
    }

    #[test]
    fn inline_merges_a_style_attribute_that_is_one_expression() {
        let html = "<style>.x { margin: 0 }</style><p class=\"x\" style=\"{{ styles }}\">a</p><p style=\"{{ styles }}\">b</p>";
        let out = inline_css(html).expect("inlines");
        assert!(out.contains("<p class=\"x\" style=\"margin: 0;{{ styles }}\">a</p><p style=\"{{ styles }}\">b</p>"), "{out}");
    }

    #[test]
    fn inline_keeps_dynamic_element_names_paired() {
        let html =
            "<style>.x { color: red }</style><{{ tag }} class=\"x\">e</{{ tag }}><p>after</p>";
        let out = inline_css(html).expect("inlines");
        assert!(
            out.contains("<{{ tag }} class=\"x\" style=\"color: red;\">e</{{ tag }}><p>after</p>"),
            "{out}"
        );
    }

    #[test]
    fn inline_keeps_quotes_inside_expressions() {
        let html = "<p title=\"{{ \"Hi\" | upper }}\">{{ x | default('a > b') }}</p>";
        let out = inline_css(html).expect("inlines");
        assert_eq!(out.trim(), html);
        let rendered = render(&out, minijinja::context! {});
        assert_eq!(rendered.trim(), "<p title=\"HI\">a > b</p>");
    }

    #[test]
    fn inline_inlines_class_rules() {
        let out = inline_css("<style>.x{color:red}</style><p class=\"x\">a</p>").expect("inlines");
        assert!(
            out.contains("<p class=\"x\" style=\"color: red;\">a</p>"),
            "{out}"
        );
    }

    #[test]
    fn inline_keeps_media_queries_in_a_style_block() {
        let html = "<!DOCTYPE html><html><head><style>.x { color: red } \
            @media (max-width: 600px) { .x { color: {{ brand.mobile }} } }</style></head>\
            <body><p class=\"x\">a</p></body></html>";
        let out = inline_css(html).expect("inlines");
        let style = out
            .split("<style>")
            .nth(1)
            .and_then(|rest| rest.split("</style>").next());
        let style = style.expect("a <style> block is kept");
        assert!(style.contains("@media (max-width: 600px)"), "{out}");
        assert!(style.contains("{{ brand.mobile }}"), "{out}");
        assert!(
            out.contains("<p class=\"x\" style=\"color: red;\">a</p>"),
            "{out}"
        );
    }

    #[test]
    fn inline_keeps_whitespace_control_raw_blocks_and_commented_tags() {
        let html = "<ul>{%- for x in xs -%}<li>{{- x -}}</li>{%- endfor %}</ul>\
            <p>{% raw %}{{ not a tag }} <b>{% endraw %}</p><!-- {{ left alone }} -->";
        let out = inline_css(html).expect("inlines");
        assert_eq!(out.trim(), html);
    }

    #[test]
    fn inline_reports_a_tag_the_inliner_dropped() {
        let html = "<p>a</p>\n<style>/* {{ note }} */ .x { color: red }</style>";
        let err = inline_css(html).expect_err("the css comment is dropped");
        assert_eq!(err.line, Some(2));
        assert!(
            err.message
                .starts_with("css inline: jinja tag `{{ note }}` was dropped"),
            "{err}"
        );
    }

    #[test]
    fn unclosed_jinja_tags_are_reported_with_their_line() {
        let err = inline_css("<p>\n{{ user.name </p>").expect_err("unclosed");
        assert_eq!(err.line, Some(2));
        assert!(
            err.message
                .starts_with("css inline: unclosed jinja tag `{{ user.name"),
            "{err}"
        );
    }

    #[test]
    fn restore_rejects_lost_and_copied_statements() {
        let masked = Masker::new("<p>\n{% if a %}x{% endif %}</p>", Dialect::Mjml)
            .run()
            .expect("masks");
        let lost = masked
            .restore("<p>x</p>")
            .expect_err("placeholders missing");
        assert_eq!(lost.line, Some(2));
        assert_eq!(
            lost.message,
            "mjml: jinja tag `{% if a %}` was dropped by the converter; it cannot stand in this position"
        );
        let err = masked
            .restore(&format!("{0}{0}", masked.text))
            .expect_err("statements copied");
        assert!(err.message.contains("was copied by the converter"), "{err}");
    }

    const CART_MJML: &str = r#"<mjml>
  <mj-body>
    <mj-section>
      <mj-column>
        <mj-text>Hello {{ profile.first_name }}</mj-text>
      </mj-column>
    </mj-section>
    {% for item in cart %}
    <mj-section>
      <mj-column>
        <mj-button href="{{ item.url }}">Buy</mj-button>
      </mj-column>
    </mj-section>
    {% endfor %}
  </mj-body>
</mjml>
"#;

    #[test]
    fn mjml_keeps_jinja_tags_in_order_and_the_result_renders() {
        let html = mjml_to_html(CART_MJML).expect("converts");
        let at = positions(
            &html,
            &[
                "{{ profile.first_name }}",
                "{% for item in cart %}",
                "{{ item.url }}",
                "{% endfor %}",
            ],
        );
        assert!(at.windows(2).all(|pair| pair[0] < pair[1]), "{at:?}");
        assert!(html.contains("href=\"{{ item.url }}\""), "{html}");
        let rendered = render(
            &html,
            minijinja::context! {
                profile => minijinja::context! { first_name => "Ada" },
                cart => vec![
                    minijinja::context! { url => "https://shop.test/1" },
                    minijinja::context! { url => "https://shop.test/2" },
                ],
            },
        );
        assert!(rendered.contains("Hello Ada"), "{rendered}");
        assert!(
            rendered.contains("href=\"https://shop.test/1\""),
            "{rendered}"
        );
        assert!(
            rendered.contains("href=\"https://shop.test/2\""),
            "{rendered}"
        );
        assert_eq!(rendered.matches(">Buy</a>").count(), 2, "{rendered}");
    }

    #[test]
    fn mjml_output_survives_css_inlining() {
        let html = mjml_to_html(CART_MJML).expect("converts");
        let out = inline_css(&html).expect("inlines");
        positions(
            &out,
            &[
                "{{ profile.first_name }}",
                "{% for item in cart %}",
                "{{ item.url }}",
                "{% endfor %}",
            ],
        );
        assert!(
            out.contains("@media only screen and (min-width:480px)"),
            "{out}"
        );
    }

    #[test]
    fn mjml_misplaced_closing_tag_names_its_line() {
        let source = "<mjml>\n<mj-body>\n<mj-section>\n<mj-column>\n<mj-text>{{ a }}</mj-text>\n</mj-section>\n</mj-column>\n</mj-body>\n</mjml>";
        let err = mjml_to_html(source).expect_err("malformed");
        assert_eq!(err.line, Some(6));
        assert_eq!(
            err.message,
            "mjml: unexpected closing tag </mj-section> (expected </mj-column>)"
        );
    }

    #[test]
    fn mjml_parser_errors_map_to_original_lines() {
        let source = "<mjml>\n<mj-body>\n{# a\nmulti-line comment #}\n<mj-section>\n<mj-column><mj-text>\n{{ a }} < b</mj-text>\n</mj-column></mj-section></mj-body></mjml>";
        let err = mjml_to_html(source).expect_err("stray `<`");
        assert_eq!(err.line, Some(7));
        assert_eq!(
            err.message, "mjml: malformed markup: invalid element: invalid name token",
            "{err}"
        );
    }

    #[test]
    fn mjml_parser_errors_name_the_jinja_tag_they_hit() {
        let source = "<mjml><mj-body><mj-section><mj-column>\n<mj-button href={{ url }}>x</mj-button>\n</mj-column></mj-section></mj-body></mjml>";
        let err = mjml_to_html(source).expect_err("unquoted attribute value");
        assert_eq!(err.line, Some(2));
        assert_eq!(
            err.message,
            "mjml: malformed markup: invalid attribute: expected quote mark not 'j' (at jinja tag `{{ url }}`)"
        );
    }

    #[test]
    fn mjml_reports_a_tag_mrml_dropped() {
        let source = "<mjml>\n<mj-body>\n<mj-section {% if wide %}full-width=\"full-width\"{% endif %}>\n\
            <mj-column><mj-text>x</mj-text></mj-column></mj-section></mj-body></mjml>";
        let err = mjml_to_html(source).expect_err("attribute run dropped");
        assert_eq!(err.line, Some(3));
        assert!(
            err.message
                .starts_with("mjml: jinja tag `{% if wide %}` was dropped"),
            "{err}"
        );
    }
}
