//! SMS sizing: owns the GSM 03.38 alphabet, the GSM-7 / UCS-2 encoding choice
//! and the carrier segmentation rules for a rendered SMS body.
//!
//! Everything here mirrors what a carrier does with concatenated SMS (a User
//! Data Header eats 6 octets of every part, hence 153 septets / 67 UTF-16
//! units per part instead of 160 / 70), so that the numbers we report are the
//! numbers the customer is billed for.

/// The encoding a carrier will use for a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SmsEncoding {
    /// GSM 03.38 default alphabet (plus its extension table), 7 bits a septet.
    #[serde(rename = "GSM-7")]
    Gsm7,
    /// UTF-16 code units (carriers send UTF-16 and call it UCS-2).
    #[serde(rename = "UCS-2")]
    Ucs2,
}

/// Why a body had to be sent as UCS-2.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Ucs2Trigger {
    /// The first character of the body that is not in the GSM 03.38 alphabet.
    pub character: char,
    /// Its index in the body, counted in `char`s (not bytes).
    pub index: usize,
}

/// How a body will travel: its encoding, size and number of parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsLayout {
    /// The encoding the whole body is sent in.
    pub encoding: SmsEncoding,
    /// septets for GSM-7, UTF-16 code units for UCS-2
    pub units: usize,
    /// Number of SMS parts the carrier sends (and bills); at least 1.
    pub segments: usize,
    /// Set exactly when `encoding` is [`SmsEncoding::Ucs2`].
    pub ucs2_trigger: Option<Ucs2Trigger>,
}

/// Septets a lone GSM-7 message may hold.
const GSM_SINGLE: usize = 160;
/// Septets each part of a concatenated GSM-7 message may hold.
const GSM_MULTI: usize = 153;
/// UTF-16 units a lone UCS-2 message may hold.
const UCS2_SINGLE: usize = 70;
/// UTF-16 units each part of a concatenated UCS-2 message may hold.
const UCS2_MULTI: usize = 67;

/// GSM-7 cost of every ASCII char: 0 = not encodable, 1 = basic table,
/// 2 = extension table (ESC + char). A table because ASCII is the hot path.
const ASCII_SEPTETS: [u8; 128] = {
    let mut table = [0u8; 128];
    let mut i = 0;
    while i < 128 {
        table[i] = match i as u8 {
            // Of the C0 controls only LF and CR are in the basic table; TAB is not.
            b'\n' | b'\r' => 1,
            // Form feed lives in the extension table (ESC 0x0A).
            0x0C => 2,
            b'^' | b'{' | b'}' | b'\\' | b'[' | b'~' | b']' | b'|' => 2,
            // The backtick's slot (0x60) holds '¿' in GSM 03.38.
            b'`' => 0,
            // '$' and '@' are in the table, just not at their ASCII positions;
            // position doesn't matter for counting.
            b' '..=b'~' => 1,
            _ => 0,
        };
        i += 1;
    }
    table
};

/// GSM-7 cost of `c` in septets, or 0 when `c` is outside GSM 03.38.
#[inline]
fn gsm_septets(c: char) -> usize {
    if c.is_ascii() {
        return ASCII_SEPTETS[c as usize] as usize;
    }
    match c {
        // The non-ASCII part of the basic table. Note 'Ç' (0x09) is in, 'ç' is
        // not, and the Greek capitals that look Latin (Α, Β, Ε, ...) are not.
        '£' | '¥' | 'è' | 'é' | 'ù' | 'ì' | 'ò' | 'Ç' | 'Ø' | 'ø' | 'Å' | 'å' | 'Δ' | 'Φ' | 'Γ'
        | 'Λ' | 'Ω' | 'Π' | 'Ψ' | 'Σ' | 'Θ' | 'Ξ' | 'Æ' | 'æ' | 'ß' | 'É' | '¤' | '¡' | 'Ä'
        | 'Ö' | 'Ñ' | 'Ü' | '§' | '¿' | 'ä' | 'ö' | 'ñ' | 'ü' | 'à' => 1,
        '€' => 2,
        _ => 0,
    }
}

#[inline]
fn utf16_units(c: char) -> usize {
    c.len_utf16()
}

/// Tracks one encoding's size and its greedy multipart packing in the same
/// pass, since whether the body is multipart is only known at the end.
#[derive(Debug)]
struct Packer {
    capacity: usize,
    total: usize,
    parts: usize,
    fill: usize,
}

impl Packer {
    const fn new(capacity: usize) -> Self {
        Self {
            capacity,
            total: 0,
            parts: 1,
            fill: 0,
        }
    }

