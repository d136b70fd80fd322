//! Synthetic data, the same for the same seed: the templates (the sample
//! newsletter, a short transactional receipt, an SMS), profiles of a
//! configurable width, and the requests traffic is made of.

use std::sync::Arc;

use artifact_render::request::{Priority, ProfileId, RequestId};
use artifact_render::template::{Channel, TemplateFolder, TemplateParts};
use artifact_render::{RenderRequest, RequestLimits};
use serde_json::{Value, json};

const NEWSLETTER: [(&str, &str); 5] = [
    (
        "subject.jinja",
        include_str!("../../../examples/templates/spring_sale/subject.jinja"),
    ),
    (
        "preheader.jinja",
        include_str!("../../../examples/templates/spring_sale/preheader.jinja"),
    ),
    (
        "html.jinja",
        include_str!("../../../examples/templates/spring_sale/html.jinja"),
    ),
    (
        "text.jinja",
        include_str!("../../../examples/templates/spring_sale/text.jinja"),
    ),
    (
        "template.json",
        include_str!("../../../examples/templates/spring_sale/template.json"),
    ),
];
const SMS: [(&str, &str); 2] = [
    (
        "sms.jinja",
        include_str!("../../../examples/templates/spring_sale_sms/sms.jinja"),
    ),
    (
        "template.json",
        include_str!("../../../examples/templates/spring_sale_sms/template.json"),
    ),
];
const RECEIPT_SUBJECT: &str = "Order {{ event.order_id }} is confirmed";
const RECEIPT_HTML: &str = r#"<!DOCTYPE html>
<html><head><title>Your receipt</title></head>
<body>
<p>Hi {{ profile.first_name | default("there") }},</p>
<p>Thanks for order {{ event.order_id }}: {{ event.total | currency }}, arriving {{ event.delivery_by | date("%A, %B %-d") }}.</p>
<p><a href="https://shop.example/orders/{{ event.order_id | urlencode }}">Track your order</a> · <a href="https://shop.example/help">Help</a></p>
<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>
</body></html>
"#;

/// The templates of the synthetic company, by id.
pub const TEMPLATES: [&str; 3] = ["newsletter", "receipt", "sms"];

/// The sample newsletter: the shipped example template.
pub fn newsletter_parts() -> TemplateParts {
    folder(&NEWSLETTER)
}

/// The example SMS template.
pub fn sms_parts() -> TemplateParts {
    folder(&SMS)
}

/// A short transactional email.
pub fn receipt_parts() -> TemplateParts {
    TemplateParts {
        subject: Some(RECEIPT_SUBJECT.into()),
        html: Some(RECEIPT_HTML.into()),
        ..TemplateParts::default()
    }
}

/// Template `id` (one of [`TEMPLATES`]) and its channel.
pub fn template(id: &str) -> Option<(Channel, TemplateParts)> {
    match id {
        "newsletter" => Some((Channel::Email, newsletter_parts())),
        "receipt" => Some((Channel::Email, receipt_parts())),
        "sms" => Some((Channel::Sms, sms_parts())),
        _ => None,
    }
}

fn folder(files: &[(&str, &str)]) -> TemplateParts {
    TemplateFolder::from_files(files.iter().copied())
        .unwrap_or_else(|e| panic!("a shipped example template is broken: {e}"))
        .parts
}

/// splitmix64: a tiny, fixed generator, so the same seed gives the same
/// data on every machine and version.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// The shape of the synthetic data.
#[derive(Debug, Clone)]
pub struct DataSpec {
    pub seed: u64,
    /// Profiles `p-0000000` …; recipients cycle through them.
    pub profiles: usize,
    /// Extra properties per profile, beyond the ones templates read; every
    /// fourth is a nested object.
    pub width: usize,
    /// Items in each recipient's cart.
    pub cart_items: usize,
    /// Recommended products in each newsletter.
    pub picks: usize,
}

impl Default for DataSpec {
    fn default() -> Self {
        Self {
            seed: 1,
            profiles: 100_000,
            width: 10,
            cart_items: 3,
            picks: 4,
        }
    }
}

pub fn profile_id(n: usize) -> String {
    format!("p-{n:07}")
}

/// First names synthetic profiles use.
pub const FIRST_NAMES: [&str; 12] = [
    "Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Tim",
    "Margaret", "Linus",
];
/// City, country and time zone of synthetic profiles.
pub const CITIES: [(&str, &str, &str); 6] = [
    ("London", "GB", "Europe/London"),
    ("Paris", "FR", "Europe/Paris"),
    ("New York", "US", "America/New_York"),
    ("São Paulo", "BR", "America/Sao_Paulo"),
    ("Tokyo", "JP", "Asia/Tokyo"),
    ("Zürich", "CH", "Europe/Zurich"),
];
/// Loyalty tiers of synthetic profiles.
pub const TIERS: [&str; 4] = ["bronze", "silver", "gold", "platinum"];
const PRODUCTS: [&str; 12] = [
    "Linen Camp Shirt",
    "Everyday Canvas Tote",
    "Merino Crew Sweater",
    "Trail Runner 3",
    "Ceramic Pour-Over Set",
    "Organic Cotton Throw",
    "Waxed Field Jacket",
    "Leather Card Wallet",
    "Cold Brew Bottle",
    "Wool Beanie",
    "Bamboo Cutting Board",
    "Garden Tool Roll",
];

