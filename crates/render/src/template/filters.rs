//! The marketer filters: number and currency formatting, dates in IANA time
//! zones, whole days relative to the send time, and text helpers (truncate,
//! pluralize, wordcount, striptags) that minijinja's builtins lack.
//!
//! Every filter is pure: no clock (`now` is always an argument), no
//! environment, no files. Time zones come from the tz database compiled into
//! the binary, so a render gives the same bytes on every machine.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::{self, Write as _};

use jiff::civil::Date;
use jiff::fmt::strtime::BrokenDownTime;
use jiff::fmt::temporal::DateTimeParser;
use jiff::tz::{TimeZone, TimeZoneDatabase};
use jiff::{SignedDuration, Timestamp};
use minijinja::value::{Kwargs, Rest, Value, ValueKind, ValueOrKwargs};
use minijinja::{Environment, Error, ErrorKind, State};

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
/// None of them shadows a minijinja builtin. The filters that read data
/// (`number`, `currency`, `date`, `days_*`, `pluralize`) pass missing data
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
    env.add_filter("striptags", striptags);
    env.add_filter("truncate", truncate);
    env.add_filter("wordcount", wordcount);
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

// ---------------------------------------------------------------------------
// Shared argument handling

fn fail(detail: String) -> Error {
    Error::new(ErrorKind::InvalidOperation, detail)
}

/// Longest slice of a bad value quoted back in an error: enough to find it in
/// the data, short enough to keep a log line readable.
const QUOTE_CHARS: usize = 60;

/// Names a value the way the template author would recognise it in their
/// data: strings quoted, missing values as `none` / `undefined`.
fn describe(value: &Value) -> String {
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
type Arg = Option<ValueOrKwargs>;

/// Splits the arguments after the value into `N` positional ones and the
/// keywords, which come last; `extra` is the slot the keywords take when all
/// `N` positional arguments are given.
///
/// The filters take these slots rather than a trailing `Kwargs`, for which
/// minijinja allocates an empty keyword map on every call without keywords,
/// the usual case. The errors are the ones minijinja's conversion gives.
fn split_args<const N: usize>(
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
struct Keywords(Option<Kwargs>);

impl Keywords {
    fn has(&self, name: &str) -> bool {
        // Walking the few keys beats `Kwargs::has`, which builds and hashes
        // a key `Value`.
        self.0
            .as_ref()
            .is_some_and(|kwargs| kwargs.args().any(|key| key == name))
    }

    fn assert_all_used(&self) -> Result<(), Error> {
        self.0.as_ref().map_or(Ok(()), Kwargs::assert_all_used)
    }
}

/// Merges a parameter that may come positionally or by keyword. `none` and
/// undefined mean "use the default", so `pluralize(none, "es")` works.
fn param(
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
fn str_param<'v>(
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

fn usize_param(filter: &str, name: &str, value: Option<Value>) -> Result<Option<usize>, Error> {
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

fn bool_param(filter: &str, name: &str, value: Option<Value>) -> Result<Option<bool>, Error> {
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
fn text_of<'v>(filter: &str, value: &'v Value) -> Result<Cow<'v, str>, Error> {
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => Ok(Cow::Borrowed("")),
        ValueKind::String => Ok(Cow::Borrowed(value.as_str().unwrap_or_default())),
        ValueKind::Number | ValueKind::Bool => Ok(Cow::Owned(value.to_string())),
        _ => Err(fail(format!("{filter}: {} is not text", describe(value)))),
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

// ---------------------------------------------------------------------------
// Decimal numbers

/// Upper bound for `decimals`: far past any price or percentage, and it keeps
/// a typo like `number(1000000)` from allocating megabytes.
const MAX_DECIMALS: u32 = 20;

/// Integer digits of `f64::MAX`; numeric strings beyond it are rejected so
/// `"1e999999999"` cannot make the filter write a billion zeros.
const MAX_INT_DIGITS: i64 = 309;

/// A finite decimal `digits × 10^exp`, sign kept apart. `digits` holds digit
/// values without leading or trailing zeros; zero is the empty list.
///
/// Rounding happens on these digits rather than on an `f64`, which is what
/// makes `2.675` round to `2.68` as a person expects.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Decimal {
    negative: bool,
    digits: Vec<u8>,
    exp: i64,
}

/// A numeric text split into its parts, before any digit is interpreted:
/// the one grammar both number representations are read with.
struct NumberText<'a> {
    negative: bool,
    int: &'a [u8],
    frac: &'a [u8],
    /// The exponent as written, saturated: `e9999999999` is out of range
    /// either way.
    exp: i64,
}

/// Splits `[+-]digits[.digits][(e|E)[+-]digits]`. Names such as `inf` and
/// `nan`, hex, and thousands separators are not numbers here: `1,234` means
/// different things in different locales.
fn scan_number(s: &str) -> Option<NumberText<'_>> {
    let b = s.as_bytes();
    let (negative, start) = match b.first() {
        Some(b'-') => (true, 1),
        Some(b'+') => (false, 1),
        _ => (false, 0),
    };
    let mut i = start;
    let mut dot = None;
    while let Some(&c) = b.get(i) {
        match c {
            b'0'..=b'9' => {}
            b'.' if dot.is_none() => dot = Some(i),
            _ => break,
        }
        i += 1;
    }
    let (int, frac) = match dot {
        Some(dot) => (&b[start..dot], &b[dot + 1..i]),
        None => (&b[start..i], &b[i..i]),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut exp: i64 = 0;
    if i < b.len() {
        if !matches!(b[i], b'e' | b'E') {
            return None;
        }
        i += 1;
        let exp_negative = match b.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let start = i;
        while let Some(&c) = b.get(i).filter(|c| c.is_ascii_digit()) {
            exp = (exp * 10 + i64::from(c - b'0')).min(1_000_000_000);
            i += 1;
        }
        if i == start || i != b.len() {
            return None;
        }
        if exp_negative {
            exp = -exp;
        }
    }
    Some(NumberText {
        negative,
        int,
        frac,
        exp,
    })
}

impl NumberText<'_> {
    /// Exponent of the last written digit.
    fn digits_exp(&self) -> i64 {
        self.exp - i64::try_from(self.frac.len()).unwrap_or(i64::MAX)
    }

    fn significant_digits(&self) -> impl Iterator<Item = u8> + '_ {
        self.int
            .iter()
            .chain(self.frac)
            .skip_while(|&&c| c == b'0')
            .map(|&c| c - b'0')
    }

    fn decimal(&self) -> Decimal {
        let mut digits: Vec<u8> = self.significant_digits().collect();
        let mut exp = self.digits_exp();
        while digits.last() == Some(&0) {
            digits.pop();
            exp += 1;
        }
        if digits.is_empty() {
            exp = 0;
        }
        Decimal {
            negative: self.negative,
            digits,
            exp,
        }
    }

    /// `None` past 38 significant digits, which a `u128` may not hold.
    fn small(&self) -> Option<SmallDecimal> {
        let mut mantissa: u128 = 0;
        let mut count = 0;
        for d in self.significant_digits() {
            count += 1;
            if count > 38 {
                return None;
            }
            mantissa = mantissa * 10 + u128::from(d);
        }
        Some(SmallDecimal {
            negative: self.negative,
            mantissa,
            exp: self.digits_exp(),
        })
    }
}

fn parse_decimal(s: &str) -> Option<Decimal> {
    scan_number(s).map(|text| text.decimal())
}

impl Decimal {
    fn int_digits(&self) -> i64 {
        i64::try_from(self.digits.len()).unwrap_or(i64::MAX) + self.exp
    }

    /// `|self| × 10^decimals` rounded half away from zero, as digits.
    fn round_scaled(&self, decimals: u32) -> Vec<u8> {
        if self.digits.is_empty() {
            return Vec::new();
        }
        let shift = self.exp + i64::from(decimals);
        if shift >= 0 {
            let mut n = self.digits.clone();
            n.resize(n.len() + usize::try_from(shift).unwrap_or(0), 0);
            return n;
        }
        let drop = usize::try_from(-shift).unwrap_or(usize::MAX);
        if drop > self.digits.len() {
            return Vec::new();
        }
        let keep = self.digits.len() - drop;
        let mut n = self.digits[..keep].to_vec();
        if self.digits[keep] >= 5 {
            increment(&mut n);
        }
        n
    }

