//! Links in template source, found once at compile time: the `href` of every
//! `<a>`, `<area>` and VML shape in the HTML part and every URL in the text
//! part. Each is rewritten into a tag that the render fills per recipient, so
//! that tracking a link never parses rendered output.
//!
//! A link written out in full (`href="https://shop.example/sale"`) becomes
//! `{{ __ap[3] }}`: the render writes the tracked or plain URL of link 3.
//! A link built by expressions (`href="{{ item.url }}"`) keeps its source
//! inside `{% filter __ap_track(4) %}…{% endfilter %}`, so the URL is tracked
//! after it renders. Line breaks inside a rewritten span move inside the new
//! tag, so every line keeps its number in errors.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use memchr::{memchr2, memmem};

use super::PartName;
use crate::finish::tracking::url::is_http;

/// The per-recipient object the rewritten tags read: `__ap[N]` is link N,
/// `__ap.top` the hidden block at the top of the body.
pub(crate) const TRACKING_VAR: &str = "__ap";
/// The filter that tracks a link built by expressions.
pub(crate) const TRACK_FILTER: &str = "__ap_track";
/// Templates may not use these names: the rewritten tags own them.
pub(crate) const RESERVED_PREFIX: &str = "__ap";

/// One place in a template where a link is written, numbered by its index
/// in [`super::CompiledTemplate::links`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkSite {
    pub part: PartName,
    pub line: usize,
    pub target: LinkTarget,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkTarget {
    /// A URL written out in the template: entities decoded, line breaks
    /// removed. Always http or https.
    Fixed(String),
    /// A URL built by template expressions, known only when it renders.
    Expression,
}

