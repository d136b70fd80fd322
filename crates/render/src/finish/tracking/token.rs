//! Signed, deterministic tracking tokens for click, open and unsubscribe URLs.
//!
//! A token is the base64url (no padding) encoding of this byte layout:
//!
//! | bytes        | field                                                        |
//! |--------------|--------------------------------------------------------------|
//! | 1            | format version, [`FORMAT_VERSION`]                           |
//! | 1            | kind: `0` open, `1` template links, `2` link, `3` unsubscribe |
//! | 1 + n        | key id: length `n` (1..=16), then its ASCII bytes            |
//! | varint + n   | company id (UTF-8)                                           |
//! | varint + n   | message id (UTF-8)                                           |
//! | varint + n   | recipient id (UTF-8)                                         |
//! | kind 1 only  | template id (varint + UTF-8), template version (u32 BE), utm query (varint + UTF-8) |
//! | kind 2 only  | link index (u32 BE), destination (varint + UTF-8)            |
//! | 16           | HMAC-SHA256(key, every preceding byte), first 16 bytes       |
//!
//! Lengths are unsigned LEB128 varints in their shortest form. The same claims
//! signed with the same key always give the same token: nothing random and no
//! clock goes in, so a re-render of a message reproduces its links exactly.
//!
//! Verification authenticates before it interprets: only the version byte and
//! the key id are read from unauthenticated bytes; the body is parsed only once
//! the MAC has matched (compared in constant time).

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The format version written as the first byte of every token.
pub const FORMAT_VERSION: u8 = 1;

/// Bytes of the HMAC-SHA256 output kept at the end of a token. 128 bits is
/// far beyond what online guessing against a tracking endpoint can reach,
/// and keeps pixel URLs short.
pub const TAG_LEN: usize = 16;

/// The longest key id accepted.
pub const MAX_KEY_ID_LEN: usize = 16;

/// The shortest secret accepted: HMAC-SHA256 gains nothing past 64 bytes,
/// and below 32 the key would be weaker than the hash.
pub const MIN_SECRET_LEN: usize = 32;

const KIND_OPEN: u8 = 0;
const KIND_TEMPLATE_LINKS: u8 = 1;
const KIND_LINK: u8 = 2;
const KIND_UNSUBSCRIBE: u8 = 3;

type HmacSha256 = Hmac<Sha256>;

/// One HMAC key, named so that a token can say which key signed it.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey {
    /// 1..=16 characters of `[A-Za-z0-9_-]`; written into every token.
    pub id: String,
    /// At least [`MIN_SECRET_LEN`] bytes.
    pub secret: Vec<u8>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("id", &self.id)
            .field("secret", &format_args!("<{} bytes>", self.secret.len()))
            .finish()
    }
}

#[derive(Clone)]
struct PreparedKey {
    id: Box<str>,
    // Keyed once; each use clones it so the key schedule is not redone.
    mac: HmacSha256,
}

