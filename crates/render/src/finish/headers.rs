//! Header values: one line of text, whatever the data that went into them.

/// Folds text into one header-safe line: every control character (CR, LF,
/// tab, …) and Unicode line separator becomes a space, runs of whitespace
/// collapse, and the ends are trimmed.
pub fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    for c in text.chars() {
        if c.is_control() || c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.push(c);
    }
    out
}

/// `Label <address>`, quoting the label when it holds RFC 5322 specials.
pub fn mailbox(label: Option<&str>, address: &str) -> String {
    let Some(label) = label.map(one_line).filter(|l| !l.is_empty()) else {
        return address.to_owned();
    };
    const SPECIALS: &[char] = &[
        '(', ')', '<', '>', '[', ']', ':', ';', '@', '\\', ',', '.', '"',
    ];
    if label.contains(SPECIALS) {
        let escaped = label.replace('\\', "\\\\").replace('"', "\\\"");
        format!("\"{escaped}\" <{address}>")
    } else {
        format!("{label} <{address}>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_removes_every_line_break() {
        assert_eq!(
            one_line("  Hi\r\nBcc: evil@x.example\u{2028}\tthere\u{0}  "),
            "Hi Bcc: evil@x.example there"
        );
        assert_eq!(one_line("\r\n"), "");
    }

    #[test]
    fn mailbox_quotes_specials() {
        assert_eq!(mailbox(None, "a@b.example"), "a@b.example");
        assert_eq!(mailbox(Some("Shop"), "a@b.example"), "Shop <a@b.example>");
        assert_eq!(
            mailbox(Some("Shop, Inc. \"Best\""), "a@b.example"),
            "\"Shop, Inc. \\\"Best\\\"\" <a@b.example>"
        );
    }
}