    /// Grouped magnitude (`1,234.50`) and whether a minus sign belongs in
    /// front; a value that rounds to zero never shows `-0.00`.
    fn format(&self, decimals: u32) -> (bool, String) {
        let mut n = self.round_scaled(decimals);
        let negative = self.negative && n.iter().any(|&d| d != 0);
        let dec = decimals as usize;
        if n.len() <= dec {
            let pad = dec + 1 - n.len();
            n.splice(0..0, std::iter::repeat_n(0, pad));
        }
        let (int, frac) = n.split_at(n.len() - dec);
        let mut out = String::with_capacity(int.len() + int.len() / 3 + dec + 1);
        for (i, &d) in int.iter().enumerate() {
            if i > 0 && (int.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(char::from(b'0' + d));
        }
        if dec > 0 {
            out.push('.');
            out.extend(frac.iter().map(|&d| char::from(b'0' + d)));
        }
        (negative, out)
    }
}

fn increment(n: &mut Vec<u8>) {
    for d in n.iter_mut().rev() {
        if *d == 9 {
            *d = 0;
        } else {
            *d += 1;
            return;
        }
    }
    n.insert(0, 1);
}

/// `mantissa × 10^exp`, sign kept apart: the form nearly every number a
/// template formats takes, rounded with integer arithmetic instead of digit
/// by digit. Same value, same rounding as the `Decimal` it stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SmallDecimal {
    negative: bool,
    mantissa: u128,
    exp: i64,
}

/// `10^n` for every power a `u128` holds.
const POW10: [u128; 39] = {
    let mut table = [1; 39];
    let mut n = 1;
    while n < table.len() {
        table[n] = table[n - 1] * 10;
        n += 1;
    }
    table
};

impl SmallDecimal {
    fn int_digits(self) -> i64 {
        // The 64-bit logarithm where it fits: the 128-bit one divides.
        let log = match u64::try_from(self.mantissa) {
            Ok(m) => m.checked_ilog10(),
            Err(_) => self.mantissa.checked_ilog10(),
        };
        match log {
            Some(log) => i64::from(log) + 1 + self.exp,
            None => 0,
        }
    }

    /// `|self| × 10^decimals` rounded half away from zero, unless that
    /// overflows a `u128`.
    fn round_scaled(self, decimals: u32) -> Option<u128> {
        if self.mantissa == 0 {
            return Some(0);
        }
        let shift = self.exp + i64::from(decimals);
        if shift >= 0 {
            let scale = usize::try_from(shift).ok().and_then(|s| POW10.get(s))?;
            return self.mantissa.checked_mul(*scale);
        }
        // Dropping 39 digits or more leaves zero: every u128 is below half
        // of 10^39.
        let Some(&scale) = usize::try_from(-shift).ok().and_then(|s| POW10.get(s)) else {
            return Some(0);
        };
        let (q, r) = match (u64::try_from(self.mantissa), u64::try_from(scale)) {
            // Spares the slow 128-bit division in the usual case.
            (Ok(m), Ok(s)) => (u128::from(m / s), u128::from(m % s)),
            _ => (self.mantissa / scale, self.mantissa % scale),
        };
        Some(if r >= scale / 2 { q + 1 } else { q })
    }

    fn decimal(self) -> Decimal {
        let mut digits = Vec::new();
        let mut m = self.mantissa;
        let mut exp = self.exp;
        if m == 0 {
            exp = 0;
        }
        while m != 0 && m.is_multiple_of(10) {
            m /= 10;
            exp += 1;
        }
        while m != 0 {
            digits.push((m % 10) as u8);
            m /= 10;
        }
        digits.reverse();
        Decimal {
            negative: self.negative,
            digits,
            exp,
        }
    }
}

/// A number as read from a value.
enum Number {
    Small(SmallDecimal),
    /// Past 38 significant digits; only numeric strings get here.
    Big(Decimal),
}

/// A number rounded to its decimals, ready to print.
struct Rounded {
    /// Whether a minus sign belongs in front: a value that rounds to zero
    /// never shows `-0.00`.
    negative: bool,
    magnitude: Magnitude,
}

enum Magnitude {
    /// `|value| × 10^decimals`, rounded.
    Scaled { n: u128, decimals: u32 },
    /// Already grouped, from the digit-by-digit path.
    Grouped(String),
}

impl Number {
    fn round(self, decimals: u32) -> Rounded {
        let decimal = match self {
            Number::Small(small) => match small.round_scaled(decimals) {
                Some(n) => {
                    return Rounded {
                        negative: small.negative && n != 0,
                        magnitude: Magnitude::Scaled { n, decimals },
                    };
                }
                // Huge values, or many decimals on a long mantissa.
                None => small.decimal(),
            },
            Number::Big(decimal) => decimal,
        };
        let (negative, grouped) = decimal.format(decimals);
        Rounded {
            negative,
            magnitude: Magnitude::Grouped(grouped),
        }
    }
}

impl Rounded {
    /// Writes the magnitude: `1,234.50`.
    fn write_magnitude(&self, out: &mut Text) {
        match &self.magnitude {
            Magnitude::Scaled { n, decimals } => write_grouped(out, *n, *decimals as usize),
            Magnitude::Grouped(grouped) => out.push_str(grouped),
        }
    }
}

/// Writes `n / 10^decimals` with thousands separators and exactly
/// `decimals` places (`decimals` ≤ `MAX_DECIMALS`).
fn write_grouped(out: &mut Text, n: u128, decimals: usize) {
    // A u128 has at most 39 digits; zero padding adds at most
    // `MAX_DECIMALS + 1`. Filled from the right.
    let mut digits = [b'0'; 39];
    let mut start = digits.len();
    let mut rest = n;
    // Nineteen digits at a time: a price never needs the slow 128-bit
    // division at all.
    while rest > u128::from(u64::MAX) {
        let mut chunk = (rest % POW10[19]) as u64;
        rest /= POW10[19];
        for _ in 0..19 {
            start -= 1;
            digits[start] = b'0' + (chunk % 10) as u8;
            chunk /= 10;
        }
    }
    let mut low = rest as u64;
    while low != 0 {
        start -= 1;
        digits[start] = b'0' + (low % 10) as u8;
        low /= 10;
    }
    start = start.min(digits.len() - decimals - 1);
    let (int, frac) = digits[start..].split_at(digits.len() - start - decimals);

    // 39 digits, 12 separators and the point.
    let mut text = [0; 52];
    let mut len = 0;
    for (i, &d) in int.iter().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            text[len] = b',';
            len += 1;
        }
        text[len] = d;
        len += 1;
    }
    if decimals > 0 {
        text[len] = b'.';
        text[len + 1..len + 1 + decimals].copy_from_slice(frac);
        len += 1 + decimals;
    }
    out.push_ascii(&text[..len]);
}

/// Reads an int, a float or a numeric string as a number.
fn number_of(filter: &str, value: &Value) -> Result<Number, Error> {
    let not_a_number = || fail(format!("{filter}: {} is not a number", describe(value)));
    let number = match value.kind() {
        ValueKind::Number if value.is_integer() => integer_number(value),
        ValueKind::Number => {
            let f = f64::try_from(value.clone()).map_err(|_| not_a_number())?;
            if !f.is_finite() {
                return Err(not_a_number());
            }
            float_number(f)
        }
        ValueKind::String => scan_number(value.as_str().unwrap_or_default().trim()).map(|text| {
            text.small()
                .map_or_else(|| Number::Big(text.decimal()), Number::Small)
        }),
        _ => None,
    };
    let number = number.ok_or_else(not_a_number)?;
    let int_digits = match &number {
        Number::Small(small) => small.int_digits(),
        Number::Big(decimal) => decimal.int_digits(),
    };
    if int_digits > MAX_INT_DIGITS {
        return Err(fail(format!(
            "{filter}: {} is too large to format",
            describe(value)
        )));
    }
    Ok(number)
}

/// Integers are exact, including i128/u128.
fn integer_number(value: &Value) -> Option<Number> {
    let (negative, mantissa) = match i128::try_from(value.clone()) {
        Ok(i) => (i < 0, i.unsigned_abs()),
        Err(_) => (false, u128::try_from(value.clone()).ok()?),
    };
    Some(Number::Small(SmallDecimal {
        negative,
        mantissa,
        exp: 0,
    }))
}

