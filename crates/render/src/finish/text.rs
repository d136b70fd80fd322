//! Plain-text part: derives a readable `text/plain` body from the rendered HTML
//! when a template has none.
//!
//! The HTML is walked with `lol_html`'s streaming parser (no DOM is built), so
//! the cost is one pass over the input plus the text that is kept.

use std::cell::RefCell;
use std::rc::Rc;

use lol_html::html_content::{Element, TextChunk, TextType};
use lol_html::{HtmlRewriter, Settings, doc_text, element};

/// Plain-text rendering of an HTML email body: readable, no tags, links kept as `text (url)`.
///
/// - `<head>`, `<style>`, `<script>`, `<title>`, `<template>`, comments (so
///   Outlook `<!--[if mso]>` blocks) and elements hidden with `display:none`,
///   `visibility:hidden` or the `hidden` attribute (the preheader) are dropped.
/// - Entities are decoded; whitespace collapses as in a browser (`&nbsp;`
///   counts as a space, zero-width characters vanish; `<pre>` keeps it).
/// - Block elements end the line; paragraphs, headings and lists are set off
///   by one blank line, never more. `<li>` starts with `- `; cells of one
///   table row stay on one line, two spaces apart.
/// - `<a href="u">t</a>` becomes `t (u)`, or just `t` when `t` is the URL or
///   the `mailto:`/`tel:` target; a link without text shows the `alt` of its
///   image in place of the text, else the bare URL. An `<img>` elsewhere
///   shows its `alt`.
///
/// The result is trimmed, its lines right-trimmed, with `\n` line endings.
#[must_use]
pub fn html_to_text(html: &str) -> String {
    let state = Rc::new(RefCell::new(Converter::new(html.len())));
    {
        let on_element = Rc::clone(&state);
        let on_text = Rc::clone(&state);
        let settings = Settings::new()
            // Strict mode refuses input whose text type it cannot tell without a
            // DOM (e.g. `<select><script>`); here best effort beats no text part.
            .with_strict(false)
            .append_element_content_handler(element!("*", move |el| {
                Converter::start(&on_element, el);
                Ok(())
            }))
            .append_document_content_handler(doc_text!(move |chunk| {
                on_text.borrow_mut().text(chunk);
                Ok(())
            }));
        let mut rewriter = HtmlRewriter::new(settings, |_: &[u8]| {});
        // The only possible errors are a memory limit (none is set) and handler
        // errors (ours never fail); whatever was read before one is still kept.
        if rewriter.write(html.as_bytes()).is_ok() {
            let _ = rewriter.end();
        }
    }
    let mut converter = state.borrow_mut();
    converter.finish()
}

/// Horizontal separation owed before the next visible character on the line.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Gap {
    None,
    Space,
    Cell,
}

/// What an open element undoes or adds when it closes.
struct Frame {
    breaks_after: u8,
    hidden: bool,
    pre: bool,
    list: bool,
    link: Option<Link>,
}

struct Link {
    href: String,
    /// Where the link's text starts in the output, once its first visible
    /// character is written (so owed breaks, bullets and gaps are not in it).
    start: Option<usize>,
}

struct Converter {
    out: String,
    /// Text of the current text node, not yet entity-decoded: `lol_html` may
    /// split a node (and so an entity) across chunks.
    raw: String,
    frames: Vec<Frame>,
    hidden: usize,
    pre: usize,
    lists: usize,
    /// Newlines owed before the next visible character (0..=2).
    breaks: u8,
    gap: Gap,
    bullet: bool,
    /// Open links whose text has not started yet.
    links_unstarted: usize,
}

impl Converter {
    fn new(html_len: usize) -> Self {
        Self {
            // Newsletters are mostly markup; a quarter is a generous guess.
            out: String::with_capacity(html_len / 4),
            raw: String::new(),
            frames: Vec::new(),
            hidden: 0,
            pre: 0,
            lists: 0,
            breaks: 0,
            gap: Gap::None,
            bullet: false,
            links_unstarted: 0,
        }
    }

