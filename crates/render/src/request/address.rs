//! Email addresses and sender labels as they may appear in a header.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An `addr-spec` (`local@domain.tld`): no display name, no domain literal,
/// nothing that could break out of a header.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress(Arc<str>);

impl EmailAddress {
    pub fn parse(value: &str) -> Result<Self, String> {
        let options = email_address::Options {
            minimum_sub_domains: 2,
            allow_domain_literal: false,
            allow_display_text: false,
            ..Default::default()
        };
        email_address::EmailAddress::parse_with_options(value, options)
            .map(|_| Self(Arc::from(value)))
            .map_err(|error| format!("{value:?} is not an email address ({error})"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl Serialize for EmailAddress {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for EmailAddress {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// A sender label (`Shop <news@shop.example>`): one line of printable text.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SenderLabel(Arc<str>);

impl SenderLabel {
    pub const MAX_LEN: usize = 256;

    pub fn parse(value: &str) -> Result<Self, String> {
        if value.trim().is_empty() {
            return Err("must not be empty (leave it out to send without a label)".into());
        }
        if value.len() > Self::MAX_LEN {
            return Err(format!("is longer than {} bytes", Self::MAX_LEN));
        }
        if let Some(c) = value.chars().find(|c| c.is_control()) {
            return Err(format!("must not contain control character {c:?}"));
        }
        Ok(Self(Arc::from(value.trim())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SenderLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl Serialize for SenderLabel {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SenderLabel {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_addresses_only() {
        assert!(EmailAddress::parse("news@shop.example").is_ok());
        for bad in [
            "news",
            "news@",
            "@shop.example",
            "Shop <news@shop.example>",
            "news@localhost",
            "a@b.c\r\nBcc: x@y.z",
        ] {
            let error = EmailAddress::parse(bad).unwrap_err();
            assert!(error.contains("is not an email address"), "{bad}: {error}");
        }
    }

    #[test]
    fn labels_are_one_printable_line() {
        assert_eq!(SenderLabel::parse(" Shop ").unwrap().as_str(), "Shop");
        assert!(
            SenderLabel::parse("Shop\r\nBcc: x@y.z")
                .unwrap_err()
                .contains("control character")
        );
    }
}