/// Signs tokens with its first key and verifies tokens made by any of its keys.
///
/// Cloning is cheap: the prepared keys are shared.
#[derive(Clone)]
pub struct Signer {
    keys: Arc<[PreparedKey]>,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field(
                "key_ids",
                &self.keys.iter().map(|k| &*k.id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// What a token asserts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Claims<'a> {
    /// The company that sent the message.
    pub company_id: Cow<'a, str>,
    /// The message the token was put into.
    pub message_id: Cow<'a, str>,
    /// The recipient the message was rendered for.
    pub recipient_id: Cow<'a, str>,
    /// What else the token carries.
    pub kind: ClaimKind<'a>,
}

/// The kind-specific part of [`Claims`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ClaimKind<'a> {
    /// The open pixel: who opened which message.
    Open,
    /// Unsubscribe: who leaves the list of which message. A kind of its own,
    /// so that whoever sees a pixel URL (an image proxy, its logs) cannot
    /// unsubscribe the recipient.
    Unsubscribe,
    /// Fixed links of a stored template version: the link URL is looked up by
    /// index in that version; `utm` is the query string
    /// (`utm_source=x&utm_medium=y`, possibly empty) to add to it.
    TemplateLinks {
        /// The stored template.
        template_id: Cow<'a, str>,
        /// Its version.
        template_version: u32,
        /// Query parameters to add to the looked-up link.
        utm: Cow<'a, str>,
    },
    /// One personalized destination, signed as a whole (already has its UTM
    /// parameters).
    Link {
        /// The link's position in the rendered message.
        index: u32,
        /// The URL to redirect to.
        destination: Cow<'a, str>,
    },
}

impl Claims<'_> {
    /// Copies every borrowed field so the claims outlive their source.
    pub fn into_owned(self) -> Claims<'static> {
        Claims {
            company_id: Cow::Owned(self.company_id.into_owned()),
            message_id: Cow::Owned(self.message_id.into_owned()),
            recipient_id: Cow::Owned(self.recipient_id.into_owned()),
            kind: match self.kind {
                ClaimKind::Open => ClaimKind::Open,
                ClaimKind::Unsubscribe => ClaimKind::Unsubscribe,
                ClaimKind::TemplateLinks {
                    template_id,
                    template_version,
                    utm,
                } => ClaimKind::TemplateLinks {
                    template_id: Cow::Owned(template_id.into_owned()),
                    template_version,
                    utm: Cow::Owned(utm.into_owned()),
                },
                ClaimKind::Link { index, destination } => ClaimKind::Link {
                    index,
                    destination: Cow::Owned(destination.into_owned()),
                },
            },
        }
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The token has characters outside `[A-Za-z0-9_-]` or is not canonical
    /// base64url.
    #[error("token is not base64url")]
    NotBase64,
    /// The token ends before its structure does.
    #[error("token is truncated")]
    Truncated,
    /// The first byte names a format this code does not read.
    #[error("unsupported token format version {0}")]
    UnsupportedVersion(u8),
    /// The key id is well formed but none of the signer's keys has it.
    #[error("token signed with unknown key \"{0}\"")]
    UnknownKey(String),
    /// The MAC does not match the token's bytes.
    #[error("token signature does not match")]
    BadSignature,
    /// The bytes are not laid out as a token; the reason is fixed text.
    #[error("token is malformed: {0}")]
    Malformed(&'static str),
}

impl Signer {
    /// Prepares `keys`. The first key signs; all keys verify, so rotation is:
    /// put the new key first, keep the old ones until their mail is old.
    pub fn new(keys: Vec<SigningKey>) -> Result<Signer, String> {
        if keys.is_empty() {
            return Err("no signing keys: at least one is needed".to_owned());
        }
        let mut prepared: Vec<PreparedKey> = Vec::with_capacity(keys.len());
        for (index, key) in keys.iter().enumerate() {
            if key.id.is_empty() {
                return Err(format!("signing key {index} has an empty id"));
            }
            if key.id.len() > MAX_KEY_ID_LEN {
                return Err(format!(
                    "signing key {index} id {:?} is longer than {MAX_KEY_ID_LEN} characters",
                    key.id
                ));
            }
            if !key.id.bytes().all(is_key_id_byte) {
                return Err(format!(
                    "signing key {index} id {:?} may only use A-Z, a-z, 0-9, '_' and '-'",
                    key.id
                ));
            }
            if key.secret.len() < MIN_SECRET_LEN {
                return Err(format!(
                    "signing key \"{}\" secret is {} bytes; at least {MIN_SECRET_LEN} are needed",
                    key.id,
                    key.secret.len()
                ));
            }
            if let Some(first) = prepared.iter().position(|p| *p.id == *key.id) {
                return Err(format!(
                    "duplicate signing key id \"{}\" (keys {first} and {index})",
                    key.id
                ));
            }
            let mac = HmacSha256::new_from_slice(&key.secret)
                .map_err(|_| format!("signing key \"{}\" secret was refused by HMAC", key.id))?;
            prepared.push(PreparedKey {
                id: key.id.as_str().into(),
                mac,
            });
        }
        Ok(Signer {
            keys: prepared.into(),
        })
    }

    /// The id of the key that signs new tokens.
    pub fn signing_key_id(&self) -> &str {
        &self.keys[0].id
    }

    /// Signs `claims` into a new token.
    pub fn sign(&self, claims: &Claims<'_>) -> String {
        let mut out = String::new();
        self.sign_into(claims, &mut out);
        out
    }

    /// Appends the token for `claims` to `out`; at most one allocation, to
    /// grow `out`.
    pub fn sign_into(&self, claims: &Claims<'_>, out: &mut String) {
        let key = &self.keys[0];
        let raw_len = encoded_body_len(&key.id, claims) + TAG_LEN;
        out.reserve((raw_len * 4).div_ceil(3));

        let mut w = TokenWriter::new(key.mac.clone(), out);
        w.put(&[FORMAT_VERSION, kind_byte(&claims.kind), key.id.len() as u8]);
        w.put(key.id.as_bytes());
        w.put_str(&claims.company_id);
        w.put_str(&claims.message_id);
        w.put_str(&claims.recipient_id);
        match &claims.kind {
            ClaimKind::Open | ClaimKind::Unsubscribe => {}
            ClaimKind::TemplateLinks {
                template_id,
                template_version,
                utm,
            } => {
                w.put_str(template_id);
                w.put(&template_version.to_be_bytes());
                w.put_str(utm);
            }
            ClaimKind::Link { index, destination } => {
                w.put(&index.to_be_bytes());
                w.put_str(destination);
            }
        }
        w.finish();
    }