    fn start(state: &Rc<RefCell<Self>>, el: &mut Element<'_, '_>) {
        let mut this = state.borrow_mut();
        this.flush_raw();
        let name = el.tag_name();
        if name == "body" {
            // A `<head>` without `</head>` is closed by `<body>`; lol_html does
            // not run end handlers for implicitly closed elements.
            this.close_to(0);
        }
        if this.hidden > 0 {
            return;
        }
        let hidden = matches!(name.as_str(), "head" | "template") || is_hidden(el);
        if hidden {
            if el.can_have_content() {
                this.hidden += 1;
                this.push_frame(state, el, Frame::new(0, true));
            }
            return;
        }

        let block = match name.as_str() {
            "p" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "blockquote" | "pre" | "dl" => 2,
            "ul" | "ol" if this.lists == 0 => 2,
            "div" | "tr" | "table" | "thead" | "tbody" | "tfoot" | "caption" | "li" | "ul"
            | "ol" | "dt" | "dd" | "center" | "section" | "article" | "header" | "footer"
            | "nav" | "main" | "aside" | "address" | "figure" | "figcaption" | "form"
            | "fieldset" | "details" | "summary" => 1,
            _ => 0,
        };
        this.block(block);

        match name.as_str() {
            "br" => this.line_break(),
            "hr" => this.block(2),
            "img" => {
                if let Some(alt) = el.get_attribute("alt") {
                    this.atom(&html_escape::decode_html_entities(&alt));
                }
            }
            "td" | "th" => this.gap = this.gap.max(Gap::Cell),
            "li" => this.bullet = true,
            _ => {}
        }

        let link = if name == "a" {
            el.get_attribute("href").map(|href| Link {
                href: html_escape::decode_html_entities(href.trim()).into_owned(),
                start: None,
            })
        } else {
            None
        };
        let pre = name == "pre";
        let list = matches!(name.as_str(), "ul" | "ol");
        if (block > 0 || pre || link.is_some()) && el.can_have_content() {
            this.pre += usize::from(pre);
            this.lists += usize::from(list);
            this.links_unstarted += usize::from(link.is_some());
            let mut frame = Frame::new(block, false);
            frame.pre = pre;
            frame.list = list;
            frame.link = link;
            this.push_frame(state, el, frame);
        }
    }

    fn push_frame(&mut self, state: &Rc<RefCell<Self>>, el: &mut Element<'_, '_>, frame: Frame) {
        let depth = self.frames.len();
        self.frames.push(frame);
        let state = Rc::clone(state);
        // Closing by depth rather than popping one frame also closes children
        // that the HTML parser ended implicitly (`<li>` without `</li>`, a
        // hidden `<div>` left open in a `<td>`), whose own handlers never run.
        let _ = el.on_end_tag(Box::new(move |_| {
            let mut this = state.borrow_mut();
            this.flush_raw();
            this.close_to(depth);
            Ok(())
        }));
    }

    fn close_to(&mut self, depth: usize) {
        while self.frames.len() > depth {
            let Some(frame) = self.frames.pop() else {
                break;
            };
            self.hidden -= usize::from(frame.hidden);
            self.pre -= usize::from(frame.pre);
            self.lists -= usize::from(frame.list);
            if let Some(link) = frame.link {
                self.links_unstarted -= usize::from(link.start.is_none());
                self.close_link(&link);
            }
            self.block(frame.breaks_after);
        }
    }

    fn close_link(&mut self, link: &Link) {
        let href = link.href.as_str();
        let lower = href.get(..11).unwrap_or(href).to_ascii_lowercase();
        if href.is_empty() || href.starts_with('#') || lower.starts_with("javascript:") {
            return;
        }
        let text = link.start.map_or("", |start| self.out[start..].trim());
        if text.is_empty() {
            self.atom(href);
        } else if !same_target(text, href) {
            self.out.push_str(" (");
            self.out.push_str(href);
            self.out.push(')');
        }
    }

    fn text(&mut self, chunk: &TextChunk<'_>) {
        // Script, style and title bodies arrive as non-`Data` text.
        if self.hidden == 0 && chunk.text_type() == TextType::Data {
            self.raw.push_str(chunk.as_str());
        }
    }

    fn flush_raw(&mut self) {
        if self.raw.is_empty() {
            return;
        }
        let raw = std::mem::take(&mut self.raw);
        self.push_text(&html_escape::decode_html_entities(&raw));
        self.raw = raw;
        self.raw.clear();
    }

    /// An inline replaced item (image alt, bare URL): kept apart from its
    /// neighbours, which in the HTML were separated visually.
    fn atom(&mut self, text: &str) {
        if text.trim().is_empty() {
            return;
        }
        self.gap = self.gap.max(Gap::Space);
        self.push_text(text);
        self.gap = self.gap.max(Gap::Space);
    }

