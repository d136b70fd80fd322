//! UTM parameters and link exclusions, applied to URL strings exactly as written.
//!
//! Nothing here parses a URL into a normalised form: IDN hosts, unicode paths
//! and existing escapes stay byte for byte as the template had them, so a
//! tracked link redirects to exactly the destination its author wrote. Only
//! the query is touched, and only by appending.

use std::borrow::Cow;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

/// Everything except RFC 3986 unreserved characters is escaped, so an encoded
/// key or value can never be read as `&`, `=`, `#` or `+` by anyone.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The URL cut into the parts that adding parameters cares about.
struct Parts<'a> {
    /// Scheme, authority and path: everything before `?` or `#`.
    base: &'a str,
    /// The query without its `?`; `None` when the URL has no `?`.
    query: Option<&'a str>,
    /// The fragment with its `#`, or empty.
    fragment: &'a str,
}

fn split(url: &str) -> Parts<'_> {
    // The first `#` ends the query: a `?` after it belongs to the fragment.
    let (before, fragment) = match url.find('#') {
        Some(i) => url.split_at(i),
        None => (url, ""),
    };
    match before.split_once('?') {
        Some((base, query)) => Parts {
            base,
            query: Some(query),
            fragment,
        },
        None => Parts {
            base: before,
            query: None,
            fragment,
        },
    }
}

fn encode_pair(out: &mut String, key: &str, value: &str) {
    out.extend(utf8_percent_encode(key, COMPONENT));
    out.push('=');
    out.extend(utf8_percent_encode(value, COMPONENT));
}

/// Parameters encoded once and added to many URLs: a message's UTM
/// parameters are encoded when the request is prepared, not per link.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryParams {
    /// The key as given, and the encoded `key=value` pair.
    pairs: Vec<(String, String)>,
}

impl QueryParams {
    /// Pairs with an empty key, and keys repeated within `params`, are
    /// dropped; the first of a repeated key wins.
    pub fn new(params: &[(String, String)]) -> Self {
        let mut pairs: Vec<(String, String)> = Vec::with_capacity(params.len());
        for (key, value) in params {
            if key.is_empty() || pairs.iter().any(|(k, _)| k == key) {
                continue;
            }
            let mut pair = String::new();
            encode_pair(&mut pair, key, value);
            pairs.push((key.clone(), pair));
        }
        Self { pairs }
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The query-string form, `utm_source=news&utm_campaign=spring%20sale`:
    /// the pairs as they are added to URLs (carried inside tokens).
    pub fn query(&self) -> String {
        let mut out = String::new();
        for (_, pair) in &self.pairs {
            if !out.is_empty() {
                out.push('&');
            }
            out.push_str(pair);
        }
        out
    }
}

/// Appends `params` (key, value pairs, already rendered) to the URL's query,
/// before any `#fragment`.
///
/// A key the URL's query already has (percent-decoded keys compared
/// case-sensitively) is not added again, nor is a key repeated within
/// `params`; pairs with an empty key are skipped. Keys and values are
/// percent-encoded: RFC 3986 unreserved characters stay, every other byte of
/// their UTF-8 becomes `%XX` (space is `%20`). Returns `Borrowed` when nothing
/// was added.
pub fn add_query_params<'a>(url: &'a str, params: &[(String, String)]) -> Cow<'a, str> {
    add_params(url, &QueryParams::new(params))
}

/// [`add_query_params`] with parameters encoded beforehand.
pub fn add_params<'a>(url: &'a str, params: &QueryParams) -> Cow<'a, str> {
    if params.is_empty() {
        return Cow::Borrowed(url);
    }
    let parts = split(url);
    let query = parts.query.unwrap_or("");
    let mut added = params
        .pairs
        .iter()
        .filter(|(key, _)| query.is_empty() || !query_has_key(query, key))
        .peekable();
    if added.peek().is_none() {
        return Cow::Borrowed(url);
    }
    let extra: usize = params.pairs.iter().map(|(_, pair)| pair.len() + 1).sum();
    let mut out = String::with_capacity(url.len() + 1 + extra);
    out.push_str(parts.base);
    out.push('?');
    out.push_str(query);
    // A query that is empty or already ends in `&` needs no separator.
    let mut need_sep = !query.is_empty() && !query.ends_with('&');
    for (_, pair) in added {
        if need_sep {
            out.push('&');
        }
        out.push_str(pair);
        need_sep = true;
    }
    out.push_str(parts.fragment);
    Cow::Owned(out)
}

