//! The text filters `truncate`, `pluralize`, `wordcount` and `striptags`,
//! with the HTML entity decoding `striptags` ends with.

use std::borrow::Cow;

use minijinja::value::{Kwargs, Rest, Value, ValueKind, ValueOrKwargs};
use minijinja::{Error, ErrorKind, State};

use super::Text;
use super::args::{Keywords, bool_param, describe, fail, param, str_param, text_of, usize_param};
use super::number::parse_decimal;

/// Jinja2's `truncate(length=255, killwords=false, end="...", leeway)`, on
/// characters. Two deliberate departures: `leeway` defaults to 0, because a
/// 160-character SMS budget must not silently become 165; and a cut that
/// lands exactly between words keeps the last whole word.
pub(super) fn truncate(
    state: &mut State,
    value: &Value,
    args: Rest<ValueOrKwargs>,
) -> Result<Value, Error> {
    // Keywords split off by hand, as in `split_args`, but a positional
    // `none` stays given here.
    let mut args = args.0;
    let kwargs = match args.last() {
        Some(last) if last.is_kwargs() => args.pop().map(Value::from),
        _ => None,
    };
    if args.iter().any(|arg| arg.is_kwargs()) {
        return Err(Error::new(
            ErrorKind::TooManyArguments,
            "unexpected keyword arguments",
        ));
    }
    let kwargs = Keywords(kwargs.map(Kwargs::try_from).transpose()?);
    if args.len() > 4 {
        return Err(Error::new(
            ErrorKind::TooManyArguments,
            "truncate: takes at most length, killwords, end and leeway",
        ));
    }
    let mut args = args.into_iter().map(Value::from);
    let length = param("truncate", "length", args.next(), &kwargs)?;
    let killwords = param("truncate", "killwords", args.next(), &kwargs)?;
    let end = param("truncate", "end", args.next(), &kwargs)?;
    let leeway = param("truncate", "leeway", args.next(), &kwargs)?;
    kwargs.assert_all_used()?;

    let length = usize_param("truncate", "length", length)?.unwrap_or(255);
    let killwords = bool_param("truncate", "killwords", killwords)?.unwrap_or(false);
    let end_safe = end.as_ref().is_some_and(Value::is_safe);
    let end = str_param("truncate", "end", end.as_ref())?.unwrap_or("...");
    let leeway = usize_param("truncate", "leeway", leeway)?.unwrap_or(0);

    let text = text_of("truncate", value)?;
    let end_len = end.chars().count();
    if length < end_len {
        return Err(fail(format!(
            "truncate: length {length} is shorter than the end marker {end:?}"
        )));
    }
    if text.chars().count() <= length.saturating_add(leeway) {
        return Ok(if value.kind() == ValueKind::String {
            value.clone()
        } else {
            Value::from(text)
        });
    }

    let cut = text
        .char_indices()
        .nth(length - end_len)
        .map_or(text.len(), |(i, _)| i);
    let hard = &text[..cut];
    let mut kept = hard;
    if !killwords
        && !text[cut..].starts_with(char::is_whitespace)
        && let Some(space) = hard.rfind(char::is_whitespace)
    {
        kept = &hard[..space];
    }
    kept = kept.trim_end();
    if kept.is_empty() {
        kept = hard;
    }

    if value.is_safe() {
        let end = if end_safe {
            Cow::Borrowed(end)
        } else {
            Cow::Owned(minijinja::filters::escape(state, &Value::from(end))?.to_string())
        };
        Ok(Value::from_safe_string(format!("{kept}{end}")))
    } else {
        let mut out = Text::new();
        out.push_str(kept);
        out.push_str(end);
        Ok(out.to_value())
    }
}

/// Whether a count reads as singular, Django-style: the number one (`1`,
/// `1.0`, `"1"`), or a collection of exactly one item.
fn is_singular(value: &Value) -> Result<bool, Error> {
    let not_countable = || {
        fail(format!(
            "pluralize: {} is not a number or a list",
            describe(value)
        ))
    };
    match value.kind() {
        ValueKind::Number if value.is_integer() => Ok(value.as_i64() == Some(1)),
        ValueKind::Number => Ok(f64::try_from(value.clone()).map_err(|_| not_countable())? == 1.0),
        ValueKind::String => {
            let d = parse_decimal(value.as_str().unwrap_or_default().trim())
                .ok_or_else(not_countable)?;
            Ok(!d.negative && d.digits == [1] && d.exp == 0)
        }
        ValueKind::Seq | ValueKind::Map | ValueKind::Iterable => {
            value.len().map(|n| n == 1).ok_or_else(not_countable)
        }
        _ => Err(not_countable()),
    }
}