/// A float's shortest round-trip decimal: the digits Rust's `{}` prints.
fn float_number(f: f64) -> Option<Number> {
    let negative = f.is_sign_negative();
    let small = |mantissa: u64, exp: i64| {
        Some(Number::Small(SmallDecimal {
            negative,
            mantissa: u128::from(mantissa),
            exp,
        }))
    };
    let whole = f as i64;
    // Below 2^53 a whole float is exactly its integer, and those digits are
    // also its shortest form.
    if whole as f64 == f && whole.unsigned_abs() < 1 << 53 {
        return small(whole.unsigned_abs(), 0);
    }
    if let Some((mantissa, places)) = short_decimal(f.abs()) {
        return small(mantissa, -i64::from(places));
    }
    // `{:e}` has the same digits as `{}` but never writes 1e300's zeros out,
    // so it stays within the stack buffer.
    let mut text = Text::new();
    write!(text, "{f:e}").ok()?;
    scan_number(text.as_str())?.small().map(Number::Small)
}

/// The shortest decimal `m / 10^k` that reads back as `a`, found without
/// formatting when it has few digits: `40.5` from JSON, `12.83` from
/// `1283 / 100`.
///
/// Why this is exactly Rust's shortest round-trip form: `m` and `10^k` are
/// exact in an `f64`, so `m / 10^k` is the correctly rounded quotient, the
/// same float that parsing `m`e-`k` gives; equality means that decimal reads
/// back as `a`. While `a × 10^k` < 2^42, the gap between `a` and its
/// neighbours, scaled by `10^k`, is below 2^-10: at most one `m` with `k`
/// places reads back as `a`, and rounding `a × 10^k` cannot miss it. So the
/// first `k` that works gives the shortest digits, and the only ones of that
/// length. Anything else (`0.1 + 0.2`, huge or tiny values) returns `None`,
/// for the formatter. The proptests below check this against `{}`.
fn short_decimal(a: f64) -> Option<(u64, u32)> {
    const LIMIT: f64 = (1_u64 << 42) as f64;
    let mut scale = 1.0;
    // Powers of ten are exact in an f64 up to 10^22.
    for places in 0..=22 {
        let x = a * scale;
        if x >= LIMIT {
            return None;
        }
        let m = (x + 0.5) as u64;
        if m as f64 / scale == a {
            return Some((m, places));
        }
        scale *= 10.0;
    }
    None
}

fn decimals_param(filter: &str, value: Option<Value>) -> Result<Option<u32>, Error> {
    match value {
        None => Ok(None),
        Some(v) => v
            .as_i64()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|&n| n <= MAX_DECIMALS)
            .map(Some)
            .ok_or_else(|| {
                fail(format!(
                    "{filter}: decimals must be a whole number from 0 to {MAX_DECIMALS}, got {}",
                    describe(&v)
                ))
            }),
    }
}

/// `{{ 1234.5|number }}` → `1,234.50`; `number(0)` → `1,235`.
fn number(value: &Value, decimals: Option<Value>, kwargs: Keywords) -> Result<Value, Error> {
    let decimals = param("number", "decimals", decimals, &kwargs)?;
    kwargs.assert_all_used()?;
    let decimals = decimals_param("number", decimals)?.unwrap_or(2);
    let rounded = number_of("number", value)?.round(decimals);
    let mut out = Text::new();
    if rounded.negative {
        out.push_ascii(b"-");
    }
    rounded.write_magnitude(&mut out);
    Ok(out.to_value())
}

/// Symbols as an English-language storefront shows them (CLDR `en`); the
/// dollar variants are qualified so CA$5 and $5 never look alike.
fn currency_symbol(code: &[u8; 3]) -> Option<&'static str> {
    Some(match code {
        b"USD" => "$",
        b"EUR" => "€",
        b"GBP" => "£",
        b"JPY" => "¥",
        b"CAD" => "CA$",
        b"AUD" => "A$",
        b"NZD" => "NZ$",
        b"HKD" => "HK$",
        b"MXN" => "MX$",
        b"BRL" => "R$",
        b"CNY" => "CN¥",
        b"INR" => "₹",
        b"KRW" => "₩",
        _ => return None,
    })
}

/// ISO 4217 minor units for the currencies that do not use two.
fn currency_decimals(code: &[u8; 3]) -> u32 {
    match code {
        b"BIF" | b"CLP" | b"DJF" | b"GNF" | b"ISK" | b"JPY" | b"KMF" | b"KRW" | b"PYG" | b"RWF"
        | b"UGX" | b"UYI" | b"VND" | b"VUV" | b"XAF" | b"XOF" | b"XPF" => 0,
        b"BHD" | b"IQD" | b"JOD" | b"KWD" | b"LYD" | b"OMR" | b"TND" => 3,
        _ => 2,
    }
}

/// `{{ 4.99|currency }}` → `$4.99`; `currency("CHF")` → `4.99 CHF`.
fn currency(
    value: &Value,
    code: Option<Value>,
    decimals: Option<Value>,
    kwargs: Keywords,
) -> Result<Value, Error> {
    let code = param("currency", "code", code, &kwargs)?;
    let decimals = param("currency", "decimals", decimals, &kwargs)?;
    kwargs.assert_all_used()?;
    let code: [u8; 3] = match code {
        None => *b"USD",
        Some(v) => match v
            .as_str()
            .and_then(|s| <[u8; 3]>::try_from(s.as_bytes()).ok())
        {
            Some(code) if code.iter().all(u8::is_ascii_alphabetic) => {
                code.map(|b| b.to_ascii_uppercase())
            }
            _ => {
                return Err(fail(format!(
                    "currency: {} is not a three-letter currency code",
                    describe(&v)
                )));
            }
        },
    };
    let decimals =
        decimals_param("currency", decimals)?.unwrap_or_else(|| currency_decimals(&code));
    let rounded = number_of("currency", value)?.round(decimals);
    let mut out = Text::new();
    if rounded.negative {
        out.push_ascii(b"-");
    }
    match currency_symbol(&code) {
        Some(symbol) => {
            out.push_str(symbol);
            rounded.write_magnitude(&mut out);
        }
        None => {
            rounded.write_magnitude(&mut out);
            out.push_ascii(b" ");
            out.push_ascii(&code);
        }
    }
    Ok(out.to_value())
}

// ---------------------------------------------------------------------------
// Dates

/// A date value: an instant, or a calendar day with no time or zone.
///
/// A bare day is kept apart so that `"2026-11-26"|date(tz="America/New_York")`
/// still prints the 26th instead of the evening of the 25th.
#[derive(Debug, Clone, Copy)]
enum When {
    Instant(Timestamp),
    Day(Date),
}

/// Shared parser: const-constructed and configuration-free.
static PARSER: DateTimeParser = DateTimeParser::new();

/// Timestamps outside ±1e15 seconds are beyond jiff's range anyway; the
/// bound keeps the float-to-int conversion exact.
const MAX_FLOAT_SECONDS: f64 = 1e15;

fn when_of(filter: &str, value: &Value) -> Result<When, Error> {
    let not_a_date = || {
        fail(format!(
            "{filter}: {} is not a date (expected e.g. 2026-11-26, \
             2026-11-26T14:00:00Z or a unix timestamp in seconds)",
            describe(value)
        ))
    };
    match value.kind() {
        ValueKind::Number if value.is_integer() => value
            .as_i64()
            .and_then(|s| Timestamp::from_second(s).ok())
            .map(When::Instant)
            .ok_or_else(not_a_date),
        ValueKind::Number => {
            let f = f64::try_from(value.clone()).map_err(|_| not_a_date())?;
            if !f.is_finite() || f.abs() > MAX_FLOAT_SECONDS {
                return Err(not_a_date());
            }
            let whole = f.floor();
            // Both casts are exact: |whole| ≤ 1e15 and the fraction is < 1.
            let mut seconds = whole as i64;
            let mut nanos = ((f - whole) * 1e9).round() as i32;
            if nanos >= 1_000_000_000 {
                seconds += 1;
                nanos -= 1_000_000_000;
            }
            Timestamp::new(seconds, nanos)
                .map(When::Instant)
                .map_err(|_| not_a_date())
        }
        ValueKind::String => {
            let s = value.as_str().unwrap_or_default().trim();
            if let Ok(ts) = PARSER.parse_timestamp(s) {
                return Ok(When::Instant(ts));
            }
            // Only a bare `YYYY-MM-DD` is a day: a date-time without an offset
            // is ambiguous, and guessing its zone would shift send-time copy.
            let b = s.as_bytes();
            if b.len() == 10
                && b[4] == b'-'
                && b[7] == b'-'
                && let Ok(day) = PARSER.parse_date(s)
            {
                return Ok(When::Day(day));
            }
            Err(not_a_date())
        }
        _ => Err(not_a_date()),
    }
}

