//! `.eml` serialization: writes a finished message as RFC 5322 / MIME text
//! (multipart/alternative, quoted-printable UTF-8 parts, CRLF line endings).
//!
//! Hand-written rather than built on `mail-builder`: that crate picks the
//! transfer encoding per body (7bit, quoted-printable or base64) with no way
//! to force quoted-printable other than encoding the body ourselves, and it
//! falls back to the clock, a random boundary and the hostname whenever a
//! value is missing. What is left once those are taken over is the few
//! functions below.

use std::borrow::Cow;

use base64::Engine as _;
use base64::prelude::BASE64_STANDARD;
use jiff::Timestamp;
use jiff::tz::TimeZone;

/// Header lines are folded to this length where the value allows (RFC 5322 §2.1.1).
const MAX_HEADER_LINE: usize = 78;
/// Quoted-printable lines never exceed this length (RFC 2045 §6.7).
const MAX_QP_LINE: usize = 76;
/// `=?utf-8?B?` + `?=`.
const ENCODED_WORD_OVERHEAD: usize = 12;
/// An encoded word may not be longer than this (RFC 2047 §2).
const MAX_ENCODED_WORD: usize = 75;

/// Headers this module writes itself; an extra header of the same name would
/// duplicate them or, for the `Content-*` ones, break the MIME structure.
const RESERVED_HEADERS: [&str; 9] = [
    "from",
    "reply-to",
    "to",
    "subject",
    "date",
    "message-id",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
];

/// A finished message, ready to serialize with [`render_eml`].
#[derive(Debug, Clone, Copy)]
pub struct Eml<'a> {
    /// Display name of the sender, e.g. `Shop, Inc.`; any text.
    pub from_label: Option<&'a str>,
    /// Bare sender address (`a@b.c`).
    pub from_address: &'a str,
    /// Bare address for `Reply-To`.
    pub reply_to: Option<&'a str>,
    /// Bare recipient address.
    pub to: Option<&'a str>,
    /// Subject, any text.
    pub subject: &'a str,
    /// The request's send time, written as the `Date` header.
    pub date: Timestamp,
    /// Without angle brackets, e.g. `req-1.rcpt-9@artifact.local`.
    pub message_id: &'a str,
    /// Extra headers (e.g. `List-Unsubscribe`), written in order after `Message-ID`.
    pub headers: &'a [(String, String)],
    /// The HTML part.
    pub html: &'a str,
    /// The plain-text part.
    pub text: &'a str,
}

/// Serializes as a multipart/alternative message (text first, then html) with CRLF line endings.
///
/// The output is a pure function of `eml`: the MIME boundary is derived from
/// the message id, and nothing reads the clock, the host or a random source.
///
/// - Header values are single lines whatever the input: control characters
///   (CR and LF included) become spaces, and values are trimmed. Addresses
///   and the message id lose whitespace, controls and angle brackets.
/// - Subject and from label are RFC 2047 encoded words (UTF-8, base64) when
///   they are not plain ASCII; header lines are folded to 78 characters
///   where the value allows.
/// - Extra headers with an invalid name, an empty value, or the name of a
///   header written here (`From`, `Subject`, `Content-Type`, ...) are skipped.
/// - Both bodies are quoted-printable UTF-8 with lines of at most 76
///   characters. Line breaks (`\n` or `\r\n`) are sent as CRLF, MIME's
///   canonical form, so a parser gives back the body with CRLF line breaks.
#[must_use]
pub fn render_eml(eml: &Eml<'_>) -> String {
    // Quoted-printable grows ASCII markup a little and non-ASCII text 3x.
    let estimate = 1024 + (eml.text.len() + eml.html.len()) * 5 / 4;
    let mut out = String::with_capacity(estimate);

    write_from(&mut out, eml.from_label, eml.from_address);
    if let Some(address) = eml.reply_to {
        write_address(&mut out, "Reply-To", address);
    }
    if let Some(address) = eml.to {
        write_address(&mut out, "To", address);
    }
    write_subject(&mut out, eml.subject);
    write_date(&mut out, eml.date);
    let message_id = clean_token(eml.message_id);
    if !message_id.is_empty() {
        out.push_str("Message-ID: <");
        out.push_str(&message_id);
        out.push_str(">\r\n");
    }
    for (name, value) in eml.headers {
        write_extra(&mut out, name, value);
    }

    let boundary = boundary(eml.message_id);
    out.push_str("MIME-Version: 1.0\r\n");
    out.push_str("Content-Type: multipart/alternative; boundary=\"");
    out.push_str(&boundary);
    out.push_str("\"\r\n\r\n");
    write_part(&mut out, &boundary, "text/plain", eml.text);
    write_part(&mut out, &boundary, "text/html", eml.html);
    out.push_str("--");
    out.push_str(&boundary);
    out.push_str("--\r\n");
    out
}

