use super::*;

fn html(source: &str) -> (String, LinkScan) {
    let mut scan = LinkScan::default();
    let out = scan.rewrite_html(source);
    (out, scan)
}

fn text(source: &str) -> (String, LinkScan) {
    let mut scan = LinkScan::default();
    let out = scan.rewrite_text(source);
    (out, scan)
}

fn fixed(scan: &LinkScan) -> Vec<&str> {
    scan.sites
        .iter()
        .filter_map(|site| match &site.target {
            LinkTarget::Fixed(url) => Some(url.as_str()),
            LinkTarget::Expression => None,
        })
        .collect()
}

#[test]
fn fixed_links_become_indexed_tags_in_every_quoting_style() {
    let (out, scan) = html(concat!(
        "<body><a href=\"https://a.example/1\">1</a>",
        "<A HREF='https://a.example/2?x=1&amp;y=2'>2</A>",
        "<a class=x href=https://a.example/3>3</a>",
        "<area shape=rect href=\"http://a.example/4\"></body>"
    ));
    assert_eq!(
        out,
        concat!(
            "<body>{{ __ap.top }}<a href=\"{{ __ap[0] }}\">1</a>",
            "<A HREF='{{ __ap[1] }}'>2</A>",
            "<a class=x href=\"{{ __ap[2] }}\">3</a>",
            "<area shape=rect href=\"{{ __ap[3] }}\"></body>"
        )
    );
    assert_eq!(
        fixed(&scan),
        [
            "https://a.example/1",
            "https://a.example/2?x=1&y=2",
            "https://a.example/3",
            "http://a.example/4"
        ]
    );
    assert!(scan.warnings.is_empty(), "{:?}", scan.warnings);
}

#[test]
fn line_breaks_inside_a_url_are_removed_and_lines_keep_their_numbers() {
    let source = "<body>\n<a href=\"https://a.example/very/\n   long?q=1\">x</a>\n<a href=\"{{ missing.url }}\">y</a>";
    let (out, scan) = html(source);
    assert_eq!(fixed(&scan), ["https://a.example/very/long?q=1"]);
    assert_eq!(out.lines().count(), source.lines().count());
    assert_eq!(scan.sites[0].line, 2);
    assert_eq!(scan.sites[1].line, 4);
    assert!(out.lines().nth(3).unwrap().contains("__ap_track(1)"));
}

#[test]
fn expression_hrefs_are_wrapped_in_the_track_filter() {
    let (out, scan) = html(
        "<a href=\"{{ item.url }}\">a</a><a href='https://s.example/p/{{ item.id }}?r={{ \"x\" }}'>b</a>",
    );
    assert_eq!(
        out,
        concat!(
            "{{ __ap.top }}<a href=\"{% filter __ap_track(0) %}{{ item.url }}{% endfilter %}\">a</a>",
            "<a href='{% filter __ap_track(1) %}https://s.example/p/{{ item.id }}?r={{ \"x\" }}{% endfilter %}'>b</a>"
        )
    );
    assert!(
        scan.sites
            .iter()
            .all(|site| site.target == LinkTarget::Expression)
    );
}

#[test]
fn links_that_must_not_be_tracked_are_left_alone() {
    let source = concat!(
        "<body><a href=\"mailto:help@shop.example\">m</a><a href=\"tel:+15550100\">t</a>",
        "<a href=\"#top\">top</a><a data-notrack href=\"https://a.example/x\">n</a>",
        "<a href=\"mailto:{{ profile.email }}\">me</a><a href=\"{{ unsubscribe_url }}\">u</a>",
        "<a href=\"javascript:alert(1)\">j</a><a href=\"data:text/html,hi\">d</a>",
        "<a href=\"/relative\">r</a><a href=\"{% if vip %}https://a.example/vip{% else %}https://a.example{% endif %}\">v</a>",
        "<img src=\"https://cdn.example/x.png\"><link href=\"https://cdn.example/x.css\"></body>"
    );
    let (out, scan) = html(source);
    assert_eq!(out, source.replacen("<body>", "<body>{{ __ap.top }}", 1));
    assert!(scan.sites.is_empty(), "{:?}", scan.sites);
    let warnings: Vec<String> = scan.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "part html line 1: `javascript:` link `javascript:alert(1)` left untouched",
            "part html line 1: `data:` link `data:text/html,hi` left untouched",
            "part html line 1: link `/relative` is not http(s), left untracked",
            "part html line 1: link `{% if vip %}https://a.example/vip{% else %}https://a.example{% endif %}` has `{% %}` logic in its href, left untracked",
        ]
    );
}