impl When {
    /// Instant of the value; a bare day counts from midnight UTC.
    fn timestamp(self) -> Result<Timestamp, jiff::Error> {
        match self {
            When::Instant(ts) => Ok(ts),
            When::Day(day) => Ok(day.to_zoned_datetime(TimeZone::UTC)?.timestamp()),
        }
    }
}

/// Zones kept per thread: the tz database has about 600 names, and the bound
/// stops a template spelling them in ever new letter cases from growing the
/// cache for ever.
const MAX_CACHED_ZONES: usize = 1024;

thread_local! {
    /// Zones by the name the template gave. jiff caches parsed zones too, but
    /// behind a process-wide lock and a case-insensitive search; a map per
    /// thread keeps the lookup cheap and uncontended.
    static ZONES: RefCell<HashMap<Box<str>, TimeZone>> = RefCell::new(HashMap::new());
}

fn time_zone(filter: &str, name: &str) -> Result<TimeZone, Error> {
    if let Some(tz) = ZONES.with_borrow(|zones| zones.get(name).cloned()) {
        return Ok(tz);
    }
    // The bundled database explicitly: `jiff::tz::db()` would consult
    // `TZDIR` and the file system.
    let tz = TimeZoneDatabase::bundled()
        .get(name)
        .map_err(|_| fail(format!("{filter}: {name:?} is not a known time zone")))?;
    ZONES.with_borrow_mut(|zones| {
        if zones.len() < MAX_CACHED_ZONES {
            zones.insert(name.into(), tz.clone());
        }
    });
    Ok(tz)
}

/// `{{ "2026-11-26T14:00:00Z"|date("%A %-I:%M %p %Z", tz="America/New_York") }}`.
fn date(
    value: &Value,
    format: Option<Value>,
    tz: Option<Value>,
    kwargs: Keywords,
) -> Result<Value, Error> {
    let format = param("date", "format", format, &kwargs)?;
    let tz = param("date", "tz", tz, &kwargs)?;
    kwargs.assert_all_used()?;
    let format = str_param("date", "format", format.as_ref())?.unwrap_or("%B %-d, %Y");
    let tz = match str_param("date", "tz", tz.as_ref())? {
        Some(name) => time_zone("date", name)?,
        None => TimeZone::UTC,
    };
    let zoned = match when_of("date", value)? {
        When::Instant(ts) => ts.to_zoned_datetime(tz),
        When::Day(day) => day.to_zoned_datetime(tz).map_err(|e| {
            fail(format!(
                "date: {} cannot be placed in that time zone: {e}",
                describe(value)
            ))
        })?,
    };
    let mut out = Text::new();
    BrokenDownTime::from(&zoned)
        .format(format, &mut out)
        .map_err(|e| fail(format!("date: cannot format with {format:?}: {e}")))?;
    Ok(out.to_value())
}

fn whole_days(
    filter: &str,
    from: &Value,
    to: Option<Value>,
    kwargs: &Keywords,
) -> Result<i64, Error> {
    let to = param(filter, "now", to, kwargs)?;
    kwargs.assert_all_used()?;
    let Some(to) = to else {
        return Err(fail(format!(
            "{filter}: needs the send time as its argument, e.g. {filter}(now)"
        )));
    };
    let instant = |v: &Value| {
        when_of(filter, v)?
            .timestamp()
            .map_err(|e| fail(format!("{filter}: {} is out of range: {e}", describe(v))))
    };
    let elapsed: SignedDuration = instant(&to)?.duration_since(instant(from)?);
    // `as_secs` truncates toward zero: 36 hours is 1 day either way round.
    Ok(elapsed.as_secs() / 86_400)
}

/// Whole days from `now` until the value; negative once it has passed.
fn days_until(value: &Value, now: Option<Value>, kwargs: Keywords) -> Result<i64, Error> {
    whole_days("days_until", value, now, &kwargs).map(|d| -d)
}

/// Whole days from the value until `now`; negative while it is ahead.
fn days_since(value: &Value, now: Option<Value>, kwargs: Keywords) -> Result<i64, Error> {
    whole_days("days_since", value, now, &kwargs)
}

// ---------------------------------------------------------------------------
// Text

/// Jinja2's `truncate(length=255, killwords=false, end="...", leeway)`, on
/// characters. Two deliberate departures: `leeway` defaults to 0, because a
/// 160-character SMS budget must not silently become 165; and a cut that
/// lands exactly between words keeps the last whole word.
fn truncate(state: &mut State, value: &Value, args: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    // Keywords split off by hand, as in `split_args`, but a positional
    // `none` stays given here.
    let mut args = args.0;
    let kwargs = match args.last() {
        Some(last) if last.is_kwargs() => args.pop().map(Value::from),
        _ => None,
    };
    if args.iter().any(|arg| arg.is_kwargs()) {
        return Err(Error::new(
            ErrorKind::TooManyArguments,
            "unexpected keyword arguments",
        ));
    }
    let kwargs = Keywords(kwargs.map(Kwargs::try_from).transpose()?);
    if args.len() > 4 {
        return Err(Error::new(
            ErrorKind::TooManyArguments,
            "truncate: takes at most length, killwords, end and leeway",
        ));
    }
    let mut args = args.into_iter().map(Value::from);
    let length = param("truncate", "length", args.next(), &kwargs)?;
    let killwords = param("truncate", "killwords", args.next(), &kwargs)?;
    let end = param("truncate", "end", args.next(), &kwargs)?;
    let leeway = param("truncate", "leeway", args.next(), &kwargs)?;
    kwargs.assert_all_used()?;

    let length = usize_param("truncate", "length", length)?.unwrap_or(255);
    let killwords = bool_param("truncate", "killwords", killwords)?.unwrap_or(false);
    let end_safe = end.as_ref().is_some_and(Value::is_safe);
    let end = str_param("truncate", "end", end.as_ref())?.unwrap_or("...");
    let leeway = usize_param("truncate", "leeway", leeway)?.unwrap_or(0);

    let text = text_of("truncate", value)?;
    let end_len = end.chars().count();
    if length < end_len {
        return Err(fail(format!(
            "truncate: length {length} is shorter than the end marker {end:?}"
        )));
    }
    if text.chars().count() <= length.saturating_add(leeway) {
        return Ok(if value.kind() == ValueKind::String {
            value.clone()
        } else {
            Value::from(text)
        });
    }

    let cut = text
        .char_indices()
        .nth(length - end_len)
        .map_or(text.len(), |(i, _)| i);
    let hard = &text[..cut];
    let mut kept = hard;
    if !killwords
        && !text[cut..].starts_with(char::is_whitespace)
        && let Some(space) = hard.rfind(char::is_whitespace)
    {
        kept = &hard[..space];
    }
    kept = kept.trim_end();
    if kept.is_empty() {
        kept = hard;
    }

    if value.is_safe() {
        let end = if end_safe {
            Cow::Borrowed(end)
        } else {
            Cow::Owned(minijinja::filters::escape(state, &Value::from(end))?.to_string())
        };
        Ok(Value::from_safe_string(format!("{kept}{end}")))
    } else {
        let mut out = Text::new();
        out.push_str(kept);
        out.push_str(end);
        Ok(out.to_value())
    }
}

