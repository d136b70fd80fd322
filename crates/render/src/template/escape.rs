//! HTML escaping as mail clients and Jinja2/MarkupSafe expect it: `& < > " '`
//! and nothing else, so URLs in `href`s stay intact.

use std::fmt;

fn replacement(byte: u8) -> Option<&'static str> {
    match byte {
        b'&' => Some("&amp;"),
        b'<' => Some("&lt;"),
        b'>' => Some("&gt;"),
        b'"' => Some("&#34;"),
        b'\'' => Some("&#39;"),
        _ => None,
    }
}

/// Below this length a plain loop finds special characters faster than
/// setting up SIMD searches; most values (names, prices) are this short.
const SHORT: usize = 32;

/// The index of the first character that needs escaping.
fn first_special(bytes: &[u8]) -> Option<usize> {
    if bytes.len() < SHORT {
        return bytes.iter().position(|&b| replacement(b).is_some());
    }
    match (
        memchr::memchr3(b'&', b'<', b'>', bytes),
        memchr::memchr2(b'"', b'\'', bytes),
    ) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Writes `text` HTML-escaped. Most values need no escaping at all, so the
/// search for the first special character is the hot part; after it, runs
/// between special characters are copied in one call each.
pub fn write_html_escaped<W: fmt::Write + ?Sized>(out: &mut W, text: &str) -> fmt::Result {
    let Some(first) = first_special(text.as_bytes()) else {
        return out.write_str(text);
    };
    let mut start = 0;
    for (index, &byte) in text.as_bytes().iter().enumerate().skip(first) {
        if let Some(entity) = replacement(byte) {
            // Special characters are ASCII, so `index` is a char boundary.
            out.write_str(&text[start..index])?;
            out.write_str(entity)?;
            start = index + 1;
        }
    }
    out.write_str(&text[start..])
}

/// `text` HTML-escaped into a new string.
pub fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    write_html_escaped(&mut out, text).expect("writing to a String cannot fail");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn escapes_the_five_markup_characters_only() {
        assert_eq!(
            html_escape(r#"<a href="https://x.example/a/b?c=1&d='2'">"#),
            "&lt;a href=&#34;https://x.example/a/b?c=1&amp;d=&#39;2&#39;&#34;&gt;"
        );
        assert_eq!(
            html_escape("Crème brûlée / 50% off"),
            "Crème brûlée / 50% off"
        );
    }

    fn unescape(s: &str) -> String {
        s.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&#34;", "\"")
            .replace("&#39;", "'")
            .replace("&amp;", "&")
    }

    proptest! {
        #[test]
        fn escaped_text_has_no_markup_and_round_trips(text in "(.|[&<>\"'])*") {
            let escaped = html_escape(&text);
            prop_assert!(!escaped.contains(['<', '>', '"', '\'']));
            prop_assert_eq!(unescape(&escaped), text);
        }
    }
}