/// `=_` cannot occur in quoted-printable output (`=` is always followed by
/// two hex digits or a line break there), so this boundary can never collide
/// with a body line, whatever the bodies hold.
fn boundary(message_id: &str) -> String {
    // FNV-1a: stable across Rust versions and platforms, unlike `DefaultHasher`.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in message_id.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("=_ap_{hash:016x}")
}

fn write_from(out: &mut String, label: Option<&str>, address: &str) {
    let address = clean_token(address);
    let label = label.map(clean_text).filter(|label| !label.is_empty());
    out.push_str("From:");
    let Some(label) = label else {
        out.push(' ');
        out.push_str(&address);
        out.push_str("\r\n");
        return;
    };
    let angle_len = address.len() + 3; // " <" + ">"
    let mut col = "From:".len();
    let plain = label.is_ascii() && !label.contains("=?");
    let phrase = if plain && is_atom_phrase(&label) {
        Cow::Borrowed(label.as_ref())
    } else if plain {
        Cow::Owned(quoted_string(&label))
    } else {
        Cow::Borrowed("")
    };
    if plain && col + 1 + phrase.len() <= MAX_HEADER_LINE {
        out.push(' ');
        out.push_str(&phrase);
        col += 1 + phrase.len();
    } else {
        // Also the fallback for a long ASCII label: encoded words fold anywhere.
        col = encoded_words(out, col, &label);
    }
    if col + angle_len > MAX_HEADER_LINE {
        out.push_str("\r\n");
    }
    out.push_str(" <");
    out.push_str(&address);
    out.push_str(">\r\n");
}

fn write_address(out: &mut String, name: &str, address: &str) {
    out.push_str(name);
    out.push_str(": ");
    out.push_str(&clean_token(address));
    out.push_str("\r\n");
}

fn write_subject(out: &mut String, subject: &str) {
    let subject = clean_text(subject);
    out.push_str("Subject:");
    let col = "Subject:".len();
    // Decoders would decode an ASCII `=?...?=` look-alike, so it is encoded too.
    if subject.is_ascii() && !subject.contains("=?") {
        let start = out.len();
        if fold_ascii(out, col, &subject) {
            out.push_str("\r\n");
            return;
        }
        // A word too long to fold: encoded words can be split anywhere.
        out.truncate(start);
    }
    encoded_words(out, col, &subject);
    out.push_str("\r\n");
}

fn write_date(out: &mut String, date: Timestamp) {
    // RFC 5322 has no years before 1900; a send time that early is already
    // invalid upstream, and clamping keeps the printer infallible.
    let date = date.max(Timestamp::UNIX_EPOCH);
    let zoned = date.to_zoned_datetime(TimeZone::UTC);
    out.push_str("Date: ");
    match jiff::fmt::rfc2822::to_string(&zoned) {
        Ok(formatted) => out.push_str(&formatted),
        Err(_) => out.push_str("Thu, 1 Jan 1970 00:00:00 +0000"),
    }
    out.push_str("\r\n");
}

fn write_extra(out: &mut String, name: &str, value: &str) {
    let valid_name = !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
    if !valid_name
        || RESERVED_HEADERS
            .iter()
            .any(|r| r.eq_ignore_ascii_case(name))
    {
        return;
    }
    let value = clean_text(value);
    if value.is_empty() {
        return;
    }
    out.push_str(name);
    out.push(':');
    if value.is_ascii() {
        // Structured values (`<https://...>, <mailto:...>`) must stay as they
        // are: fold at spaces, and leave an unbreakable long URL long.
        fold_ascii(out, name.len() + 1, &value);
    } else {
        encoded_words(out, name.len() + 1, &value);
    }
    out.push_str("\r\n");
}

fn write_part(out: &mut String, boundary: &str, content_type: &str, body: &str) {
    out.push_str("--");
    out.push_str(boundary);
    out.push_str("\r\nContent-Type: ");
    out.push_str(content_type);
    out.push_str("; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n");
    quoted_printable(out, body);
    // This CRLF belongs to the next delimiter, not to the body.
    out.push_str("\r\n");
}

