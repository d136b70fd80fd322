//! The preheader: the hidden line inbox previews show after the subject.

/// Hides the preheader from the opened message but not from inbox previews.
const OPEN: &str = "<div style=\"display:none;font-size:1px;line-height:1px;max-height:0;max-width:0;opacity:0;overflow:hidden;mso-hide:all\">";

/// Inserts the (already escaped) preheader right after `<body …>`, or at the
/// start when the HTML has no body tag.
pub fn insert(html: &str, preheader: &str) -> String {
    if preheader.is_empty() {
        return html.to_owned();
    }
    let at = body_content_start(html).unwrap_or(0);
    let mut out = String::with_capacity(html.len() + OPEN.len() + preheader.len() + 6);
    out.push_str(&html[..at]);
    out.push_str(OPEN);
    out.push_str(preheader);
    out.push_str("</div>");
    out.push_str(&html[at..]);
    out
}

/// Byte offset just past the `>` of the first `<body` tag.
fn body_content_start(html: &str) -> Option<usize> {
    let bytes = html.as_bytes();
    let mut from = 0;
    while let Some(offset) = bytes[from..].iter().position(|&b| b == b'<') {
        let tag = from + offset;
        let name = bytes.get(tag + 1..tag + 5)?;
        let after = bytes.get(tag + 5).copied();
        if name.eq_ignore_ascii_case(b"body")
            && matches!(after, Some(b'>' | b' ' | b'\t' | b'\n' | b'\r' | b'/'))
        {
            let close = bytes[tag..].iter().position(|&b| b == b'>')?;
            return Some(tag + close + 1);
        }
        from = tag + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goes_right_after_the_body_tag() {
        let html = "<html><head></head><BODY class=\"x\"><p>Hi</p></BODY></html>";
        let out = insert(html, "Sale ends &amp; soon");
        assert!(out.starts_with("<html><head></head><BODY class=\"x\"><div style=\"display:none;"));
        assert!(out.contains(">Sale ends &amp; soon</div><p>Hi</p>"));
    }

    #[test]
    fn goes_first_without_a_body_tag_and_not_at_all_when_empty() {
        assert!(insert("<p>Hi</p><bodyguard>", "Pre").starts_with("<div style="));
        assert_eq!(insert("<p>Hi</p>", ""), "<p>Hi</p>");
    }
}