/// Something about a template that renders but does not do what its author
/// may expect, such as a link left untracked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileWarning {
    pub part: PartName,
    pub line: usize,
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for CompileWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "part {} line {}", self.part, self.line)?;
        if let Some(column) = self.column {
            write!(f, " column {column}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Collects link sites and warnings across the parts of one bundle.
#[derive(Debug, Default)]
pub(crate) struct LinkScan {
    pub sites: Vec<LinkSite>,
    pub warnings: Vec<CompileWarning>,
}

struct Edit {
    span: Range<usize>,
    replacement: String,
}

impl LinkScan {
    /// Rewrites the links of an HTML part and marks the top of its body
    /// with `{{ __ap.top }}`.
    pub fn rewrite_html(&mut self, source: &str) -> String {
        let mut html = HtmlScan {
            src: source,
            bytes: source.as_bytes(),
            body_start: None,
            head_end: None,
            tags: Vec::new(),
        };
        html.run();
        let mut edits = Vec::new();
        for tag in &html.tags {
            if let Some(edit) = self.html_link(source, tag) {
                edits.push(edit);
            }
        }
        let top = html.body_start.or(html.head_end).unwrap_or(0);
        edits.push(Edit {
            span: top..top,
            replacement: format!("{{{{ {TRACKING_VAR}.top }}}}"),
        });
        apply(source, edits)
    }

    /// Rewrites the URLs of a text part. A tag printing a variable whose
    /// name ends in `url` (`{{ item.url }}`) counts as a URL: in plain text
    /// nothing else tells a link from other words.
    pub fn rewrite_text(&mut self, source: &str) -> String {
        let bytes = source.as_bytes();
        let mut edits = Vec::new();
        let mut at = 0;
        while let Some(offset) = memchr2(b'{', b':', &bytes[at..]) {
            let pos = at + offset;
            if bytes[pos] == b'{' {
                let Some(end) = jinja_tag_end(bytes, pos) else {
                    at = pos + 1;
                    continue;
                };
                if source[pos..end].starts_with("{{") && prints_url_variable(&source[pos..end]) {
                    edits.push(self.expression_link(source, PartName::Text, pos..end));
                }
                at = end;
                continue;
            }
            let Some(start) = scheme_start(bytes, pos) else {
                at = pos + 1;
                continue;
            };
            let (span, shape) = text_url_extent(bytes, start);
            at = span.end.max(pos + 1);
            if span.len() <= "https://".len() {
                continue;
            }
            let url = &source[span.clone()];
            match shape {
                UrlShape::Logic => self.warn(
                    PartName::Text,
                    source,
                    span.start,
                    format!("URL `{url}` has `{{% %}}` logic inside, left untracked"),
                ),
                UrlShape::Expression => {
                    edits.push(self.expression_link(source, PartName::Text, span));
                }
                UrlShape::Fixed => {
                    edits.push(self.fixed_link(source, PartName::Text, span, url.to_owned(), None));
                }
            }
        }
        apply(source, edits)
    }

    fn html_link(&mut self, source: &str, tag: &Tag) -> Option<Edit> {
        if tag.notrack {
            return None;
        }
        let href = tag.href.as_ref()?;
        let raw = &source[href.value.clone()];
        if raw.contains("{%") {
            self.warn(
                PartName::Html,
                source,
                href.value.start,
                format!(
                    "link `{}` has `{{% %}}` logic in its href, left untracked",
                    raw.trim()
                ),
            );
            return None;
        }
        if raw.contains("{{") {
            if is_unsubscribe_url(raw) {
                return None;
            }
            let literal = decode_href(&raw[..raw.find("{{").unwrap_or(0)]);
            if !literal.is_empty() && !could_be_http(&literal) {
                self.report_non_http(source, href.value.start, &literal, raw.trim());
                return None;
            }
            let mut edit = self.expression_link(source, PartName::Html, href.value.clone());
            quote_if_bare(&mut edit, href.quote);
            return Some(edit);
        }
        let url = decode_href(raw);
        if !is_http(&url) {
            self.report_non_http(source, href.value.start, &url, &url);
            return None;
        }
        Some(self.fixed_link(
            source,
            PartName::Html,
            href.value.clone(),
            url.into_owned(),
            href.quote,
        ))
    }

    fn fixed_link(
        &mut self,
        source: &str,
        part: PartName,
        span: Range<usize>,
        url: String,
        quote: Option<u8>,
    ) -> Edit {
        let index = self.add_site(source, part, span.start, LinkTarget::Fixed(url));
        let newlines = "\n".repeat(source[span.clone()].matches('\n').count());
        let mut edit = Edit {
            span,
            replacement: format!("{{{{ {TRACKING_VAR}[{index}]{newlines} }}}}"),
        };
        if part == PartName::Html {
            quote_if_bare(&mut edit, quote);
        }
        edit
    }

    fn expression_link(&mut self, source: &str, part: PartName, span: Range<usize>) -> Edit {
        let index = self.add_site(source, part, span.start, LinkTarget::Expression);
        Edit {
            replacement: format!(
                "{{% filter {TRACK_FILTER}({index}) %}}{}{{% endfilter %}}",
                &source[span.clone()]
            ),
            span,
        }
    }

    fn add_site(&mut self, source: &str, part: PartName, at: usize, target: LinkTarget) -> usize {
        self.sites.push(LinkSite {
            part,
            line: line_of(source, at),
            target,
        });
        self.sites.len() - 1
    }

    /// `mailto:`, `tel:`, `sms:` and `#anchors` are left alone quietly;
    /// anything else that is not http(s) is worth a warning.
    fn report_non_http(&mut self, source: &str, at: usize, url: &str, shown: &str) {
        let lower = url.to_ascii_lowercase();
        let quiet = url.is_empty()
            || url.starts_with('#')
            || ["mailto:", "tel:", "sms:"]
                .iter()
                .any(|scheme| lower.starts_with(scheme));
        if quiet {
            return;
        }
        let message = match script_scheme(url) {
            Some(scheme) => format!("`{scheme}` link `{}` left untouched", truncate(shown)),
            None => format!("link `{}` is not http(s), left untracked", truncate(shown)),
        };
        self.warn(PartName::Html, source, at, message);
    }

    fn warn(&mut self, part: PartName, source: &str, at: usize, message: String) {
        self.warnings.push(CompileWarning {
            part,
            line: line_of(source, at),
            column: None,
            message,
        });
    }
}

/// An href written without quotes gets them, so that the tag written in
/// its place stays one attribute value.
fn quote_if_bare(edit: &mut Edit, quote: Option<u8>) {
    if quote.is_none() {
        edit.replacement = format!("\"{}\"", edit.replacement);
    }
}

fn apply(source: &str, mut edits: Vec<Edit>) -> String {
    edits.sort_by_key(|edit| edit.span.start);
    let extra: usize = edits.iter().map(|edit| edit.replacement.len()).sum();
    let mut out = String::with_capacity(source.len() + extra);
    let mut at = 0;
    for edit in edits {
        out.push_str(&source[at..edit.span.start]);
        out.push_str(&edit.replacement);
        at = edit.span.end;
    }
    out.push_str(&source[at..]);
    out
}

fn line_of(source: &str, at: usize) -> usize {
    1 + memchr::memchr_iter(b'\n', &source.as_bytes()[..at]).count()
}

fn truncate(url: &str) -> &str {
    match url.char_indices().nth(60) {
        Some((end, _)) => &url[..end],
        None => url,
    }
}

/// `javascript:`, `data:` or `vbscript:` when `url` has one of these schemes,
/// which run or embed content instead of linking: never tracked, always
/// reported.
pub(crate) fn script_scheme(url: &str) -> Option<&'static str> {
    ["javascript:", "data:", "vbscript:"]
        .into_iter()
        .find(|scheme| {
            url.get(..scheme.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(scheme))
        })
}

/// Whether a literal that an expression continues could still become an
/// http(s) URL: `https://shop.example/p/` or `htt`, but not `mailto:`.
fn could_be_http(literal: &str) -> bool {
    let lower = literal.to_ascii_lowercase();
    ["https://", "http://"]
        .iter()
        .any(|scheme| lower.starts_with(scheme) || scheme.starts_with(lower.as_str()))
}

/// The URL an href holds: entities decoded, and line breaks removed with
/// the indentation around them (editors wrap long URLs that way).
pub(crate) fn decode_href(raw: &str) -> Cow<'_, str> {
    let decoded = html_escape::decode_html_entities(raw.trim());
    if !decoded.contains(['\n', '\r', '\t']) {
        return decoded;
    }
    Cow::Owned(
        decoded
            .split('\n')
            .map(|line| line.trim_matches([' ', '\t', '\r']))
            .collect(),
    )
}