    /// Adds an indivisible unit (a whole escape pair, a whole surrogate
    /// pair): if it doesn't fit, it opens the next part instead of straddling.
    #[inline]
    fn push(&mut self, cost: usize) {
        self.total += cost;
        if self.fill + cost > self.capacity {
            self.parts += 1;
            self.fill = cost;
        } else {
            self.fill += cost;
        }
    }

    fn segments(&self, single_capacity: usize) -> usize {
        if self.total <= single_capacity {
            1
        } else {
            self.parts
        }
    }
}

/// Measures a body. Allocation-free.
///
/// Single pass over the body. The empty body is GSM-7, 0 units and
/// 1 segment: a carrier still sends (and bills) one empty SMS.
pub fn measure(body: &str) -> SmsLayout {
    let mut gsm = Packer::new(GSM_MULTI);
    let mut ucs2 = Packer::new(UCS2_MULTI);
    let mut chars = body.chars().enumerate();
    // UCS-2 is tracked from the start so that a late non-GSM char doesn't
    // force a second pass over the prefix.
    let mut trigger = None;
    for (index, character) in chars.by_ref() {
        ucs2.push(utf16_units(character));
        match gsm_septets(character) {
            0 => {
                trigger = Some(Ucs2Trigger { character, index });
                break;
            }
            cost => gsm.push(cost),
        }
    }
    match trigger {
        None => SmsLayout {
            encoding: SmsEncoding::Gsm7,
            units: gsm.total,
            segments: gsm.segments(GSM_SINGLE),
            ucs2_trigger: None,
        },
        Some(trigger) => {
            for (_, c) in chars {
                ucs2.push(utf16_units(c));
            }
            SmsLayout {
                encoding: SmsEncoding::Ucs2,
                units: ucs2.total,
                segments: ucs2.segments(UCS2_SINGLE),
                ucs2_trigger: Some(trigger),
            }
        }
    }
}

