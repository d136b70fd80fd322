//! Shared argument handling: splitting a filter's arguments into positional
//! ones and keywords, typed parameters, and the error messages that name a
//! bad value the way the template author wrote it.

use std::borrow::Cow;

use minijinja::value::{Kwargs, Value, ValueKind, ValueOrKwargs};
use minijinja::{Error, ErrorKind};

pub(super) fn fail(detail: String) -> Error {
    Error::new(ErrorKind::InvalidOperation, detail)
}

/// Longest slice of a bad value quoted back in an error: enough to find it in
/// the data, short enough to keep a log line readable.
const QUOTE_CHARS: usize = 60;

/// Names a value the way the template author would recognise it in their
/// data: strings quoted, missing values as `none` / `undefined`.
pub(super) fn describe(value: &Value) -> String {
    match value.kind() {
        ValueKind::Undefined => "undefined".to_owned(),
        ValueKind::None => "none".to_owned(),
        // As a template author writes them, not minijinja's `True`.
        ValueKind::Bool => value.is_true().to_string(),
        // Extreme floats in scientific notation rather than 300 digits.
        ValueKind::Number if !value.is_integer() => match f64::try_from(value.clone()) {
            Ok(f) if f.is_finite() && f != 0.0 && !(1e-6..1e16).contains(&f.abs()) => {
                format!("{f:e}")
            }
            _ => value.to_string(),
        },
        ValueKind::String => {
            let s = value.as_str().unwrap_or_default();
            if s.chars().count() > QUOTE_CHARS {
                let head: String = s.chars().take(QUOTE_CHARS).collect();
                format!("{head:?}…")
            } else {
                format!("{s:?}")
            }
        }
        _ => {
            let s = value.to_string();
            if s.chars().count() > QUOTE_CHARS {
                let head: String = s.chars().take(QUOTE_CHARS).collect();
                format!("{head}…")
            } else {
                s
            }
        }
    }
}

/// An argument after the filtered value: positional, or the keywords.
pub(super) type Arg = Option<ValueOrKwargs>;

/// Splits the arguments after the value into `N` positional ones and the
/// keywords, which come last; `extra` is the slot the keywords take when all
/// `N` positional arguments are given.
///
/// The filters take these slots rather than a trailing `Kwargs`, for which
/// minijinja allocates an empty keyword map on every call without keywords,
/// the usual case. The errors are the ones minijinja's conversion gives.
pub(super) fn split_args<const N: usize>(
    args: [Arg; N],
    extra: Arg,
) -> Result<([Option<Value>; N], Keywords), Error> {
    let mut values = args.map(|arg| arg.map(Value::from));
    let extra = extra.map(Value::from);
    let too_many = extra.as_ref().is_some_and(|extra| !extra.is_kwargs());
    let keywords = match extra {
        Some(extra) if extra.is_kwargs() => Some(extra),
        _ => values
            .iter_mut()
            .rev()
            .find(|v| v.is_some())
            .filter(|last| last.as_ref().is_some_and(Value::is_kwargs))
            .and_then(Option::take),
    };
    if values.iter().flatten().any(Value::is_kwargs) {
        return Err(Error::new(
            ErrorKind::TooManyArguments,
            "unexpected keyword arguments",
        ));
    }
    if too_many {
        return Err(Error::from(ErrorKind::TooManyArguments));
    }
    Ok((
        values,
        Keywords(keywords.map(Kwargs::try_from).transpose()?),
    ))
}

/// A filter's keyword arguments, if it was given any.
pub(super) struct Keywords(pub(super) Option<Kwargs>);

impl Keywords {
    pub(super) fn has(&self, name: &str) -> bool {
        // Walking the few keys beats `Kwargs::has`, which builds and hashes
        // a key `Value`.
        self.0
            .as_ref()
            .is_some_and(|kwargs| kwargs.args().any(|key| key == name))
    }

    pub(super) fn assert_all_used(&self) -> Result<(), Error> {
        self.0.as_ref().map_or(Ok(()), Kwargs::assert_all_used)
    }
}

/// Merges a parameter that may come positionally or by keyword. `none` and
/// undefined mean "use the default", so `pluralize(none, "es")` works.
pub(super) fn param(
    filter: &str,
    name: &str,
    positional: Option<Value>,
    kwargs: &Keywords,
) -> Result<Option<Value>, Error> {
    let given = |v: &Value| !v.is_none() && !v.is_undefined();
    // `Kwargs::get` allocates to record the name as used, so it runs only
    // for a name that is there.
    let keyword: Option<Value> = match &kwargs.0 {
        Some(k) if kwargs.has(name) => k.get(name)?,
        _ => return Ok(positional.filter(given)),
    };
    if positional.is_some() && keyword.is_some() {
        return Err(fail(format!(
            "{filter}: {name} is given both by position and by keyword"
        )));
    }
    Ok(positional.or(keyword).filter(given))
}

/// A string parameter, borrowed from its value.
pub(super) fn str_param<'v>(
    filter: &str,
    name: &str,
    value: Option<&'v Value>,
) -> Result<Option<&'v str>, Error> {
    match value {
        None => Ok(None),
        Some(v) => match v.as_str() {
            Some(s) => Ok(Some(s)),
            None => Err(fail(format!(
                "{filter}: {name} must be a string, got {}",
                describe(v)
            ))),
        },
    }
}

pub(super) fn usize_param(
    filter: &str,
    name: &str,
    value: Option<Value>,
) -> Result<Option<usize>, Error> {
    match value {
        None => Ok(None),
        Some(v) => match v.as_usize() {
            Some(n) => Ok(Some(n)),
            None => Err(fail(format!(
                "{filter}: {name} must be a whole number of at least 0, got {}",
                describe(&v)
            ))),
        },
    }
}

pub(super) fn bool_param(
    filter: &str,
    name: &str,
    value: Option<Value>,
) -> Result<Option<bool>, Error> {
    match value {
        None => Ok(None),
        Some(v) if v.kind() == ValueKind::Bool => Ok(Some(v.is_true())),
        Some(v) => Err(fail(format!(
            "{filter}: {name} must be true or false, got {}",
            describe(&v)
        ))),
    }
}

/// Text filters treat a missing value as empty text rather than printing
/// `none` into a customer's inbox.
pub(super) fn text_of<'v>(filter: &str, value: &'v Value) -> Result<Cow<'v, str>, Error> {
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => Ok(Cow::Borrowed("")),
        ValueKind::String => Ok(Cow::Borrowed(value.as_str().unwrap_or_default())),
        ValueKind::Number | ValueKind::Bool => Ok(Cow::Owned(value.to_string())),
        _ => Err(fail(format!("{filter}: {} is not text", describe(value)))),
    }
}