/// `{{ unsubscribe_url }}` carries its own signed token: never tracked.
fn is_unsubscribe_url(raw: &str) -> bool {
    expression_of(raw.trim()).is_some_and(|expr| expr == "unsubscribe_url")
}

/// The expression inside one `{{ … }}` tag, whitespace control removed.
fn expression_of(tag: &str) -> Option<&str> {
    let inner = tag.strip_prefix("{{")?.strip_suffix("}}")?;
    let inner = inner.strip_prefix('-').unwrap_or(inner);
    let inner = inner.strip_suffix('-').unwrap_or(inner);
    (!inner.contains("}}")).then(|| inner.trim())
}

/// `{{ item.url }}`, `{{ product.image_url }}`: a dotted variable path whose
/// last name ends in `url`.
fn prints_url_variable(tag: &str) -> bool {
    let Some(expr) = expression_of(tag) else {
        return false;
    };
    let is_path = !expr.is_empty()
        && expr
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.');
    let last = expr.rsplit('.').next().unwrap_or(expr);
    is_path && last.to_ascii_lowercase().ends_with("url") && expr != "unsubscribe_url"
}

/// Where a Jinja tag (`{{ }}`, `{% %}`, `{# #}`, or a whole
/// `{% raw %}…{% endraw %}` block) starting at `at` ends.
fn jinja_tag_end(bytes: &[u8], at: usize) -> Option<usize> {
    let close: &[u8] = match bytes.get(at..at + 2)? {
        b"{{" => b"}}",
        b"{%" => b"%}",
        b"{#" => b"#}",
        _ => return None,
    };
    let end = memmem::find(&bytes[at + 2..], close).map_or(bytes.len(), |i| at + 2 + i + 2);
    if close == b"%}" && is_raw_open(&bytes[at + 2..end.saturating_sub(2).max(at + 2)]) {
        let endraw = memmem::find(&bytes[end..], b"endraw").map_or(bytes.len(), |i| end + i);
        return Some(memmem::find(&bytes[endraw..], b"%}").map_or(bytes.len(), |i| endraw + i + 2));
    }
    Some(end)
}

fn is_raw_open(inner: &[u8]) -> bool {
    let inner = inner.strip_prefix(b"-").unwrap_or(inner);
    let inner = inner.strip_suffix(b"-").unwrap_or(inner);
    inner.trim_ascii() == b"raw"
}