    fn push_text(&mut self, text: &str) {
        let mut run_start = None;
        for (i, ch) in text.char_indices() {
            let kind = classify(ch);
            if kind == CharKind::Visible || (self.pre > 0 && ch != '\n' && ch != '\r') {
                if run_start.is_none() {
                    self.open_run();
                    run_start = Some(i);
                }
                continue;
            }
            if let Some(start) = run_start.take() {
                self.out.push_str(&text[start..i]);
            }
            match kind {
                CharKind::Space if self.pre > 0 && ch == '\n' => self.line_break(),
                CharKind::Space if self.pre == 0 => self.gap = self.gap.max(Gap::Space),
                _ => {}
            }
        }
        if let Some(start) = run_start {
            self.out.push_str(&text[start..]);
        }
    }

    /// Pays the line breaks, bullet and gap owed before visible text.
    fn open_run(&mut self) {
        if self.breaks > 0 {
            if !self.out.is_empty() {
                let trimmed = self.out.trim_end_matches([' ', '\t']).len();
                self.out.truncate(trimmed);
                for _ in 0..self.breaks {
                    self.out.push('\n');
                }
            }
            self.breaks = 0;
            self.gap = Gap::None;
        }
        if self.bullet {
            self.out.push_str("- ");
            self.bullet = false;
            self.gap = Gap::None;
        }
        if self.gap != Gap::None && !self.out.is_empty() && !self.out.ends_with('\n') {
            self.out
                .push_str(if self.gap == Gap::Cell { "  " } else { " " });
        }
        self.gap = Gap::None;
        if self.links_unstarted > 0 {
            let start = self.out.len();
            for link in self.frames.iter_mut().filter_map(|f| f.link.as_mut()) {
                link.start.get_or_insert(start);
            }
            self.links_unstarted = 0;
        }
    }

    fn block(&mut self, breaks: u8) {
        self.breaks = self.breaks.max(breaks);
    }

    fn line_break(&mut self) {
        // Unlike block edges, `<br>`s add up: two of them leave a blank line.
        self.breaks = (self.breaks + 1).min(2);
    }

    fn finish(&mut self) -> String {
        self.flush_raw();
        self.close_to(0);
        let mut text = String::with_capacity(self.out.len());
        let mut blank_run = 0;
        for line in self.out.trim().lines() {
            let line = line.trim_end();
            if line.is_empty() {
                blank_run += 1;
                if blank_run > 1 {
                    continue;
                }
            } else {
                blank_run = 0;
            }
            text.push_str(line);
            text.push('\n');
        }
        text.truncate(text.trim_end().len());
        text
    }
}

impl Frame {
    fn new(breaks_after: u8, hidden: bool) -> Self {
        Self {
            breaks_after,
            hidden,
            pre: false,
            list: false,
            link: None,
        }
    }
}

#[derive(PartialEq, Eq)]
enum CharKind {
    Visible,
    Space,
    Invisible,
}

fn classify(ch: char) -> CharKind {
    match ch {
        // `&nbsp;` is collapsible here: layouts use it to prop open empty
        // cells, which would otherwise become lines of spaces.
        ' ' | '\t' | '\n' | '\r' | '\x0C' | '\u{A0}' => CharKind::Space,
        // Zero-width characters that preheader and anti-tracking tricks use.
        '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\u{34F}' | '\u{AD}' => {
            CharKind::Invisible
        }
        _ => CharKind::Visible,
    }
}

fn is_hidden(el: &Element<'_, '_>) -> bool {
    if el.has_attribute("hidden") {
        return true;
    }
    let Some(style) = el.get_attribute("style") else {
        return false;
    };
    // Inline styles are long in email HTML: split in place, never copy.
    style.split(';').any(|declaration| {
        let Some((property, value)) = declaration.split_once(':') else {
            return false;
        };
        let (property, value) = (property.trim(), value.trim_start());
        let starts_with = |prefix: &str| {
            value
                .get(..prefix.len())
                .is_some_and(|v| v.eq_ignore_ascii_case(prefix))
        };
        (property.eq_ignore_ascii_case("display") && starts_with("none"))
            || (property.eq_ignore_ascii_case("visibility") && starts_with("hidden"))
    })
}

/// Whether a link's text already shows where it goes, so ` (url)` would
/// only repeat it.
fn same_target(text: &str, href: &str) -> bool {
    fn bare(s: &str) -> &str {
        let mut s = s;
        for scheme in ["mailto:", "tel:", "https://", "http://"] {
            if s.len() >= scheme.len() && s[..scheme.len()].eq_ignore_ascii_case(scheme) {
                s = &s[scheme.len()..];
                if scheme == "mailto:" {
                    s = s.split('?').next().unwrap_or(s);
                }
                break;
            }
        }
        s.trim_end_matches('/')
    }
    text == href || bare(text).eq_ignore_ascii_case(bare(href))
}

