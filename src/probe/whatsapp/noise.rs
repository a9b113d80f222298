//! The client half of WhatsApp's Noise handshake, as far as a liveness probe needs it.
//!
//! WhatsApp's chat front end speaks a variant of `Noise_XX_25519_AESGCM_SHA256` behind a
//! `"WA"` prologue (PROTOCOLS.md §2). This module builds the 43-byte first flight and judges the
//! server's first frame (the `ServerHello`): it parses the protobuf, runs the key schedule of §2.5
//! with our fresh ephemeral key, decrypts the server's static key and certificate payload, and
//! checks the certificate chain against a pinned root exactly as whatsmeow's `verifyServerCert`
//! does (§2.6 L3). A middlebox cannot forge a passing answer: it would need the server's keys
//! and a chain signed by WhatsApp's root.
//!
//! Pure code: no I/O, no clock (the caller passes `now`), no async. The probe reads the frame.
//!
//! The variant is *not* RFC Noise: the initiator does not mix the hash of its empty first
//! payload, so generic Noise libraries (`snow`) cannot talk to it. The signatures are
//! libsignal-style Curve25519 signatures, not strict XEdDSA (see [`verify_signature`]).

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, Key, KeyInit, Nonce};
use curve25519_dalek::montgomery::MontgomeryPoint;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use x25519_dalek::{PublicKey, StaticSecret};

/// The intro header sent once before the first frame: `"WA"`, magic 6, dictionary version 3.
/// It is also the Noise prologue (mixed into the handshake hash).
pub const WA_HEADER: [u8; 4] = [0x57, 0x41, 0x06, 0x03];

/// WhatsApp's certificate root, an X25519 public key (whatsmeow `WACertPubKey`; `docs/platforms.md`),
/// the default of `root_key`.
pub const WHATSAPP_ROOT_KEY: [u8; 32] = [
    0x14, 0x23, 0x75, 0x57, 0x4d, 0x0a, 0x58, 0x71, 0x66, 0xaa, 0xe7, 0x1e, 0xbe, 0x51, 0x64, 0x37, 0xc4, 0xa2, 0x8b,
    0x73, 0xe3, 0x69, 0x5c, 0x6c, 0xe1, 0xf7, 0xf9, 0x54, 0x5d, 0xa8, 0xee, 0x6b,
];

/// The largest ServerHello frame we accept, in bytes (§2.6 L1: 34..64 KiB). The probe should
/// refuse to read a frame whose 3-byte length announces more than this.
pub const MAX_FRAME: usize = 64 * 1024;

/// The smallest ServerHello frame we accept, in bytes (§2.6 L1).
pub const MIN_FRAME: usize = 34;

/// The Noise protocol name. It is exactly 32 bytes, so it is used as the initial hash as-is.
const PROTOCOL_NAME: &[u8; 32] = b"Noise_XX_25519_AESGCM_SHA256\0\0\0\0";

/// The server's ephemeral public key is 32 bytes.
const EPHEMERAL_LEN: usize = 32;
/// The encrypted static key: 32 bytes of key plus the 16-byte AES-GCM tag.
const STATIC_CT_LEN: usize = 48;
/// The encrypted payload must hold at least one byte plus the 16-byte tag.
const MIN_PAYLOAD_CT_LEN: usize = 17;

/// The client's side of one handshake attempt: a fresh X25519 ephemeral key and the handshake
/// state (`h`, `ck`) after the prologue and our ephemeral have been mixed in.
pub struct Initiator {
    secret: StaticSecret,
    public: [u8; 32],
    h: [u8; 32],
    ck: [u8; 32],
}

impl Default for Initiator {
    /// Same as [`Initiator::new`].
    fn default() -> Self {
        Self::new()
    }
}

impl Initiator {
    /// A fresh ephemeral key from the OS RNG.
    pub fn new() -> Initiator {
        let mut secret = [0u8; 32];
        // The OS RNG failing is not something a probe can recover from or report meaningfully;
        // every other part of the process (TLS, etc.) would be broken as well.
        getrandom::fill(&mut secret).expect("the OS random number generator is unavailable");
        Self::with_secret(secret)
    }

    /// Deterministic, for tests: the ephemeral secret given.
    pub fn with_secret(secret: [u8; 32]) -> Initiator {
        let secret = StaticSecret::from(secret);
        let public = PublicKey::from(&secret).to_bytes();
        let h = *PROTOCOL_NAME;
        let ck = h;
        let h = mix_hash(&h, &WA_HEADER);
        // WhatsApp's variant: no MixHash of the (empty) first-message payload after this.
        let h = mix_hash(&h, &public);
        Initiator { secret, public, h, ck }
    }

