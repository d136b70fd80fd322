//! Profile projection: a profile parsed down to the keys a template reads
//! renders exactly the artifacts the whole profile renders.

mod common;

use std::sync::Arc;

use common::{example_request, inline_request, prepare};
use proptest::prelude::*;

/// JSON values shaped like profile properties: the keys the examples read
/// and others, nested a little, of every type.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        (-1e6f64..1e6).prop_map(serde_json::Value::from),
        "[a-zA-Z <>&é]{0,12}".prop_map(serde_json::Value::from),
        Just(serde_json::Value::from("2026-03-14T10:00:00Z")),
        Just(serde_json::Value::from("Europe/London")),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(key(), inner, 0..4)
                .prop_map(|map| serde_json::Value::Object(map.into_iter().collect())),
        ]
    })
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "first_name",
            "last_name",
            "email",
            "location",
            "city",
            "country",
            "loyalty",
            "tier",
            "points",
            "signup_date",
            "timezone",
            "vip",
            "preferences",
        ])
        .prop_map(str::to_owned),
        "[a-z_]{1,8}",
    ]
}

fn profile() -> impl Strategy<Value = serde_json::Value> {
    prop::collection::btree_map(key(), json_value(), 0..12)
        .prop_map(|map| serde_json::Value::Object(map.into_iter().collect()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn a_projected_profile_renders_the_same_artifacts(profile in profile()) {
        let text = serde_json::to_string(&profile).unwrap();
        for file in ["request.json", "sms-request.json"] {
            let prepared = prepare(example_request(file));
            let projection = prepared.template().profile_projection();
            prop_assert!(projection.keys().is_some(), "the examples read named keys");
            let projected = Arc::new(projection.parse(&text).unwrap());
            // What the full fetch does: parse the stored text whole.
            let full = Arc::new(serde_json::from_str::<serde_json::Value>(&text).unwrap());
            for recipient in prepared.request().render_recipients() {
                let a = prepared.render(recipient, Some(&full));
                let b = prepared.render(recipient, Some(&projected));
                prop_assert_eq!(
                    serde_json::to_string(&a).unwrap(),
                    serde_json::to_string(&b).unwrap()
                );
            }
        }
    }
}

/// A template that reaches the profile through local names, macros, loops,
/// tests and filters.
const INDIRECT: &str = "{% set loc = profile.location %}{% macro tier(t) %}[{{ t | upper }}]{% endmacro %}\
    {{ loc.city }} {{ tier(profile.loyalty.tier) }} {{ profile.vip is defined }}\
    {% for c in profile.preferences.categories | sort %}{{ c }},{% endfor %}\
    {% with p = profile.points %}{{ p | default(0) }}{% endwith %}\
    {{ profile['first_name'] | default('there') }}\
    {% if event.shadow %}{% set profile = {} %}{% endif %}{{ profile.signup_date }}";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn a_projection_follows_names_macros_and_loops(profile in profile()) {
        let text = serde_json::to_string(&profile).unwrap();
        let settings = serde_json::json!({"channel": "sms", "from_number": "+15550100",
            "template": {"inline": {"sms": INDIRECT}}});
        let prepared = prepare(inline_request(settings, serde_json::json!({})));
        let projection = prepared.template().profile_projection();
        prop_assert_eq!(
            projection.keys().map(|keys| keys.iter().map(String::as_str).collect::<Vec<_>>()),
            Some(vec![
                "first_name",
                "location",
                "loyalty",
                "points",
                "preferences",
                "signup_date",
                "vip"
            ])
        );
        let recipient = &prepared.request().render_recipients()[0];
        let full = Arc::new(serde_json::from_str::<serde_json::Value>(&text).unwrap());
        let projected = Arc::new(projection.parse(&text).unwrap());
        prop_assert_eq!(
            serde_json::to_string(&prepared.render(recipient, Some(&full))).unwrap(),
            serde_json::to_string(&prepared.render(recipient, Some(&projected))).unwrap()
        );
    }
}