/// A header value on one line: controls (CR and LF included) become spaces.
fn clean_text(value: &str) -> Cow<'_, str> {
    let value = value.trim();
    if !value.contains(char::is_control) {
        return Cow::Borrowed(value);
    }
    let cleaned: String = value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    Cow::Owned(cleaned.trim().to_owned())
}

/// An address or message id: nothing that could end it, the line or the header.
fn clean_token(value: &str) -> Cow<'_, str> {
    let unwanted = |c: char| c.is_control() || c.is_whitespace() || c == '<' || c == '>';
    if value.contains(unwanted) {
        Cow::Owned(value.chars().filter(|&c| !unwanted(c)).collect())
    } else {
        Cow::Borrowed(value)
    }
}

/// Whether `label` can be written as a phrase of atoms, without quoting.
fn is_atom_phrase(label: &str) -> bool {
    // Parsers collapse the space between atoms, so double spaces need quotes.
    !label.contains("  ")
        && label
            .bytes()
            .all(|b| b == b' ' || b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b))
}

fn quoted_string(label: &str) -> String {
    let mut quoted = String::with_capacity(label.len() + 4);
    quoted.push('"');
    for c in label.chars() {
        if c == '"' || c == '\\' {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

/// Writes ` value`, folding before single spaces so lines stay within 78
/// characters. Unfolding (dropping the CRLFs) gives back the value exactly.
/// Returns whether every line fits.
fn fold_ascii(out: &mut String, mut col: usize, value: &str) -> bool {
    let bytes = value.as_bytes();
    let mut fits = true;
    let mut start = 0;
    while start < bytes.len() {
        // Some parsers (mail-parser among them) collapse the whitespace that
        // starts a continuation line, so a run of spaces is never a fold point.
        let end = (start + 1..bytes.len())
            .find(|&i| bytes[i] == b' ' && bytes[i - 1] != b' ' && bytes.get(i + 1) != Some(&b' '))
            .unwrap_or(bytes.len());
        let piece = &value[start..end];
        if start == 0 {
            out.push(' ');
            col += 1;
        } else if col + piece.len() > MAX_HEADER_LINE {
            out.push_str("\r\n");
            col = 0;
        }
        out.push_str(piece);
        col += piece.len();
        fits &= col <= MAX_HEADER_LINE;
        start = end;
    }
    fits
}

/// Writes `value` as RFC 2047 encoded words (UTF-8, base64), one per line,
/// each split on a character boundary. Returns the column after the last one.
fn encoded_words(out: &mut String, mut col: usize, value: &str) -> usize {
    let mut rest = value;
    let mut first = true;
    while first || !rest.is_empty() {
        if !first {
            out.push_str("\r\n");
            col = 0;
        }
        first = false;
        out.push(' ');
        col += 1;
        let room = MAX_HEADER_LINE
            .saturating_sub(col)
            .min(MAX_ENCODED_WORD)
            .saturating_sub(ENCODED_WORD_OVERHEAD);
        let mut take = (room / 4 * 3).min(rest.len());
        while !rest.is_char_boundary(take) {
            take -= 1;
        }
        if take == 0 && !rest.is_empty() {
            // No room even for one character: overflow rather than loop forever.
            take = rest.chars().next().map_or(0, char::len_utf8);
        }
        let (word, tail) = rest.split_at(take);
        rest = tail;
        let start = out.len();
        out.push_str("=?utf-8?B?");
        BASE64_STANDARD.encode_string(word.as_bytes(), out);
        out.push_str("?=");
        col += out.len() - start;
    }
    col
}

/// Quoted-printable (RFC 2045 §6.7) with line breaks as hard CRLF breaks.
///
/// Beyond the rules, a line-initial `.` and `From ` are encoded too, so SMTP
/// dot-stuffing and mbox `>From` munging cannot alter a signed body.
fn quoted_printable(out: &mut String, body: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let bytes = body.as_bytes();
    // Literal bytes are copied in runs, not one by one. A run only ever holds
    // ASCII, so its ends are always char boundaries.
    let flush = |out: &mut String, run: usize, end: usize| {
        if run < end {
            out.push_str(&body[run..end]);
        }
    };
    let mut run = 0;
    let mut col = 0;
    let mut i = 0;
    while i < bytes.len() {
        // Fast path for the bulk of markup: printable ASCII other than `=`,
        // mid-line, with room left before a soft break could be needed.
        if col > 0 {
            let room = (MAX_QP_LINE - 1).saturating_sub(col).min(bytes.len() - i);
            let plain = bytes[i..i + room]
                .iter()
                .take_while(|&&b| b != b'=' && (33..=126).contains(&b))
                .count();
            i += plain;
            col += plain;
            if i == bytes.len() {
                break;
            }
        }
        let byte = bytes[i];
        let crlf = byte == b'\r' && bytes.get(i + 1) == Some(&b'\n');
        if byte == b'\n' || crlf {
            flush(out, run, i);
            out.push_str("\r\n");
            col = 0;
            i += if crlf { 2 } else { 1 };
            run = i;
            continue;
        }
        let last_on_line = match bytes.get(i + 1) {
            None | Some(b'\n') => true,
            Some(b'\r') => bytes.get(i + 2) == Some(&b'\n'),
            Some(_) => false,
        };
        // The last character of a line may use the column a soft break needs.
        let limit = if last_on_line {
            MAX_QP_LINE
        } else {
            MAX_QP_LINE - 1
        };
        let mut literal = is_literal(bytes, i, col, last_on_line);
        if col + if literal { 1 } else { 3 } > limit {
            flush(out, run, i);
            out.push_str("=\r\n");
            run = i;
            col = 0;
            literal = is_literal(bytes, i, col, last_on_line);
        }
        if literal {
            col += 1;
        } else {
            flush(out, run, i);
            out.push('=');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 15)]));
            col += 3;
            run = i + 1;
        }
        i += 1;
    }
    flush(out, run, bytes.len());
}