    /// The 43-byte first flight: WA_HEADER, 3-byte BE length 36, HandshakeMessage{clientHello{ephemeral}}.
    pub fn first_flight(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(43);
        out.extend_from_slice(&WA_HEADER);
        out.extend_from_slice(&[0x00, 0x00, 0x24]);
        // HandshakeMessage.clientHello: field 2, wire type 2, length 34.
        out.extend_from_slice(&[0x12, 0x22]);
        // ClientHello.ephemeral: field 1, wire type 2, length 32.
        out.extend_from_slice(&[0x0a, 0x20]);
        out.extend_from_slice(&self.public);
        out
    }

    /// Judges the server's first frame (its payload, WITHOUT the 3-byte length) under `root_key` at `now_unix` seconds.
    pub fn finish(&self, frame: &[u8], root_key: &[u8; 32], now_unix: i64) -> Result<ServerProof, HandshakeError> {
        let hello = parse_server_hello(frame).map_err(HandshakeError::NotServerHello)?;

        let mut state = Symmetric { h: self.h, ck: self.ck, k: [0u8; 32], n: 0 };
        state.mix_hash(&hello.ephemeral);
        let shared = self.secret.diffie_hellman(&PublicKey::from(hello.ephemeral));
        if !shared.was_contributory() {
            return Err(HandshakeError::NotServerHello(
                "the server's ephemeral key is a low-order point (no shared secret is possible)".into(),
            ));
        }
        state.mix_key(shared.as_bytes());

        let static_plain = state.decrypt_and_hash(&hello.static_ct).ok_or(HandshakeError::StaticDecrypt)?;
        let static_key: [u8; 32] = static_plain.as_slice().try_into().map_err(|_| HandshakeError::StaticDecrypt)?;
        let shared = self.secret.diffie_hellman(&PublicKey::from(static_key));
        if !shared.was_contributory() {
            return Err(HandshakeError::Chain(
                "the server's static key is a low-order point, so it cannot belong to a WhatsApp server".into(),
            ));
        }
        state.mix_key(shared.as_bytes());

        let chain = state.decrypt_and_hash(&hello.payload_ct).ok_or(HandshakeError::PayloadDecrypt)?;
        verify_chain(&chain, &static_key, root_key, now_unix).map_err(HandshakeError::Chain)
    }
}

/// What a genuine answer proved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerProof {
    /// The server's static X25519 key (decrypted, and equal to the leaf certificate's key).
    pub static_key: [u8; 32],
    /// Serial number of the intermediate certificate.
    pub intermediate_serial: u32,
    /// Serial number of the leaf certificate.
    pub leaf_serial: u32,
    /// The earlier `notAfter` of the two certificates, in unix seconds: when the chain stops being valid.
    pub not_after: i64,
}

/// Why the server's first frame does not prove a WhatsApp server.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// Not a ServerHello at all (protobuf does not parse, field 3 missing, wrong part sizes): a foreign server.
    /// The message says what was wrong, in words.
    #[error("the reply is not a WhatsApp ServerHello: {0}")]
    NotServerHello(String),
    /// AES-GCM of the static key failed (e.g. a standard RFC-Noise server, or forged bytes).
    #[error(
        "the server's encrypted static key does not decrypt with our ephemeral key \
         (not WhatsApp's Noise variant, e.g. a standard Noise server, or forged bytes)"
    )]
    StaticDecrypt,
    /// AES-GCM of the certificate payload failed.
    #[error("the server's encrypted certificate payload does not decrypt (forged or corrupted bytes)")]
    PayloadDecrypt,
    /// The decrypted certificate chain does not prove a WhatsApp server: the String says which check failed.
    #[error("the server's certificate chain does not prove a WhatsApp server: {0}")]
    Chain(String),
}

/// The 3-byte big-endian frame length.
pub fn frame_len(prefix: [u8; 3]) -> usize {
    (usize::from(prefix[0]) << 16) | (usize::from(prefix[1]) << 8) | usize::from(prefix[2])
}

