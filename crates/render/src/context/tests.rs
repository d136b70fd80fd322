use std::sync::Arc;

use minijinja::Value;
use serde_json::json;

use super::json_root;
use crate::template::{Channel, CompiledTemplate, RenderLimits, TemplateParts};

fn document() -> serde_json::Value {
    json!({
        "first_name": "Ada",
        "zeta": 1,
        "alpha": {"nested": {"deep": "yes"}, "empty": {}},
        "tags": ["b", "a", "c"],
        "empty_list": [],
        "empty_map": {},
        "nothing": null,
        "flag": false,
        "int": 42,
        "neg": -7,
        "big": 18446744073709551615u64,
        "float": 1.0,
        "price": 4.99,
        "price_text": "4.99",
        "cart": [
            {"name": "Sweater", "price": 98.0, "qty": 1},
            {"name": "Wallet", "price": 45, "qty": 2},
        ],
    })
}

/// Expressions a template may apply to its data; each must render the same
/// through the lazy view as through a plain converted map.
const CORPUS: &[&str] = &[
    "{{ p }}",
    "{{ p | length }} {{ p | count }}",
    "{% for k in p %}{{ k }},{% endfor %}",
    "{% for k, v in p | items %}{{ k }}={{ v }};{% endfor %}",
    "{% for k, v in p | dictsort %}{{ k }}={{ v }};{% endfor %}",
    "{{ p | tojson }}",
    "{{ p.alpha | tojson }} {{ p.cart | tojson(indent=2) }}",
    "{{ p.tags }} {{ p.tags | sort }} {{ p.tags | reverse | list }} {{ p.tags | join('-') }}",
    "{{ p.tags[0] }} {{ p.tags[-1] }} {{ p.tags[1:] }} {{ p.tags[5] is defined }}",
    "{{ p.tags | first }} {{ p.tags | last }} {{ p.tags | length }}",
    "{% if p.empty_list %}T{% else %}F{% endif %}{% if p.empty_map %}T{% else %}F{% endif %}{% if p.tags %}T{% else %}F{% endif %}{% if p.alpha %}T{% else %}F{% endif %}",
    "{% if p.flag %}T{% else %}F{% endif %}{% if p.nothing %}T{% else %}F{% endif %}{{ p.nothing is none }}",
    "{{ p.missing | default('d') }} {{ p.nothing | default('d') }} {{ p.flag | default('d', true) }} {{ p.empty_list | default('d', true) }}",
    "{{ p.int is integer }} {{ p.float is float }} {{ p.float }} {{ p.big }} {{ p.neg }} {{ p.price * 2 }} {{ p.int / 5 }} {{ p.int // 5 }}",
    "{{ p.big + 1 }} {{ p.neg - p.big }}",
    "{{ p.alpha.nested.deep }} {{ p.alpha['nested']['deep'] }} {{ p.alpha.missing.deeper }}",
    "{{ 'tags' in p }} {{ 'nope' in p }} {{ 'a' in p.tags }} {{ p.tags == ['b', 'a', 'c'] }} {{ p.alpha.empty == {} }}",
    "{{ p.cart | map(attribute='price') | sum }} {{ p.cart | selectattr('qty', 'gt', 1) | map(attribute='name') | join }}",
    "{{ p.cart | sort(attribute='price') | map(attribute='name') | list }} {{ p.cart | groupby('qty') }}",
    "{% for item in p.cart %}{{ loop.index }}/{{ loop.length }}:{{ item.name }}{% if not loop.last %},{% endif %}{% endfor %}",
    "{{ p | list }} {{ p.alpha | items | list }} {{ p.tags | batch(2) | list }}",
    "{{ p is mapping }} {{ p.tags is sequence }} {{ p.tags is mapping }} {{ p.alpha is iterable }}",
    "{{ p.price_text | float }} {{ p.price | round(1) }} {{ p.cart[1].price | string }}",
    "{{ p.tags | unique | list }} {{ p.cart | length }} {{ p.alpha.nested | length }}",
    "{{ p.first_name ~ '!' }} {{ p.first_name | upper }} {{ p.first_name[0] }}",
];

fn render_both(source: &str, data: &serde_json::Value) -> (String, String) {
    let parts = TemplateParts {
        sms: Some(source.to_owned()),
        ..Default::default()
    };
    let compiled =
        CompiledTemplate::compile("corpus", Channel::Sms, &parts, &RenderLimits::default())
            .unwrap_or_else(|e| panic!("{source}: {e}"));
    let template = compiled.part(crate::template::PartName::Sms).unwrap();
    let lazy = Value::from(std::collections::BTreeMap::from([(
        "p",
        json_root(&Arc::new(data.clone())),
    )]));
    let plain = minijinja::context! { p => Value::from(minijinja::value::Serde(data)) };
    let render = |ctx: Value| match template.render(ctx) {
        Ok(out) => out,
        Err(error) => format!("error: {error}"),
    };
    (render(lazy), render(plain))
}

#[test]
fn lazy_view_is_indistinguishable_from_a_plain_map() {
    let data = document();
    for source in CORPUS {
        let (lazy, plain) = render_both(source, &data);
        assert_eq!(lazy, plain, "template: {source}");
        assert!(!plain.starts_with("error"), "{source}: {plain}");
    }
}

#[test]
fn context_exposes_exactly_the_documented_variables() {
    let request = crate::RenderRequest::from_json(
        json!({
            "request_id": "r", "company_id": "c", "client_id": "k", "message_id": "m",
            "send_time": "2026-11-26T15:00:00Z",
            "channel_settings": {"channel": "email", "template": {"id": "t"},
                "from_email": "a@b.example", "message_name": "Cart"},
            "render_recipients": [{"recipient_id": "r1", "profile_id": "p1", "context": {"code": "X"}}]
        })
        .to_string()
        .as_bytes(),
        &Default::default(),
    )
    .unwrap();
    let vars = super::RequestVars::new(&request);
    let profile = Arc::new(json!({"first_name": "Ada"}));
    let ctx = super::recipient_context(
        &vars,
        &request.render_recipients()[0],
        &profile,
        Default::default(),
    );
    let env = minijinja::Environment::new();
    let out = env
        .render_str(
            "{% for k in ctx %}{{ k }} {% endfor %}| {{ ctx.profile.first_name }} {{ ctx.event.code }} {{ ctx.recipient.recipient_id }} {{ ctx.recipient.profile_id }} {{ ctx.message.message_name }} {{ ctx.message.from_email }} {{ ctx.now }}",
            minijinja::context! { ctx },
        )
        .unwrap();
    assert_eq!(
        out,
        "profile event recipient message now unsubscribe_url | Ada X r1 p1 Cart a@b.example 2026-11-26T15:00:00Z"
    );
}
