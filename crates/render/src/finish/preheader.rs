//! The preheader: the hidden line inbox previews show after the subject.

/// Hides the preheader from the opened message but not from inbox previews.
const OPEN: &str = "<div style=\"display:none;font-size:1px;line-height:1px;max-height:0;max-width:0;opacity:0;overflow:hidden;mso-hide:all\">";

/// Inserts the (already escaped) preheader right after `<body …>`, or at the
/// start when the HTML has no body tag.
pub fn insert(html: &mut String, preheader: &str) {
    if preheader.is_empty() {
        return;
    }
    let at = body_content_start(html).unwrap_or(0);
    let block = [OPEN, preheader, "</div>"].concat();
    html.insert_str(at, &block);
}

/// Byte offset just past the `>` of the first `<body` tag.
fn body_content_start(html: &str) -> Option<usize> {
    let bytes = html.as_bytes();
    memchr::memchr_iter(b'<', bytes).find_map(|tag| {
        let name = bytes.get(tag + 1..tag + 5)?;
        let after = bytes.get(tag + 5)?;
        let is_body = name.eq_ignore_ascii_case(b"body")
            && matches!(after, b'>' | b' ' | b'\t' | b'\n' | b'\r' | b'/');
        if !is_body {
            return None;
        }
        memchr::memchr(b'>', &bytes[tag..]).map(|close| tag + close + 1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goes_right_after_the_body_tag() {
        let mut out = "<html><head></head><BODY class=\"x\"><p>Hi</p></BODY></html>".to_owned();
        insert(&mut out, "Sale ends &amp; soon");
        assert!(out.starts_with("<html><head></head><BODY class=\"x\"><div style=\"display:none;"));
        assert!(out.contains(">Sale ends &amp; soon</div><p>Hi</p>"));
    }

    #[test]
    fn goes_first_without_a_body_tag_and_not_at_all_when_empty() {
        let mut guard = "<p>Hi</p><bodyguard>".to_owned();
        insert(&mut guard, "Pre");
        assert!(guard.starts_with("<div style="));
        let mut plain = "<p>Hi</p>".to_owned();
        insert(&mut plain, "");
        assert_eq!(plain, "<p>Hi</p>");
    }
}
