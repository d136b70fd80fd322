//! Rollout flags: named switches on for a percentage of companies, messages
//! or recipients, decided by a hash of the flag's name and that key, so the
//! same subject gets the same answer on every call, process and build.
//! Changed at runtime (the admin endpoint) without a restart.

use std::collections::BTreeMap;
use std::sync::RwLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};

use crate::canary::position;

/// What a flag's percentage is a percentage of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlagKey {
    Company,
    Message,
    Recipient,
}

/// One flag: on for `percent` % of the values of `key`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flag {
    pub percent: f64,
    pub key: FlagKey,
}

/// Who a flag is asked about.
#[derive(Debug, Clone, Copy)]
pub struct FlagSubject<'a> {
    pub company: &'a str,
    pub message: &'a str,
    pub recipient: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct FlagLabel {
    flag: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct EvaluationLabel {
    flag: String,
    on: &'static str,
}

/// Every flag, readable from any code path and changeable while running.
#[derive(Debug, Default)]
pub struct Flags {
    flags: RwLock<BTreeMap<String, Flag>>,
    percent: Family<FlagLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    evaluations: Family<EvaluationLabel, Counter>,
}

impl Flags {
    /// The flags of the configuration, checked.
    pub fn new(flags: BTreeMap<String, Flag>) -> Result<Self, String> {
        let registry = Self::default();
        for (name, flag) in flags {
            registry.set(&name, flag)?;
        }
        Ok(registry)
    }

    /// Whether flag `name` is on for `subject`; a flag that does not exist
    /// is off.
    pub fn enabled(&self, name: &str, subject: &FlagSubject<'_>) -> bool {
        let Some(flag) = self.get(name) else {
            return false;
        };
        let key = match flag.key {
            FlagKey::Company => subject.company,
            FlagKey::Message => subject.message,
            FlagKey::Recipient => subject.recipient,
        };
        // The flag's name is part of the hash, so two flags at 5% are on
        // for different 5%s.
        let on = position(&[name, key]) * 100.0 < flag.percent;
        self.evaluations
            .get_or_create(&EvaluationLabel {
                flag: name.to_owned(),
                on: if on { "true" } else { "false" },
            })
            .inc();
        on
    }

    pub fn get(&self, name: &str) -> Option<Flag> {
        self.read().get(name).copied()
    }

    /// Creates or changes flag `name`; takes effect for the next question.
    pub fn set(&self, name: &str, flag: Flag) -> Result<(), String> {
        check_name(name)?;
        if !(0.0..=100.0).contains(&flag.percent) {
            return Err(format!(
                "flag {name}: percent {} must be between 0 and 100",
                flag.percent
            ));
        }
        self.flags
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_owned(), flag);
        self.percent
            .get_or_create(&FlagLabel {
                flag: name.to_owned(),
            })
            .set(flag.percent);
        Ok(())
    }

    /// Removes flag `name`: it is off from now on. Whether it existed.
    pub fn remove(&self, name: &str) -> bool {
        let existed = self
            .flags
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name)
            .is_some();
        self.percent.remove(&FlagLabel {
            flag: name.to_owned(),
        });
        existed
    }

    pub fn all(&self) -> BTreeMap<String, Flag> {
        self.read().clone()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Flag>> {
        self.flags.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "artifact_flag_percent",
            "Each rollout flag's percentage",
            self.percent.clone(),
        );
        registry.register(
            "artifact_flag_evaluations",
            "Rollout flag questions answered, by flag and answer",
            self.evaluations.clone(),
        );
    }
}

/// Flag names are what a metric label and a URL segment can carry.
fn check_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "flag name {name:?}: use 1 to 64 lower-case letters, digits, `_` and `-`"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(company: &str) -> FlagSubject<'_> {
        FlagSubject {
            company,
            message: "m1",
            recipient: "r1",
        }
    }

    #[test]
    fn a_percentage_holds_and_each_subject_keeps_its_answer() {
        let flags = Flags::new(
            [(
                "new_tracking".to_owned(),
                Flag {
                    percent: 5.0,
                    key: FlagKey::Company,
                },
            )]
            .into(),
        )
        .unwrap();
        let companies: Vec<String> = (0..20_000).map(|i| format!("company-{i}")).collect();
        let on: Vec<bool> = companies
            .iter()
            .map(|c| flags.enabled("new_tracking", &subject(c)))
            .collect();
        let share = on.iter().filter(|on| **on).count();
        // 20,000 draws at p = 0.05: the standard deviation is about 31.
        assert!((880..=1_120).contains(&share), "{share}");
        let again: Vec<bool> = companies
            .iter()
            .map(|c| flags.enabled("new_tracking", &subject(c)))
            .collect();
        assert_eq!(on, again);
    }

    #[test]
    fn a_change_takes_effect_at_once_and_raising_keeps_those_already_on() {
        let flags = Flags::default();
        assert!(
            !flags.enabled("x", &subject("acme")),
            "an unknown flag is off"
        );
        let companies: Vec<String> = (0..2_000).map(|i| format!("c{i}")).collect();
        let on_at = |percent| {
            flags
                .set(
                    "x",
                    Flag {
                        percent,
                        key: FlagKey::Company,
                    },
                )
                .unwrap();
            companies
                .iter()
                .filter(|c| flags.enabled("x", &subject(c)))
                .cloned()
                .collect::<Vec<_>>()
        };
        let ten = on_at(10.0);
        let fifty = on_at(50.0);
        assert!(
            ten.iter().all(|c| fifty.contains(c)),
            "a rollout only grows"
        );
        assert_eq!(on_at(100.0).len(), 2_000);
        assert!(on_at(0.0).is_empty());
        assert!(flags.remove("x"));
        assert!(!flags.enabled("x", &subject("c1")));
    }

    #[test]
    fn bad_flags_are_refused_with_the_reason() {
        let flags = Flags::default();
        let flag = Flag {
            percent: 101.0,
            key: FlagKey::Message,
        };
        assert_eq!(
            flags.set("x", flag).unwrap_err(),
            "flag x: percent 101 must be between 0 and 100"
        );
        let flag = Flag {
            percent: 1.0,
            key: FlagKey::Message,
        };
        assert!(
            flags
                .set("Bad Name", flag)
                .unwrap_err()
                .contains("lower-case")
        );
    }

    #[test]
    fn the_key_chooses_what_the_percentage_is_of() {
        let flags = Flags::default();
        flags
            .set(
                "per_recipient",
                Flag {
                    percent: 50.0,
                    key: FlagKey::Recipient,
                },
            )
            .unwrap();
        let answers: std::collections::HashSet<bool> = (0..64)
            .map(|i| {
                let recipient = format!("r{i}");
                flags.enabled(
                    "per_recipient",
                    &FlagSubject {
                        company: "acme",
                        message: "m1",
                        recipient: &recipient,
                    },
                )
            })
            .collect();
        assert_eq!(answers.len(), 2, "one company, recipients on and off");
    }
}
