//! The marketer filters: number and currency formatting, dates in IANA time
//! zones, whole days relative to the send time, and text helpers (truncate,
//! pluralize, wordcount, striptags) that minijinja's builtins lack.
//!
//! Every filter is pure: no clock (`now` is always an argument), no
//! environment, no files. Time zones come from the tz database compiled into
//! the binary, so a render gives the same bytes on every machine.

mod args;
mod date;
mod number;
#[cfg(test)]
mod tests_support;
mod text;

use std::fmt;

use minijinja::value::{Rest, ValueOrKwargs};
use minijinja::{Environment, Error, State, Value};

use self::args::{Arg, split_args};
use self::date::{date, days_since, days_until};
use self::number::{currency, number};
use self::text::{pluralize, striptags, truncate, wordcount};

/// Names of the filters this module adds, sorted; the template allowlist is
/// built from it.
pub const FILTERS: &[&str] = &[
    "currency",
    "date",
    "days_since",
    "days_until",
    "number",
    "pluralize",
    "striptags",
    "truncate",
    "wordcount",
];

/// Adds the marketer filters to an environment.
///
/// None of them shadows a minijinja builtin. All of them pass missing data
/// (undefined or `none`) through unchanged, so that the template's
/// missing-data policy decides: under the default policy
/// `{{ profile.balance | currency }}` renders empty when there is no balance,
/// under the strict ones printing it reports the missing value.
pub fn register(env: &mut Environment<'static>) {
    env.add_filter("currency", |v: &Value, a: Arg, b: Arg, rest: Arg| {
        let ([code, decimals], kwargs) = split_args([a, b], rest)?;
        unless_missing(v, || currency(v, code, decimals, kwargs))
    });
    env.add_filter("date", |v: &Value, a: Arg, b: Arg, rest: Arg| {
        let ([format, tz], kwargs) = split_args([a, b], rest)?;
        unless_missing(v, || date(v, format, tz, kwargs))
    });
    env.add_filter("days_since", |v: &Value, a: Arg, rest: Arg| {
        let ([now], kwargs) = split_args([a], rest)?;
        unless_missing(v, || days_since(v, now, kwargs))
    });
    env.add_filter("days_until", |v: &Value, a: Arg, rest: Arg| {
        let ([now], kwargs) = split_args([a], rest)?;
        unless_missing(v, || days_until(v, now, kwargs))
    });
    env.add_filter("number", |v: &Value, a: Arg, rest: Arg| {
        let ([decimals], kwargs) = split_args([a], rest)?;
        unless_missing(v, || number(v, decimals, kwargs))
    });
    env.add_filter("pluralize", |v: &Value, a: Arg, b: Arg, rest: Arg| {
        let ([first, second], kwargs) = split_args([a, b], rest)?;
        unless_missing(v, || pluralize(v, first, second, kwargs))
    });
    env.add_filter("striptags", |v: &Value| unless_missing(v, || striptags(v)));
    env.add_filter(
        "truncate",
        |state: &mut State, v: &Value, args: Rest<ValueOrKwargs>| {
            unless_missing(v, || truncate(state, v, args))
        },
    );
    env.add_filter("wordcount", |v: &Value| unless_missing(v, || wordcount(v)));
}

fn unless_missing<T: Into<Value>>(
    value: &Value,
    apply: impl FnOnce() -> Result<T, Error>,
) -> Result<Value, Error> {
    if value.is_undefined() || value.is_none() {
        Ok(value.clone())
    } else {
        apply().map(Into::into)
    }
}

/// A filter's output text, kept on the stack while it is short.
///
/// `Value::from(&str)` stores up to 22 bytes inline, so a price or a date
/// built here reaches the template without touching the heap; a `String`
/// result would be allocated and then copied into the value. Longer text
/// moves to the heap once and carries on there.
struct Text {
    stack: [u8; TEXT_STACK_BYTES],
    len: usize,
    heap: Option<String>,
}

/// Room for any fast-path number with its currency code, and most dates.
const TEXT_STACK_BYTES: usize = 64;

impl Text {
    fn new() -> Text {
        Text {
            stack: [0; TEXT_STACK_BYTES],
            len: 0,
            heap: None,
        }
    }

    fn push_str(&mut self, s: &str) {
        if !self.push_stack(s.as_bytes()) {
            self.heap().push_str(s);
        }
    }

    /// Digits, separators and currency codes: ASCII by construction.
    fn push_ascii(&mut self, bytes: &[u8]) {
        debug_assert!(bytes.is_ascii());
        if !self.push_stack(bytes) {
            self.heap().extend(bytes.iter().map(|&b| char::from(b)));
        }
    }

    fn push_stack(&mut self, bytes: &[u8]) -> bool {
        if self.heap.is_some() {
            return false;
        }
        let end = self.len + bytes.len();
        match self.stack.get_mut(self.len..end) {
            Some(room) => {
                room.copy_from_slice(bytes);
                self.len = end;
                true
            }
            None => false,
        }
    }

    fn heap(&mut self) -> &mut String {
        let stacked = &self.stack[..self.len];
        self.heap.get_or_insert_with(|| {
            let mut heap = String::with_capacity(2 * TEXT_STACK_BYTES);
            heap.push_str(std::str::from_utf8(stacked).unwrap_or_default());
            heap
        })
    }

    fn as_str(&self) -> &str {
        match &self.heap {
            Some(heap) => heap,
            // Only whole `str`s and ASCII are ever pushed, so this is UTF-8.
            None => std::str::from_utf8(&self.stack[..self.len]).unwrap_or_default(),
        }
    }

    fn to_value(&self) -> Value {
        Value::from(self.as_str())
    }
}

impl fmt::Write for Text {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push_str(s);
        Ok(())
    }
}

impl jiff::fmt::Write for Text {
    fn write_str(&mut self, s: &str) -> Result<(), jiff::Error> {
        self.push_str(s);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::env;
    use super::*;
    use minijinja::{ErrorKind, context};

    #[test]
    fn filters_list_is_sorted_registered_and_shadows_no_builtin() {
        let mut sorted = FILTERS.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted, FILTERS);
        let plain = Environment::new();
        let ours = env();
        for name in FILTERS {
            let source = format!("{{{{ 1|{name} }}}}");
            let kind =
                |env: &Environment| env.render_str(&source, context! {}).err().map(|e| e.kind());
            assert_eq!(kind(&plain), Some(ErrorKind::UnknownFilter), "{name}");
            assert_ne!(kind(&ours), Some(ErrorKind::UnknownFilter), "{name}");
        }
    }
}
