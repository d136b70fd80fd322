//! Profile projection: parse only the top-level profile keys a template
//! reads, so a wide profile costs what its read fields cost.

use std::collections::BTreeSet;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

/// Which top-level profile keys a render needs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ProfileProjection {
    /// The template reads the profile as a whole (or by a key it computes).
    #[default]
    All,
    /// Only these keys; every other key can be left unfetched.
    Keys(BTreeSet<String>),
}

impl ProfileProjection {
    /// Both projections' keys: what a fetch for either template needs.
    pub fn union(&self, other: &Self) -> Self {
        match (self, other) {
            (Self::Keys(a), Self::Keys(b)) => Self::Keys(a.union(b).cloned().collect()),
            _ => Self::All,
        }
    }

    pub fn keys(&self) -> Option<&BTreeSet<String>> {
        match self {
            Self::All => None,
            Self::Keys(keys) => Some(keys),
        }
    }
}

impl ProfileProjection {
    /// Parses a stored profile (a JSON object), keeping only the projected
    /// keys; the others are skipped without being built.
    pub fn parse(&self, text: &str) -> serde_json::Result<serde_json::Value> {
        match self {
            Self::All => serde_json::from_str(text),
            Self::Keys(keys) => {
                let mut de = serde_json::Deserializer::from_str(text);
                let value = Projected(keys).deserialize(&mut de)?;
                de.end()?;
                Ok(value)
            }
        }
    }
}

/// Deserializes an object keeping only `keys`.
struct Projected<'a>(&'a BTreeSet<String>);

impl<'de> DeserializeSeed<'de> for Projected<'_> {
    type Value = serde_json::Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Projected<'_> {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a profile object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut kept = serde_json::Map::with_capacity(self.0.len());
        while let Some(key) = map.next_key_seed(WantedKey(self.0))? {
            match key {
                Some(key) => {
                    kept.insert(key, map.next_value()?);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(serde_json::Value::Object(kept))
    }
}

/// A key, owned only when it is one of the wanted ones.
struct WantedKey<'a>(&'a BTreeSet<String>);

impl<'de> DeserializeSeed<'de> for WantedKey<'_> {
    type Value = Option<String>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for WantedKey<'_> {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a property name")
    }

    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok(self.0.contains(key).then(|| key.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(keys: &[&str]) -> ProfileProjection {
        ProfileProjection::Keys(keys.iter().map(|k| k.to_string()).collect())
    }

    #[test]
    fn only_the_projected_keys_are_kept() {
        let text = r#"{"first_name":"Ada","bio":{"long":[1,2,{"x":"y"}]},"loyalty":{"tier":"gold"},"a\"b":1}"#;
        assert_eq!(
            keys(&["first_name", "loyalty", "a\"b"])
                .parse(text)
                .unwrap(),
            serde_json::json!({"first_name": "Ada", "loyalty": {"tier": "gold"}, "a\"b": 1})
        );
        assert_eq!(keys(&[]).parse(text).unwrap(), serde_json::json!({}));
        assert_eq!(
            ProfileProjection::All.parse(text).unwrap(),
            serde_json::from_str::<serde_json::Value>(text).unwrap()
        );
    }

    #[test]
    fn a_broken_profile_is_still_an_error() {
        assert!(keys(&["a"]).parse(r#"{"a":1,"b":[}"#).is_err());
        assert!(keys(&["a"]).parse(r#"{"a":1} trailing"#).is_err());
        assert!(keys(&["a"]).parse(r#"[1]"#).is_err());
    }
}
