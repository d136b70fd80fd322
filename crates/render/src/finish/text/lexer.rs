//! The tokenizer behind [`super::html_to_text`]: start tags, end tags and
//! text, following the HTML tokenizer and `lol_html` 3's tree-builder rules.

use memchr::{memchr, memchr2, memmem};

use super::Converter;

/// A start tag as the converter sees it; slices of the input.
pub(super) struct StartTag<'h> {
    pub(super) html: &'h str,
    /// [`hash`] of the name: equal to `tag::x` exactly when the name is `x`
    /// in any case.
    pub(super) name: u64,
    pub(super) attrs: &'h [Attr],
    pub(super) can_have_content: bool,
}

#[derive(Clone, Copy)]
pub(super) struct Attr {
    pub(super) name: (usize, usize),
    /// Without the quotes; `None` for `<div hidden>`.
    pub(super) value: Option<(usize, usize)>,
}

impl StartTag<'_> {
    fn find(&self, name: &str) -> Option<&Attr> {
        self.attrs
            .iter()
            .find(|a| self.html[a.name.0..a.name.1].eq_ignore_ascii_case(name))
    }

    /// The first attribute of that name, entities not decoded.
    pub(super) fn attribute(&self, name: &str) -> Option<&str> {
        self.find(name).map(|attr| self.value(attr))
    }

    pub(super) fn value(&self, attr: &Attr) -> &str {
        let value = attr.value.map_or("", |(s, e)| &self.html[s..e]);
        // As `lol_html` read values (BOM sniffing of `Encoding::decode`).
        value.strip_prefix('\u{FEFF}').unwrap_or(value)
    }
}

/// Tag-name hash of `lol_html` (`LocalNameHash`), which decides what its
/// parser treats as the same tag: 5 bits a character for `a-z` (any case)
/// and `1-6`; another character, or no room left, gives [`NO_HASH`], and such
/// names compare as bytes, ignoring ASCII case.
pub(super) const fn hash(name: &[u8]) -> u64 {
    let mut h = 0;
    let mut i = 0;
    while i < name.len() {
        h = hash_step(h, name[i]);
        i += 1;
    }
    h
}

pub(super) const fn hash_step(h: u64, ch: u8) -> u64 {
    if h >> 59 != 0 {
        // Full, or already `NO_HASH`.
        return NO_HASH;
    }
    let code = match ch {
        b'a'..=b'z' | b'A'..=b'Z' => (ch & 0x1F) + 5,
        b'1'..=b'6' => (ch & 0x0F) - 1,
        _ => return NO_HASH,
    };
    (h << 5) | code as u64
}

pub(super) const NO_HASH: u64 = !0;

macro_rules! tag_hashes {
    ($($name:ident),* $(,)?) => {
        #[allow(non_upper_case_globals)]
        pub(super) mod tag {
            $(pub const $name: u64 = super::hash(stringify!($name).as_bytes());)*
        }
    };
}

tag_hashes! {
    a, address, area, article, aside, b, base, basefont, bgsound, big, blockquote, body, br,
    caption, center, code, col, dd, desc, details, div, dl, dt, em, embed, fieldset, figcaption,
    figure, font, footer, foreignObject, form, h1, h2, h3, h4, h5, h6, head, header, hr, i, iframe,
    img, input, keygen, li, link, listing, main, math, menu, meta, mi, mn, mo, ms, mtext, nav, nobr,
    noembed, noframes, noscript, ol, p, param, plaintext, pre, ruby, s, script, section, small,
    source, span, strike, strong, style, sub, summary, sup, svg, table, tbody, td, template,
    textarea, tfoot, th, thead, title, tr, track, tt, u, ul, var, wbr, xmp,
}

/// Void elements: never have content, nor an end tag.
pub(super) fn is_void(h: u64) -> bool {
    is_tag! { h,
        area | base | basefont | bgsound | br | col | embed | hr | img | input | keygen | link
        | meta | param | source | track | wbr
    }
}

/// Elements whose text is raw, up to their end tag (`<script>` aside).
pub(super) fn is_raw_text(h: u64) -> bool {
    is_tag! { h, textarea | title | style | iframe | xmp | noembed | noframes | noscript }
}

/// HTML elements that end SVG or MathML content when they start in it.
pub(super) fn leaves_foreign_content(h: u64) -> bool {
    is_tag! { h,
        b | big | blockquote | body | br | center | code | dd | div | dl | dt | em | embed | h1
        | h2 | h3 | h4 | h5 | h6 | head | hr | i | img | li | listing | menu | meta | nobr | ol
        | p | pre | ruby | s | small | span | strong | strike | sub | sup | table | tt | u | ul
        | var
    }
}

