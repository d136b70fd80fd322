use super::*;

fn reads(source: &str) -> Vec<(usize, String)> {
    analyze(PartName::Html, source)
        .expect("parses")
        .reads
        .into_iter()
        .map(|read| (read.line, read.path))
        .collect()
}

fn keys(source: &str) -> ProfileProjection {
    analyze(PartName::Html, source).expect("parses").profile
}

fn projection(keys: &[&str]) -> ProfileProjection {
    ProfileProjection::Keys(keys.iter().map(|k| k.to_string()).collect())
}

#[test]
fn paths_follow_attributes_loops_and_local_names() {
    let source = "Hi {{ profile.first_name | default('there') }}\n\
                  {% for item in event.cart %}{{ item.price }} {{ item['variant'].size }}{% endfor %}\n\
                  {% set loyalty = profile.loyalty %}{{ loyalty.tier | title }}\n\
                  {{ message.from_label }} {{ recipient.recipient_id }} {{ now }}";
    assert_eq!(
        reads(source),
        [
            (1, "profile.first_name".to_owned()),
            (2, "event.cart".to_owned()),
            (2, "event.cart[].price".to_owned()),
            (2, "event.cart[].variant.size".to_owned()),
            (3, "profile.loyalty".to_owned()),
            (3, "profile.loyalty.tier".to_owned()),
            (4, "message.from_label".to_owned()),
            (4, "now".to_owned()),
            (4, "recipient.recipient_id".to_owned()),
        ]
    );
    assert_eq!(keys(source), projection(&["first_name", "loyalty"]));
}

#[test]
fn filters_that_keep_elements_keep_the_loop_path() {
    let source = "{% for item in event.cart | sort(attribute='price') | reverse %}{{ item.name }}{% endfor %}\
                  {{ (event.cart | first).sku }}\
                  {% for row in event.recs | batch(2) %}{% for product in row %}{{ product.url }}{% endfor %}{% endfor %}";
    let paths: Vec<String> = reads(source).into_iter().map(|(_, path)| path).collect();
    assert!(paths.contains(&"event.cart[].name".to_owned()), "{paths:?}");
    assert!(paths.contains(&"event.cart[].sku".to_owned()), "{paths:?}");
    assert!(paths.contains(&"event.recs[].url".to_owned()), "{paths:?}");
}

#[test]
fn names_that_are_not_paths_get_quoted_keys_and_computed_keys_read_the_whole_value() {
    assert_eq!(
        reads("{{ profile['favourite colour'] }}"),
        [(1, "profile[\"favourite colour\"]".to_owned())]
    );
    assert_eq!(
        keys("{{ profile['favourite colour'] }}"),
        projection(&["favourite colour"])
    );
    assert_eq!(
        keys("{% set k = 'first_name' %}{{ profile[k] }}"),
        ProfileProjection::All
    );
    assert_eq!(keys("{{ profile | tojson }}"), ProfileProjection::All);
    assert_eq!(
        keys("{% for k, v in profile | items %}{{ k }}{% endfor %}"),
        ProfileProjection::All
    );
    assert_eq!(
        keys("{{ profile.get('first_name') }}"),
        ProfileProjection::All
    );
    assert_eq!(keys("{{ event.x }}"), projection(&[]));
}

#[test]
fn a_macro_argument_is_local_and_what_is_passed_to_it_is_read() {
    let source =
        "{% macro greet(name) %}Hi {{ name }}{% endmacro %}{{ greet(profile.first_name) }}";
    assert_eq!(reads(source), [(1, "profile.first_name".to_owned())]);
    let analysis = analyze(PartName::Html, source).unwrap();
    assert!(analysis.warnings.is_empty(), "{:?}", analysis.warnings);
    assert!(analysis.errors.is_empty(), "{:?}", analysis.errors);
}

#[test]
fn a_name_bound_to_the_whole_profile_fetches_all_of_it() {
    // A branch, a loop or a macro may read through the name wherever it
    // is bound; the walker cannot follow that, so it fetches everything.
    for source in [
        "{% set user = profile %}{{ user.first_name }}",
        "{% set ns = namespace() %}{% set ns.u = profile %}{{ ns.u.first_name }}",
        "{% set event = profile %}{{ event.first_name }}",
        "{% set u = profile %}{% if event.x %}{% set u = event.y %}{% endif %}{{ u.a }}",
        "{% macro m() %}{{ u.a }}{% endmacro %}{% set u = profile %}{{ m() }}",
    ] {
        assert_eq!(keys(source), ProfileProjection::All, "{source}");
    }
}