/// libsignal-style Curve25519 signature check (§2.6): Montgomery→Edwards with the sign bit from sig[63]&0x80, then Ed25519 verify.
pub fn verify_signature(public_x25519: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool {
    let sign = (signature[63] & 0x80) >> 7;
    let Some(point) = MontgomeryPoint(*public_x25519).to_edwards(sign) else {
        return false;
    };
    let mut sig = *signature;
    sig[63] &= 0x7f;
    VerifyingKey::from(point).verify(message, &Signature::from_bytes(&sig)).is_ok()
}

// ---------------------------------------------------------------------------------------------
// Key schedule (§2.5)
// ---------------------------------------------------------------------------------------------

/// `SHA256(h ‖ data)`.
fn mix_hash(h: &[u8; 32], data: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(h);
    hasher.update(data);
    hasher.finalize().into()
}

/// The handshake's symmetric state once the first key is mixed in.
struct Symmetric {
    h: [u8; 32],
    ck: [u8; 32],
    k: [u8; 32],
    n: u32,
}

impl Symmetric {
    fn mix_hash(&mut self, data: &[u8]) {
        self.h = mix_hash(&self.h, data);
    }

    /// `ck, k = HKDF-SHA256(salt = ck, ikm, info = "", L = 64)`; the nonce counter restarts at 0.
    fn mix_key(&mut self, ikm: &[u8]) {
        let mut okm = [0u8; 64];
        Hkdf::<Sha256>::new(Some(&self.ck), ikm)
            .expand(&[], &mut okm)
            .expect("64 bytes is within HKDF-SHA256's 8160-byte output limit");
        self.ck.copy_from_slice(&okm[..32]);
        self.k.copy_from_slice(&okm[32..]);
        self.n = 0;
    }

    /// AES-256-GCM decryption with `ad = h` and `iv = 00×8 ‖ BE32(n)`, then `n += 1` and, on
    /// success, `h = SHA256(h ‖ ciphertext)`. `None` when the tag does not verify.
    fn decrypt_and_hash(&mut self, ciphertext: &[u8]) -> Option<Vec<u8>> {
        let mut iv = [0u8; 12];
        iv[8..].copy_from_slice(&self.n.to_be_bytes());
        self.n = self.n.wrapping_add(1);
        let cipher = Aes256Gcm::new(&Key::<Aes256Gcm>::from(self.k));
        let plain = cipher.decrypt(&Nonce::from(iv), Payload { msg: ciphertext, aad: &self.h }).ok()?;
        self.mix_hash(ciphertext);
        Some(plain)
    }
}

// ---------------------------------------------------------------------------------------------
// Protobuf, the few fields we need (proto2 semantics as the Go runtime applies them)
// ---------------------------------------------------------------------------------------------

/// One field's value on the wire.
enum Wire<'a> {
    Varint(u64),
    Fixed64,
    Bytes(&'a [u8]),
    Fixed32,
}

/// Walks the fields of one protobuf message.
struct Fields<'a> {
    buf: &'a [u8],
}