/// Which tokenizer state reads the input after a tag (`lol_html` picks it
/// from the text type of the element just opened).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Text and markup.
    Markup,
    /// `<title>`, `<textarea>`, `<style>`, `<xmp>`, `<iframe>`, `<noembed>`,
    /// `<noframes>`, `<noscript>`: text up to the element's own end tag.
    RawText,
    /// `<script>`: the same, with the escapes of the script data states.
    Script,
    /// Everything after `<plaintext>`.
    PlainText,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Namespace {
    Html,
    Svg,
    MathMl,
}

/// An element on the stack of open elements.
pub(super) struct Open {
    hash: u64,
    name: (usize, usize),
    /// Depth of the converter frame it opened.
    frame: Option<usize>,
}

pub(super) enum EndTagScan {
    /// `</name` ends at this index, before whitespace, `/` or `>`.
    Found(usize),
    /// Not the end tag: go on reading the text at this index.
    Resume(usize),
    Eof,
}

pub(super) struct Lexer<'h> {
    html: &'h str,
    bytes: &'h [u8],
    mode: Mode,
    /// Whether the text being read is shown: `lol_html`'s `Data` text type,
    /// false in raw text (and in markup read after `<style a=>`, until the
    /// next tag).
    shown: bool,
    cdata_allowed: bool,
    last_start_tag: u64,
    /// Namespaces entered (`<svg>`, `<math>`, their HTML integration
    /// points); never empty, HTML at the bottom.
    namespaces: Vec<Namespace>,
    open: Vec<Open>,
    /// Open elements by name hash modulo 64, so that an end tag matching
    /// none (`</p>` after `<p>` closed implicitly) rarely searches `open`.
    open_by_bucket: [u32; 64],
    attrs: Vec<Attr>,
}

pub(super) fn bucket(hash: u64) -> usize {
    (hash % 64) as usize
}

pub(super) fn is_space(ch: u8) -> bool {
    matches!(ch, b' ' | b'\n' | b'\r' | b'\t' | b'\x0C')
}