/// `item{{ n|pluralize }}`, `entr{{ n|pluralize("y,ies") }}`,
/// `box{{ n|pluralize("es") }}`, or `pluralize(singular="y", plural="ies")`.
/// A single argument is Django's: the plural suffix, or `"singular,plural"`.
pub(super) fn pluralize(
    value: &Value,
    first: Option<Value>,
    second: Option<Value>,
    kwargs: Keywords,
) -> Result<Value, Error> {
    // The suffixes borrow from the arguments, which live out here.
    let spec_arg: Value;
    let (singular_arg, plural_arg): (Option<Value>, Option<Value>);
    let (singular, plural) = match (first, second) {
        (Some(arg), None) if !kwargs.has("singular") && !kwargs.has("plural") => {
            spec_arg = arg;
            let Some(spec) = spec_arg.as_str() else {
                return Err(fail(format!(
                    "pluralize: suffix must be a string, got {}",
                    describe(&spec_arg)
                )));
            };
            match spec.split_once(',') {
                None => (None, Some(spec)),
                Some((_, rest)) if rest.contains(',') => {
                    return Err(fail(format!(
                        "pluralize: {spec:?} has more than one comma; \
                         use \"singular,plural\""
                    )));
                }
                Some((s, p)) => (Some(s), Some(p)),
            }
        }
        (first, second) => {
            singular_arg = param("pluralize", "singular", first, &kwargs)?;
            plural_arg = param("pluralize", "plural", second, &kwargs)?;
            (
                str_param("pluralize", "singular", singular_arg.as_ref())?,
                str_param("pluralize", "plural", plural_arg.as_ref())?,
            )
        }
    };
    kwargs.assert_all_used()?;
    Ok(Value::from(if is_singular(value)? {
        singular.unwrap_or_default()
    } else {
        plural.unwrap_or("s")
    }))
}

/// Jinja2's `wordcount`: runs of letters, digits and `_` (regex `\w+`), so
/// `don't` counts as two, exactly as in Jinja2.
pub(super) fn wordcount(value: &Value) -> Result<usize, Error> {
    let text = text_of("wordcount", value)?;
    let mut count = 0;
    let mut in_word = false;
    for c in text.chars() {
        let word_char = c.is_alphanumeric() || c == '_';
        if word_char && !in_word {
            count += 1;
        }
        in_word = word_char;
    }
    Ok(count)
}

/// Jinja2's `striptags`: drops comments, then tags, collapses whitespace,
/// then decodes entities. The result is plain text, so autoescape applies
/// to it again in HTML templates.
pub(super) fn striptags(value: &Value) -> Result<String, Error> {
    let text = text_of("striptags", value)?;
    let text = remove_between(&text, "<!--", "-->");
    let text = remove_between(&text, "<", ">");
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    Ok(decode_entities(&collapsed))
}

/// Removes each `open … close` span in one pass; an `open` without a
/// `close` after it is left in place together with the rest, as Jinja2 does.
fn remove_between(text: &str, open: &str, close: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(open) {
        let Some(len) = rest[start..].find(close) else {
            break;
        };
        out.push_str(&rest[..start]);
        rest = &rest[start + len + close.len()..];
    }
    out.push_str(rest);
    out
}

/// Named entities common in email HTML; numeric ones are decoded generally.
fn named_entity(name: &str) -> Option<char> {
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => '\u{a0}',
        "shy" => '\u{ad}',
        "zwnj" => '\u{200c}',
        "zwj" => '\u{200d}',
        "ensp" => '\u{2002}',
        "emsp" => '\u{2003}',
        "thinsp" => '\u{2009}',
        "copy" => '©',
        "reg" => '®',
        "trade" => '™',
        "deg" => '°',
        "times" => '×',
        "middot" => '·',
        "bull" => '•',
        "hellip" => '…',
        "ndash" => '–',
        "mdash" => '—',
        "lsquo" => '‘',
        "rsquo" => '’',
        "sbquo" => '‚',
        "ldquo" => '“',
        "rdquo" => '”',
        "bdquo" => '„',
        "laquo" => '«',
        "raquo" => '»',
        "cent" => '¢',
        "pound" => '£',
        "yen" => '¥',
        "euro" => '€',
        _ => return None,
    })
}

fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        // Longest entity we decode is `&#x10FFFF;` / `&thinsp;`: 10 bytes.
        let semi = rest.as_bytes().iter().take(12).position(|&b| b == b';');
        let decoded = semi.and_then(|semi| {
            let body = &rest[1..semi];
            let c = if let Some(num) = body.strip_prefix('#') {
                let (digits, radix) = match num.strip_prefix(['x', 'X']) {
                    Some(hex) => (hex, 16),
                    None => (num, 10),
                };
                let code = u32::from_str_radix(digits, radix).ok()?;
                // Like Python's html.unescape: invalid code points become U+FFFD.
                char::from_u32(code)
                    .filter(|&c| c != '\0')
                    .unwrap_or('\u{fffd}')
            } else {
                named_entity(body)?
            };
            Some((c, semi + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests_support::{env, err, ok};
    use super::*;
    use minijinja::context;

    fn trunc(x: impl Into<Value>, args: &str) -> String {
        ok(
            &format!("{{{{ x|truncate{args} }}}}"),
            context! { x => x.into() },
        )
    }

    #[test]
    fn truncate_is_word_aware_and_counts_chars() {
        let s = "The quick brown fox jumps over the lazy dog";
        assert_eq!(trunc(s, ""), s);
        assert_eq!(trunc(s, "(43)"), s);
        assert_eq!(trunc(s, "(20)"), "The quick brown...");
        assert_eq!(trunc(s, "(20, true)"), "The quick brown f...");
        assert_eq!(
            trunc(s, "(length=20, killwords=true)"),
            "The quick brown f..."
        );
        assert_eq!(trunc(s, r#"(20, end="…")"#), "The quick brown fox…");
        assert_eq!(trunc(s, r#"(18, false, "")"#), "The quick brown");
        // The cut falls right before a space: the whole word stays.
        assert_eq!(trunc(s, "(18)"), "The quick brown...");
        assert_eq!(trunc(s, "(40, leeway=5)"), s);
        assert_eq!(trunc("Supercalifragilistic", "(10)"), "Superca...");
        // Characters, not bytes.
        let accented = "Crème brûlée à la façon de grand-mère";
        assert_eq!(trunc(accented, "(16)"), "Crème brûlée...");
        assert_eq!(trunc("🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉", "(5, true)"), "🎉🎉...");
        assert_eq!(
            ok("{{ x|truncate(5) is none }}", context! { x => () }),
            "True"
        );
        assert_eq!(trunc(123_456_789, "(5)"), "12...");
        let all_within = (0..200)
            .map(|n| trunc(s, &format!("({})", n.max(3))).chars().count())
            .all(|len| len <= 43);
        assert!(all_within);
    }

    #[test]
    fn truncate_keeps_html_safety() {
        let mut env = env();
        env.add_template("t.html", "{{ x|truncate(9) }}|{{ y|truncate(9) }}")
            .expect("template");
        let out = env
            .get_template("t.html")
            .and_then(|t| {
                t.render(context! {
                    x => Value::from_safe_string("<b>bold</b> text".into()),
                    y => "<b>bold</b> text",
                })
            })
            .expect("render");
        assert_eq!(out, "<b>bol...|&lt;b&gt;bol...");
    }

    #[test]
    fn truncate_errors() {
        assert_eq!(
            err("{{ 'abcdef'|truncate(2) }}", context! {}),
            r#"truncate: length 2 is shorter than the end marker "...""#
        );
        assert_eq!(
            err("{{ 'abc'|truncate('x') }}", context! {}),
            r#"truncate: length must be a whole number of at least 0, got "x""#
        );
        assert_eq!(
            err("{{ 'abc'|truncate(9, false, '', 0, 1) }}", context! {}),
            "truncate: takes at most length, killwords, end and leeway"
        );
        assert_eq!(
            err("{{ x|truncate }}", context! { x => vec![1, 2] }),
            "truncate: [1, 2] is not text"
        );
    }

    fn plural(x: impl Into<Value>, args: &str) -> String {
        ok(
            &format!("{{{{ x|pluralize{args} }}}}"),
            context! { x => x.into() },
        )
    }

    #[test]
    fn pluralize_django_style() {
        assert_eq!(plural(0, ""), "s");
        assert_eq!(plural(1, ""), "");
        assert_eq!(plural(2, ""), "s");
        assert_eq!(plural(-1, ""), "s");
        assert_eq!(plural(1.0, ""), "");
        assert_eq!(plural(1.5, ""), "s");
        assert_eq!(plural("1", ""), "");
        assert_eq!(plural(" 1.0 ", ""), "");
        assert_eq!(plural("2", ""), "s");
        assert_eq!(plural(vec!["a"], ""), "");
        assert_eq!(plural(vec!["a", "b"], ""), "s");
        assert_eq!(plural(Vec::<i32>::new(), ""), "s");
        assert_eq!(plural(2, r#"("es")"#), "es");
        assert_eq!(plural(1, r#"("es")"#), "");
        assert_eq!(plural(1, r#"("y,ies")"#), "y");
        assert_eq!(plural(3, r#"("y,ies")"#), "ies");
        assert_eq!(plural(1, r#"("y", "ies")"#), "y");
        assert_eq!(plural(3, r#"(none, "es")"#), "es");
        assert_eq!(plural(1, r#"(singular="y", plural="ies")"#), "y");
        assert_eq!(plural(2, r#"(plural="ies")"#), "ies");
        assert_eq!(
            ok("{{ n }} item{{ n|pluralize }}", context! { n => 3 }),
            "3 items"
        );
    }

    #[test]
    fn pluralize_errors_name_the_value() {
        assert_eq!(
            err("{{ x|pluralize }}", context! { x => "abc" }),
            r#"pluralize: "abc" is not a number or a list"#
        );
        assert_eq!(ok("{{ x|pluralize }}{{ x|currency }}", context! {}), "");
        assert!(err("{{ 2|pluralize('a,b,c') }}", context! {}).contains(r#""a,b,c""#));
    }

    #[test]
    fn wordcount_matches_jinja2() {
        let wc = |s: &str| ok("{{ x|wordcount }}", context! { x => s });
        assert_eq!(wc("Fresh deals for you"), "4");
        assert_eq!(wc("  spaced\n\tout  "), "2");
        assert_eq!(wc("don't miss 50% off!"), "5");
        assert_eq!(wc("café crème"), "2");
        assert_eq!(wc(""), "0");
        // Missing data stays missing, for the template's policy to judge.
        assert_eq!(ok("{{ x|wordcount }}", context! {}), "");
    }

    #[test]
    fn striptags_matches_jinja2() {
        let st = |s: &str| ok("{{ x|striptags }}", context! { x => s });
        assert_eq!(st("<p>Hello <b>world</b></p>"), "Hello world");
        assert_eq!(
            st("<p>Big\n\n   <i>sale</i></p>\n<!-- <b>hidden</b> -->now"),
            "Big sale now"
        );
        assert_eq!(
            st("Fish &amp; chips &lt;3 &#8212; &#x2764; &euro;5"),
            "Fish & chips <3 — ❤ €5"
        );
        assert_eq!(st("a &bogus; b & c &#xZZ;"), "a &bogus; b & c &#xZZ;");
        assert_eq!(st("1 < 2 and more"), "1 < 2 and more");
        assert_eq!(st("<a href='x'>link</a> <br/>done"), "link done");
        // An unclosed comment falls to the tag pass, as in Jinja2.
        assert_eq!(st("<!-- open comment <b>x</b>"), "x");
        assert_eq!(ok("{{ x|striptags }}", context! {}), "");
    }

    #[test]
    fn striptags_output_is_escaped_again_in_html() {
        let mut env = env();
        env.add_template("t.html", "{{ x|striptags }}")
            .expect("template");
        let out = env
            .get_template("t.html")
            .and_then(|t| t.render(context! { x => "<b>&lt;script&gt;</b>" }))
            .expect("render");
        assert_eq!(out, "&lt;script&gt;");
    }
}