/// Whether the raw query string has `key` once its keys are percent-decoded.
fn query_has_key(query: &str, key: &str) -> bool {
    query.split('&').any(|pair| {
        let raw = pair.split_once('=').map_or(pair, |(k, _)| k);
        if raw.len() < key.len() {
            // An escape only ever makes a key longer, never shorter.
            return false;
        }
        percent_decode_str(raw).eq(key.bytes())
    })
}

/// The query-string form of `params`, `utm_source=news&utm_campaign=spring%20sale`,
/// encoded as in [`add_query_params`] (used to carry parameters inside a token).
/// Pairs with an empty key are skipped; duplicates are kept in order.
pub fn encode_query(params: &[(String, String)]) -> String {
    let mut out = String::new();
    for (key, value) in params.iter().filter(|(k, _)| !k.is_empty()) {
        if !out.is_empty() {
            out.push('&');
        }
        encode_pair(&mut out, key, value);
    }
    out
}

/// Decodes a query string made by [`encode_query`] back into pairs (used when
/// resolving a token).
///
/// Empty pieces between `&`s and pairs with an empty key are dropped, a piece
/// without `=` is a key with an empty value, `+` is kept as `+` (the encoder
/// writes spaces as `%20`), and escapes that do not decode to UTF-8 become
/// U+FFFD. A leading `?` is ignored.
pub fn decode_query(query: &str) -> Vec<(String, String)> {
    let query = query.strip_prefix('?').unwrap_or(query);
    query
        .split('&')
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let key = percent_decode_str(key).decode_utf8_lossy();
            if key.is_empty() {
                return None;
            }
            let value = percent_decode_str(value).decode_utf8_lossy();
            Some((key.into_owned(), value.into_owned()))
        })
        .collect()
}

/// Whether `url` matches any exclusion pattern.
///
/// A pattern is matched against the whole URL, case-sensitively, with `*`
/// matching any run of characters (including none):
/// `https://shop.example/account/*`.
pub fn is_excluded(url: &str, patterns: &[String]) -> bool {
    patterns
        .iter()
        .any(|p| wildcard_match(p.as_bytes(), url.as_bytes()))
}

