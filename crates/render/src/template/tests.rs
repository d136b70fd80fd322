use super::*;

fn email(subject: &str, html: &str) -> TemplateParts {
    TemplateParts {
        subject: Some(subject.into()),
        html: Some(html.into()),
        ..Default::default()
    }
}

#[test]
fn compile_errors_name_template_part_and_line() {
    let parts = email("Hi", "<p>one</p>\n<p>two</p>\n<p>{{ profile.name </p>");
    let error = CompiledTemplate::compile(
        "spring_sale",
        Channel::Email,
        &parts,
        &RenderLimits::default(),
    )
    .unwrap_err();
    assert_eq!(error.part, Some(PartName::Html));
    assert_eq!((error.line, error.column), (Some(3), Some(21)));
    assert!(
        error
            .to_string()
            .starts_with("template \"spring_sale\" part html line 3 column 21: "),
        "{error}"
    );
}

#[test]
fn bundles_must_fit_their_channel() {
    let sms = TemplateParts {
        sms: Some("hi".into()),
        ..Default::default()
    };
    let error =
        CompiledTemplate::compile("t", Channel::Email, &sms, &RenderLimits::default()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "template \"t\": part `sms` does not apply to channel email"
    );
    assert!(CompiledTemplate::compile("t", Channel::Sms, &sms, &RenderLimits::default()).is_ok());
}

#[test]
fn cache_compiles_once_per_revision() {
    let cache = TemplateCache::new(2, RenderLimits::default());
    let company = crate::request::CompanyId::parse("acme").unwrap();
    let parts = email("Hi", "<p>x</p>");
    let key = TemplateKey::new(company.clone(), None, None, &parts);
    let first = cache.get_or_compile(&key, Channel::Email, &parts).unwrap();
    let second = cache.get_or_compile(&key, Channel::Email, &parts).unwrap();
    assert!(Arc::ptr_eq(&first, &second));

    let changed = email("Hello", "<p>x</p>");
    let other = TemplateKey::new(company.clone(), None, None, &changed);
    assert_ne!(key, other, "a content change is a new revision");
    cache
        .get_or_compile(&other, Channel::Email, &changed)
        .unwrap();
    let third = TemplateKey::new(company, None, Some(7), &changed);
    cache
        .get_or_compile(&third, Channel::Email, &changed)
        .unwrap();
    assert_eq!(cache.len(), 2, "the cache stays within its capacity");
}

#[test]
fn compile_errors_are_not_cached() {
    let cache = TemplateCache::new(4, RenderLimits::default());
    let company = crate::request::CompanyId::parse("acme").unwrap();
    let broken = email("{{", "<p>x</p>");
    let key = TemplateKey::new(company, None, Some(1), &broken);
    assert!(cache.get_or_compile(&key, Channel::Email, &broken).is_err());
    assert!(cache.is_empty());
}

/// The names a template can reach, probed through a real environment: a
/// change to the allowlist (or a minijinja upgrade that adds a built-in)
/// shows up here.
#[test]
fn allowlist_is_pinned() {
    let env = env::base_environment(&RenderLimits::default(), MissingData::Empty);
    let candidates = [
        "now",
        "random",
        "env",
        "debug",
        "pprint",
        "include_raw",
        "cycler",
        "joiner",
        "lipsum",
        "url_for",
        "datetimeformat",
    ];
    let probe_filter = |name: &str| {
        let source = format!("{{{{ 1 | {name} }}}}");
        match env.render_str(&source, ()) {
            Err(error) => error.kind() != minijinja::ErrorKind::UnknownFilter,
            Ok(_) => true,
        }
    };
    let filters: Vec<&str> = allowed_filters()
        .into_iter()
        .chain(candidates)
        .filter(|name| probe_filter(name))
        .collect();
    assert_eq!(
        filters,
        allowed_filters(),
        "exactly the allowlisted filters are reachable"
    );

    let probe_test = |name: &str| {
        let source = format!("{{{{ 1 is {name} }}}}");
        !matches!(env.render_str(&source, ()), Err(e) if e.kind() == minijinja::ErrorKind::UnknownTest)
    };
    assert!(TESTS.iter().all(|name| probe_test(name)));

    let mut globals: Vec<&str> = env.globals().map(|(name, _)| name).collect();
    globals.sort_unstable();
    assert_eq!(globals, GLOBALS);
    insta::assert_snapshot!(format!(
        "filters: {}\ntests: {}\nglobals: {}",
        allowed_filters().join(", "),
        TESTS.join(", "),
        GLOBALS.join(", ")
    ));
}

#[test]
fn the_names_link_tracking_uses_are_reserved() {
    for (html, reserved) in [
        ("<p>{{ __ap.top }}</p>", "__ap"),
        ("<p>{{ 'x' | __ap_track(0) }}</p>", "__ap_track"),
    ] {
        let error = CompiledTemplate::compile(
            "news",
            Channel::Email,
            &email("Hi", html),
            &RenderLimits::default(),
        )
        .unwrap_err();
        assert_eq!(error.part, Some(PartName::Html), "{error}");
        assert!(
            error
                .to_string()
                .ends_with(&format!("`{reserved}` is reserved for link tracking")),
            "{error}"
        );
    }
}

#[test]
fn an_unknown_filter_stops_the_compile_and_a_misspelt_root_is_a_warning() {
    let error = CompiledTemplate::compile(
        "news",
        Channel::Email,
        &email("Hi", "<p>\n{{ profile.first_name | titel }}</p>"),
        &RenderLimits::default(),
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "template \"news\" part html line 2 column 25: unknown filter `titel`; did you mean `title`?"
    );

    let compiled = CompiledTemplate::compile(
        "news",
        Channel::Email,
        &email(
            "Hi {{ profil.first_name }}",
            "<p>{{ profile.location.city }}</p>",
        ),
        &RenderLimits::default(),
    )
    .expect("a warning does not stop the compile");
    let warnings: Vec<String> = compiled
        .warnings()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with("part subject line 1 column 7: `profil` is not in the context"),
        "{warnings:?}"
    );
    assert!(
        warnings[0].ends_with("did you mean `profile`?"),
        "{warnings:?}"
    );
    assert_eq!(
        compiled
            .profile_projection()
            .keys()
            .map(|keys| keys.iter().map(String::as_str).collect::<Vec<_>>()),
        Some(vec!["location"])
    );
    assert_eq!(
        compiled.reads(PartName::Html)[0].path,
        "profile.location.city"
    );
}