    /// Checks `token` and returns its claims.
    pub fn verify(&self, token: &str) -> Result<Claims<'static>, TokenError> {
        let bytes = decode_token(token)?;

        let mut header = Reader::new(&bytes);
        let version = header.byte().map_err(|_| TokenError::Truncated)?;
        if version != FORMAT_VERSION {
            return Err(TokenError::UnsupportedVersion(version));
        }
        let _kind = header.byte().map_err(|_| TokenError::Truncated)?;
        let id_len = header.byte().map_err(|_| TokenError::Truncated)?;
        if id_len == 0 || usize::from(id_len) > MAX_KEY_ID_LEN {
            return Err(TokenError::Malformed("key id length is out of range"));
        }
        let id = header
            .take(u64::from(id_len))
            .map_err(|_| TokenError::Truncated)?;
        if !id.iter().copied().all(is_key_id_byte) {
            return Err(TokenError::Malformed(
                "key id has characters outside [A-Za-z0-9_-]",
            ));
        }
        let Some(key) = self.keys.iter().find(|k| k.id.as_bytes() == id) else {
            // Checked above to be ASCII, so this cannot lose anything.
            return Err(TokenError::UnknownKey(
                String::from_utf8_lossy(id).into_owned(),
            ));
        };

        let Some(body_len) = bytes
            .len()
            .checked_sub(TAG_LEN)
            .filter(|&n| n >= header.pos)
        else {
            return Err(TokenError::Truncated);
        };
        let (body, tag) = bytes.split_at(body_len);
        let mut mac = key.mac.clone();
        mac.update(body);
        if mac.verify_truncated_left(tag).is_err() {
            return Err(diagnose_mismatch(&bytes));
        }

        let fields = match read_layout(body) {
            Ok(fields) => fields,
            // The MAC matched, so these bytes came from a key holder.
            Err(ReadError::Short) => return Err(TokenError::Malformed("body ends early")),
            Err(ReadError::Bad(why)) => return Err(TokenError::Malformed(why)),
        };
        if fields.end != body.len() {
            return Err(TokenError::Malformed("trailing bytes after the last field"));
        }
        fields.into_claims()
    }
}

fn is_key_id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

fn kind_byte(kind: &ClaimKind<'_>) -> u8 {
    match kind {
        ClaimKind::Open => KIND_OPEN,
        ClaimKind::Unsubscribe => KIND_UNSUBSCRIBE,
        ClaimKind::TemplateLinks { .. } => KIND_TEMPLATE_LINKS,
        ClaimKind::Link { .. } => KIND_LINK,
    }
}

fn varint_len(mut n: u64) -> usize {
    let mut len = 1;
    while n >= 0x80 {
        n >>= 7;
        len += 1;
    }
    len
}

fn str_field_len(s: &str) -> usize {
    varint_len(s.len() as u64) + s.len()
}

/// The exact byte count before the MAC, so `sign_into` can reserve once.
fn encoded_body_len(key_id: &str, claims: &Claims<'_>) -> usize {
    let fixed = 3
        + key_id.len()
        + str_field_len(&claims.company_id)
        + str_field_len(&claims.message_id)
        + str_field_len(&claims.recipient_id);
    fixed
        + match &claims.kind {
            ClaimKind::Open | ClaimKind::Unsubscribe => 0,
            ClaimKind::TemplateLinks {
                template_id, utm, ..
            } => str_field_len(template_id) + 4 + str_field_len(utm),
            ClaimKind::Link { destination, .. } => 4 + str_field_len(destination),
        }
}

/// Bytes buffered between flushes. A multiple of 3, so each flushed chunk is
/// whole base64 quads and the chunks concatenate into one valid encoding.
const CHUNK: usize = 384;

/// Feeds token bytes to the MAC and the base64 encoder as they are produced,
/// through a stack buffer, so signing needs no heap scratch space.
struct TokenWriter<'o> {
    mac: HmacSha256,
    buf: [u8; CHUNK + TAG_LEN],
    len: usize,
    out: &'o mut String,
}

impl<'o> TokenWriter<'o> {
    fn new(mac: HmacSha256, out: &'o mut String) -> Self {
        TokenWriter {
            mac,
            buf: [0; CHUNK + TAG_LEN],
            len: 0,
            out,
        }
    }