#[test]
fn macros_defined_inside_macros_and_call_blocks_are_known() {
    let analysis = analyze(
        PartName::Html,
        "{% macro o() %}{% macro i() %}x{% endmacro %}{{ i() }}{% endmacro %}{{ o() }}\
         {% call o() %}{% macro j() %}y{% endmacro %}{{ j() }}{% endcall %}",
    )
    .unwrap();
    assert!(analysis.errors.is_empty(), "{:?}", analysis.errors);
}

#[test]
fn a_context_variable_set_in_a_branch_is_still_read_after_it() {
    // When the branch is not taken, `profile.tier` is the profile's.
    assert_eq!(
        keys("{% if event.x %}{% set profile = {'tier': 1} %}{% endif %}{{ profile.tier }}"),
        projection(&["tier"])
    );
}

#[test]
fn a_name_set_and_never_used_is_still_read() {
    // It is evaluated, so a projection must fetch it.
    assert_eq!(
        keys("{% set tags = profile.tags | sort %}"),
        projection(&["tags"])
    );
}

#[test]
fn unknown_filters_tests_and_functions_are_errors_with_their_place() {
    let analysis = analyze(
        PartName::Html,
        "line one\n  {{ profile.first_name | upperr }}\n{% if profile.vip is truthy %}{% endif %}\n{{ lipsum(2) }}",
    )
    .unwrap();
    let errors: Vec<_> = analysis
        .errors
        .iter()
        .map(|e| (e.line, e.column, e.message.as_str()))
        .collect();
    assert_eq!(
        errors,
        [
            (2, 27, "unknown filter `upperr`; did you mean `upper`?"),
            (3, 22, "unknown test `truthy`"),
            (4, 4, "unknown function `lipsum`"),
        ]
    );
}

#[test]
fn a_misspelt_root_is_a_warning_with_a_suggestion_and_locals_are_not() {
    let analysis = analyze(
        PartName::Subject,
        "{% set greeting = 'Hi' %}{{ greeting }}\n{{ profil.first_name }} {{ loop_var }}\n\
         {% for x in range(3) %}{{ loop.index }}{{ x }}{% endfor %}",
    )
    .unwrap();
    assert!(analysis.errors.is_empty(), "{:?}", analysis.errors);
    let warnings: Vec<_> = analysis
        .warnings
        .iter()
        .map(|w| (w.part, w.line, w.column, w.message.as_str()))
        .collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert_eq!(
        warnings[0],
        (
            PartName::Subject,
            2,
            Some(4),
            "`profil` is not in the context (profile, event, recipient, message, now, \
             unsubscribe_url), so it is always empty; did you mean `profile`?"
        )
    );
    assert!(
        warnings[1]
            .3
            .starts_with("`loop_var` is not in the context"),
        "{warnings:?}"
    );
    assert!(!warnings[1].3.contains("did you mean"), "{warnings:?}");
}

#[test]
fn a_syntax_error_has_its_line_and_column() {
    let error = analyze(PartName::Html, "<p>\n  {{ profile.first_name }\n</p>").unwrap_err();
    assert_eq!(error.line, 2, "{error:?}");
    assert!(error.column > 1, "{error:?}");
    assert!(error.message.contains("}"), "{error:?}");
}

#[test]
fn the_sample_newsletter_reads_what_its_author_wrote() {
    let html = include_str!("../../../../../examples/templates/spring_sale/html.jinja");
    let analysis = analyze(PartName::Html, html).unwrap();
    assert!(analysis.errors.is_empty(), "{:?}", analysis.errors);
    assert!(analysis.warnings.is_empty(), "{:?}", analysis.warnings);
    let paths: BTreeSet<&str> = analysis.reads.iter().map(|r| r.path.as_str()).collect();
    for expected in [
        "profile.first_name",
        "profile.loyalty.tier",
        "profile.location.city",
        "event.cart[].price",
        "event.cart[].name",
    ] {
        assert!(
            paths.contains(expected),
            "{expected} missing from {paths:?}"
        );
    }
    assert!(
        matches!(&analysis.profile, ProfileProjection::Keys(keys) if keys.contains("loyalty")),
        "{:?}",
        analysis.profile
    );
}
