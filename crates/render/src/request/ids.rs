//! Identifier newtypes: each parses once at the edge, so code past the edge
//! never sees an empty or malformed id.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest id accepted, in bytes. Ids end up in keys, headers and file names.
pub const MAX_ID_LEN: usize = 256;

/// Checks the rules every id shares: not blank, not too long, no control
/// characters (ids reach headers and logs).
fn check_id(value: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        return Err("must not be empty".into());
    }
    if value.len() > MAX_ID_LEN {
        return Err(format!(
            "is {} bytes long, more than the maximum of {MAX_ID_LEN}",
            value.len()
        ));
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(format!("must not contain control character {c:?}"));
    }
    Ok(())
}

/// Template ids also name folders and cache keys, so they are restricted to a
/// portable set that cannot climb out of a directory.
fn check_template_id(value: &str) -> Result<(), String> {
    check_id(value)?;
    if value.starts_with('.') {
        return Err(format!("{value:?} must not start with '.'"));
    }
    match value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        Some(c) => Err(format!(
            "{value:?} may only contain ASCII letters, digits, '_', '-' and '.', not {c:?}"
        )),
        None => Ok(()),
    }
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $check:path) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Parses an id, explaining what is wrong with a bad one.
            pub fn parse(value: &str) -> Result<Self, String> {
                $check(value)?;
                Ok(Self(Arc::from(value)))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&*self.0, f)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

id_type!(
    /// The tenant. Every template and profile read is scoped by it.
    CompanyId, check_id
);
id_type!(
    /// The idempotency key of a render request.
    RequestId, check_id
);
id_type!(
    /// Who asked for the render (`flows`, `campaigns`, `transactional`, …).
    ClientId, check_id
);
id_type!(
    /// The message being sent.
    MessageId, check_id
);
id_type!(
    /// One recipient of a request; unique within the request.
    RecipientId, check_id
);
id_type!(
    /// The profile a recipient's data is fetched from.
    ProfileId, check_id
);
id_type!(
    /// A stored template bundle.
    TemplateId, check_template_id
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_blank_long_and_control_ids() {
        assert_eq!(RequestId::parse("  ").unwrap_err(), "must not be empty");
        assert!(
            RequestId::parse(&"x".repeat(300))
                .unwrap_err()
                .contains("maximum of 256")
        );
        assert!(
            RequestId::parse("a\r\nb")
                .unwrap_err()
                .contains("control character")
        );
        assert_eq!(RequestId::parse("req-1").unwrap().as_str(), "req-1");
    }

    #[test]
    fn template_ids_cannot_name_other_folders() {
        assert!(
            TemplateId::parse("../etc")
                .unwrap_err()
                .contains("must not start with '.'")
        );
        assert!(TemplateId::parse("a/b").unwrap_err().contains("not '/'"));
        assert!(TemplateId::parse("spring_sale-2.v3").is_ok());
    }
}