    fn put(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let n = (CHUNK - self.len).min(data.len());
            self.buf[self.len..self.len + n].copy_from_slice(&data[..n]);
            self.len += n;
            data = &data[n..];
            if self.len == CHUNK {
                self.mac.update(&self.buf[..CHUNK]);
                encode_append(&self.buf[..CHUNK], self.out);
                self.len = 0;
            }
        }
    }

    fn put_str(&mut self, s: &str) {
        let mut n = s.len() as u64;
        let mut v = [0u8; 10];
        let mut i = 0;
        loop {
            let low = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                v[i] = low;
                i += 1;
                break;
            }
            v[i] = low | 0x80;
            i += 1;
        }
        self.put(&v[..i]);
        self.put(s.as_bytes());
    }

    fn finish(mut self) {
        self.mac.update(&self.buf[..self.len]);
        let tag = self.mac.finalize().into_bytes();
        // `put` flushes at CHUNK, so the tag always fits after what is left.
        self.buf[self.len..self.len + TAG_LEN].copy_from_slice(&tag[..TAG_LEN]);
        encode_append(&self.buf[..self.len + TAG_LEN], self.out);
    }
}

/// Base64url-encodes `bytes` (at most `CHUNK + TAG_LEN`) onto `out` through a
/// stack buffer: about twice as fast as `encode_string` for token-sized input.
fn encode_append(bytes: &[u8], out: &mut String) {
    let mut encoded = [0u8; (CHUNK + TAG_LEN).div_ceil(3) * 4];
    let text = URL_SAFE_NO_PAD
        .encode_slice(bytes, &mut encoded)
        .ok()
        .and_then(|n| std::str::from_utf8(&encoded[..n]).ok());
    match text {
        Some(text) => out.push_str(text),
        // Unreachable with the buffer sized above and an ASCII alphabet; the
        // slower path keeps this correct without a panic.
        None => URL_SAFE_NO_PAD.encode_string(bytes, out),
    }
}

/// Decodes the base64url text; a cut token is told apart from one that was
/// never base64url, so the refusal says what happened.
fn decode_token(token: &str) -> Result<Vec<u8>, TokenError> {
    if !token.bytes().all(is_key_id_byte) {
        return Err(TokenError::NotBase64);
    }
    if token.is_empty() {
        return Err(TokenError::Truncated);
    }
    match URL_SAFE_NO_PAD.decode(token) {
        Ok(bytes) => Ok(bytes),
        Err(_) => {
            // Only the last, partial quad can be wrong here: the alphabet was
            // checked, and whole quads always decode.
            let whole = token.len() - token.len() % 4;
            let Ok(prefix) = URL_SAFE_NO_PAD.decode(&token[..whole]) else {
                return Err(TokenError::NotBase64);
            };
            let partial_bytes = (token.len() % 4) * 6 / 8;
            if needs_more_than(&prefix, prefix.len() + partial_bytes) {
                Err(TokenError::Truncated)
            } else {
                Err(TokenError::NotBase64)
            }
        }
    }
}

/// Whether the structure that `bytes` starts claims more than `available`
/// bytes (body and MAC). Reads unauthenticated bytes, so it only ever picks
/// the wording of a refusal.
fn needs_more_than(bytes: &[u8], available: usize) -> bool {
    match read_layout(bytes) {
        Err(ReadError::Short) => true,
        Err(ReadError::Bad(_)) => false,
        Ok(fields) => fields.end.saturating_add(TAG_LEN) > available,
    }
}

fn diagnose_mismatch(bytes: &[u8]) -> TokenError {
    if needs_more_than(bytes, bytes.len()) {
        TokenError::Truncated
    } else {
        TokenError::BadSignature
    }
}

enum ReadError {
    Short,
    Bad(&'static str),
}

struct Reader<'b> {
    bytes: &'b [u8],
    pos: usize,
}

impl<'b> Reader<'b> {
    fn new(bytes: &'b [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    fn byte(&mut self) -> Result<u8, ReadError> {
        let b = *self.bytes.get(self.pos).ok_or(ReadError::Short)?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: u64) -> Result<&'b [u8], ReadError> {
        let left = self.bytes.len() - self.pos;
        let n = usize::try_from(n)
            .ok()
            .filter(|&n| n <= left)
            .ok_or(ReadError::Short)?;
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u32_be(&mut self) -> Result<u32, ReadError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn varint(&mut self) -> Result<u64, ReadError> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let b = self.byte()?;
            let bits = u64::from(b & 0x7f);
            if i == 9 && b > 1 {
                return Err(ReadError::Bad("field length is too long"));
            }
            value |= bits << (7 * i);
            if b & 0x80 == 0 {
                if i > 0 && b == 0 {
                    // One value, one encoding: keeps tokens canonical.
                    return Err(ReadError::Bad("field length is not in shortest form"));
                }
                return Ok(value);
            }
        }
        Err(ReadError::Bad("field length is too long"))
    }

    fn field(&mut self) -> Result<&'b [u8], ReadError> {
        let n = self.varint()?;
        self.take(n)
    }
}