/// Whether a count reads as singular, Django-style: the number one (`1`,
/// `1.0`, `"1"`), or a collection of exactly one item.
fn is_singular(value: &Value) -> Result<bool, Error> {
    let not_countable = || {
        fail(format!(
            "pluralize: {} is not a number or a list",
            describe(value)
        ))
    };
    match value.kind() {
        ValueKind::Number if value.is_integer() => Ok(value.as_i64() == Some(1)),
        ValueKind::Number => Ok(f64::try_from(value.clone()).map_err(|_| not_countable())? == 1.0),
        ValueKind::String => {
            let d = parse_decimal(value.as_str().unwrap_or_default().trim())
                .ok_or_else(not_countable)?;
            Ok(!d.negative && d.digits == [1] && d.exp == 0)
        }
        ValueKind::Seq | ValueKind::Map | ValueKind::Iterable => {
            value.len().map(|n| n == 1).ok_or_else(not_countable)
        }
        _ => Err(not_countable()),
    }
}

/// `item{{ n|pluralize }}`, `entr{{ n|pluralize("y,ies") }}`,
/// `box{{ n|pluralize("es") }}`, or `pluralize(singular="y", plural="ies")`.
/// A single argument is Django's: the plural suffix, or `"singular,plural"`.
fn pluralize(
    value: &Value,
    first: Option<Value>,
    second: Option<Value>,
    kwargs: Keywords,
) -> Result<Value, Error> {
    // The suffixes borrow from the arguments, which live out here.
    let spec_arg: Value;
    let (singular_arg, plural_arg): (Option<Value>, Option<Value>);
    let (singular, plural) = match (first, second) {
        (Some(arg), None) if !kwargs.has("singular") && !kwargs.has("plural") => {
            spec_arg = arg;
            let Some(spec) = spec_arg.as_str() else {
                return Err(fail(format!(
                    "pluralize: suffix must be a string, got {}",
                    describe(&spec_arg)
                )));
            };
            match spec.split_once(',') {
                None => (None, Some(spec)),
                Some((_, rest)) if rest.contains(',') => {
                    return Err(fail(format!(
                        "pluralize: {spec:?} has more than one comma; \
                         use \"singular,plural\""
                    )));
                }
                Some((s, p)) => (Some(s), Some(p)),
            }
        }
        (first, second) => {
            singular_arg = param("pluralize", "singular", first, &kwargs)?;
            plural_arg = param("pluralize", "plural", second, &kwargs)?;
            (
                str_param("pluralize", "singular", singular_arg.as_ref())?,
                str_param("pluralize", "plural", plural_arg.as_ref())?,
            )
        }
    };
    kwargs.assert_all_used()?;
    Ok(Value::from(if is_singular(value)? {
        singular.unwrap_or_default()
    } else {
        plural.unwrap_or("s")
    }))
}

/// Jinja2's `wordcount`: runs of letters, digits and `_` (regex `\w+`), so
/// `don't` counts as two, exactly as in Jinja2.
fn wordcount(value: &Value) -> Result<usize, Error> {
    let text = text_of("wordcount", value)?;
    let mut count = 0;
    let mut in_word = false;
    for c in text.chars() {
        let word_char = c.is_alphanumeric() || c == '_';
        if word_char && !in_word {
            count += 1;
        }
        in_word = word_char;
    }
    Ok(count)
}

/// Jinja2's `striptags`: drops comments, then tags, collapses whitespace,
/// then decodes entities. The result is plain text, so autoescape applies
/// to it again in HTML templates.
fn striptags(value: &Value) -> Result<String, Error> {
    let text = text_of("striptags", value)?;
    let text = remove_between(&text, "<!--", "-->");
    let text = remove_between(&text, "<", ">");
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    Ok(decode_entities(&collapsed))
}

/// Removes each `open … close` span in one pass; an `open` without a
/// `close` after it is left in place together with the rest, as Jinja2 does.
fn remove_between(text: &str, open: &str, close: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(open) {
        let Some(len) = rest[start..].find(close) else {
            break;
        };
        out.push_str(&rest[..start]);
        rest = &rest[start + len + close.len()..];
    }
    out.push_str(rest);
    out
}

/// Named entities common in email HTML; numeric ones are decoded generally.
fn named_entity(name: &str) -> Option<char> {
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => '\u{a0}',
        "shy" => '\u{ad}',
        "zwnj" => '\u{200c}',
        "zwj" => '\u{200d}',
        "ensp" => '\u{2002}',
        "emsp" => '\u{2003}',
        "thinsp" => '\u{2009}',
        "copy" => '©',
        "reg" => '®',
        "trade" => '™',
        "deg" => '°',
        "times" => '×',
        "middot" => '·',
        "bull" => '•',
        "hellip" => '…',
        "ndash" => '–',
        "mdash" => '—',
        "lsquo" => '‘',
        "rsquo" => '’',
        "sbquo" => '‚',
        "ldquo" => '“',
        "rdquo" => '”',
        "bdquo" => '„',
        "laquo" => '«',
        "raquo" => '»',
        "cent" => '¢',
        "pound" => '£',
        "yen" => '¥',
        "euro" => '€',
        _ => return None,
    })
}

fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        // Longest entity we decode is `&#x10FFFF;` / `&thinsp;`: 10 bytes.
        let semi = rest.as_bytes().iter().take(12).position(|&b| b == b';');
        let decoded = semi.and_then(|semi| {
            let body = &rest[1..semi];
            let c = if let Some(num) = body.strip_prefix('#') {
                let (digits, radix) = match num.strip_prefix(['x', 'X']) {
                    Some(hex) => (hex, 16),
                    None => (num, 10),
                };
                let code = u32::from_str_radix(digits, radix).ok()?;
                // Like Python's html.unescape: invalid code points become U+FFFD.
                char::from_u32(code)
                    .filter(|&c| c != '\0')
                    .unwrap_or('\u{fffd}')
            } else {
                named_entity(body)?
            };
            Some((c, semi + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::context;
    use proptest::prelude::*;

    fn env() -> Environment<'static> {
        let mut env = Environment::new();
        register(&mut env);
        env
    }

    fn render(source: &str, ctx: Value) -> Result<String, Error> {
        env().render_str(source, ctx)
    }

    fn ok(source: &str, ctx: Value) -> String {
        render(source, ctx).unwrap_or_else(|e| panic!("{source}: {e:#}"))
    }

    /// The error detail, which is what an author sees next to the location.
    fn err(source: &str, ctx: Value) -> String {
        match render(source, ctx) {
            Ok(out) => panic!("{source}: expected an error, got {out:?}"),
            Err(e) => e.detail().unwrap_or_default().to_owned(),
        }
    }

    fn num(x: impl Into<Value>, args: &str) -> String {
        ok(
            &format!("{{{{ x|number{args} }}}}"),
            context! { x => x.into() },
        )
    }

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

    #[test]
    fn number_formats_with_separators_and_decimals() {
        assert_eq!(num(1234.5, ""), "1,234.50");
        assert_eq!(num(1234.5, "(0)"), "1,235");
        assert_eq!(num(1234.5, "(decimals=0)"), "1,235");
        assert_eq!(num(-1234.5, ""), "-1,234.50");
        assert_eq!(num(0, ""), "0.00");
        assert_eq!(num(999, "(0)"), "999");
        assert_eq!(num(1000, "(0)"), "1,000");
        assert_eq!(num(1234567, "(1)"), "1,234,567.0");
        assert_eq!(num(0.5, "(0)"), "1");
        assert_eq!(num(-0.5, "(0)"), "-1");
        assert_eq!(num(999.995, ""), "1,000.00");
        assert_eq!(num(i64::MIN, "(0)"), "-9,223,372,036,854,775,808");
        assert_eq!(
            num(u128::MAX, "(0)"),
            "340,282,366,920,938,463,463,374,607,431,768,211,455"
        );
        assert_eq!(ok("{{ 1234.5|number }}", context! {}), "1,234.50");
    }

    #[test]
    fn number_accepts_numeric_strings() {
        assert_eq!(num("4.99", ""), "4.99");
        assert_eq!(num(" 1234.5 ", ""), "1,234.50");
        assert_eq!(num("1e3", ""), "1,000.00");
        assert_eq!(num("-2.5E-1", ""), "-0.25");
        assert_eq!(num("+.5", "(0)"), "1");
        assert_eq!(num("7.", ""), "7.00");
        assert_eq!(num("0012", "(0)"), "12");
        // Exact decimal, not f64: 17 significant digits survive.
        assert_eq!(
            num("12345678901234567.125", ""),
            "12,345,678,901,234,567.13"
        );
    }

    #[test]
    fn number_rounds_decimal_half_away_from_zero() {
        assert_eq!(num(2.675, ""), "2.68");
        assert_eq!(num(0.125, ""), "0.13");
        assert_eq!(num(1.005, ""), "1.01");
        assert_eq!(num(-2.675, ""), "-2.68");
        assert_eq!(num(0.0049, ""), "0.00");
        assert_eq!(num(2.5, "(0)"), "3");
        assert_eq!(num(1.45, "(1)"), "1.5");
        assert_eq!(ok("{{ 2.675|number }}", context! {}), "2.68");
    }

    #[test]
    fn number_never_prints_negative_zero() {
        assert_eq!(num(-0.001, ""), "0.00");
        assert_eq!(num(-0.0, ""), "0.00");
        assert_eq!(num("-0", "(0)"), "0");
    }

    #[test]
    fn number_formats_huge_and_tiny_values_in_full() {
        let huge = num(1e300, "");
        assert!(huge.starts_with("1,000,000,"), "{huge}");
        assert!(huge.ends_with(",000.00"), "{huge}");
        assert_eq!(huge.replace(',', "").len(), 301 + 3);
        let max = num(f64::MAX, "(0)");
        assert_eq!(max.replace(',', "").len(), 309);
        assert_eq!(num(1e-300, ""), "0.00");
        assert_eq!(num(5e-324, ""), "0.00");
        assert_eq!(num(-1e-300, "(20)"), "0.00000000000000000000");
        assert_eq!(num(1.5e-7, "(7)"), "0.0000002");
    }

    #[test]
    fn number_errors_name_the_value() {
        let e = err("{{ x|number }}", context! { x => "abc" });
        assert_eq!(e, r#"number: "abc" is not a number"#);
        assert_eq!(ok("{{ x|number is none }}", context! { x => () }), "True");
        assert_eq!(ok("{{ missing|number }}", context! {}), "");
        assert_eq!(
            err("{{ true|number }}", context! {}),
            "number: true is not a number"
        );
        for bad in ["", "1,234.50", "inf", "NaN", "0x10", "1e", "1.2.3", "$4"] {
            let e = err("{{ x|number }}", context! { x => bad });
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
        let e = err("{{ x|number }}", context! { x => f64::INFINITY });
        assert!(e.starts_with("number: inf"), "{e}");
        let e = err("{{ x|number }}", context! { x => "1e999999999999" });
        assert_eq!(e, r#"number: "1e999999999999" is too large to format"#);
        let e = err("{{ 1|number(21) }}", context! {});
        assert!(e.contains("decimals") && e.contains("21"), "{e}");
        let e = err("{{ 1|number(-1) }}", context! {});
        assert!(e.contains("-1"), "{e}");
        let e = err("{{ 1|number(2, decimals=2) }}", context! {});
        assert!(e.contains("decimals"), "{e}");
        let e = err("{{ 1|number(places=2) }}", context! {});
        assert!(e.contains("places"), "{e}");
    }

    fn cur(x: impl Into<Value>, args: &str) -> String {
        ok(
            &format!("{{{{ x|currency{args} }}}}"),
            context! { x => x.into() },
        )
    }

    #[test]
    fn currency_uses_symbols_and_minor_units() {
        assert_eq!(cur(4.99, ""), "$4.99");
        assert_eq!(cur(1234.5, r#"("EUR")"#), "€1,234.50");
        assert_eq!(cur(1234.5, r#"("GBP")"#), "£1,234.50");
        assert_eq!(cur(1234.5, r#"("JPY")"#), "¥1,235");
        assert_eq!(cur(1234.5, r#"("CHF")"#), "1,234.50 CHF");
        assert_eq!(cur(1234.5, r#"("KWD")"#), "1,234.500 KWD");
        assert_eq!(cur(5, r#"("CAD")"#), "CA$5.00");
        assert_eq!(cur(-4.99, ""), "-$4.99");
        assert_eq!(cur(-4.99, r#"("CHF")"#), "-4.99 CHF");
        assert_eq!(cur("4.99", r#"(code="eur")"#), "€4.99");
        assert_eq!(cur(49, "(decimals=0)"), "$49");
        assert_eq!(cur(2.675, ""), "$2.68");
        assert_eq!(cur(-0.001, ""), "$0.00");
    }

    #[test]
    fn currency_errors_name_the_value() {
        assert_eq!(
            err("{{ x|currency }}", context! { x => "abc" }),
            r#"currency: "abc" is not a number"#
        );
        assert_eq!(
            err(r#"{{ 1|currency("EURO") }}"#, context! {}),
            r#"currency: "EURO" is not a three-letter currency code"#
        );
        assert_eq!(
            err("{{ 1|currency(1) }}", context! {}),
            "currency: 1 is not a three-letter currency code"
        );
    }

    fn date(x: impl Into<Value>, args: &str) -> String {
        ok(
            &format!("{{{{ x|date{args} }}}}"),
            context! { x => x.into() },
        )
    }

    #[test]
    fn date_formats_rfc3339_bare_dates_and_timestamps() {
        assert_eq!(date("2026-11-26T14:00:00Z", ""), "November 26, 2026");
        assert_eq!(date("2026-11-05T14:00:00Z", ""), "November 5, 2026");
        assert_eq!(
            date("2026-11-26T14:00:00+01:00", r#"("%Y-%m-%d %H:%M %Z")"#),
            "2026-11-26 13:00 UTC"
        );
        assert_eq!(date("2026-11-26", ""), "November 26, 2026");
        assert_eq!(date(" 2026-11-26 ", r#"("%a %d %b")"#), "Thu 26 Nov");
        // 2026-11-26T14:00:00Z
        assert_eq!(date(1_795_701_600, r#"("%FT%T")"#), "2026-11-26T14:00:00");
        assert_eq!(date(1_795_701_600.25, r#"("%T%.3f")"#), "14:00:00.250");
        assert_eq!(date(-86_400, ""), "December 31, 1969");
    }

    #[test]
    fn date_converts_to_iana_time_zones_across_dst() {
        let ny = r#"("%Y-%m-%d %-I:%M %p %Z", tz="America/New_York")"#;
        assert_eq!(date("2026-07-04T16:00:00Z", ny), "2026-07-04 12:00 PM EDT");
        assert_eq!(date("2026-11-26T14:00:00Z", ny), "2026-11-26 9:00 AM EST");
        // Spring forward, 2026-03-08 at 2am local.
        assert_eq!(date("2026-03-08T06:30:00Z", ny), "2026-03-08 1:30 AM EST");
        assert_eq!(date("2026-03-08T07:30:00Z", ny), "2026-03-08 3:30 AM EDT");
        assert_eq!(
            date(1_795_701_600, r#"(tz="Asia/Tokyo", format="%H:%M %:z")"#),
            "23:00 +09:00"
        );
        assert_eq!(
            date("2026-11-26T14:00:00Z", r#"("%H:%M %Q", "europe/paris")"#),
            "15:00 Europe/Paris"
        );
        // A bare day stays that day wherever it is shown.
        assert_eq!(
            date(
                "2026-11-26",
                r#"("%B %-d %H:%M %Z", tz="America/Los_Angeles")"#
            ),
            "November 26 00:00 PST"
        );
    }

    #[test]
    fn date_errors_name_the_value_and_never_panic() {
        for bad in [
            "tomorrow",
            "2026-13-01",
            "2026-02-30",
            "2026-11-26T14:00:00",
            "26/11/2026",
            "",
        ] {
            let e = err("{{ x|date }}", context! { x => bad });
            assert!(
                e.starts_with(&format!("date: {bad:?} is not a date")),
                "{e}"
            );
        }
        assert_eq!(ok("{{ x|date is none }}", context! { x => () }), "True");
        assert_eq!(ok("{{ x|date }}{{ x|days_until(now) }}", context! {}), "");
        assert!(err("{{ x|date }}", context! { x => i64::MAX }).contains("9223372036854775807"));
        assert!(err("{{ x|date }}", context! { x => f64::NAN }).starts_with("date: NaN"));
        assert!(err("{{ x|date }}", context! { x => 1e300 }).starts_with("date: 1e300"));
        assert_eq!(
            err(r#"{{ 0|date(tz="Mars/Olympus") }}"#, context! {}),
            r#"date: "Mars/Olympus" is not a known time zone"#
        );
        for bad in ["%J", "%", "%Ez", "%-"] {
            let e = err("{{ 0|date(f) }}", context! { f => bad });
            assert!(
                e.starts_with(&format!("date: cannot format with {bad:?}")),
                "{e}"
            );
        }
        let e = err("{{ 0|date(7) }}", context! {});
        assert_eq!(e, "date: format must be a string, got 7");
    }

    #[test]
    fn days_until_and_since_count_whole_days_from_now() {
        let ctx = |at: &str, now: &str| context! { at => at, now => now };
        let t = "{{ at|days_until(now) }}/{{ at|days_since(now) }}";
        assert_eq!(
            ok(t, ctx("2026-11-29T14:00:00Z", "2026-11-26T14:00:00Z")),
            "3/-3"
        );
        assert_eq!(
            ok(t, ctx("2026-11-29T13:59:59Z", "2026-11-26T14:00:00Z")),
            "2/-2"
        );
        assert_eq!(
            ok(t, ctx("2026-11-26T20:00:00Z", "2026-11-26T14:00:00Z")),
            "0/0"
        );
        assert_eq!(
            ok(t, ctx("2026-11-20T14:00:00Z", "2026-11-26T14:00:00Z")),
            "-6/6"
        );
        assert_eq!(
            ok(t, ctx("2026-11-25T00:00:00Z", "2026-11-26T12:00:00Z")),
            "-1/1"
        );
        assert_eq!(ok(t, ctx("2026-12-25", "2026-11-26")), "29/-29");
        assert_eq!(
            ok(t, ctx("2026-11-28", "2026-11-26T12:00:00-05:00")),
            "1/-1"
        );
        assert_eq!(
            ok(
                "{{ x|days_until(now=n) }}",
                context! { x => 1_795_701_600 + 86_400 * 7, n => 1_795_701_600 }
            ),
            "7"
        );
    }

    #[test]
    fn days_errors_name_the_value() {
        assert_eq!(
            err("{{ '2026-11-26'|days_until }}", context! {}),
            "days_until: needs the send time as its argument, e.g. days_until(now)"
        );
        assert!(
            err(
                "{{ x|days_since(now) }}",
                context! { x => "soon", now => 0 }
            )
            .starts_with(r#"days_since: "soon" is not a date"#)
        );
        assert!(
            err("{{ 0|days_until(now) }}", context! { now => "later" })
                .starts_with(r#"days_until: "later" is not a date"#)
        );
    }

    fn trunc(x: impl Into<Value>, args: &str) -> String {
        ok(
            &format!("{{{{ x|truncate{args} }}}}"),
            context! { x => x.into() },
        )
    }

    #[test]
    fn truncate_is_word_aware_and_counts_chars() {
        let s = "The quick brown fox jumps over the lazy dog";
        assert_eq!(trunc(s, ""), s);
        assert_eq!(trunc(s, "(43)"), s);
        assert_eq!(trunc(s, "(20)"), "The quick brown...");
        assert_eq!(trunc(s, "(20, true)"), "The quick brown f...");
        assert_eq!(
            trunc(s, "(length=20, killwords=true)"),
            "The quick brown f..."
        );
        assert_eq!(trunc(s, r#"(20, end="…")"#), "The quick brown fox…");
        assert_eq!(trunc(s, r#"(18, false, "")"#), "The quick brown");
        // The cut falls right before a space: the whole word stays.
        assert_eq!(trunc(s, "(18)"), "The quick brown...");
        assert_eq!(trunc(s, "(40, leeway=5)"), s);
        assert_eq!(trunc("Supercalifragilistic", "(10)"), "Superca...");
        // Characters, not bytes.
        let accented = "Crème brûlée à la façon de grand-mère";
        assert_eq!(trunc(accented, "(16)"), "Crème brûlée...");
        assert_eq!(trunc("🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉", "(5, true)"), "🎉🎉...");
        assert_eq!(trunc((), "(5)"), "");
        assert_eq!(trunc(123_456_789, "(5)"), "12...");
        let all_within = (0..200)
            .map(|n| trunc(s, &format!("({})", n.max(3))).chars().count())
            .all(|len| len <= 43);
        assert!(all_within);
    }

    #[test]
    fn truncate_keeps_html_safety() {
        let mut env = env();
        env.add_template("t.html", "{{ x|truncate(9) }}|{{ y|truncate(9) }}")
            .expect("template");
        let out = env
            .get_template("t.html")
            .and_then(|t| {
                t.render(context! {
                    x => Value::from_safe_string("<b>bold</b> text".into()),
                    y => "<b>bold</b> text",
                })
            })
            .expect("render");
        assert_eq!(out, "<b>bol...|&lt;b&gt;bol...");
    }

    #[test]
    fn truncate_errors() {
        assert_eq!(
            err("{{ 'abcdef'|truncate(2) }}", context! {}),
            r#"truncate: length 2 is shorter than the end marker "...""#
        );
        assert_eq!(
            err("{{ 'abc'|truncate('x') }}", context! {}),
            r#"truncate: length must be a whole number of at least 0, got "x""#
        );
        assert_eq!(
            err("{{ 'abc'|truncate(9, false, '', 0, 1) }}", context! {}),
            "truncate: takes at most length, killwords, end and leeway"
        );
        assert_eq!(
            err("{{ x|truncate }}", context! { x => vec![1, 2] }),
            "truncate: [1, 2] is not text"
        );
    }

    fn plural(x: impl Into<Value>, args: &str) -> String {
        ok(
            &format!("{{{{ x|pluralize{args} }}}}"),
            context! { x => x.into() },
        )
    }

    #[test]
    fn pluralize_django_style() {
        assert_eq!(plural(0, ""), "s");
        assert_eq!(plural(1, ""), "");
        assert_eq!(plural(2, ""), "s");
        assert_eq!(plural(-1, ""), "s");
        assert_eq!(plural(1.0, ""), "");
        assert_eq!(plural(1.5, ""), "s");
        assert_eq!(plural("1", ""), "");
        assert_eq!(plural(" 1.0 ", ""), "");
        assert_eq!(plural("2", ""), "s");
        assert_eq!(plural(vec!["a"], ""), "");
        assert_eq!(plural(vec!["a", "b"], ""), "s");
        assert_eq!(plural(Vec::<i32>::new(), ""), "s");
        assert_eq!(plural(2, r#"("es")"#), "es");
        assert_eq!(plural(1, r#"("es")"#), "");
        assert_eq!(plural(1, r#"("y,ies")"#), "y");
        assert_eq!(plural(3, r#"("y,ies")"#), "ies");
        assert_eq!(plural(1, r#"("y", "ies")"#), "y");
        assert_eq!(plural(3, r#"(none, "es")"#), "es");
        assert_eq!(plural(1, r#"(singular="y", plural="ies")"#), "y");
        assert_eq!(plural(2, r#"(plural="ies")"#), "ies");
        assert_eq!(
            ok("{{ n }} item{{ n|pluralize }}", context! { n => 3 }),
            "3 items"
        );
    }

    #[test]
    fn pluralize_errors_name_the_value() {
        assert_eq!(
            err("{{ x|pluralize }}", context! { x => "abc" }),
            r#"pluralize: "abc" is not a number or a list"#
        );
        assert_eq!(ok("{{ x|pluralize }}{{ x|currency }}", context! {}), "");
        assert!(err("{{ 2|pluralize('a,b,c') }}", context! {}).contains(r#""a,b,c""#));
    }

    #[test]
    fn wordcount_matches_jinja2() {
        let wc = |s: &str| ok("{{ x|wordcount }}", context! { x => s });
        assert_eq!(wc("Fresh deals for you"), "4");
        assert_eq!(wc("  spaced\n\tout  "), "2");
        assert_eq!(wc("don't miss 50% off!"), "5");
        assert_eq!(wc("café crème"), "2");
        assert_eq!(wc(""), "0");
        assert_eq!(ok("{{ x|wordcount }}", context! {}), "0");
    }

    #[test]
    fn striptags_matches_jinja2() {
        let st = |s: &str| ok("{{ x|striptags }}", context! { x => s });
        assert_eq!(st("<p>Hello <b>world</b></p>"), "Hello world");
        assert_eq!(
            st("<p>Big\n\n   <i>sale</i></p>\n<!-- <b>hidden</b> -->now"),
            "Big sale now"
        );
        assert_eq!(
            st("Fish &amp; chips &lt;3 &#8212; &#x2764; &euro;5"),
            "Fish & chips <3 — ❤ €5"
        );
        assert_eq!(st("a &bogus; b & c &#xZZ;"), "a &bogus; b & c &#xZZ;");
        assert_eq!(st("1 < 2 and more"), "1 < 2 and more");
        assert_eq!(st("<a href='x'>link</a> <br/>done"), "link done");
        // An unclosed comment falls to the tag pass, as in Jinja2.
        assert_eq!(st("<!-- open comment <b>x</b>"), "x");
        assert_eq!(ok("{{ x|striptags }}", context! {}), "");
    }

    #[test]
    fn striptags_output_is_escaped_again_in_html() {
        let mut env = env();
        env.add_template("t.html", "{{ x|striptags }}")
            .expect("template");
        let out = env
            .get_template("t.html")
            .and_then(|t| t.render(context! { x => "<b>&lt;script&gt;</b>" }))
            .expect("render");
        assert_eq!(out, "&lt;script&gt;");
    }

    /// Reference rounding done with integers only, independent of `Decimal`.
    fn reference_round2(negative: bool, int: u64, frac: &str) -> String {
        let places = u32::try_from(frac.len()).expect("short");
        let frac_value: i128 = if frac.is_empty() {
            0
        } else {
            frac.parse().expect("digits")
        };
        let scaled = i128::from(int) * 10_i128.pow(places) + frac_value;
        let cents = if places <= 2 {
            scaled * 10_i128.pow(2 - places)
        } else {
            let div = 10_i128.pow(places - 2);
            let (q, r) = (scaled / div, scaled % div);
            if 2 * r >= div { q + 1 } else { q }
        };
        let int_part = (cents / 100).to_string();
        let mut grouped = String::new();
        for (i, c) in int_part.chars().enumerate() {
            if i > 0 && (int_part.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(c);
        }
        let sign = if negative && cents != 0 { "-" } else { "" };
        format!("{sign}{grouped}.{:02}", cents % 100)
    }

    proptest! {
        #[test]
        fn number_round_trips_within_half_a_cent(micros in -1_000_000_000_000_000_000_i64..=1_000_000_000_000_000_000_i64) {
            let x = micros as f64 / 1e6;
            let out = num(x, "");
            let back: f64 = out.replace(',', "").parse().expect("parses back");
            // 0.005 exactly at a tie, plus the f64 error of the comparison.
            let slack = 0.005 + x.abs() * 4.0 * f64::EPSILON;
            prop_assert!((back - x).abs() <= slack, "{x} -> {out}");
        }

        #[test]
        fn number_of_decimal_string_rounds_exactly(
            negative in any::<bool>(),
            int in 0_u64..1_000_000_000_000_000,
            frac in "[0-9]{0,8}",
        ) {
            let sign = if negative { "-" } else { "" };
            let s = if frac.is_empty() {
                format!("{sign}{int}")
            } else {
                format!("{sign}{int}.{frac}")
            };
            prop_assert_eq!(num(s.as_str(), "(2)"), reference_round2(negative, int, &frac));
        }
    }

    /// The number filters as they were before the integer fast path: every
    /// value through its text and the digit-by-digit `Decimal`.
    fn general_number(value: &Value, decimals: u32) -> Option<(bool, String)> {
        let d = match value.kind() {
            ValueKind::Number if value.is_integer() => parse_decimal(&value.to_string()),
            ValueKind::Number => {
                let f = f64::try_from(value.clone()).ok()?;
                parse_decimal(&format!("{f}"))
            }
            ValueKind::String => parse_decimal(value.as_str()?.trim()),
            _ => None,
        }?;
        (d.int_digits() <= MAX_INT_DIGITS).then(|| d.format(decimals))
    }

    fn no_kwargs() -> Keywords {
        Keywords(None)
    }

    /// `number(d)` for d in 0..=6 and `currency` in codes with a symbol,
    /// without, and with other minor units, against `general_number`.
    fn check_fast_path(value: &Value) -> Result<(), TestCaseError> {
        for decimals in 0..=6 {
            let fast = number(value, Some(Value::from(decimals)), no_kwargs()).ok();
            let general = general_number(value, decimals)
                .map(|(negative, body)| if negative { format!("-{body}") } else { body });
            prop_assert_eq!(
                fast.as_ref().and_then(Value::as_str),
                general.as_deref(),
                "number({}) of {:?}",
                decimals,
                value
            );
        }
        for code in ["USD", "jpy", "KWD", "CHF"] {
            let upper = code.to_ascii_uppercase();
            let code_bytes = <[u8; 3]>::try_from(upper.as_bytes()).expect("three letters");
            let fast = currency(value, Some(Value::from(code)), None, no_kwargs()).ok();
            let general =
                general_number(value, currency_decimals(&code_bytes)).map(|(negative, body)| {
                    let sign = if negative { "-" } else { "" };
                    match currency_symbol(&code_bytes) {
                        Some(symbol) => format!("{sign}{symbol}{body}"),
                        None => format!("{sign}{body} {upper}"),
                    }
                });
            prop_assert_eq!(
                fast.as_ref().and_then(Value::as_str),
                general.as_deref(),
                "currency({}) of {:?}",
                code,
                value
            );
        }
        Ok(())
    }

    #[test]
    fn fast_path_edge_cases_match_the_general_path() {
        let values = [
            Value::from(0.1 + 0.2),
            Value::from(0.5),
            Value::from(-0.0),
            Value::from(5e-324),
            Value::from(f64::MAX),
            Value::from(1e22),
            Value::from(1e23),
            Value::from(9_007_199_254_740_993_u64 as f64),
            Value::from(4_398_046_511_103.5),
            Value::from(0.000_000_000_000_000_000_01),
            Value::from(i64::MIN),
            Value::from(u64::MAX),
            Value::from(i128::MIN),
            Value::from(u128::MAX),
            Value::from("99999999999999999999999999999999999999"),
            Value::from("999999999999999999999999999999999999999"),
            Value::from("0.0000000000000000000000000000000000000000000005"),
            Value::from("-0.00000000000000000000000000000000000000000000005"),
            Value::from("1e308"),
            Value::from("1e309"),
            Value::from("0e999999999999"),
        ];
        for value in &values {
            check_fast_path(value).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn fast_path_matches_general_for_decimal_strings(
            s in "[ ]?[+-]?[0-9]{0,45}(\\.[0-9]{0,45})?([eE][+-]?[0-9]{1,3})?",
        ) {
            check_fast_path(&Value::from(s))?;
        }

        #[test]
        fn fast_path_matches_general_for_any_f64(f in any::<f64>()) {
            check_fast_path(&Value::from(f))?;
        }

        #[test]
        fn fast_path_matches_general_for_short_decimal_f64s(
            m in any::<i64>(),
            places in 0_u32..20,
            shift in -30_i32..30,
        ) {
            // Floats from short decimals, as JSON prices are, and their
            // products: the ones the formatting-free path takes.
            let parsed: f64 = format!("{m}e-{places}").parse().expect("a float");
            check_fast_path(&Value::from(parsed))?;
            check_fast_path(&Value::from(parsed * 3.0))?;
            check_fast_path(&Value::from(parsed / 100.0))?;
            check_fast_path(&Value::from(parsed * 10_f64.powi(shift)))?;
            let small = (m % 100_000_000) as f64 / 10_f64.powi(places.min(8) as i32);
            check_fast_path(&Value::from(small))?;
        }

        #[test]
        fn fast_path_matches_general_for_integers(
            i in any::<i64>(),
            u in any::<u64>(),
            wide in any::<i128>(),
            widest in any::<u128>(),
        ) {
            check_fast_path(&Value::from(i))?;
            check_fast_path(&Value::from(u))?;
            check_fast_path(&Value::from(wide))?;
            check_fast_path(&Value::from(widest))?;
        }
    }
}