impl<'a> Fields<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Fields { buf }
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for i in 0..10 {
            let Some((&byte, rest)) = self.buf.split_first() else {
                return Err("a varint is cut off by the end of the data".into());
            };
            self.buf = rest;
            if i == 9 && byte > 1 {
                return Err("a varint overflows 64 bits".into());
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("a varint is longer than 10 bytes".into())
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        if self.buf.len() < n {
            return Err(format!("a {what} field needs {n} bytes but only {} remain", self.buf.len()));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    /// The next field as (number, value), `None` at the end. Errors on truncation, field number
    /// 0, and the wire types this schema never uses (3 and 4 are deprecated groups; 6 and 7 do not exist).
    fn next_field(&mut self) -> Result<Option<(u32, Wire<'a>)>, String> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let tag = self.varint()?;
        let number = tag >> 3;
        if number == 0 || number > (1 << 29) - 1 {
            return Err(format!("invalid field number {number}"));
        }
        let number = u32::try_from(number).map_err(|_| format!("invalid field number {number}"))?;
        let value = match tag & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => {
                self.take(8, "fixed64")?;
                Wire::Fixed64
            }
            2 => {
                let len = self.varint()?;
                let len = usize::try_from(len).map_err(|_| format!("a field length of {len} bytes is impossible"))?;
                Wire::Bytes(self.take(len, "length-delimited")?)
            }
            5 => {
                self.take(4, "fixed32")?;
                Wire::Fixed32
            }
            other => return Err(format!("field {number} has unsupported wire type {other}")),
        };
        Ok(Some((number, value)))
    }
}

/// The three parts of a ServerHello we use.
struct ServerHello {
    ephemeral: [u8; 32],
    static_ct: Vec<u8>,
    payload_ct: Vec<u8>,
}

/// Parses `HandshakeMessage{serverHello = 3{ephemeral = 1, static = 2, payload = 3}}` and applies
/// the §2.6 L1 size checks. Repeated occurrences of an embedded message are merged (concatenated,
/// as protobuf specifies); for a bytes field the last occurrence wins; a field with an unexpected
/// wire type is skipped as unknown (what the Go runtime does).
fn parse_server_hello(frame: &[u8]) -> Result<ServerHello, String> {
    if frame.len() < MIN_FRAME || frame.len() > MAX_FRAME {
        return Err(format!(
            "the frame is {} bytes, outside the {MIN_FRAME}..={MAX_FRAME} a ServerHello fills",
            frame.len()
        ));
    }
    let mut hello: Option<Vec<u8>> = None;
    let mut fields = Fields::new(frame);
    while let Some((number, value)) = fields.next_field().map_err(|e| format!("the frame is not protobuf ({e})"))? {
        if let (3, Wire::Bytes(bytes)) = (number, value) {
            hello.get_or_insert_with(Vec::new).extend_from_slice(bytes);
        }
    }
    let Some(hello) = hello else {
        return Err("the frame has no serverHello (HandshakeMessage field 3)".into());
    };

    let (mut ephemeral, mut static_ct, mut payload_ct) = (None, None, None);
    let mut fields = Fields::new(&hello);
    while let Some((number, value)) =
        fields.next_field().map_err(|e| format!("the serverHello is not protobuf ({e})"))?
    {
        match (number, value) {
            (1, Wire::Bytes(b)) => ephemeral = Some(b),
            (2, Wire::Bytes(b)) => static_ct = Some(b),
            (3, Wire::Bytes(b)) => payload_ct = Some(b),
            _ => {}
        }
    }
    let ephemeral = ephemeral.ok_or("the serverHello has no ephemeral key (field 1)")?;
    let static_ct = static_ct.ok_or("the serverHello has no encrypted static key (field 2)")?;
    let payload_ct = payload_ct.ok_or("the serverHello has no encrypted payload (field 3)")?;
    let ephemeral: [u8; 32] = ephemeral
        .try_into()
        .map_err(|_| format!("the serverHello ephemeral key is {} bytes, expected {EPHEMERAL_LEN}", ephemeral.len()))?;
    if static_ct.len() != STATIC_CT_LEN {
        return Err(format!(
            "the serverHello encrypted static key is {} bytes, expected {STATIC_CT_LEN}",
            static_ct.len()
        ));
    }
    if payload_ct.len() < MIN_PAYLOAD_CT_LEN {
        return Err(format!(
            "the serverHello encrypted payload is {} bytes, expected at least {MIN_PAYLOAD_CT_LEN}",
            payload_ct.len()
        ));
    }
    Ok(ServerHello { ephemeral, static_ct: static_ct.to_vec(), payload_ct: payload_ct.to_vec() })
}

/// `NoiseCertificate{details = 1, signature = 2}`, both optional.
struct Certificate {
    details: Option<Vec<u8>>,
    signature: Option<Vec<u8>>,
}

/// `Details{serial = 1, issuerSerial = 2, key = 3, notBefore = 4, notAfter = 5}`. Absent integers
/// read as 0 and an absent key as empty, like the Go getters whatsmeow uses.
struct Details {
    serial: u32,
    issuer_serial: u32,
    key: Vec<u8>,
    not_before: Option<u64>,
    not_after: Option<u64>,
}

/// Parses `CertChain{leaf = 1, intermediate = 2}` into (leaf, intermediate), each absent if never seen.
fn parse_chain(bytes: &[u8]) -> Result<(Option<Certificate>, Option<Certificate>), String> {
    let (mut leaf, mut intermediate): (Option<Vec<u8>>, Option<Vec<u8>>) = (None, None);
    let mut fields = Fields::new(bytes);
    while let Some((number, value)) = fields.next_field()? {
        match (number, value) {
            (1, Wire::Bytes(b)) => leaf.get_or_insert_with(Vec::new).extend_from_slice(b),
            (2, Wire::Bytes(b)) => intermediate.get_or_insert_with(Vec::new).extend_from_slice(b),
            _ => {}
        }
    }
    let leaf = leaf.map(|b| parse_certificate(&b)).transpose()?;
    let intermediate = intermediate.map(|b| parse_certificate(&b)).transpose()?;
    Ok((leaf, intermediate))
}

fn parse_certificate(bytes: &[u8]) -> Result<Certificate, String> {
    let mut cert = Certificate { details: None, signature: None };
    let mut fields = Fields::new(bytes);
    while let Some((number, value)) = fields.next_field()? {
        match (number, value) {
            (1, Wire::Bytes(b)) => cert.details = Some(b.to_vec()),
            (2, Wire::Bytes(b)) => cert.signature = Some(b.to_vec()),
            _ => {}
        }
    }
    Ok(cert)
}

fn parse_details(bytes: &[u8]) -> Result<Details, String> {
    let mut d = Details { serial: 0, issuer_serial: 0, key: Vec::new(), not_before: None, not_after: None };
    let mut fields = Fields::new(bytes);
    while let Some((number, value)) = fields.next_field()? {
        match (number, value) {
            // uint32 fields: the wire carries a varint, truncated to 32 bits as protobuf specifies.
            (1, Wire::Varint(v)) => d.serial = v as u32,
            (2, Wire::Varint(v)) => d.issuer_serial = v as u32,
            (3, Wire::Bytes(b)) => d.key = b.to_vec(),
            (4, Wire::Varint(v)) => d.not_before = Some(v),
            (5, Wire::Varint(v)) => d.not_after = Some(v),
            _ => {}
        }
    }
    Ok(d)
}

// ---------------------------------------------------------------------------------------------
// Certificate chain (§2.6 L3, in whatsmeow `verifyServerCert` order)
// ---------------------------------------------------------------------------------------------

fn verify_chain(chain: &[u8], static_key: &[u8; 32], root_key: &[u8; 32], now: i64) -> Result<ServerProof, String> {
    let (leaf, intermediate) =
        parse_chain(chain).map_err(|e| format!("the decrypted certificate chain is not protobuf ({e})"))?;
    let intermediate = intermediate.ok_or("the certificate chain has no intermediate certificate")?;
    let leaf = leaf.ok_or("the certificate chain has no leaf certificate")?;
    let int_details_raw = intermediate.details.ok_or("the intermediate certificate has no details")?;
    let int_sig = intermediate.signature.ok_or("the intermediate certificate has no signature")?;
    let leaf_details_raw = leaf.details.ok_or("the leaf certificate has no details")?;
    let leaf_sig = leaf.signature.ok_or("the leaf certificate has no signature")?;
    let int_sig: [u8; 64] = int_sig
        .as_slice()
        .try_into()
        .map_err(|_| format!("the intermediate certificate signature is {} bytes, expected 64", int_sig.len()))?;
    let leaf_sig: [u8; 64] = leaf_sig
        .as_slice()
        .try_into()
        .map_err(|_| format!("the leaf certificate signature is {} bytes, expected 64", leaf_sig.len()))?;

    if !verify_signature(root_key, &int_details_raw, &int_sig) {
        return Err("the intermediate certificate is not signed by the pinned root".into());
    }
    let int = parse_details(&int_details_raw)
        .map_err(|e| format!("the intermediate certificate details are not protobuf ({e})"))?;
    if int.issuer_serial != 0 {
        return Err(format!(
            "the intermediate certificate names issuer serial {}, expected 0 (the WhatsApp root)",
            int.issuer_serial
        ));
    }
    let int_key: [u8; 32] = int
        .key
        .as_slice()
        .try_into()
        .map_err(|_| format!("the intermediate certificate key is {} bytes, expected 32", int.key.len()))?;
    if !verify_signature(&int_key, &leaf_details_raw, &leaf_sig) {
        return Err("the leaf certificate is not signed by the intermediate certificate's key".into());
    }
    let int_not_after = check_dates("intermediate", &int, now)?;

    let leaf_details =
        parse_details(&leaf_details_raw).map_err(|e| format!("the leaf certificate details are not protobuf ({e})"))?;
    if leaf_details.issuer_serial != int.serial {
        return Err(format!(
            "the leaf certificate names issuer serial {}, but the intermediate certificate's serial is {}",
            leaf_details.issuer_serial, int.serial
        ));
    }
    if leaf_details.key.as_slice() != static_key.as_slice() {
        return Err("the leaf key is not the server's static key".into());
    }
    let leaf_not_after = check_dates("leaf", &leaf_details, now)?;

    Ok(ServerProof {
        static_key: *static_key,
        intermediate_serial: int.serial,
        leaf_serial: leaf_details.serial,
        not_after: int_not_after.min(leaf_not_after),
    })
}

/// `notBefore ≤ now ≤ notAfter`, as whatsmeow's `checkCertValidity`: an absent date reads as 0,
/// so an absent notBefore is no lower bound and an absent notAfter means expired since 1970.
/// Returns notAfter in unix seconds.
fn check_dates(which: &str, d: &Details, now: i64) -> Result<i64, String> {
    let not_before = to_unix(d.not_before.unwrap_or(0));
    let not_after = to_unix(d.not_after.unwrap_or(0));
    if now < not_before {
        return Err(format!(
            "the {which} certificate is not valid before {} (the clock here says {})",
            crate::time::rfc3339(crate::time::from_unix(not_before)),
            crate::time::rfc3339(crate::time::from_unix(now))
        ));
    }
    if d.not_after.is_none() {
        return Err(format!("the {which} certificate has no expiry date (notAfter), which counts as expired"));
    }
    if now > not_after {
        return Err(format!(
            "the {which} certificate expired at {} (the clock here says {})",
            crate::time::rfc3339(crate::time::from_unix(not_after)),
            crate::time::rfc3339(crate::time::from_unix(now))
        ));
    }
    Ok(not_after)
}

/// A uint64 timestamp as i64 unix seconds, saturating (a date past year 292 billion is "never").
fn to_unix(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    //! Self-contained: a minimal WhatsApp-style responder and libsignal-style signer live here.

    use super::*;
    use curve25519_dalek::scalar::{Scalar, clamp_integer};
    use ed25519_dalek::hazmat::{ExpandedSecretKey, raw_sign};
    use sha2::Sha512;

    const NOW: i64 = 1_735_787_045; // 2025-01-02T03:04:05Z

    /// libsignal-style signing: the X25519 scalar is the Ed25519 scalar, and the Edwards sign bit
    /// of the public key goes into sig[63].
    fn sign(secret: &[u8; 32], message: &[u8]) -> [u8; 64] {
        let esk = ExpandedSecretKey {
            scalar: Scalar::from_bytes_mod_order(clamp_integer(*secret)),
            hash_prefix: Sha256::digest(secret).into(),
        };
        let vk = VerifyingKey::from(&esk);
        let mut sig = raw_sign::<Sha512>(&esk, message, &vk).to_bytes();
        sig[63] = (sig[63] & 0x7f) | (vk.to_bytes()[31] & 0x80);
        sig
    }

    fn x_pub(secret: &[u8; 32]) -> [u8; 32] {
        PublicKey::from(&StaticSecret::from(*secret)).to_bytes()
    }

    /// The Edwards sign bit of the key libsignal derives from this X25519 secret.
    fn edwards_sign(secret: &[u8; 32]) -> u8 {
        let esk =
            ExpandedSecretKey { scalar: Scalar::from_bytes_mod_order(clamp_integer(*secret)), hash_prefix: [0; 32] };
        VerifyingKey::from(&esk).to_bytes()[31] >> 7
    }

    fn secret_with_sign(bit: u8) -> [u8; 32] {
        (0u8..=255).map(|i| [i; 32]).find(|s| edwards_sign(s) == bit).expect("both signs occur among 256 keys")
    }

    fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    fn bytes_field(out: &mut Vec<u8>, field: u64, data: &[u8]) {
        varint(out, field << 3 | 2);
        varint(out, data.len() as u64);
        out.extend_from_slice(data);
    }

    fn varint_field(out: &mut Vec<u8>, field: u64, v: u64) {
        varint(out, field << 3);
        varint(out, v);
    }

    struct Cert {
        serial: u32,
        issuer: u32,
        key: [u8; 32],
        not_before: i64,
        not_after: i64,
    }

    fn cert(c: &Cert, signer: &[u8; 32]) -> Vec<u8> {
        let mut details = Vec::new();
        varint_field(&mut details, 1, c.serial.into());
        varint_field(&mut details, 2, c.issuer.into());
        bytes_field(&mut details, 3, &c.key);
        varint_field(&mut details, 4, c.not_before as u64);
        varint_field(&mut details, 5, c.not_after as u64);
        let mut out = Vec::new();
        bytes_field(&mut out, 1, &details);
        bytes_field(&mut out, 2, &sign(signer, &details));
        out
    }

    struct Responder {
        root: [u8; 32],
        intermediate: [u8; 32],
        eph: [u8; 32],
        stat: [u8; 32],
        rfc_noise: bool,
        leaf_not_after: i64,
    }

    impl Responder {
        fn new() -> Self {
            Responder {
                root: [7; 32],
                intermediate: [8; 32],
                eph: [9; 32],
                stat: [10; 32],
                rfc_noise: false,
                leaf_not_after: NOW + 365 * 86_400,
            }
        }

        fn chain(&self) -> Vec<u8> {
            let int = Cert {
                serial: 1,
                issuer: 0,
                key: x_pub(&self.intermediate),
                not_before: NOW - 86_400,
                not_after: NOW + 365 * 86_400,
            };
            let leaf = Cert {
                serial: 2,
                issuer: 1,
                key: x_pub(&self.stat),
                not_before: NOW - 86_400,
                not_after: self.leaf_not_after,
            };
            let mut out = Vec::new();
            bytes_field(&mut out, 1, &cert(&leaf, &self.intermediate));
            bytes_field(&mut out, 2, &cert(&int, &self.root));
            out
        }

        /// The frame (without its 3-byte length) answering `flight`.
        fn answer(&self, flight: &[u8]) -> Vec<u8> {
            assert_eq!(flight.len(), 43);
            let e_c: [u8; 32] = flight[11..43].try_into().unwrap();
            let mut s = Symmetric { h: *PROTOCOL_NAME, ck: *PROTOCOL_NAME, k: [0; 32], n: 0 };
            s.mix_hash(&flight[..4]);
            s.mix_hash(&e_c);
            if self.rfc_noise {
                s.mix_hash(&[]);
            }
            let e_s = x_pub(&self.eph);
            s.mix_hash(&e_s);
            s.mix_key(StaticSecret::from(self.eph).diffie_hellman(&PublicKey::from(e_c)).as_bytes());
            let static_ct = encrypt(&mut s, &x_pub(&self.stat));
            s.mix_key(StaticSecret::from(self.stat).diffie_hellman(&PublicKey::from(e_c)).as_bytes());
            let payload_ct = encrypt(&mut s, &self.chain());
            let mut hello = Vec::new();
            bytes_field(&mut hello, 1, &e_s);
            bytes_field(&mut hello, 2, &static_ct);
            bytes_field(&mut hello, 3, &payload_ct);
            let mut frame = Vec::new();
            bytes_field(&mut frame, 3, &hello);
            frame
        }
    }

    fn encrypt(s: &mut Symmetric, plain: &[u8]) -> Vec<u8> {
        let mut iv = [0u8; 12];
        iv[8..].copy_from_slice(&s.n.to_be_bytes());
        s.n += 1;
        let ct = Aes256Gcm::new(&Key::<Aes256Gcm>::from(s.k))
            .encrypt(&Nonce::from(iv), Payload { msg: plain, aad: &s.h })
            .unwrap();
        s.mix_hash(&ct);
        ct
    }

    #[test]
    fn first_flight_layout() {
        let init = Initiator::with_secret([1; 32]);
        let flight = init.first_flight();
        assert_eq!(flight.len(), 43);
        assert_eq!(flight[..4], WA_HEADER);
        assert_eq!(flight[4..7], [0, 0, 36]);
        assert_eq!(flight[7..11], [0x12, 0x22, 0x0a, 0x20]);
        assert_eq!(flight[11..], x_pub(&[1; 32]));
        assert_eq!(frame_len(flight[4..7].try_into().unwrap()), flight.len() - 7);
        assert_ne!(Initiator::new().first_flight(), Initiator::new().first_flight());
    }

    #[test]
    fn frame_len_is_big_endian_24_bit() {
        assert_eq!(frame_len([0, 0, 0]), 0);
        assert_eq!(frame_len([0, 0, 0x24]), 36);
        assert_eq!(frame_len([0x01, 0x02, 0x03]), 0x010203);
        assert_eq!(frame_len([0xff, 0xff, 0xff]), (1 << 24) - 1);
    }

    #[test]
    fn signatures_with_both_sign_bits() {
        for bit in [0u8, 1] {
            let secret = secret_with_sign(bit);
            let public = x_pub(&secret);
            let sig = sign(&secret, b"details");
            assert_eq!(sig[63] >> 7, bit);
            assert!(verify_signature(&public, b"details", &sig), "sign bit {bit}");
            assert!(!verify_signature(&public, b"detailz", &sig));
            let mut flipped = sig;
            flipped[63] ^= 0x80;
            assert!(!verify_signature(&public, b"details", &flipped), "the sign bit matters");
            let mut bad = sig;
            bad[0] ^= 1;
            assert!(!verify_signature(&public, b"details", &bad));
            assert!(!verify_signature(&x_pub(&[200; 32]), b"details", &sig));
        }
        // u = -1 has no Edwards counterpart.
        let mut minus_one = [0xff; 32];
        minus_one[0] = 0xec;
        minus_one[31] = 0x7f;
        assert!(!verify_signature(&minus_one, b"x", &[0; 64]));
    }

    #[test]
    fn round_trip_genuine() {
        let r = Responder::new();
        let init = Initiator::with_secret([1; 32]);
        let frame = r.answer(&init.first_flight());
        let proof = init.finish(&frame, &x_pub(&r.root), NOW).unwrap();
        assert_eq!(
            proof,
            ServerProof {
                static_key: x_pub(&r.stat),
                intermediate_serial: 1,
                leaf_serial: 2,
                not_after: NOW + 365 * 86_400
            }
        );
        // Another client's ephemeral cannot read this answer.
        let other = Initiator::with_secret([2; 32]);
        assert!(matches!(other.finish(&frame, &x_pub(&r.root), NOW), Err(HandshakeError::StaticDecrypt)));
    }

    #[test]
    fn round_trip_failures() {
        let init = Initiator::with_secret([1; 32]);
        let r = Responder::new();
        let frame = r.answer(&init.first_flight());
        match init.finish(&frame, &WHATSAPP_ROOT_KEY, NOW) {
            Err(HandshakeError::Chain(m)) => {
                assert_eq!(m, "the intermediate certificate is not signed by the pinned root")
            }
            other => panic!("{other:?}"),
        }
        match init.finish(&frame, &x_pub(&r.root), NOW + 400 * 86_400) {
            Err(HandshakeError::Chain(m)) => {
                assert!(m.contains("intermediate certificate expired at 2026-01-02T03:04:05Z"), "{m}")
            }
            other => panic!("{other:?}"),
        }
        match init.finish(&frame, &x_pub(&r.root), NOW - 2 * 86_400) {
            Err(HandshakeError::Chain(m)) => assert!(m.contains("not valid before 2025-01-01T03:04:05Z"), "{m}"),
            other => panic!("{other:?}"),
        }

        let expired = Responder { leaf_not_after: NOW - 1, ..Responder::new() };
        match init.finish(&expired.answer(&init.first_flight()), &x_pub(&r.root), NOW) {
            Err(HandshakeError::Chain(m)) => {
                assert!(m.starts_with("the leaf certificate expired at 2025-01-02T03:04:04Z"), "{m}")
            }
            other => panic!("{other:?}"),
        }

        let rfc = Responder { rfc_noise: true, ..Responder::new() };
        assert!(matches!(
            init.finish(&rfc.answer(&init.first_flight()), &x_pub(&r.root), NOW),
            Err(HandshakeError::StaticDecrypt)
        ));

        let mut corrupt = frame.clone();
        let last = corrupt.len() - 1;
        corrupt[last] ^= 1;
        assert!(matches!(init.finish(&corrupt, &x_pub(&r.root), NOW), Err(HandshakeError::PayloadDecrypt)));
    }

    #[test]
    fn foreign_bytes_are_not_a_server_hello() {
        let init = Initiator::with_secret([1; 32]);
        let not = |frame: &[u8]| match init.finish(frame, &WHATSAPP_ROOT_KEY, NOW) {
            Err(HandshakeError::NotServerHello(m)) => m,
            other => panic!("{other:?}"),
        };
        let http = not(b"P/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        assert!(http.contains("not protobuf") || http.contains("no serverHello"), "{http}");
        assert!(not(&[0x00, 0x02, 0x02, 0x28]).contains("outside"));
        assert!(not(&[0u8; 40]).contains("invalid field number 0"));
        let frame = Responder::new().answer(&init.first_flight());
        assert!(not(&frame[..frame.len() - 1]).contains("remain"));
        assert!(not(&frame[..60]).contains("remain"));
        let mut big = frame.clone();
        big.resize(MAX_FRAME + 1, 0);
        assert!(not(&big).contains("outside"));
    }

    #[test]
    fn protobuf_unknown_fields_and_merging() {
        let r = Responder::new();
        let init = Initiator::with_secret([1; 32]);
        let frame = r.answer(&init.first_flight());
        // Unknown fields of every wire type, before and after; serverHello split in two occurrences.
        let Some((3, Wire::Bytes(hello))) = Fields::new(&frame).next_field().unwrap() else { panic!("no field 3") };
        let (first, second) = hello.split_at(34);
        let mut mangled = vec![0x08, 0x96, 0x01]; // field 1 varint
        mangled.extend_from_slice(&[0x11, 1, 2, 3, 4, 5, 6, 7, 8]); // field 2 fixed64
        mangled.extend_from_slice(&[0x2d, 1, 2, 3, 4]); // field 5 fixed32
        bytes_field(&mut mangled, 3, first);
        bytes_field(&mut mangled, 15, b"unknown bytes");
        bytes_field(&mut mangled, 3, second);
        mangled.extend_from_slice(&[0x18, 0x05]); // field 3 with the wrong wire type: skipped
        assert!(init.finish(&mangled, &x_pub(&r.root), NOW).is_ok());

        // A group wire type and an overlong varint are refused.
        let mut group = frame.clone();
        group.extend_from_slice(&[0x0b]);
        assert!(matches!(init.finish(&group, &x_pub(&r.root), NOW), Err(HandshakeError::NotServerHello(_))));
        let mut long = frame.clone();
        long.extend_from_slice(&[0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]);
        assert!(
            matches!(init.finish(&long, &x_pub(&r.root), NOW), Err(HandshakeError::NotServerHello(m)) if m.contains("overflows"))
        );
    }
}
