//! The `number` and `currency` filters and the decimal machinery behind
//! them: reading ints, floats and numeric strings as exact decimals, rounding
//! half away from zero, and grouping thousands.

use std::fmt::Write as _;

use minijinja::Error;
use minijinja::value::{Value, ValueKind};

use super::Text;
use super::args::{Keywords, describe, fail, param};

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
pub(super) struct Decimal {
    pub(super) negative: bool,
    pub(super) digits: Vec<u8>,
    pub(super) exp: i64,
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

pub(super) fn parse_decimal(s: &str) -> Option<Decimal> {
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
pub(super) fn number(
    value: &Value,
    decimals: Option<Value>,
    kwargs: Keywords,
) -> Result<Value, Error> {
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
pub(super) fn currency(
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

#[cfg(test)]
mod tests {
    use super::super::tests_support::{err, ok};
    use super::*;
    use minijinja::context;
    use proptest::prelude::*;

    fn num(x: impl Into<Value>, args: &str) -> String {
        ok(
            &format!("{{{{ x|number{args} }}}}"),
            context! { x => x.into() },
        )
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