/// Splits a body into the segment texts a carrier would send (same rules as `measure`,
/// so `split(b).len() == measure(b).segments` for every non-empty b).
///
/// The empty body yields one empty segment, so the equality holds for it too.
/// The segments borrow from `body` and concatenate back to it exactly.
pub fn split(body: &str) -> Vec<&str> {
    let layout = measure(body);
    if layout.segments == 1 {
        return vec![body];
    }
    let (capacity, cost): (usize, fn(char) -> usize) = match layout.encoding {
        SmsEncoding::Gsm7 => (GSM_MULTI, gsm_septets),
        SmsEncoding::Ucs2 => (UCS2_MULTI, utf16_units),
    };
    let mut parts = Vec::with_capacity(layout.segments);
    let mut start = 0;
    let mut fill = 0;
    for (at, c) in body.char_indices() {
        let k = cost(c);
        if fill + k > capacity {
            parts.push(&body[start..at]);
            start = at;
            fill = k;
        } else {
            fill += k;
        }
    }
    parts.push(&body[start..]);
    debug_assert_eq!(parts.len(), layout.segments);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::Deserialize;
    use serde::de::value::{Error as ValueError, StrDeserializer};

    /// GSM 03.38 basic table in code order, 0x00..=0x7F; 0x1B (ESC) is `None`.
    /// Kept as an independent literal so the lookup code is checked against
    /// the spec rather than against itself.
    const BASIC: [Option<char>; 128] = {
        const ROWS: [&str; 8] = [
            "@£$¥èéùìòÇ\nØø\rÅå",
            "Δ_ΦΓΛΩΠΨΣΘΞ\u{1B}ÆæßÉ",
            " !\"#¤%&'()*+,-./",
            "0123456789:;<=>?",
            "¡ABCDEFGHIJKLMNO",
            "PQRSTUVWXYZÄÖÑÜ§",
            "¿abcdefghijklmno",
            "pqrstuvwxyzäöñüà",
        ];
        let mut table = [None; 128];
        let mut row = 0;
        while row < 8 {
            let bytes = ROWS[row].as_bytes();
            let mut at = 0;
            let mut col = 0;
            while at < bytes.len() {
                // Minimal const UTF-8 decode (no char iteration in const fn).
                let b = bytes[at] as u32;
                let (len, init) = if b < 0x80 {
                    (1, b)
                } else if b < 0xE0 {
                    (2, b & 0x1F)
                } else {
                    (3, b & 0x0F)
                };
                let mut cp = init;
                let mut k = 1;
                while k < len {
                    cp = (cp << 6) | (bytes[at + k] as u32 & 0x3F);
                    k += 1;
                }
                if cp != 0x1B {
                    table[row * 16 + col] = char::from_u32(cp);
                }
                at += len;
                col += 1;
            }
            assert!(col == 16);
            row += 1;
        }
        table
    };

    /// Extension table entries usable in text (ESC + code).
    const EXTENSION: [char; 10] = ['\u{0C}', '^', '{', '}', '\\', '[', '~', ']', '|', '€'];

    fn layout(encoding: SmsEncoding, units: usize, segments: usize) -> SmsLayout {
        SmsLayout {
            encoding,
            units,
            segments,
            ucs2_trigger: None,
        }
    }

    /// Size of a part in the encoding of the message it belongs to.
    fn units_in(encoding: SmsEncoding, s: &str) -> usize {
        match encoding {
            SmsEncoding::Gsm7 => s.chars().map(gsm_septets).sum(),
            SmsEncoding::Ucs2 => s.encode_utf16().count(),
        }
    }

    #[test]
    fn gsm_table_is_exactly_gsm_03_38() {
        let basic: Vec<char> = BASIC.iter().flatten().copied().collect();
        assert_eq!(basic.len(), 127);
        // Spot-check the Greek letters are the Greek code points, not lookalikes.
        for (glyph, cp) in [('Δ', 0x394), ('Ω', 0x3A9), ('Σ', 0x3A3), ('Π', 0x3A0)] {
            assert_eq!(glyph as u32, cp);
        }
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            let expected = if basic.contains(&c) {
                1
            } else if EXTENSION.contains(&c) {
                2
            } else {
                0
            };
            assert_eq!(gsm_septets(c), expected, "{c:?} U+{:04X}", c as u32);
        }
    }

    #[test]
    fn notable_members_and_non_members() {
        for c in ['Ç', '@', '£', '$', '¥', '¤', '_', '\n', '\r', 'ß', 'à'] {
            assert_eq!(gsm_septets(c), 1, "{c:?}");
        }
        for c in [
            'ç', '`', '\t', '\u{1B}', 'Á', 'á', 'õ', 'â', 'ê', '\u{A0}', '\u{2126}',
        ] {
            assert_eq!(gsm_septets(c), 0, "{c:?}");
        }
        assert_eq!(measure("\u{0C}"), layout(SmsEncoding::Gsm7, 2, 1));
    }

    #[test]
    fn empty_body_is_one_empty_gsm_segment() {
        assert_eq!(measure(""), layout(SmsEncoding::Gsm7, 0, 1));
        assert_eq!(split(""), vec![""]);
    }

    #[test]
    fn gsm_boundaries() {
        for (n, segments) in [(1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3)] {
            let body = "a".repeat(n);
            assert_eq!(
                measure(&body),
                layout(SmsEncoding::Gsm7, n, segments),
                "{n}"
            );
            assert_eq!(split(&body).len(), segments, "{n}");
        }
    }

    #[test]
    fn ucs2_boundaries() {
        for (n, segments) in [(70, 1), (71, 2), (134, 2), (135, 3)] {
            let body = "Ж".repeat(n);
            let m = measure(&body);
            assert_eq!(
                (m.encoding, m.units, m.segments),
                (SmsEncoding::Ucs2, n, segments)
            );
            assert_eq!(split(&body).len(), segments, "{n}");
        }
    }

    #[test]
    fn ucs2_applies_to_the_whole_body() {
        // One non-GSM char makes 159 GSM chars + it cost 160 UTF-16 units.
        let body = format!("{}ç", "a".repeat(159));
        let m = measure(&body);
        assert_eq!(
            (m.encoding, m.units, m.segments),
            (SmsEncoding::Ucs2, 160, 3)
        );
    }

    #[test]
    fn extension_chars_cost_two_septets() {
        assert_eq!(measure(&"€".repeat(80)), layout(SmsEncoding::Gsm7, 160, 1));
        assert_eq!(measure(&"€".repeat(81)), layout(SmsEncoding::Gsm7, 162, 2));
        assert_eq!(measure("{}[]"), layout(SmsEncoding::Gsm7, 8, 1));
        // 80 € = 160 septets still fits one part: the single-part limit applies.
        assert_eq!(split(&"€".repeat(80)).len(), 1);
    }

    #[test]
    fn escape_pair_is_not_split_at_the_153_boundary() {
        // 306 septets: 306 / 153 = 2 naively, but '€' would straddle 152|153.
        let body = format!("{}€{}", "a".repeat(152), "a".repeat(152));
        let m = measure(&body);
        assert_eq!(m.units, 306);
        assert_eq!(m.units.div_ceil(GSM_MULTI), 2);
        assert_eq!(m.segments, 3);
        let parts = split(&body);
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0], "a".repeat(152));
        assert_eq!(parts[1], format!("€{}", "a".repeat(151)));
        assert_eq!(parts[2], "a");
    }

    #[test]
    fn emoji_cost_two_units() {
        let m = measure(&"😀".repeat(35));
        assert_eq!(
            (m.encoding, m.units, m.segments),
            (SmsEncoding::Ucs2, 70, 1)
        );
        let m = measure(&"😀".repeat(36));
        assert_eq!((m.units, m.segments), (72, 2));
    }

    #[test]
    fn surrogate_pair_is_not_split_at_the_67_boundary() {
        // 134 units: 134 / 67 = 2 naively, but the emoji would straddle 66|67.
        let body = format!("{}😀{}", "Ж".repeat(66), "Ж".repeat(66));
        let m = measure(&body);
        assert_eq!(
            (m.units, m.units.div_ceil(UCS2_MULTI), m.segments),
            (134, 2, 3)
        );
        let parts = split(&body);
        assert_eq!(parts[0], "Ж".repeat(66));
        assert_eq!(parts[1], format!("😀{}", "Ж".repeat(65)));
        assert_eq!(parts[2], "Ж");
    }

    #[test]
    fn trigger_names_the_first_offending_char_by_char_index() {
        let m = measure("Hi £€ü, ça va? 😀");
        assert_eq!(
            m.ucs2_trigger,
            Some(Ucs2Trigger {
                character: 'ç',
                index: 8
            })
        );
        assert_eq!(
            measure("x`").ucs2_trigger,
            Some(Ucs2Trigger {
                character: '`',
                index: 1
            })
        );
        assert_eq!(measure("plain {GSM} €").ucs2_trigger, None);
    }

    #[test]
    fn encoding_serde_names() {
        let de = |s: &str| SmsEncoding::deserialize(StrDeserializer::<ValueError>::new(s));
        assert_eq!(de("GSM-7"), Ok(SmsEncoding::Gsm7));
        assert_eq!(de("UCS-2"), Ok(SmsEncoding::Ucs2));
        assert!(de("Gsm7").is_err());
    }

    fn gsm_char() -> impl Strategy<Value = char> {
        prop_oneof![
            8 => proptest::sample::select(BASIC.iter().flatten().copied().collect::<Vec<_>>()),
            2 => proptest::sample::select(EXTENSION.to_vec()),
        ]
    }

    fn any_body() -> impl Strategy<Value = String> {
        let gsm_only = proptest::collection::vec(gsm_char(), 0..500);
        let mixed = proptest::collection::vec(
            prop_oneof![
                6 => gsm_char(),
                2 => any::<char>(),
                2 => proptest::char::range('\u{1F300}', '\u{1FAFF}'),
            ],
            0..300,
        );
        prop_oneof![gsm_only, mixed].prop_map(|chars| chars.into_iter().collect())
    }

    proptest! {
        #[test]
        fn split_agrees_with_measure(body in any_body()) {
            let m = measure(&body);
            let parts = split(&body);
            prop_assert_eq!(parts.concat(), body.as_str());
            prop_assert_eq!(parts.len(), m.segments);
            prop_assert_eq!(units_in(m.encoding, &body), m.units);
            prop_assert_eq!(m.ucs2_trigger.is_some(), m.encoding == SmsEncoding::Ucs2);

            let capacity = match (m.encoding, parts.len()) {
                (SmsEncoding::Gsm7, 1) => GSM_SINGLE,
                (SmsEncoding::Gsm7, _) => GSM_MULTI,
                (SmsEncoding::Ucs2, 1) => UCS2_SINGLE,
                (SmsEncoding::Ucs2, _) => UCS2_MULTI,
            };
            for (i, part) in parts.iter().enumerate() {
                let units = units_in(m.encoding, part);
                prop_assert!(units <= capacity, "part {} has {} > {}", i, units, capacity);
                // Every part fits a message of its own, in the parent's encoding
                // or better (a GSM-only part of a UCS-2 body re-measures as GSM-7).
                let alone = measure(part);
                prop_assert_eq!(alone.segments, 1);
                if m.encoding == SmsEncoding::Gsm7 {
                    prop_assert_eq!(alone.encoding, SmsEncoding::Gsm7);
                }
                // Greedy: a non-final part is full up to the next indivisible char.
                if let Some(next) = parts.get(i + 1) {
                    prop_assert!(!part.is_empty());
                    let first = next.chars().next().unwrap();
                    prop_assert!(units + units_in(m.encoding, first.encode_utf8(&mut [0; 4])) > capacity);
                }
            }
        }
    }
}