fn is_literal(bytes: &[u8], i: usize, col: usize, last_on_line: bool) -> bool {
    match bytes[i] {
        // Trailing whitespace is stripped in transit; encode it.
        b' ' | b'\t' => !last_on_line,
        b'.' => col > 0,
        b'F' => col > 0 || !bytes[i..].starts_with(b"From "),
        b'=' => false,
        b => (33..=126).contains(&b),
    }
}

#[cfg(test)]
mod tests {
    use super::{Eml, render_eml};
    use mail_parser::{Message, MessageParser};
    use proptest::prelude::*;

    const HEADERS: &[(String, String)] = &[];

    fn sample<'a>(headers: &'a [(String, String)], text: &'a str, html: &'a str) -> Eml<'a> {
        Eml {
            from_label: Some("Shop, Inc."),
            from_address: "news@shop.example",
            reply_to: Some("help@shop.example"),
            to: Some("rene@example.org"),
            subject: "Your cart",
            date: "2024-01-02T03:04:05Z".parse().unwrap(),
            message_id: "req-1.rcpt-9@artifact.local",
            headers,
            html,
            text,
        }
    }

    fn parse(raw: &str) -> Message<'_> {
        MessageParser::default()
            .parse(raw.as_bytes())
            .expect("parses")
    }

    fn crlf(body: &str) -> String {
        body.replace("\r\n", "\n").replace('\n', "\r\n")
    }

    fn header_lines(raw: &str) -> impl Iterator<Item = &str> {
        raw.split("\r\n\r\n").next().unwrap().split("\r\n")
    }

    #[test]
    fn exact_layout() {
        let headers = [(
            "List-Unsubscribe".to_owned(),
            "<https://shop.example/u/1>, <mailto:u@shop.example>".to_owned(),
        )];
        let raw = render_eml(&sample(&headers, "Hi =\nbye", "<p>Hi</p>"));
        let expected = "From: \"Shop, Inc.\" <news@shop.example>\r\n\
Reply-To: help@shop.example\r\n\
To: rene@example.org\r\n\
Subject: Your cart\r\n\
Date: Tue, 2 Jan 2024 03:04:05 +0000\r\n\
Message-ID: <req-1.rcpt-9@artifact.local>\r\n\
List-Unsubscribe: <https://shop.example/u/1>, <mailto:u@shop.example>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/alternative; boundary=\"=_ap_ac1a699549af805f\"\r\n\
\r\n\
--=_ap_ac1a699549af805f\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
Hi =3D\r\n\
bye\r\n\
--=_ap_ac1a699549af805f\r\n\
Content-Type: text/html; charset=utf-8\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
<p>Hi</p>\r\n\
--=_ap_ac1a699549af805f--\r\n";
        assert_eq!(raw, expected);
    }

    #[test]
    fn round_trips_through_a_mime_parser() {
        let long_line = "é".repeat(300) + &"<td>x</td>".repeat(170);
        assert!(long_line.chars().count() >= 2000);
        let html = format!("<html><body>\n<p>Grüße, René!</p>\n{long_line}\n</body></html>\n");
        let text = "Grüße, René!\n\nShop now (https://shop.example/?a=1&b=2)\n. \nFrom here  \n";
        let subject = "Grüße aus Köln: 50 % Rabatt auf alles im Warenkorb, nur heute — 🎉 \"Sale\"";
        let mut eml = sample(HEADERS, text, &html);
        eml.subject = subject;
        eml.from_label = Some("Café Zürich, Inc.");
        let raw = render_eml(&eml);
        let message = parse(&raw);

        assert_eq!(message.subject(), Some(subject));
        let from = message.from().and_then(|a| a.first()).unwrap();
        assert_eq!(from.name(), Some("Café Zürich, Inc."));
        assert_eq!(from.address(), Some("news@shop.example"));
        let reply_to = message.reply_to().and_then(|a| a.first()).unwrap();
        assert_eq!(reply_to.address(), Some("help@shop.example"));
        let to = message.to().and_then(|a| a.first()).unwrap();
        assert_eq!(to.address(), Some("rene@example.org"));
        assert_eq!(message.message_id(), Some("req-1.rcpt-9@artifact.local"));
        assert_eq!(message.date().unwrap().to_timestamp(), 1_704_164_645);
        assert_eq!(message.body_text(0).unwrap(), crlf(text));
        assert_eq!(message.body_html(0).unwrap(), crlf(&html));
        assert!(raw.is_ascii());
    }

    #[test]
    fn lines_stay_short() {
        let html = "x".repeat(5000) + "\n" + &"€ ".repeat(1000);
        let mut eml = sample(HEADERS, "a\tb \n", &html);
        eml.subject = "A subject that is long enough to need folding across more than one line of header text, twice over";
        eml.from_label =
            Some("A sender label that is far too long to fit on the From line with its address");
        let raw = render_eml(&eml);
        for line in header_lines(&raw) {
            assert!(line.len() <= 78, "{line:?}");
        }
        for line in raw
            .split("\r\n\r\n")
            .skip(1)
            .flat_map(|part| part.split("\r\n"))
        {
            assert!(line.len() <= 76, "{line:?}");
        }
        let message = parse(&raw);
        assert_eq!(message.subject(), Some(eml.subject));
        let from = message.from().and_then(|a| a.first()).unwrap();
        assert_eq!(from.name(), eml.from_label);
        assert_eq!(message.body_html(0).unwrap(), crlf(&html));
    }

    #[test]
    fn unfoldable_ascii_subject_is_encoded() {
        let mut eml = sample(HEADERS, "", "");
        let subject = format!("See https://shop.example/{}", "x".repeat(90));
        eml.subject = &subject;
        let raw = render_eml(&eml);
        assert!(raw.contains("Subject: =?utf-8?B?"));
        assert!(header_lines(&raw).all(|line| line.len() <= 78));
        assert_eq!(parse(&raw).subject(), Some(subject.as_str()));
    }

    #[test]
    fn from_label_forms() {
        let cases = [
            (Some("Shop"), "From: Shop <news@shop.example>"),
            (Some("Shop Inc"), "From: Shop Inc <news@shop.example>"),
            (
                Some("Shop, Inc."),
                "From: \"Shop, Inc.\" <news@shop.example>",
            ),
            (
                Some("Say \"hi\" \\o/"),
                "From: \"Say \\\"hi\\\" \\\\o/\" <news@shop.example>",
            ),
            (
                Some("Café"),
                "From: =?utf-8?B?Q2Fmw6k=?= <news@shop.example>",
            ),
            (Some("  "), "From: news@shop.example"),
            (None, "From: news@shop.example"),
        ];
        for (label, line) in cases {
            let mut eml = sample(HEADERS, "", "");
            eml.from_label = label;
            let raw = render_eml(&eml);
            assert_eq!(raw.lines().next(), Some(line));
            let from = parse(&raw).from().and_then(|a| a.first()).cloned().unwrap();
            assert_eq!(from.name(), label.map(str::trim).filter(|l| !l.is_empty()));
            assert_eq!(from.address(), Some("news@shop.example"));
        }
    }

    #[test]
    fn deterministic() {
        let headers = [("X-Campaign".to_owned(), "spring".to_owned())];
        let eml = sample(&headers, "text", "<p>html</p>");
        assert_eq!(render_eml(&eml), render_eml(&eml));
        let mut other = eml;
        other.message_id = "req-1.rcpt-10@artifact.local";
        let boundary = |raw: &str| raw.split("boundary=\"").nth(1).unwrap()[..21].to_owned();
        assert_ne!(boundary(&render_eml(&eml)), boundary(&render_eml(&other)));
    }

    #[test]
    fn header_values_cannot_inject_headers() {
        let headers = [
            ("X-Note".to_owned(), "a\r\nBcc: evil@x.example".to_owned()),
            ("X-Evil\r\nBcc".to_owned(), "evil@x.example".to_owned()),
            ("Bad Name".to_owned(), "v".to_owned()),
            ("Content-Type".to_owned(), "text/plain".to_owned()),
            ("X-Empty".to_owned(), " \r\n ".to_owned()),
        ];
        let mut eml = sample(&headers, "t", "h");
        eml.subject = "Hi\r\nBcc: evil@x.example\r\n\r\nbody";
        eml.from_label = Some("Shop\nBcc: evil@x.example");
        eml.from_address = "news@shop.example>\r\nBcc: <evil@x.example";
        eml.to = Some("rene@example.org\nBcc: evil@x.example");
        eml.reply_to = Some("help@shop.example\r");
        eml.message_id = "id@x>\r\nBcc: evil@x.example";
        let raw = render_eml(&eml);

        let names: Vec<&str> = header_lines(&raw)
            .filter(|line| !line.starts_with(' '))
            .map(|line| line.split(':').next().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "From",
                "Reply-To",
                "To",
                "Subject",
                "Date",
                "Message-ID",
                "X-Note",
                "MIME-Version",
                "Content-Type"
            ]
        );
        let message = parse(&raw);
        assert!(message.bcc().is_none());
        assert_eq!(message.subject(), Some("Hi  Bcc: evil@x.example    body"));
        assert_eq!(
            message.header_raw("X-Note").map(str::trim),
            Some("a  Bcc: evil@x.example")
        );
        assert_eq!(message.body_text(0).unwrap(), "t");
    }

    #[test]
    fn quoted_printable_edge_cases() {
        let text = "trailing space \ntab\t\n.dot\nFrom me\n=\r\nlone\rcr\n";
        let raw = render_eml(&sample(HEADERS, text, ""));
        let body = raw.split("quoted-printable\r\n\r\n").nth(1).unwrap();
        assert!(body.starts_with(
            "trailing space=20\r\ntab=09\r\n=2Edot\r\n=46rom me\r\n=3D\r\nlone=0Dcr\r\n\r\n--"
        ));
        assert_eq!(parse(&raw).body_text(0).unwrap(), crlf(text));
    }

    proptest! {
        #[test]
        fn bodies_round_trip(text in any::<String>(), html in "(?s).{0,400}|[ \t\r\n=.Fromé€a-z]{0,300}") {
            let raw = render_eml(&sample(HEADERS, &text, &html));
            let message = parse(&raw);
            prop_assert_eq!(message.body_text(0).unwrap_or_default(), crlf(&text));
            prop_assert_eq!(message.body_html(0).unwrap_or_default(), crlf(&html));
            for line in raw.split("\r\n\r\n").skip(1).flat_map(|part| part.split("\r\n")) {
                prop_assert!(line.len() <= 76, "{:?}", line);
            }
        }

        #[test]
        fn subjects_round_trip(subject in "[^\\p{Cc}]{0,120}|[ a-zA-Z=?]{0,200}") {
            let mut eml = sample(HEADERS, "", "");
            eml.subject = &subject;
            let raw = render_eml(&eml);
            prop_assert!(header_lines(&raw).all(|line| line.len() <= 78));
            let message = parse(&raw);
            prop_assert_eq!(message.subject().unwrap_or_default(), subject.trim());
        }

        #[test]
        fn from_labels_round_trip(label in "[^\\p{Cc}]{0,90}|[ a-z,.\"\\\\()<>@;:=?]{0,90}") {
            let mut eml = sample(HEADERS, "", "");
            eml.from_label = Some(&label);
            let raw = render_eml(&eml);
            prop_assert!(header_lines(&raw).all(|line| line.len() <= 78));
            let message = parse(&raw);
            let from = message.from().and_then(|a| a.first()).unwrap();
            prop_assert_eq!(from.name().unwrap_or_default(), label.trim());
            prop_assert_eq!(from.address(), Some("news@shop.example"));
        }
    }
}