/// Glob match with `*` only. Greedy with one backtrack point, so the time is
/// bounded by `pattern.len() * text.len()` with no recursion. Bytes suffice:
/// a literal piece is valid UTF-8, so it can only match at a char boundary.
fn wildcard_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // Where the last `*` was, and the text position it currently stands for.
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            backtrack = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((star, matched)) = backtrack {
            // Let the last `*` swallow one more byte and retry after it.
            backtrack = Some((star, matched + 1));
            p = star + 1;
            t = matched + 1;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

/// Whether `url` has an `http` or `https` scheme (ASCII case-insensitive),
/// followed by `://` and a non-empty host.
///
/// The host is what is left of the authority (up to the first `/`, `?` or
/// `#`) once any `userinfo@` and `:port` are taken off.
pub fn is_http(url: &str) -> bool {
    let Some((scheme, rest)) = url.split_once("://") else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return false;
    }
    let authority = rest.find(['/', '?', '#']).map_or(rest, |end| &rest[..end]);
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if host_port.starts_with('[') {
        // An IPv6 literal has colons of its own; the port follows the `]`.
        match host_port.find(']') {
            Some(end) => &host_port[..=end],
            None => return false,
        }
    } else {
        host_port.split_once(':').map_or(host_port, |(h, _)| h)
    };
    !host.is_empty() && host != "[]"
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|&(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    fn add(url: &str, list: &[(&str, &str)]) -> String {
        add_query_params(url, &pairs(list)).into_owned()
    }

    #[test]
    fn no_query() {
        assert_eq!(
            add("https://a.example/p", &[("k", "v")]),
            "https://a.example/p?k=v"
        );
        assert_eq!(
            add("https://a.example", &[("k", "v")]),
            "https://a.example?k=v"
        );
    }

    #[test]
    fn empty_query() {
        assert_eq!(
            add("https://a.example/p?", &[("k", "v")]),
            "https://a.example/p?k=v"
        );
    }

    #[test]
    fn existing_query_and_trailing_ampersand() {
        assert_eq!(
            add("https://a.example/p?x=1", &[("k", "v"), ("j", "w")]),
            "https://a.example/p?x=1&k=v&j=w"
        );
        assert_eq!(
            add("https://a.example/p?x=1&", &[("k", "v")]),
            "https://a.example/p?x=1&k=v"
        );
        assert_eq!(
            add("https://a.example/p?flag", &[("k", "v")]),
            "https://a.example/p?flag&k=v"
        );
    }

    #[test]
    fn fragment_stays_last() {
        assert_eq!(
            add("https://a.example/p#top", &[("k", "v")]),
            "https://a.example/p?k=v#top"
        );
        assert_eq!(
            add("https://a.example/p?x=1#top", &[("k", "v")]),
            "https://a.example/p?x=1&k=v#top"
        );
        assert_eq!(
            add("https://a.example/p#frag?k=1&x", &[("k", "v")]),
            "https://a.example/p?k=v#frag?k=1&x"
        );
        assert_eq!(
            add("https://a.example/p#", &[("k", "v")]),
            "https://a.example/p?k=v#"
        );
    }

    #[test]
    fn existing_keys_are_not_added_again() {
        let url = "https://a.example/p?utm_source=old&x=1";
        assert!(matches!(
            add_query_params(url, &pairs(&[("utm_source", "new")])),
            Cow::Borrowed(_)
        ));
        assert_eq!(
            add(url, &[("utm_source", "new"), ("utm_medium", "email")]),
            "https://a.example/p?utm_source=old&x=1&utm_medium=email"
        );
        // A bare key counts as present.
        assert_eq!(
            add("https://a.example/?utm_source", &[("utm_source", "n")]),
            "https://a.example/?utm_source"
        );
    }

    #[test]
    fn keys_compare_case_sensitively() {
        assert_eq!(
            add("https://a.example/?UTM_SOURCE=x", &[("utm_source", "n")]),
            "https://a.example/?UTM_SOURCE=x&utm_source=n"
        );
    }

    #[test]
    fn existing_keys_compare_percent_decoded() {
        let url = "https://a.example/?utm%5Fsource=x";
        assert!(matches!(
            add_query_params(url, &pairs(&[("utm_source", "n")])),
            Cow::Borrowed(_)
        ));
        let url = "https://a.example/?caf%C3%A9=1";
        assert!(matches!(
            add_query_params(url, &pairs(&[("café", "n")])),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn duplicate_and_empty_param_keys() {
        assert_eq!(
            add(
                "https://a.example/",
                &[("k", "1"), ("k", "2"), ("", "x"), ("j", "")]
            ),
            "https://a.example/?k=1&j="
        );
        assert!(matches!(
            add_query_params("https://a.example/", &[]),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn encoding_of_keys_and_values() {
        assert_eq!(
            add(
                "https://a.example/",
                &[("utm campaign", "spring sale & more=+50%/é~._-")]
            ),
            "https://a.example/?utm%20campaign=spring%20sale%20%26%20more%3D%2B50%25%2F%C3%A9~._-"
        );
    }

    #[test]
    fn url_is_kept_as_written() {
        assert_eq!(
            add("https://bücher.example/straße/%7Euser?q=ü", &[("k", "v")]),
            "https://bücher.example/straße/%7Euser?q=ü&k=v"
        );
    }

    #[test]
    fn query_round_trip() {
        let params = pairs(&[
            ("utm_source", "news"),
            ("utm_campaign", "spring sale"),
            ("x", "a&b=c+d%"),
        ]);
        let q = encode_query(&params);
        assert_eq!(QueryParams::new(&params).query(), q, "one encoding");
        assert_eq!(
            q,
            "utm_source=news&utm_campaign=spring%20sale&x=a%26b%3Dc%2Bd%25"
        );
        assert_eq!(decode_query(&q), params);
        assert_eq!(encode_query(&[]), "");
        assert!(decode_query("").is_empty());
    }

    #[test]
    fn decode_query_tolerates_odd_input() {
        assert_eq!(
            decode_query("?a&&=x&b=1=2&c=%ff%&d=+"),
            pairs(&[("a", ""), ("b", "1=2"), ("c", "\u{fffd}%"), ("d", "+")])
        );
    }

    #[test]
    fn exclusions() {
        let patterns = vec![
            "https://shop.example/account/*".to_owned(),
            "*unsubscribe*".to_owned(),
        ];
        assert!(is_excluded("https://shop.example/account/", &patterns));
        assert!(is_excluded(
            "https://shop.example/account/orders?id=1",
            &patterns
        ));
        assert!(!is_excluded("https://shop.example/account", &patterns));
        assert!(!is_excluded("https://SHOP.example/account/x", &patterns));
        assert!(!is_excluded("http://shop.example/account/x", &patterns));
        assert!(is_excluded("https://x.example/unsubscribe", &patterns));
        assert!(!is_excluded("https://x.example/", &[]));
        let exact = vec!["https://a.example/".to_owned()];
        assert!(is_excluded("https://a.example/", &exact));
        assert!(!is_excluded("https://a.example/x", &exact));
        let inner = vec!["https://*.example/*/ü".to_owned()];
        assert!(is_excluded("https://a.b.example/x/y/ü", &inner));
        assert!(!is_excluded("https://a.b.example/ü", &inner));
        assert!(is_excluded("", &["".to_owned()]));
        assert!(is_excluded("abc", &["**".to_owned()]));
        assert!(is_excluded("aaab", &["a*a*b".to_owned()]));
        assert!(!is_excluded("aaa", &["a*a*b".to_owned()]));
    }

    #[test]
    fn http_detection() {
        for yes in [
            "http://a.example",
            "https://a.example/p",
            "HTTPS://a.example",
            "HtTp://bücher.example/",
            "https://user:pw@a.example:8443/x",
            "https://[::1]:8080/",
            "https://a.example?x",
            "https://a.example#x",
        ] {
            assert!(is_http(yes), "{yes}");
        }
        for no in [
            "",
            "mailto:a@b.example",
            "ftp://a.example/",
            "https:/a.example",
            "https://",
            "https:///path",
            "https://:443/",
            "https://user@/",
            "https://[]/",
            "https://[::1",
            "httpx://a.example",
            "//a.example/",
            "tel:+123",
        ] {
            assert!(!is_http(no), "{no}");
        }
    }

    fn host() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z][a-z0-9-]{0,10}(\\.[a-z]{2,6}){1,2}",
            Just("bücher.example".to_owned()),
            Just("xn--bcher-kva.example".to_owned()),
            Just("例え.テスト".to_owned()),
            Just("[2001:db8::1]".to_owned()),
        ]
    }

    fn segment() -> impl Strategy<Value = String> {
        prop_oneof![
            "[A-Za-z0-9._~-]{0,8}",
            "[äöüßé漢字ç]{1,4}",
            "(%[0-9A-F]{2}){1,3}",
            "[a-z]{1,3}(%[0-9a-f]{2})[a-z]{0,3}",
        ]
    }

    /// Query keys/values as they may appear in a template: plain, escaped,
    /// unicode, or a UTM key already present (sometimes escaped).
    fn query_word() -> impl Strategy<Value = String> {
        prop_oneof![
            "[A-Za-z0-9._~+-]{0,6}",
            "[a-z]{0,3}(%[0-9A-F]{2})[a-z]{0,3}",
            "[äü漢]{1,2}",
            Just("utm_source".to_owned()),
            Just("utm%5Fmedium".to_owned()),
            Just("UTM_CAMPAIGN".to_owned()),
        ]
    }

    fn query() -> impl Strategy<Value = Option<String>> {
        let pair = (query_word(), prop::option::of(query_word())).prop_map(|(k, v)| match v {
            Some(v) => format!("{k}={v}"),
            None => k,
        });
        let q =
            (prop::collection::vec(pair, 0..5), any::<bool>()).prop_map(|(pairs, trailing_amp)| {
                let mut q = pairs.join("&");
                if trailing_amp {
                    q.push('&');
                }
                q
            });
        prop::option::of(q)
    }

    fn fragment() -> impl Strategy<Value = Option<String>> {
        prop::option::of("[A-Za-z0-9?&=/#ü-]{0,10}")
    }

    fn http_url() -> impl Strategy<Value = (String, Option<String>, Option<String>)> {
        (
            prop::sample::select(vec!["http", "https", "HTTPS", "Http"]),
            host(),
            prop::option::of(1u16..),
            prop::collection::vec(segment(), 0..4),
            prop::option::of(Just(())),
            query(),
            fragment(),
        )
            .prop_map(
                |(scheme, host, port, segments, trailing_slash, query, fragment)| {
                    let mut base = format!("{scheme}://{host}");
                    if let Some(port) = port {
                        base.push_str(&format!(":{port}"));
                    }
                    for s in &segments {
                        base.push('/');
                        base.push_str(s);
                    }
                    if trailing_slash.is_some() {
                        base.push('/');
                    }
                    (base, query, fragment)
                },
            )
    }

    fn utm_params() -> impl Strategy<Value = Vec<(String, String)>> {
        let keys = [
            "utm_source",
            "utm_medium",
            "utm_campaign",
            "utm_content",
            "utm_term",
        ];
        prop::collection::vec(any::<String>(), keys.len())
            .prop_map(move |values| keys.iter().map(|k| (*k).to_owned()).zip(values).collect())
    }

    fn count_key(query: &str, key: &str) -> usize {
        query
            .split('&')
            .filter(|pair| {
                let raw = pair.split_once('=').map_or(*pair, |(k, _)| k);
                percent_decode_str(raw).decode_utf8_lossy() == key
            })
            .count()
    }

    proptest! {
        #[test]
        fn prop_add_query_params(
            (base, query, fragment) in http_url(),
            params in utm_params(),
        ) {
            let mut url = base.clone();
            if let Some(q) = &query {
                url.push('?');
                url.push_str(q);
            }
            if let Some(f) = &fragment {
                url.push('#');
                url.push_str(f);
            }
            prop_assert!(is_http(&url), "{}", url);
            let original_query = query.clone().unwrap_or_default();

            let result = add_query_params(&url, &params);
            let parts = split(&result);
            prop_assert_eq!(parts.base, &base[..]);
            let expected_fragment = fragment.as_ref().map(|f| format!("#{f}")).unwrap_or_default();
            prop_assert_eq!(parts.fragment, &expected_fragment[..]);

            let new_query = parts.query.unwrap_or("");
            prop_assert!(new_query.starts_with(&original_query), "{} vs {}", new_query, original_query);
            let mut added = &new_query[original_query.len()..];
            if !original_query.is_empty() && !original_query.ends_with('&') && !added.is_empty() {
                prop_assert!(added.starts_with('&'));
                added = &added[1..];
            }
            let expected_added: Vec<(String, String)> = params
                .iter()
                .filter(|(k, _)| count_key(&original_query, k) == 0)
                .cloned()
                .collect();
            prop_assert_eq!(decode_query(added), expected_added.clone());
            prop_assert_eq!(added, encode_query(&expected_added));
            if expected_added.is_empty() {
                prop_assert!(matches!(result, Cow::Borrowed(_)));
                prop_assert_eq!(&result[..], &url[..]);
            }
            for (key, _) in &params {
                prop_assert_eq!(count_key(new_query, key), count_key(&original_query, key).max(1), "{}", key);
            }
        }

        #[test]
        fn prop_query_round_trip(params in prop::collection::vec(("\\PC{1,8}", "\\PC{0,8}"), 0..6)) {
            let q = encode_query(&params);
            prop_assert!(q.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%=&".contains(&b)), "{}", q);
            prop_assert_eq!(decode_query(&q), params);
        }

        #[test]
        fn prop_literal_patterns_match_only_themselves(a in "\\PC{0,12}", b in "\\PC{0,12}") {
            prop_assume!(!a.contains('*'));
            prop_assert_eq!(is_excluded(&b, std::slice::from_ref(&a)), a == b);
            let prefix = format!("{a}*");
            let joined = format!("{a}{b}");
            prop_assert!(is_excluded(&joined, std::slice::from_ref(&prefix)));
        }

        #[test]
        fn prop_no_panics(text in "\\PC{0,40}", pattern in "[a*?]{0,6}") {
            let _ = is_http(&text);
            let _ = decode_query(&text);
            let _ = add_query_params(&text, &[("k".to_owned(), text.clone())]);
            let _ = is_excluded(&text, &[pattern]);
        }
    }
}