/// For a `:` at `colon`, where an `http://` or `https://` around it starts.
fn scheme_start(bytes: &[u8], colon: usize) -> Option<usize> {
    if bytes.get(colon + 1..colon + 3) != Some(b"//") {
        return None;
    }
    let start = ["https", "http"].iter().find_map(|scheme| {
        let start = colon.checked_sub(scheme.len())?;
        bytes[start..colon]
            .eq_ignore_ascii_case(scheme.as_bytes())
            .then_some(start)
    })?;
    let at_word_start = start == 0 || !bytes[start - 1].is_ascii_alphanumeric();
    at_word_start.then_some(start)
}

enum UrlShape {
    Fixed,
    Expression,
    Logic,
}

/// A URL in plain text runs to whitespace or a character that cannot be in
/// one; `{{ … }}` tags inside it are part of it. Trailing punctuation is the
/// sentence's, not the URL's.
fn text_url_extent(bytes: &[u8], start: usize) -> (Range<usize>, UrlShape) {
    let mut shape = UrlShape::Fixed;
    let mut end = start;
    while end < bytes.len() {
        match bytes[end] {
            b'{' if bytes.get(end + 1) == Some(&b'{') => {
                end = jinja_tag_end(bytes, end).unwrap_or(bytes.len());
                shape = UrlShape::Expression;
            }
            b'{' if matches!(bytes.get(end + 1), Some(b'%' | b'#')) => {
                if bytes.get(end + 1) == Some(&b'%') {
                    shape = UrlShape::Logic;
                }
                break;
            }
            b if b.is_ascii_whitespace() || matches!(b, b'<' | b'>' | b'"' | b'`') => break,
            _ => end += 1,
        }
    }
    while end > start {
        let last = bytes[end - 1];
        let unbalanced_paren = last == b')'
            && bytes[start..end].iter().filter(|&&b| b == b'(').count()
                < bytes[start..end].iter().filter(|&&b| b == b')').count();
        if matches!(last, b'.' | b',' | b';' | b':' | b'!' | b'?' | b'\'' | b']')
            || unbalanced_paren
        {
            end -= 1;
        } else {
            break;
        }
    }
    (start..end, shape)
}

struct Href {
    value: Range<usize>,
    quote: Option<u8>,
}

/// A tag that can carry a tracked link.
struct Tag {
    href: Option<Href>,
    notrack: bool,
}

/// A forgiving scan of HTML with Jinja tags in it: it only needs tag names
/// and attributes, and treats every Jinja tag as opaque.
struct HtmlScan<'a> {
    src: &'a str,
    bytes: &'a [u8],
    body_start: Option<usize>,
    head_end: Option<usize>,
    tags: Vec<Tag>,
}