#[test]
fn outlook_conditional_comments_are_scanned_and_plain_comments_are_not() {
    let (out, scan) = html(concat!(
        "<body><!--[if mso]><v:roundrect xmlns:v=\"urn:schemas-microsoft-com:vml\" href=\"https://a.example/btn\" arcsize=\"10%\"><center>Go</center></v:roundrect><![endif]-->",
        "<!--[if !mso]><!--><a href=\"https://a.example/btn\">Go</a><!--<![endif]-->",
        "<!-- <a href=\"https://a.example/old\">old</a> --></body>"
    ));
    assert_eq!(
        fixed(&scan),
        ["https://a.example/btn", "https://a.example/btn"]
    );
    assert!(
        out.contains(
            "<v:roundrect xmlns:v=\"urn:schemas-microsoft-com:vml\" href=\"{{ __ap[0] }}\""
        )
    );
    assert!(out.contains("href=\"https://a.example/old\""));
}

#[test]
fn jinja_inside_tags_styles_and_raw_blocks_does_not_confuse_the_scan() {
    let (out, scan) = html(concat!(
        "<head><style>a[href=\"https://x.example\"] { color: red }</style></head>",
        "<body class=\"{{ theme }}\">",
        "<a {% if vip %}class=\"vip\"{% endif %} title=\"{{ '>' }}\" href=\"https://a.example/1\">x</a>",
        "{% raw %}<a href=\"https://a.example/raw\">{{ literal }}</a>{% endraw %}",
        "{# <a href=\"https://a.example/comment\"> #}</body>"
    ));
    assert_eq!(fixed(&scan), ["https://a.example/1"]);
    assert!(out.contains("<body class=\"{{ theme }}\">{{ __ap.top }}<a"));
}

#[test]
fn the_top_marker_falls_back_to_the_end_of_head_then_the_start() {
    assert_eq!(
        html("<html><head><title>x</title></head><p>hi</p>").0,
        "<html><head><title>x</title>{{ __ap.top }}</head><p>hi</p>"
    );
    assert_eq!(html("<p>hi</p>").0, "{{ __ap.top }}<p>hi</p>");
    assert_eq!(
        html("<bodyguard><BODY\nid=b>x").0,
        "<bodyguard><BODY\nid=b>{{ __ap.top }}x"
    );
}

#[test]
fn text_urls_are_found_with_their_sentence_punctuation_left_out() {
    let (out, scan) = text(concat!(
        "Shop now: https://shop.example/sale.\n",
        "(see https://shop.example/wiki/Foo_(bar)) or HTTPS://SHOP.EXAMPLE/UP, ",
        "item {{ item.url }} and https://shop.example/p/{{ item.id }}?r=1\n",
        "mailto:x@y.example {{ unsubscribe_url }} {{ item.name }} xhttps://no.example"
    ));
    assert_eq!(
        fixed(&scan),
        [
            "https://shop.example/sale",
            "https://shop.example/wiki/Foo_(bar)",
            "HTTPS://SHOP.EXAMPLE/UP"
        ]
    );
    assert_eq!(scan.sites.len(), 5);
    assert_eq!(
        out,
        concat!(
            "Shop now: {{ __ap[0] }}.\n",
            "(see {{ __ap[1] }}) or {{ __ap[2] }}, ",
            "item {% filter __ap_track(3) %}{{ item.url }}{% endfilter %} and ",
            "{% filter __ap_track(4) %}https://shop.example/p/{{ item.id }}?r=1{% endfilter %}\n",
            "mailto:x@y.example {{ unsubscribe_url }} {{ item.name }} xhttps://no.example"
        )
    );
}

#[test]
fn text_urls_with_logic_are_left_untracked_with_a_warning() {
    let (out, scan) = text("Go to\nhttps://a.example/{% if vip %}vip{% endif %} now");
    assert_eq!(
        out,
        "Go to\nhttps://a.example/{% if vip %}vip{% endif %} now"
    );
    assert!(scan.sites.is_empty());
    assert_eq!(
        scan.warnings[0].to_string(),
        "part text line 2: URL `https://a.example/` has `{% %}` logic inside, left untracked"
    );
}

#[test]
fn unterminated_markup_does_not_panic() {
    for source in [
        "<a href=\"https://a.example",
        "<a href=",
        "<a href='{{ x",
        "<!--",
        "<!--[if mso]><v:rect href=",
        "{% raw %}<a href=\"https://a.example\">",
        "<style>",
        "<",
        "{{",
        "<a\u{e9}\u{301} hr\u{e9}f=\"\u{1F600}\">",
    ] {
        html(source);
        text(source);
    }
}

proptest::proptest! {
    #[test]
    fn any_input_rewrites_without_panicking_and_keeps_its_lines(source in ".{0,200}") {
        let (out, _) = html(&source);
        proptest::prop_assert_eq!(out.matches('\n').count(), source.matches('\n').count());
        let (out, _) = text(&source);
        proptest::prop_assert_eq!(out.matches('\n').count(), source.matches('\n').count());
    }
}