#[cfg(test)]
mod tests {
    use super::html_to_text;

    #[test]
    fn newsletter_with_table_layout() {
        let html = r#"<!DOCTYPE html>
<html>
<head>
  <meta charset="utf-8">
  <title>Your cart is waiting</title>
  <style>body { font-family: Arial; } .x { color: red; }</style>
  <!--[if mso]><style>table { border-collapse: collapse; }</style><![endif]-->
</head>
<body>
  <div style="display: none; max-height: 0; overflow: hidden;">Don&#39;t miss out &zwnj;&nbsp;&zwnj;&nbsp;</div>
  <!-- header -->
  <table role="presentation" width="100%">
    <tr>
      <td><a href="https://shop.example/"><img src="logo.png" alt="Example Shop"></a></td>
      <td align="right"><a href="https://shop.example/view?id=1&amp;u=2">View in browser</a></td>
    </tr>
  </table>
  <!--[if mso]>
  <table><tr><td>Outlook only</td></tr></table>
  <![endif]-->
  <h1>Hi Ren&eacute;,</h1>
  <p>You left   these items
     in your cart:</p>
  <table role="presentation">
    <tr><th>Item</th><th>Qty</th><th>Price</th></tr>
    <tr><td>Blue shirt</td><td>2</td><td>&euro;40.00</td></tr>
    <tr><td>Socks &amp; laces</td><td>1</td><td>&#8364;5.00</td></tr>
  </table>
  <p><a href="https://shop.example/cart" style="background:#000;color:#fff">Shop now</a></p>
  <ul>
    <li>Free returns</li>
    <li>Ships in <b>2</b> days</li>
  </ul>
  <p>Questions? <a href="mailto:help@shop.example">help@shop.example</a><br>
     Call <a href="tel:+123">+123</a></p>
  <hr>
  <p style="font-size:12px">&copy; 2024 Shop&nbsp;Inc.
     <a href="https://shop.example/unsub?u=2">Unsubscribe</a></p>
  <img src="https://t.example/open.gif" width="1" height="1" alt="">
</body>
</html>"#;
        let expected = "\
Example Shop (https://shop.example/)  View in browser (https://shop.example/view?id=1&u=2)

Hi René,

You left these items in your cart:

Item  Qty  Price
Blue shirt  2  €40.00
Socks & laces  1  €5.00

Shop now (https://shop.example/cart)

- Free returns
- Ships in 2 days

Questions? help@shop.example
Call +123

© 2024 Shop Inc. Unsubscribe (https://shop.example/unsub?u=2)";
        assert_eq!(html_to_text(html), expected);
    }

    #[test]
    fn drops_head_style_script_title_and_comments() {
        let html = "<html><head><title>T</title><style>p{}</style></head>\
                    <body><script>var x = '<p>no</p>';</script>\
                    a<!-- hidden --> b<!--[if mso]><p>mso</p><![endif]--></body></html>";
        assert_eq!(html_to_text(html), "a b");
    }

    #[test]
    fn keeps_content_revealed_to_non_outlook_clients() {
        let html = "<!--[if !mso]><!--><p>everyone else</p><!--<![endif]-->";
        assert_eq!(html_to_text(html), "everyone else");
    }

    #[test]
    fn head_closed_implicitly_by_body() {
        assert_eq!(html_to_text("<head><title>T</title><body><p>x</p>"), "x");
    }

    #[test]
    fn decodes_entities() {
        let html =
            "<p>Fish &amp; chips&nbsp;&amp;&#39;s &eacute;t&eacute; &#x263A; &#8212; &lt;b&gt;</p>";
        assert_eq!(html_to_text(html), "Fish & chips &'s été ☺ — <b>");
    }

    #[test]
    fn collapses_whitespace() {
        let html = "  <p>\n\tone   two\n three&nbsp;&nbsp; four </p>  ";
        assert_eq!(html_to_text(html), "one two three four");
        assert_eq!(html_to_text("a<span> b </span>c"), "a b c");
        assert_eq!(html_to_text("a<b>b</b>c"), "abc");
    }

    #[test]
    fn blocks_break_lines_with_at_most_one_blank_line() {
        let html =
            "<div>a</div><div>b</div><p>c</p><p></p><p></p><h2>d</h2>e<br>f<br><br><br><br>g";
        assert_eq!(html_to_text(html), "a\nb\n\nc\n\nd\n\ne\nf\n\ng");
    }

    #[test]
    fn pre_keeps_whitespace() {
        assert_eq!(html_to_text("<p>x</p><pre>a  b\nc</pre>"), "x\n\na  b\nc");
    }

    #[test]
    fn list_items_get_bullets() {
        let html = "<p>Intro</p><ol><li>one<li>two</ol><p>end</p>";
        assert_eq!(html_to_text(html), "Intro\n\n- one\n- two\n\nend");
        let html = r#"<ul><li><a href="https://x.io">https://x.io</a></li><li><a href="https://y">Why</a></li></ul>"#;
        assert_eq!(html_to_text(html), "- https://x.io\n- Why (https://y)");
    }

    #[test]
    fn table_rows_are_lines_and_cells_are_spaced() {
        let html = "<table><tr><td>a</td><td></td><td>b</td></tr><tr><td>&nbsp;</td></tr>\
                    <tr><td>c</td><td><table><tr><td>d</td></tr></table></td></tr></table>";
        // A table nested in a cell (a layout column) starts its own lines.
        assert_eq!(html_to_text(html), "a  b\nc\nd");
    }

    #[test]
    fn links() {
        let t = html_to_text;
        assert_eq!(
            t(r#"<a href="https://x">Shop now</a>"#),
            "Shop now (https://x)"
        );
        assert_eq!(
            t(r#"<a href="https://x.io/">https://x.io/</a>"#),
            "https://x.io/"
        );
        assert_eq!(t(r#"<a href="https://x.io/">x.io</a>"#), "x.io");
        assert_eq!(t(r#"<a href="mailto:a@b.c?subject=Hi">a@b.c</a>"#), "a@b.c");
        assert_eq!(
            t(r#"<a href="mailto:a@b.c">write us</a>"#),
            "write us (mailto:a@b.c)"
        );
        assert_eq!(t(r##"<a href="#top">Top</a>"##), "Top");
        assert_eq!(t(r#"<a name="x">anchor</a>"#), "anchor");
        assert_eq!(
            t(r#"Go <a href="https://x?a=1&amp;b=2">here</a>."#),
            "Go here (https://x?a=1&b=2)."
        );
    }

    #[test]
    fn image_links() {
        let t = html_to_text;
        assert_eq!(
            t(r#"<a href="https://x"><img src="l.png" alt="Logo"></a>"#),
            "Logo (https://x)"
        );
        assert_eq!(
            t(r#"<a href="https://x"><img src="l.png"></a>"#),
            "https://x"
        );
        assert_eq!(t(r#"<a href="https://x"><img alt=""> </a>"#), "https://x");
        assert_eq!(
            t(
                r#"<a href="https://f"><img alt="Facebook"></a><a href="https://t"><img alt="X"></a>"#
            ),
            "Facebook (https://f) X (https://t)"
        );
    }

    #[test]
    fn images_show_their_alt() {
        let t = html_to_text;
        assert_eq!(
            t(r#"<p>Hello <img alt="waving hand"> there</p>"#),
            "Hello waving hand there"
        );
        assert_eq!(
            t(r#"<p>Hello<img src="spacer.gif" alt="">there</p>"#),
            "Hellothere"
        );
        assert_eq!(
            t(r#"<img alt="Sale &amp; more"><img alt="Hidden" style="display:none">"#),
            "Sale & more"
        );
    }

    #[test]
    fn hidden_preheader_is_dropped() {
        let html = r#"<body><div style="display:none;font-size:1px">Preheader <a href="https://p">p</a><div>nested</div> text</div><p>Body</p></body>"#;
        assert_eq!(html_to_text(html), "Body");
        let html = r#"<span style="DISPLAY : NONE !important">x</span>y<div hidden>z</div>"#;
        assert_eq!(html_to_text(html), "y");
    }

    #[test]
    fn hidden_element_left_open_ends_with_its_parent() {
        let html =
            r#"<table><tr><td><div style="display:none">pre</td><td>shown</td></tr></table>"#;
        assert_eq!(html_to_text(html), "shown");
    }

    #[test]
    fn output_is_trimmed_with_right_trimmed_lines() {
        assert_eq!(
            html_to_text("<br><br><p>  a  <br>  b  </p><br><br>"),
            "a\nb"
        );
        assert_eq!(html_to_text(""), "");
        assert_eq!(html_to_text("<p>\u{200C}&zwnj;</p>"), "");
    }
}