impl HtmlScan<'_> {
    fn run(&mut self) {
        let bytes = self.bytes;
        let mut at = 0;
        while let Some(offset) = memchr2(b'<', b'{', &bytes[at..]) {
            let pos = at + offset;
            at = if bytes[pos] == b'{' {
                jinja_tag_end(bytes, pos).unwrap_or(pos + 1)
            } else {
                self.markup(pos)
            };
        }
    }

    /// Handles the markup at a `<`, returning where to go on.
    fn markup(&mut self, pos: usize) -> usize {
        let bytes = self.bytes;
        let rest = &bytes[pos..];
        if rest.starts_with(b"<!--") {
            // Outlook's conditional comments hold markup (VML buttons) that
            // Outlook renders: scan inside them.
            if rest[4..].starts_with(b"[if") {
                return pos + 4;
            }
            return memmem::find(&bytes[pos + 2..], b"-->")
                .map_or(bytes.len(), |i| pos + 2 + i + 3);
        }
        if rest.starts_with(b"</") {
            if self.head_end.is_none() && starts_with_name(&rest[2..], b"head") {
                self.head_end = Some(pos);
            }
            return pos + 2;
        }
        if rest.get(1).is_some_and(u8::is_ascii_alphabetic) {
            return self.tag(pos);
        }
        pos + 1
    }

    fn tag(&mut self, pos: usize) -> usize {
        let bytes = self.bytes;
        let name_end = pos
            + 1
            + bytes[pos + 1..]
                .iter()
                .position(|b| b.is_ascii_whitespace() || matches!(b, b'/' | b'>' | b'{'))
                .unwrap_or(bytes.len() - pos - 1);
        let name = &self.src[pos + 1..name_end];
        let links = name.eq_ignore_ascii_case("a")
            || name.eq_ignore_ascii_case("area")
            || name.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("v:"));
        let mut tag = Tag {
            href: None,
            notrack: false,
        };
        let mut at = name_end;
        let end = loop {
            let Some(&b) = bytes.get(at) else {
                break bytes.len();
            };
            if b == b'>' {
                break at + 1;
            }
            if b.is_ascii_whitespace() || b == b'/' {
                at += 1;
                continue;
            }
            if let Some(tag_end) = jinja_tag_end(bytes, at) {
                at = tag_end;
                continue;
            }
            at = self.attribute(at, links.then_some(&mut tag));
        };
        if name.eq_ignore_ascii_case("body") && self.body_start.is_none() {
            self.body_start = Some(end);
        }
        for raw_text in ["style", "script"] {
            if name.eq_ignore_ascii_case(raw_text) {
                let close = format!("</{raw_text}");
                return find_ignore_case(&bytes[end..], close.as_bytes())
                    .map_or(bytes.len(), |i| end + i);
            }
        }
        if links {
            self.tags.push(tag);
        }
        end
    }

    /// Reads one attribute at `at`, recording it in `tag` when it matters.
    fn attribute(&mut self, at: usize, tag: Option<&mut Tag>) -> usize {
        let bytes = self.bytes;
        let mut end = at;
        while let Some(&b) = bytes.get(end) {
            let jinja = b == b'{' && matches!(bytes.get(end + 1), Some(b'{' | b'%' | b'#'));
            if b.is_ascii_whitespace() || matches!(b, b'=' | b'>' | b'/') || (jinja && end > at) {
                break;
            }
            end += 1;
        }
        let name = &self.src[at..end];
        let mut next = skip_whitespace(bytes, end);
        let mut value = None;
        if bytes.get(next) == Some(&b'=') {
            let start = skip_whitespace(bytes, next + 1);
            let (range, quote, after) = attribute_value(bytes, start);
            value = Some(Href {
                value: range,
                quote,
            });
            next = after;
        } else {
            next = end.max(at + 1);
        }
        if let Some(tag) = tag {
            if name.eq_ignore_ascii_case("href") && tag.href.is_none() {
                tag.href = value;
            } else if name.eq_ignore_ascii_case("data-notrack") {
                tag.notrack = true;
            }
        }
        next
    }
}

/// An attribute value at `start`: its range, its quote, and where the
/// attribute ends. Jinja tags inside are opaque, so quotes in them do not
/// end the value.
fn attribute_value(bytes: &[u8], start: usize) -> (Range<usize>, Option<u8>, usize) {
    let quote = match bytes.get(start) {
        Some(&q @ (b'"' | b'\'')) => Some(q),
        _ => None,
    };
    let mut at = start + usize::from(quote.is_some());
    let value_start = at;
    while let Some(&b) = bytes.get(at) {
        if let Some(end) = jinja_tag_end(bytes, at) {
            at = end;
            continue;
        }
        let ends = match quote {
            Some(q) => b == q,
            None => b.is_ascii_whitespace() || b == b'>',
        };
        if ends {
            break;
        }
        at += 1;
    }
    let value_end = at.min(bytes.len());
    let after = if quote.is_some() && at < bytes.len() {
        at + 1
    } else {
        at
    };
    (value_start..value_end, quote, after)
}

fn skip_whitespace(bytes: &[u8], mut at: usize) -> usize {
    while bytes.get(at).is_some_and(u8::is_ascii_whitespace) {
        at += 1;
    }
    at
}

fn starts_with_name(rest: &[u8], name: &[u8]) -> bool {
    rest.get(..name.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(name))
        && rest
            .get(name.len())
            .is_none_or(|b| b.is_ascii_whitespace() || *b == b'>' || *b == b'/')
}

fn find_ignore_case(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let first = needle[0];
    let mut at = 0;
    while let Some(offset) = memchr2(first, first.to_ascii_uppercase(), &haystack[at..]) {
        let pos = at + offset;
        if haystack
            .get(pos..pos + needle.len())
            .is_some_and(|window| window.eq_ignore_ascii_case(needle))
        {
            return Some(pos);
        }
        at = pos + 1;
    }
    None
}

#[cfg(test)]
mod tests;