/// Whether `bytes` are all HTML whitespace; fast on indentation.
pub(super) fn all_space(bytes: &[u8]) -> bool {
    let mut i = 0;
    while i < bytes.len() {
        if starts_with_8_spaces(&bytes[i..]) {
            i += 8;
        } else if is_space(bytes[i]) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

pub(super) fn starts_with_8_spaces(bytes: &[u8]) -> bool {
    bytes
        .first_chunk::<8>()
        .is_some_and(|chunk| u64::from_ne_bytes(*chunk) == u64::from_ne_bytes([b' '; 8]))
}

/// Index of the first byte from `from` on that matches.
pub(super) fn find(bytes: &[u8], from: usize, matches: impl Fn(u8) -> bool) -> Option<usize> {
    let offset = bytes.get(from..)?.iter().position(|&ch| matches(ch))?;
    Some(from + offset)
}

pub(super) fn ends_attribute_name(ch: u8) -> bool {
    matches!(
        ch,
        b' ' | b'\n' | b'\r' | b'\t' | b'\x0C' | b'=' | b'/' | b'>'
    )
}

impl<'h> Lexer<'h> {
    pub(super) fn new(html: &'h str) -> Self {
        Self {
            html,
            bytes: html.as_bytes(),
            mode: Mode::Markup,
            shown: true,
            cdata_allowed: false,
            last_start_tag: 0,
            namespaces: vec![Namespace::Html],
            open: Vec::new(),
            open_by_bucket: [0; 64],
            attrs: Vec::new(),
        }
    }

    pub(super) fn run(mut self, out: &mut Converter) {
        let mut pos = 0;
        loop {
            let next = match self.mode {
                Mode::Markup => self.markup(out, pos),
                Mode::RawText => self.raw_text(out, pos),
                Mode::Script => self.script(out, pos),
                Mode::PlainText => None,
            };
            let Some(next) = next else {
                return;
            };
            debug_assert!(next > pos && next <= self.bytes.len());
            pos = next;
        }
    }

    /// Text ahead of the next markup, or of the end: converts it and the
    /// markup. Returns where reading goes on (`None` at the end).
    fn markup(&mut self, out: &mut Converter, text_start: usize) -> Option<usize> {
        let bytes = self.bytes;
        let mut search = text_start;
        loop {
            // Tags often follow each other directly.
            let next = if bytes.get(search) == Some(&b'<') {
                Some(0)
            } else {
                memchr(b'<', &bytes[search..])
            };
            let Some(offset) = next else {
                self.text(out, text_start, bytes.len());
                return None;
            };
            let lt = search + offset;
            let at = |i: usize| bytes.get(i).copied();
            // Where the markup ends; `None`: it runs to the end and is dropped.
            let end = match at(lt + 1) {
                None => {
                    self.text(out, text_start, bytes.len());
                    return None;
                }
                Some(ch) if ch.is_ascii_alphabetic() => {
                    self.text(out, text_start, lt);
                    return self.start_tag(out, lt);
                }
                Some(b'/') => match at(lt + 2) {
                    None => {
                        self.text(out, text_start, bytes.len());
                        return None;
                    }
                    Some(ch) if ch.is_ascii_alphabetic() => {
                        self.text(out, text_start, lt);
                        let (name_end, h) = self.name(lt + 2)?;
                        return self.end_tag(out, lt, name_end, h);
                    }
                    Some(b'>') => Some(lt + 3),
                    Some(_) => bogus_comment_end(bytes, lt + 2),
                },
                Some(b'?') => bogus_comment_end(bytes, lt + 2),
                Some(b'!') => {
                    let decl = &bytes[lt + 2..];
                    if decl.starts_with(b"--") {
                        comment_end(bytes, lt)
                    } else if decl
                        .get(..7)
                        .is_some_and(|d| d.eq_ignore_ascii_case(b"DOCTYPE"))
                    {
                        memchr(b'>', &decl[7..]).map(|gt| lt + 2 + 7 + gt + 1)
                    } else if self.cdata_allowed && decl.starts_with(b"[CDATA[") {
                        // Text of a CDATA section in SVG or MathML is not shown.
                        self.text(out, text_start, lt);
                        let end = memmem::find(&decl[7..], b"]]>")?;
                        self.shown = true;
                        return Some(lt + 2 + 7 + end + 3);
                    } else {
                        bogus_comment_end(bytes, lt + 2)
                    }
                }
                // A `<` that starts nothing is text.
                Some(_) => {
                    search = lt + 1;
                    continue;
                }
            };
            self.text(out, text_start, lt);
            return end;
        }
    }

    fn text(&self, out: &mut Converter, start: usize, end: usize) {
        if self.shown && start < end {
            out.text(&self.html[start..end]);
        }
    }

    /// End and [`hash`] of a tag name starting at `start` (`None`: unfinished
    /// at the end).
    fn name(&self, start: usize) -> Option<(usize, u64)> {
        let mut h = 0;
        for (i, &ch) in self.bytes.get(start..)?.iter().enumerate() {
            if is_space(ch) || ch == b'/' || ch == b'>' {
                return Some((start + i, h));
            }
            h = hash_step(h, ch);
        }
        None
    }

    fn start_tag(&mut self, out: &mut Converter, lt: usize) -> Option<usize> {
        let (name_end, h) = self.name(lt + 1)?;
        let name = (lt + 1, name_end);
        let tag = self.tag_rest(name.1, true)?;
        let mode = self.start_tag_feedback(h, name, tag.self_closing);
        self.shown = mode == Mode::Markup;
        // `lol_html` quirk: after `<style a=>` it reads markup, though the
        // text up to the next tag is still raw (not shown).
        self.mode = if tag.attribute_value_missing {
            Mode::Markup
        } else {
            mode
        };
        self.last_start_tag = h;

        let can_have_content = if self.namespace() == Namespace::Html {
            !is_void(h)
        } else {
            !tag.self_closing
        };
        let frame = out.start(&StartTag {
            html: self.html,
            name: h,
            attrs: &self.attrs,
            can_have_content,
        });
        if can_have_content {
            self.open_by_bucket[bucket(h)] += 1;
            self.open.push(Open {
                hash: h,
                name,
                frame,
            });
        }
        Some(tag.end)
    }

    fn end_tag(
        &mut self,
        out: &mut Converter,
        lt: usize,
        name_end: usize,
        h: u64,
    ) -> Option<usize> {
        let name = (lt + 2, name_end);
        let tag = self.tag_rest(name_end, false)?;
        self.end_tag_feedback(h, name);
        self.mode = Mode::Markup;
        self.shown = true;

        let bytes = self.bytes;
        let same = |open: &Open| {
            if h == NO_HASH {
                open.hash == NO_HASH
                    && bytes[open.name.0..open.name.1].eq_ignore_ascii_case(&bytes[name.0..name.1])
            } else {
                open.hash == h
            }
        };
        if self.open_by_bucket[bucket(h)] == 0 {
            return Some(tag.end);
        }
        if let Some(index) = self.open.iter().rposition(same) {
            for open in self.open.drain(index..).rev() {
                self.open_by_bucket[bucket(open.hash)] -= 1;
                if let Some(depth) = open.frame {
                    out.end(depth);
                }
            }
        }
        Some(tag.end)
    }

    /// Attributes and end of a tag whose name ends at `i`, as
    /// `lol_html`'s attribute states read them; `None`: unfinished at the
    /// end of the input, so dropped. Attributes of start tags go to
    /// `self.attrs`.
    fn tag_rest(&mut self, mut i: usize, start: bool) -> Option<TagEnd> {
        let bytes = self.bytes;
        self.attrs.clear();
        let mut attribute = |name: (usize, usize), value: Option<(usize, usize)>| {
            if start {
                self.attrs.push(Attr { name, value });
            }
        };
        let end = |end: usize, self_closing: bool, attribute_value_missing: bool| {
            Some(TagEnd {
                end,
                self_closing,
                attribute_value_missing,
            })
        };
        // Each turn starts "before an attribute name" at `i`.
        loop {
            i = find(bytes, i, |ch| !is_space(ch))?;
            let ch = bytes[i];
            if ch == b'>' {
                return end(i + 1, false, false);
            }
            if ch == b'/' {
                // `/>` closes a self-closing tag; any other character after
                // `/` is read again as if the `/` were a space.
                match *bytes.get(i + 1)? {
                    b'>' => return end(i + 2, true, false),
                    _ => {
                        i += 1;
                        continue;
                    }
                }
            }
            // An attribute name: anything up to a space, `=`, `/` or `>`
            // (so `<a "=x>` has an attribute `"`).
            let name_start = i;
            i = find(bytes, i + 1, ends_attribute_name)?;
            let name = (name_start, i);
            i = find(bytes, i, |ch| !is_space(ch))?;
            if bytes[i] != b'=' {
                // No value: `/` and `>` are read again, another character
                // starts the next name.
                attribute(name, None);
                continue;
            }
            i = find(bytes, i + 1, |ch| !is_space(ch))?;
            match bytes[i] {
                quote @ (b'"' | b'\'') => {
                    let close = i + 1 + memchr(quote, &bytes[i + 1..])?;
                    attribute(name, Some((i + 1, close)));
                    i = close + 1;
                }
                b'>' => {
                    attribute(name, None);
                    return end(i + 1, false, true);
                }
                _ => {
                    let value_start = i;
                    i = find(bytes, i, |ch| is_space(ch) || ch == b'>')?;
                    attribute(name, Some((value_start, i)));
                    if bytes[i] == b'>' {
                        return end(i + 1, false, false);
                    }
                    i += 1;
                }
            }
        }
    }

    fn namespace(&self) -> Namespace {
        self.namespaces.last().copied().unwrap_or(Namespace::Html)
    }

    fn enter(&mut self, namespace: Namespace) {
        self.namespaces.push(namespace);
        self.cdata_allowed = namespace != Namespace::Html;
    }

    fn leave(&mut self) {
        if self.namespaces.len() > 1 {
            self.namespaces.pop();
        }
        self.cdata_allowed = self.namespace() != Namespace::Html;
    }

    fn name_is(&self, name: (usize, usize), lowercase: &str) -> bool {
        self.bytes[name.0..name.1].eq_ignore_ascii_case(lowercase.as_bytes())
    }

    /// `lol_html`'s tree-builder simulation for a start tag: namespaces and
    /// the text type that follows.
    fn start_tag_feedback(&mut self, h: u64, name: (usize, usize), self_closing: bool) -> Mode {
        let namespace = self.namespace();
        if h == tag::svg {
            self.enter(Namespace::Svg);
        } else if h == tag::math {
            self.enter(Namespace::MathMl);
        } else if namespace == Namespace::Html {
            return if h == tag::plaintext {
                Mode::PlainText
            } else if h == tag::script {
                Mode::Script
            } else if is_raw_text(h) {
                Mode::RawText
            } else {
                Mode::Markup
            };
        } else if leaves_foreign_content(h) {
            self.leave();
        } else if (namespace == Namespace::Svg && is_tag! { h, desc | title | foreignObject })
            || (namespace == Namespace::MathMl && is_tag! { h, mi | mo | mn | ms | mtext })
        {
            if !self_closing {
                self.enter(Namespace::Html);
            }
        } else if h == tag::font {
            let leaves = self.attrs.iter().any(|a| {
                ["color", "size", "face"]
                    .iter()
                    .any(|n| self.name_is(a.name, n))
            });
            if leaves {
                self.leave();
            }
        } else if h == NO_HASH
            && namespace == Namespace::MathMl
            && !self_closing
            && self.name_is(name, "annotation-xml")
        {
            let html = self.attrs.iter().any(|a| {
                self.name_is(a.name, "encoding")
                    && a.value.is_some_and(|v| {
                        self.name_is(v, "text/html") || self.name_is(v, "application/xhtml+xml")
                    })
            });
            if html {
                self.enter(Namespace::Html);
            }
        }
        Mode::Markup
    }

    fn end_tag_feedback(&mut self, h: u64, name: (usize, usize)) {
        let namespace = self.namespace();
        if namespace == Namespace::Html {
            let depth = self.namespaces.len();
            if depth < 2 {
                return;
            }
            let outer = self.namespaces[depth - 2];
            if (outer == Namespace::MathMl && is_tag! { h, mi | mo | mn | ms | mtext })
                || (outer == Namespace::Svg && is_tag! { h, desc | title | foreignObject })
                || (h == NO_HASH
                    && outer == Namespace::MathMl
                    && self.name_is(name, "annotation-xml"))
            {
                self.leave();
            }
        } else if (namespace == Namespace::Svg && h == tag::svg)
            || (namespace == Namespace::MathMl && h == tag::math)
            || is_tag! { h, p | br }
        {
            self.leave();
        }
    }

    /// Raw text (not shown) up to the element's end tag, which is then read.
    fn raw_text(&mut self, out: &mut Converter, mut i: usize) -> Option<usize> {
        let bytes = self.bytes;
        loop {
            let lt = i + memchr(b'<', &bytes[i..])?;
            if *bytes.get(lt + 1)? != b'/' {
                i = lt + 1;
                continue;
            }
            match self.end_tag_scan(lt) {
                EndTagScan::Found(name_end) => {
                    return self.end_tag(out, lt, name_end, self.last_start_tag);
                }
                EndTagScan::Resume(next) => i = next,
                EndTagScan::Eof => return None,
            }
        }
    }

    /// Script text up to `</script>`, which is then read; `<!--` escapes as
    /// in the script data states of the HTML tokenizer.
    fn script(&mut self, out: &mut Converter, mut i: usize) -> Option<usize> {
        #[derive(Clone, Copy, PartialEq, Eq)]
        enum State {
            Data,
            Escaped,
            EscapedDashDash,
            EscapedLessThan,
            DoubleEscapedStart,
            DoubleEscaped,
            DoubleEscapedDashDash,
            DoubleEscapedLessThan,
            DoubleEscapedEndName,
            DoubleEscapedEnd,
        }
        use State::*;
        let bytes = self.bytes;
        let at = |i: usize| bytes.get(i).copied();
        let is_script = |i: usize| {
            bytes
                .get(i..i + 6)
                .is_some_and(|name| name.eq_ignore_ascii_case(b"script"))
        };
        let ends_name = |ch: u8| is_space(ch) || ch == b'/' || ch == b'>';
        let mut state = Data;
        // Each arm reads the character at `i` and gives the next position
        // and state; keeping `i` hands the character to the next state.
        loop {
            (i, state) = match state {
                Data => {
                    let lt = i + memchr(b'<', &bytes[i..])?;
                    match at(lt + 1)? {
                        b'/' => match self.end_tag_scan(lt) {
                            EndTagScan::Found(end) => {
                                return self.end_tag(out, lt, end, self.last_start_tag);
                            }
                            EndTagScan::Resume(next) => (next, Data),
                            EndTagScan::Eof => return None,
                        },
                        b'!' if bytes[lt + 2..].starts_with(b"--") => (lt + 4, EscapedDashDash),
                        b'!' => (lt + 2, Data),
                        _ => (lt + 1, Data),
                    }
                }
                Escaped | DoubleEscaped => {
                    let double = state == DoubleEscaped;
                    let j = i + memchr2(b'-', b'<', &bytes[i..])?;
                    match (bytes[j], at(j + 1), double) {
                        (b'<', _, false) => (j + 1, EscapedLessThan),
                        (b'<', _, true) => (j + 1, DoubleEscapedLessThan),
                        (_, Some(b'-'), false) => (j + 2, EscapedDashDash),
                        (_, Some(b'-'), true) => (j + 2, DoubleEscapedDashDash),
                        _ => (j + 1, state),
                    }
                }
                EscapedDashDash | DoubleEscapedDashDash => {
                    let double = state == DoubleEscapedDashDash;
                    match (at(i)?, double) {
                        (b'-', _) => (i + 1, state),
                        (b'<', false) => (i + 1, EscapedLessThan),
                        (b'<', true) => (i + 1, DoubleEscapedLessThan),
                        (b'>', _) => (i, Data),
                        (_, false) => (i + 1, Escaped),
                        (_, true) => (i + 1, DoubleEscaped),
                    }
                }
                EscapedLessThan if is_script(i) => (i + 6, DoubleEscapedStart),
                EscapedLessThan if at(i)? == b'/' => match self.end_tag_scan(i - 1) {
                    EndTagScan::Found(end) => {
                        return self.end_tag(out, i - 1, end, self.last_start_tag);
                    }
                    EndTagScan::Resume(next) => (next, Escaped),
                    EndTagScan::Eof => return None,
                },
                EscapedLessThan => (i, Escaped),
                DoubleEscapedStart if ends_name(at(i)?) => (i + 1, DoubleEscaped),
                DoubleEscapedStart => (i, Escaped),
                DoubleEscapedLessThan if at(i)? == b'/' => (i + 1, DoubleEscapedEndName),
                DoubleEscapedLessThan => (i, DoubleEscaped),
                DoubleEscapedEndName if is_script(i) => (i + 6, DoubleEscapedEnd),
                DoubleEscapedEndName => (at(i).map(|_| i)?, DoubleEscaped),
                DoubleEscapedEnd if ends_name(at(i)?) => (i + 1, Escaped),
                DoubleEscapedEnd => (i, DoubleEscaped),
            };
        }
    }

    /// At `</`: whether the end tag of the raw text element starts here.
    fn end_tag_scan(&self, lt: usize) -> EndTagScan {
        let bytes = self.bytes;
        let start = lt + 2;
        match bytes.get(start) {
            None => return EndTagScan::Eof,
            Some(ch) if ch.is_ascii_alphabetic() => {}
            Some(_) => return EndTagScan::Resume(start),
        }
        let len = bytes[start..]
            .iter()
            .position(|ch| !ch.is_ascii_alphabetic())
            .unwrap_or(bytes.len() - start);
        let end = start + len;
        match bytes.get(end) {
            None => EndTagScan::Eof,
            Some(&ch)
                if (is_space(ch) || ch == b'/' || ch == b'>')
                    && hash(&bytes[start..end]) == self.last_start_tag =>
            {
                EndTagScan::Found(end)
            }
            Some(_) => EndTagScan::Resume(end),
        }
    }
}

pub(super) struct TagEnd {
    /// Index after the `>`.
    end: usize,
    self_closing: bool,
    /// `<a b=>`.
    attribute_value_missing: bool,
}

/// Index after a bogus comment (`<?...>`, `<!...>`, `</ ...>`) whose text
/// starts at `from`.
pub(super) fn bogus_comment_end(bytes: &[u8], from: usize) -> Option<usize> {
    memchr(b'>', &bytes[from..]).map(|gt| from + gt + 1)
}

/// Index after the comment opened by `<!--` at `lt`: the first `-->` or
/// `--!>` after the opener, or `<!-->`, `<!--->`.
pub(super) fn comment_end(bytes: &[u8], lt: usize) -> Option<usize> {
    let body = lt + 4;
    let rest = &bytes[body.min(bytes.len())..];
    if rest.starts_with(b">") {
        return Some(body + 1);
    }
    if rest.starts_with(b"->") {
        return Some(body + 2);
    }
    let mut i = 0;
    loop {
        let dash = i + memchr(b'-', &rest[i..])?;
        match rest.get(dash + 1..dash + 4) {
            Some([b'-', b'>', _]) => return Some(body + dash + 3),
            Some(b"-!>") => return Some(body + dash + 4),
            None if rest.get(dash + 1..) == Some(b"->") => return Some(body + dash + 3),
            _ => i = dash + 1,
        }
    }
}
