//! The sandboxed template environment: exactly the globals, filters and tests
//! on the allowlist, MarkupSafe-compatible escaping, and the render limits.

use minijinja::value::{Rest, Value};
use minijinja::{AutoEscape, Environment, Error, ErrorKind, Output, State, UndefinedBehavior};

use super::escape::write_html_escaped;
use super::filters;
use super::{MissingData, PartName, RenderLimits};

/// minijinja built-in filters a template may use. All are pure; `escape`
/// and `default` are replaced below with the behaviour marketers expect.
const BUILTIN_FILTERS: &[&str] = &[
    "abs",
    "attr",
    "batch",
    "bool",
    "capitalize",
    "chain",
    "count",
    "d",
    "default",
    "dictsort",
    "e",
    "escape",
    "first",
    "float",
    "format",
    "groupby",
    "indent",
    "int",
    "items",
    "join",
    "last",
    "length",
    "lines",
    "list",
    "lower",
    "map",
    "max",
    "min",
    "reject",
    "rejectattr",
    "replace",
    "reverse",
    "round",
    "safe",
    "select",
    "selectattr",
    "slice",
    "sort",
    "split",
    "string",
    "sum",
    "title",
    "tojson",
    "trim",
    "unique",
    "upper",
    "urlencode",
    "zip",
];

/// minijinja built-ins left out: `pprint` and the `debug` global dump whole
/// values, which would defeat the access audit and leak data into output.
const REMOVED_FILTERS: &[&str] = &["pprint"];
const REMOVED_GLOBALS: &[&str] = &["debug"];

/// Globals a template may call.
pub const GLOBALS: &[&str] = &["dict", "namespace", "range"];

/// Every filter a template may use, sorted.
pub fn allowed_filters() -> Vec<&'static str> {
    let mut names: Vec<_> = BUILTIN_FILTERS
        .iter()
        .chain(filters::FILTERS)
        .copied()
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// Tests a template may use: all of minijinja's, which are pure.
pub const TESTS: &[&str] = &[
    "!=",
    "<",
    "<=",
    "==",
    ">",
    ">=",
    "boolean",
    "defined",
    "divisibleby",
    "endingwith",
    "eq",
    "equalto",
    "escaped",
    "even",
    "false",
    "filter",
    "float",
    "ge",
    "greaterthan",
    "gt",
    "in",
    "int",
    "integer",
    "iterable",
    "le",
    "lessthan",
    "lower",
    "lt",
    "mapping",
    "ne",
    "none",
    "number",
    "odd",
    "safe",
    "sameas",
    "sequence",
    "startingwith",
    "string",
    "test",
    "true",
    "undefined",
    "upper",
];

/// The environment every compiled template starts from.
pub(crate) fn base_environment(
    limits: &RenderLimits,
    missing_data: MissingData,
) -> Environment<'static> {
    let mut env = Environment::new();
    for name in REMOVED_FILTERS {
        env.remove_filter(name);
    }
    for name in REMOVED_GLOBALS {
        env.remove_global(name);
    }
    env.add_filter("escape", escape);
    env.add_filter("e", escape);
    env.add_filter("default", default);
    env.add_filter("d", default);
    filters::register(&mut env);
    env.add_filter(
        super::links::TRACK_FILTER,
        crate::finish::tracking::track_filter,
    );

    env.set_formatter(format_value);
    env.set_auto_escape_callback(|name| {
        if PartName::from_template_name(name).is_some_and(PartName::is_html) {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    env.set_undefined_behavior(match missing_data {
        MissingData::Empty => UndefinedBehavior::Chainable,
        // Checking `{% if profile.vip %}` stays allowed; printing or
        // descending into missing data is what the stricter policies catch.
        MissingData::Skip | MissingData::Fail => UndefinedBehavior::SemiStrict,
    });
    env.set_fuel(Some(limits.fuel));
    env.set_recursion_limit(limits.recursion);
    env.set_debug(false);
    env
}

/// Writes one `{{ … }}` result: missing values and JSON `null` print as
/// nothing (never "none"), HTML parts escape the MarkupSafe set only.
fn format_value(out: &mut Output, state: &mut State, value: &Value) -> Result<(), Error> {
    if value.is_undefined() {
        return match state.undefined_behavior() {
            UndefinedBehavior::Chainable | UndefinedBehavior::Lenient => Ok(()),
            _ => Err(Error::new(
                ErrorKind::UndefinedError,
                "printed a value that is missing",
            )),
        };
    }
    if value.is_none() {
        return Ok(());
    }
    let escaping = matches!(state.auto_escape(), AutoEscape::Html) && !value.is_safe();
    match value.as_str() {
        Some(text) if escaping => write_html_escaped(out, text).map_err(Error::from),
        Some(text) => out.write_str(text).map_err(Error::from),
        None if escaping && !value.is_number() => {
            write_html_escaped(out, &value.to_string()).map_err(Error::from)
        }
        None => write!(out, "{value}").map_err(Error::from),
    }
}

/// `escape` with the MarkupSafe character set (minijinja's also escapes `/`).
/// Missing data stays missing, so the missing-data policy still sees it, and
/// `null` escapes to nothing, as it prints.
fn escape(value: &Value) -> Value {
    if value.is_safe() || value.is_undefined() {
        return value.clone();
    }
    if value.is_none() {
        return Value::from_safe_string(String::new());
    }
    let text = value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_owned);
    Value::from_safe_string(super::escape::html_escape(&text))
}

/// `default(fallback, also_falsy=false)`: the fallback replaces missing data
/// and JSON `null` — an absent and a null profile property look the same to a
/// marketer. With `true`, empty strings, zero and empty lists are replaced too.
fn default(value: &Value, args: Rest<Value>) -> Result<Value, Error> {
    if args.len() > 2 {
        return Err(Error::new(
            ErrorKind::TooManyArguments,
            "default takes a fallback and an optional `true` to also replace empty values",
        ));
    }
    let fallback = args.first().cloned().unwrap_or_else(|| Value::from(""));
    let also_falsy = args.get(1).is_some_and(Value::is_true);
    let missing = value.is_undefined() || value.is_none() || (also_falsy && !value.is_true());
    Ok(if missing { fallback } else { value.clone() })
}