impl DataSpec {
    /// Profile `n`: the same for the same seed, whatever else is generated.
    pub fn profile(&self, n: usize) -> Value {
        let mut rng = Rng::new(self.seed ^ (n as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
        let first_name = *rng.pick(&FIRST_NAMES);
        let (city, country, timezone) = *rng.pick(&CITIES);
        let mut profile = json!({
            "first_name": first_name,
            "email": format!("{}.{n}@loadgen.example", first_name.to_lowercase()),
            "timezone": timezone,
            "location": {"city": city, "country": country},
            "loyalty": {"tier": rng.pick(&TIERS), "points": rng.below(20_000)},
            "signup_date": format!("20{:02}-{:02}-14T10:00:00Z", 15 + rng.below(10), 1 + rng.below(12)),
        });
        let extra = profile.as_object_mut().expect("a profile is an object");
        for i in 0..self.width {
            let value = match i % 4 {
                0 => json!({"score": rng.below(100), "segment": format!("s{}", rng.below(40))}),
                1 => json!(rng.below(1_000_000)),
                2 => json!(rng.below(2) == 1),
                _ => json!(format!("value-{}", rng.below(10_000))),
            };
            extra.insert(format!("attr_{i}"), value);
        }
        profile
    }

    fn product(&self, rng: &mut Rng) -> Value {
        let sku = 1000 + rng.below(PRODUCTS.len() as u64);
        let name = PRODUCTS[(sku - 1000) as usize];
        json!({
            "sku": format!("SKU-{sku}"),
            "name": name,
            "url": format!("https://shop.example/p/{sku}?color=natural&size=m"),
            "image_url": format!("https://cdn.shop.example/img/{sku}.jpg"),
            "price": 10 + rng.below(140),
            "rating": 3.0 + rng.below(20) as f64 / 10.0,
            "reviews": rng.below(2_000),
        })
    }

    /// The event data of one send of `template`: a cart, recommendations,
    /// an order; the `variant`-th of its kind.
    pub fn event(&self, template: &str, variant: u64) -> Value {
        let mut rng = Rng::new(self.seed.wrapping_add(variant.wrapping_mul(0x9E37_79B9)));
        let cart: Vec<Value> = (0..self.cart_items)
            .map(|_| {
                let mut item = self.product(&mut rng);
                item["quantity"] = json!(1 + rng.below(3));
                item
            })
            .collect();
        match template {
            "receipt" => json!({
                "order_id": format!("ORD-{}", 100_000 + rng.below(900_000)),
                "total": format!("{}.{:02}", 20 + rng.below(400), rng.below(100)),
                "currency": "USD",
                "delivery_by": "2026-12-02",
            }),
            _ => json!({
                "cart": cart,
                "subtotal": format!("{}.{:02}", 20 + rng.below(400), rng.below(100)),
                "currency": "USD",
                "discount_code": "spring15",
                "discount_percent": 15,
                "expires_at": "2026-12-01T04:59:00Z",
                "delivery_by": "2026-11-30",
                "recommendations": (0..self.picks).map(|_| self.product(&mut rng)).collect::<Vec<_>>(),
            }),
        }
    }
}

/// One kind of request the traffic is made of, built once; each request
/// sent is a copy under its own id.
#[derive(Debug, Clone)]
pub struct Shape {
    pub company: String,
    pub template: String,
    pub priority: Priority,
    pub recipients: usize,
    request: Arc<RenderRequest>,
    /// The request as JSON, split where its id goes; shared, since a shape
    /// is copied for every request sent.
    json: Arc<(String, String)>,
}

/// The id a shape's template request carries, replaced in every copy.
const PLACEHOLDER_ID: &str = "loadgen-placeholder-request-id";

impl Shape {
    /// A request of `recipients` recipients for `template` (one of
    /// [`TEMPLATES`]), with click and open tracking and UTM parameters on
    /// emails; recipient `i` of it reads profile `first_profile + i`
    /// (modulo the profile count). Event data is shared by the recipients
    /// of a request.
    pub fn new(
        spec: &DataSpec,
        company: &str,
        template: &str,
        priority: Priority,
        recipients: usize,
        first_profile: usize,
    ) -> Result<Shape, String> {
        let (channel, _) =
            self::template(template).ok_or_else(|| format!("unknown template {template:?}"))?;
        let event = spec.event(template, first_profile as u64);
        let recipients_json: Vec<Value> = (0..recipients)
            .map(|i| {
                json!({
                    "recipient_id": format!("r-{i:07}"),
                    "profile_id": profile_id((first_profile + i) % spec.profiles.max(1)),
                    "context": event,
                })
            })
            .collect();
        let channel_settings = match channel {
            Channel::Email => json!({
                "channel": "email", "template": {"id": template},
                "from_email": "news@shop.example", "from_label": "Shop Example",
                "message_name": format!("Loadgen {template}"),
            }),
            Channel::Sms => json!({
                "channel": "sms", "template": {"id": template}, "from_number": "+15550100",
            }),
        };
        let mut request = json!({
            "request_id": PLACEHOLDER_ID,
            "company_id": company,
            "client_id": "loadgen",
            "message_id": format!("msg-{template}"),
            "priority": priority,
            "send_time": "2026-11-26T15:00:00Z",
            "response_metadata": {"loadgen": template},
            "channel_settings": channel_settings,
            "render_recipients": recipients_json,
        });
        if channel == Channel::Email {
            request["tracking_options"] = json!({
                "click_tracking": true, "open_tracking": true,
                "utm": {"source": "loadgen", "medium": "email", "campaign": "{{ message.message_name }}"},
            });
        }
        let text = serde_json::to_string(&request).map_err(|e| e.to_string())?;
        let limits = RequestLimits {
            max_recipients: usize::MAX,
            max_bytes: usize::MAX,
        };
        let parsed =
            RenderRequest::from_json(text.as_bytes(), &limits).map_err(|e| e.to_string())?;
        let quoted = format!("\"{PLACEHOLDER_ID}\"");
        let (before, after) = text
            .split_once(&quoted)
            .ok_or("the placeholder id is missing from the request JSON")?;
        Ok(Shape {
            company: company.to_owned(),
            template: template.to_owned(),
            priority,
            recipients,
            request: Arc::new(parsed),
            json: Arc::new((format!("{before}\""), format!("\"{after}"))),
        })
    }

    /// The request under `id`, for an in-process queue.
    pub fn request(&self, id: &RequestId) -> Arc<RenderRequest> {
        Arc::new(self.request.with_request_id(id.clone()))
    }

    /// The request under `id` as a JSON body, for HTTP. `id` must need no
    /// JSON escaping (loadgen ids are `[a-z0-9-]`).
    pub fn body(&self, id: &str) -> Vec<u8> {
        let mut body = Vec::with_capacity(self.json.0.len() + id.len() + self.json.1.len());
        body.extend_from_slice(self.json.0.as_bytes());
        body.extend_from_slice(id.as_bytes());
        body.extend_from_slice(self.json.1.as_bytes());
        body
    }
}

/// Every profile of `spec`, in chunks of `chunk`, for loading.
pub fn profile_chunks(
    spec: &DataSpec,
    chunk: usize,
) -> impl Iterator<Item = Vec<(ProfileId, Value)>> + '_ {
    (0..spec.profiles).step_by(chunk.max(1)).map(move |start| {
        (start..(start + chunk).min(spec.profiles))
            .map(|n| {
                let id = ProfileId::parse(&profile_id(n)).expect("profile ids are valid");
                (id, spec.profile(n))
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_data() {
        let spec = DataSpec::default();
        assert_eq!(spec.profile(42), spec.profile(42));
        assert_eq!(spec.event("newsletter", 3), spec.event("newsletter", 3));
        let other = DataSpec {
            seed: 2,
            ..DataSpec::default()
        };
        assert_ne!(spec.profile(42), other.profile(42));
    }

    #[test]
    fn width_and_sizes_shape_the_data() {
        let spec = DataSpec {
            width: 8,
            cart_items: 5,
            picks: 7,
            ..DataSpec::default()
        };
        let profile = spec.profile(1);
        assert!(
            profile["attr_7"].is_string()
                || profile["attr_7"].is_number()
                || profile["attr_7"].is_boolean()
                || profile["attr_7"].is_object()
        );
        assert!(profile.get("attr_8").is_none());
        assert!(
            profile["attr_0"]["score"].is_number(),
            "every fourth is nested"
        );
        let event = spec.event("newsletter", 0);
        assert_eq!(event["cart"].as_array().unwrap().len(), 5);
        assert_eq!(event["recommendations"].as_array().unwrap().len(), 7);
    }

    #[test]
    fn shapes_make_valid_requests_under_any_id() {
        let spec = DataSpec::default();
        for template in TEMPLATES {
            let shape = Shape::new(&spec, "acme", template, Priority::Low, 3, 99_999).unwrap();
            let id = RequestId::parse("lg-1-7").unwrap();
            assert_eq!(shape.request(&id).request_id(), &id);
            let body = shape.body("lg-1-8");
            let parsed = RenderRequest::from_json(&body, &RequestLimits::default()).unwrap();
            assert_eq!(parsed.request_id().as_str(), "lg-1-8");
            assert_eq!(parsed.render_recipients().len(), 3);
            // Profiles wrap around the profile count.
            assert_eq!(
                parsed.render_recipients()[1].profile_id.as_str(),
                "p-0000000"
            );
        }
    }

    #[test]
    fn every_profile_is_generated_once() {
        let spec = DataSpec {
            profiles: 2_500,
            ..DataSpec::default()
        };
        let chunks: Vec<_> = profile_chunks(&spec, 1_000).collect();
        assert_eq!(
            chunks.iter().map(Vec::len).collect::<Vec<_>>(),
            [1_000, 1_000, 500]
        );
        assert_eq!(chunks[2][499].0.as_str(), "p-0002499");
    }
}