enum RawKind<'b> {
    Open,
    Unsubscribe,
    TemplateLinks {
        template_id: &'b [u8],
        template_version: u32,
        utm: &'b [u8],
    },
    Link {
        index: u32,
        destination: &'b [u8],
    },
}

struct RawFields<'b> {
    company_id: &'b [u8],
    message_id: &'b [u8],
    recipient_id: &'b [u8],
    kind: RawKind<'b>,
    /// Offset just past the last field.
    end: usize,
}

/// Walks the whole layout before the MAC. Stops at the first field that does
/// not fit rather than guessing.
fn read_layout(bytes: &[u8]) -> Result<RawFields<'_>, ReadError> {
    let mut r = Reader::new(bytes);
    if r.byte()? != FORMAT_VERSION {
        return Err(ReadError::Bad("unsupported version"));
    }
    let kind = r.byte()?;
    let id_len = r.byte()?;
    if id_len == 0 || usize::from(id_len) > MAX_KEY_ID_LEN {
        return Err(ReadError::Bad("key id length is out of range"));
    }
    r.take(u64::from(id_len))?;
    let company_id = r.field()?;
    let message_id = r.field()?;
    let recipient_id = r.field()?;
    let kind = match kind {
        KIND_OPEN => RawKind::Open,
        KIND_UNSUBSCRIBE => RawKind::Unsubscribe,
        KIND_TEMPLATE_LINKS => RawKind::TemplateLinks {
            template_id: r.field()?,
            template_version: r.u32_be()?,
            utm: r.field()?,
        },
        KIND_LINK => RawKind::Link {
            index: r.u32_be()?,
            destination: r.field()?,
        },
        _ => return Err(ReadError::Bad("unknown claim kind")),
    };
    Ok(RawFields {
        company_id,
        message_id,
        recipient_id,
        kind,
        end: r.pos,
    })
}

fn owned_str(bytes: &[u8]) -> Result<Cow<'static, str>, TokenError> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(Cow::Owned(s.to_owned())),
        Err(_) => Err(TokenError::Malformed("field is not valid utf-8")),
    }
}

impl RawFields<'_> {
    fn into_claims(self) -> Result<Claims<'static>, TokenError> {
        Ok(Claims {
            company_id: owned_str(self.company_id)?,
            message_id: owned_str(self.message_id)?,
            recipient_id: owned_str(self.recipient_id)?,
            kind: match self.kind {
                RawKind::Open => ClaimKind::Open,
                RawKind::Unsubscribe => ClaimKind::Unsubscribe,
                RawKind::TemplateLinks {
                    template_id,
                    template_version,
                    utm,
                } => ClaimKind::TemplateLinks {
                    template_id: owned_str(template_id)?,
                    template_version,
                    utm: owned_str(utm)?,
                },
                RawKind::Link { index, destination } => ClaimKind::Link {
                    index,
                    destination: owned_str(destination)?,
                },
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(id: &str, fill: u8) -> SigningKey {
        SigningKey {
            id: id.to_owned(),
            secret: vec![fill; 32],
        }
    }

    fn signer(ids: &[(&str, u8)]) -> Signer {
        Signer::new(ids.iter().map(|&(id, fill)| key(id, fill)).collect()).unwrap()
    }

    fn recipient_claims() -> Claims<'static> {
        Claims {
            company_id: "acme".into(),
            message_id: "msg-42".into(),
            recipient_id: "rcpt-7".into(),
            kind: ClaimKind::Open,
        }
    }

    fn link_claims(destination: &str) -> Claims<'_> {
        Claims {
            company_id: "acme".into(),
            message_id: "msg-42".into(),
            recipient_id: "rcpt-7".into(),
            kind: ClaimKind::Link {
                index: 3,
                destination: destination.into(),
            },
        }
    }

    fn template_claims() -> Claims<'static> {
        Claims {
            company_id: "acme".into(),
            message_id: "msg-42".into(),
            recipient_id: "rcpt-7".into(),
            kind: ClaimKind::TemplateLinks {
                template_id: "welcome".into(),
                template_version: 12,
                utm: "utm_source=news&utm_medium=email".into(),
            },
        }
    }

    /// Signs raw bytes as the signer's first key would, to build tokens that
    /// are authentic but laid out wrong.
    fn sign_raw(fill: u8, body: &[u8]) -> String {
        let mut mac = HmacSha256::new_from_slice(&[fill; 32]).unwrap();
        mac.update(body);
        let tag = mac.finalize().into_bytes();
        let mut bytes = body.to_vec();
        bytes.extend_from_slice(&tag[..TAG_LEN]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn raw_recipient_body(extra: &[u8]) -> Vec<u8> {
        let mut body = vec![FORMAT_VERSION, KIND_OPEN, 2, b'k', b'1'];
        for s in ["acme", "m", "r"] {
            body.push(s.len() as u8);
            body.extend_from_slice(s.as_bytes());
        }
        body.extend_from_slice(extra);
        body
    }

    #[test]
    fn round_trips_each_kind() {
        let s = signer(&[("k1", 1)]);
        for claims in [
            recipient_claims(),
            template_claims(),
            link_claims("https://a.example/p?x=1"),
        ] {
            let token = s.sign(&claims);
            assert_eq!(s.verify(&token).unwrap(), claims);
        }
    }

    #[test]
    fn known_answer_pins_the_layout() {
        let s = signer(&[("k1", 7)]);
        let token = s.sign(&recipient_claims());
        let bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        let mut expected = vec![FORMAT_VERSION, KIND_OPEN, 2, b'k', b'1'];
        expected.extend_from_slice(b"\x04acme\x06msg-42\x06rcpt-7");
        assert_eq!(&bytes[..bytes.len() - TAG_LEN], &expected[..]);
        assert_eq!(token, sign_raw(7, &expected));
        assert_eq!(
            token,
            "AQACazEEYWNtZQZtc2ctNDIGcmNwdC03DFTX-8Wxpg7CETvHUk7qEA"
        );
    }

    #[test]
    fn sign_into_appends() {
        let s = signer(&[("k1", 1)]);
        let mut out = String::from("https://t.example/o/");
        s.sign_into(&recipient_claims(), &mut out);
        assert_eq!(
            out,
            format!("https://t.example/o/{}", s.sign(&recipient_claims()))
        );
    }

    #[test]
    fn long_fields_cross_chunk_boundaries() {
        let s = signer(&[("k1", 1)]);
        for len in [
            0,
            1,
            127,
            128,
            300,
            CHUNK - 20,
            CHUNK,
            CHUNK + 1,
            5000,
            20_000,
        ] {
            let dest = "é".repeat(len / 2) + &"x".repeat(len % 2);
            let claims = link_claims(&dest);
            let token = s.sign(&claims);
            let raw = URL_SAFE_NO_PAD.decode(&token).unwrap();
            assert_eq!(raw.len(), encoded_body_len("k1", &claims) + TAG_LEN);
            assert_eq!(s.verify(&token).unwrap(), claims);
        }
    }

    #[test]
    fn new_rejects_bad_key_sets() {
        let err = |keys: Vec<SigningKey>| Signer::new(keys).unwrap_err();
        assert_eq!(err(vec![]), "no signing keys: at least one is needed");
        assert_eq!(
            err(vec![key("k1", 1), key("k2", 2), key("k1", 3)]),
            "duplicate signing key id \"k1\" (keys 0 and 2)"
        );
        assert_eq!(
            err(vec![key("k1", 1), key("k 2", 2)]),
            "signing key 1 id \"k 2\" may only use A-Z, a-z, 0-9, '_' and '-'"
        );
        assert_eq!(err(vec![key("", 1)]), "signing key 0 has an empty id");
        assert!(err(vec![key("a234567890abcdefg", 1)]).contains("longer than 16"));
        let short = SigningKey {
            id: "k9".into(),
            secret: vec![1; 31],
        };
        assert_eq!(
            err(vec![key("k1", 1), short]),
            "signing key \"k9\" secret is 31 bytes; at least 32 are needed"
        );
        assert!(Signer::new(vec![key("a-Z_09", 1)]).is_ok());
    }

    #[test]
    fn debug_hides_secrets() {
        let k = key("k1", 0xab);
        assert_eq!(
            format!("{k:?}"),
            "SigningKey { id: \"k1\", secret: <32 bytes> }"
        );
        assert_eq!(
            format!("{:?}", signer(&[("k2", 1), ("k1", 2)])),
            "Signer { key_ids: [\"k2\", \"k1\"] }"
        );
    }

    #[test]
    fn error_messages() {
        let s = signer(&[("k1", 1)]);
        let other = signer(&[("k0", 1)]);
        let token = other.sign(&recipient_claims());
        assert_eq!(
            s.verify(&token).unwrap_err().to_string(),
            "token signed with unknown key \"k0\""
        );
        assert_eq!(
            s.verify("a+b").unwrap_err().to_string(),
            "token is not base64url"
        );
        assert_eq!(s.verify("").unwrap_err().to_string(), "token is truncated");
        let forged = signer(&[("k1", 2)]).sign(&recipient_claims());
        assert_eq!(
            s.verify(&forged).unwrap_err().to_string(),
            "token signature does not match"
        );
    }

    #[test]
    fn rejects_non_alphabet_and_padding() {
        let s = signer(&[("k1", 1)]);
        let token = s.sign(&recipient_claims());
        for bad in [
            format!("{token}="),
            format!("{token} "),
            format!("/{token}"),
            token.replace('A', "+"),
        ] {
            if bad != token {
                assert_eq!(s.verify(&bad), Err(TokenError::NotBase64), "{bad}");
            }
        }
    }

    #[test]
    fn unsupported_version() {
        let s = signer(&[("k1", 1)]);
        let mut bytes = URL_SAFE_NO_PAD.decode(s.sign(&recipient_claims())).unwrap();
        bytes[0] = 2;
        assert_eq!(
            s.verify(&URL_SAFE_NO_PAD.encode(&bytes)),
            Err(TokenError::UnsupportedVersion(2))
        );
        assert_eq!(
            s.verify(&URL_SAFE_NO_PAD.encode(&bytes))
                .unwrap_err()
                .to_string(),
            "unsupported token format version 2"
        );
    }

    #[test]
    fn cut_at_every_length_is_refused() {
        let s = signer(&[("k1", 1)]);
        for claims in [
            recipient_claims(),
            template_claims(),
            link_claims("https://bücher.example/ü"),
        ] {
            let token = s.sign(&claims);
            for cut in 0..token.len() {
                let result = s.verify(&token[..cut]);
                assert!(
                    matches!(result, Err(TokenError::Truncated)),
                    "cut at {cut} of {}: {result:?}",
                    token.len()
                );
            }
            // Cutting the decoded bytes anywhere, inside the MAC too, reads as truncation.
            let bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
            for cut in 0..bytes.len() {
                let result = s.verify(&URL_SAFE_NO_PAD.encode(&bytes[..cut]));
                assert_eq!(result, Err(TokenError::Truncated), "byte cut at {cut}");
            }
        }
    }

    #[test]
    fn every_single_character_change_is_refused() {
        let s = signer(&[("k1", 1)]);
        let token = s.sign(&template_claims());
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        for pos in 0..token.len() {
            for &c in alphabet {
                if token.as_bytes()[pos] == c {
                    continue;
                }
                let mut changed = token.clone().into_bytes();
                changed[pos] = c;
                let changed = String::from_utf8(changed).unwrap();
                assert!(s.verify(&changed).is_err(), "{pos} -> {}", c as char);
            }
        }
    }

    #[test]
    fn authentic_but_malformed_bodies_are_refused() {
        let s = signer(&[("k1", 1)]);
        let good = raw_recipient_body(&[]);
        assert_eq!(s.verify(&sign_raw(1, &good)).unwrap().company_id, "acme");

        let trailing = raw_recipient_body(&[0]);
        assert_eq!(
            s.verify(&sign_raw(1, &trailing)),
            Err(TokenError::Malformed("trailing bytes after the last field"))
        );

        let mut bad_utf8 = raw_recipient_body(&[]);
        let at = bad_utf8.len() - 1;
        bad_utf8[at] = 0xff;
        assert_eq!(
            s.verify(&sign_raw(1, &bad_utf8)),
            Err(TokenError::Malformed("field is not valid utf-8"))
        );

        let mut bad_kind = raw_recipient_body(&[]);
        bad_kind[1] = 9;
        assert_eq!(
            s.verify(&sign_raw(1, &bad_kind)),
            Err(TokenError::Malformed("unknown claim kind"))
        );

        let mut overlong = vec![FORMAT_VERSION, KIND_OPEN, 2, b'k', b'1'];
        overlong.extend_from_slice(&[0x81, 0x00]);
        assert_eq!(
            s.verify(&sign_raw(1, &overlong)),
            Err(TokenError::Malformed(
                "field length is not in shortest form"
            ))
        );

        let mut huge = vec![FORMAT_VERSION, KIND_OPEN, 2, b'k', b'1'];
        huge.extend_from_slice(&[0xff; 10]);
        huge.push(0x01);
        assert_eq!(
            s.verify(&sign_raw(1, &huge)),
            Err(TokenError::Malformed("field length is too long"))
        );

        let ends_early = vec![FORMAT_VERSION, KIND_OPEN, 2, b'k', b'1', 5, b'a'];
        assert_eq!(
            s.verify(&sign_raw(1, &ends_early)),
            Err(TokenError::Malformed("body ends early"))
        );
    }

    #[test]
    fn bad_key_ids_in_tokens() {
        let s = signer(&[("k1", 1)]);
        let mut zero = vec![FORMAT_VERSION, KIND_OPEN, 0];
        zero.extend_from_slice(&[0; 20]);
        assert_eq!(
            s.verify(&URL_SAFE_NO_PAD.encode(&zero)),
            Err(TokenError::Malformed("key id length is out of range"))
        );
        let mut quote = vec![FORMAT_VERSION, KIND_OPEN, 2, b'"', b'1'];
        quote.extend_from_slice(&[0; 20]);
        assert_eq!(
            s.verify(&URL_SAFE_NO_PAD.encode(&quote)),
            Err(TokenError::Malformed(
                "key id has characters outside [A-Za-z0-9_-]"
            ))
        );
    }

    #[test]
    fn rotation() {
        let old = signer(&[("k1", 1)]);
        let rotated = signer(&[("k2", 2), ("k1", 1)]);
        let retired = signer(&[("k2", 2)]);
        let claims = link_claims("https://a.example/");
        let old_token = old.sign(&claims);
        assert_eq!(rotated.verify(&old_token).unwrap(), claims);
        assert_eq!(rotated.signing_key_id(), "k2");
        let new_token = rotated.sign(&claims);
        assert_ne!(new_token, old_token);
        assert_eq!(retired.verify(&new_token).unwrap(), claims);
        assert_eq!(
            retired.verify(&old_token),
            Err(TokenError::UnknownKey("k1".into()))
        );
    }

    #[test]
    #[ignore = "prints a timing figure; run with --ignored --nocapture"]
    fn sign_into_timing() {
        let s = signer(&[("k2", 2), ("k1", 1)]);
        let claims = [
            recipient_claims(),
            template_claims(),
            link_claims(
                "https://shop.example/products/spring-sale?utm_source=news&utm_medium=email&utm_campaign=spring",
            ),
        ];
        let mut out = String::with_capacity(512);
        for claims in &claims {
            let rounds = 200_000u32;
            let start = std::time::Instant::now();
            for _ in 0..rounds {
                out.clear();
                s.sign_into(std::hint::black_box(claims), &mut out);
                std::hint::black_box(&out);
            }
            let ns = start.elapsed().as_nanos() / u128::from(rounds);
            println!(
                "sign_into {:?}: {ns} ns/token, {} chars",
                kind_byte(&claims.kind),
                out.len()
            );
        }
    }

    fn claims_strategy() -> impl Strategy<Value = Claims<'static>> {
        let s = || any::<String>().prop_map(Cow::Owned);
        let kind = prop_oneof![
            Just(ClaimKind::Open),
            Just(ClaimKind::Unsubscribe),
            (s(), any::<u32>(), s()).prop_map(|(template_id, template_version, utm)| {
                ClaimKind::TemplateLinks {
                    template_id,
                    template_version,
                    utm,
                }
            }),
            (any::<u32>(), s())
                .prop_map(|(index, destination)| ClaimKind::Link { index, destination }),
        ];
        (s(), s(), s(), kind).prop_map(|(company_id, message_id, recipient_id, kind)| Claims {
            company_id,
            message_id,
            recipient_id,
            kind,
        })
    }

    proptest! {
        #[test]
        fn prop_round_trip_and_path_safe(claims in claims_strategy()) {
            let s = signer(&[("k1", 1)]);
            let token = s.sign(&claims);
            prop_assert!(!token.is_empty());
            prop_assert!(token.bytes().all(is_key_id_byte), "{}", token);
            prop_assert_eq!(s.verify(&token).unwrap(), claims);
        }

        #[test]
        fn prop_deterministic(claims in claims_strategy()) {
            let a = signer(&[("k1", 1)]);
            let b = signer(&[("k1", 1), ("k0", 3)]);
            let token = a.sign(&claims);
            prop_assert_eq!(&token, &a.sign(&claims));
            prop_assert_eq!(&token, &b.sign(&claims));
            let mut appended = String::from("x");
            a.sign_into(&claims, &mut appended);
            prop_assert_eq!(&appended[1..], &token[..]);
        }

        #[test]
        fn prop_any_byte_mutation_is_refused(
            claims in claims_strategy(),
            pos in any::<prop::sample::Index>(),
            mask in 1u8..=255,
        ) {
            let s = signer(&[("k1", 1)]);
            let mut bytes = URL_SAFE_NO_PAD.decode(s.sign(&claims)).unwrap();
            let i = pos.index(bytes.len());
            bytes[i] ^= mask;
            prop_assert!(s.verify(&URL_SAFE_NO_PAD.encode(&bytes)).is_err());
        }

        #[test]
        fn prop_rotation(claims in claims_strategy()) {
            let token = signer(&[("k1", 1)]).sign(&claims);
            prop_assert_eq!(signer(&[("k2", 2), ("k1", 1)]).verify(&token).unwrap(), claims);
            prop_assert_eq!(
                signer(&[("k2", 2)]).verify(&token),
                Err(TokenError::UnknownKey("k1".into()))
            );
        }

        #[test]
        fn prop_verify_never_panics(text in "[A-Za-z0-9_-]{0,120}|\\PC{0,40}") {
            let s = signer(&[("k1", 1)]);
            let _ = s.verify(&text);
        }
    }
}
