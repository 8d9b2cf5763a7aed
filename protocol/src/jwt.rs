//! Minting and verifying NEXUS tokens (JWT): one policy for both planes,
//! after RFC 8725.
//!
//! - The algorithm belongs to the key, never to the token. EdDSA keys are
//!   found by the header's `kid` (their RFC 7638 thumbprint, see
//!   [`crate::jwk`]); the HS256 secret, kept for development and tokens
//!   minted before keys existed, answers only tokens without a `kid`. A
//!   header whose `alg` is not its key's is refused, and so is a `kid` no
//!   key has ([`TokenError::UnknownKey`]).
//! - A `crit` header is refused (RFC 7515 §4.1.11): nothing here
//!   understands an extension, so none may be required.
//! - `exp` and `aud` are required; `aud` is a string or an array that
//!   contains [`AUDIENCE`] (RFC 7519 §4.1.3); `nbf` is checked when present;
//!   `iat` may not be in the future. Clocks may disagree by [`LEEWAY_SECS`].
//! - Every minted token carries a random `jti` (what a revocation names).
//!   Lifetimes are capped where tokens are minted
//!   ([`TokenSigner::with_max_ttl`]) and where they are accepted
//!   ([`TokenVerifier::with_max_ttl`]): a token living longer than
//!   `TOKEN_MAX_TTL` is refused, which is also what lets a revocation be
//!   forgotten once every token it could name has expired.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};

use crate::jwk::{PublicKey, pkcs8_der};
use crate::token::{AUDIENCE, Claims, ContextScope, MAX_JTI_LEN, Role};

/// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
pub const LEEWAY_SECS: u64 = 30;
/// Longest token accepted, in bytes; anything longer is refused unparsed.
pub const MAX_TOKEN_LEN: usize = 4096;

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token is longer than {MAX_TOKEN_LEN} bytes")]
    TooLong,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token was issued in the future (iat)")]
    IssuedInFuture,
    #[error("token is for another audience")]
    WrongAudience,
    #[error("token signature is not valid")]
    BadSignature,
    #[error("token algorithm {found} is not its key's ({expected})")]
    WrongAlgorithm { found: String, expected: &'static str },
    #[error("token key id {0:?} is not one this service accepts")]
    UnknownKey(String),
    #[error("token has no key id (kid), and this service accepts no HS256 tokens")]
    MissingKid,
    #[error("token has a crit header; no extension is understood here")]
    CriticalHeader,
    #[error("token jti is longer than {MAX_JTI_LEN} bytes")]
    JtiTooLong,
    #[error("token lifetime (exp - iat) exceeds the {max} s this service accepts")]
    LifetimeTooLong { max: i64 },
    #[error("token is malformed: {0}")]
    Malformed(#[source] jsonwebtoken::errors::Error),
}

/// Why a token was not minted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MintError {
    #[error("lifetime must be positive (got {0} s)")]
    NotPositive(i64),
    #[error("lifetime {ttl} s exceeds TOKEN_MAX_TTL ({max} s)")]
    OverCap { ttl: i64, max: i64 },
    #[error(transparent)]
    Team(#[from] crate::token::BadTeam),
    #[error("subject {0:?}: subjects starting with \"team:\" are reserved for team owners")]
    ReservedSubject(String),
}

fn alg_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::HS256 => "HS256",
        Algorithm::EdDSA => "EdDSA",
        _ => "other",
    }
}

fn validation(alg: Algorithm) -> Validation {
    let mut v = Validation::new(alg);
    v.set_audience(&[AUDIENCE]);
    v.set_required_spec_claims(&["exp", "aud"]);
    v.validate_nbf = true;
    v.leeway = LEEWAY_SECS;
    v
}

/// One verification key, its algorithm pinned.
#[derive(Clone)]
struct Key {
    alg: Algorithm,
    decoding: DecodingKey,
    validation: Validation,
}

impl Key {
    fn eddsa(public: &PublicKey) -> Self {
        Self {
            alg: Algorithm::EdDSA,
            decoding: DecodingKey::from_ed_der(public.key.as_bytes()),
            validation: validation(Algorithm::EdDSA),
        }
    }

    fn hs256(secret: &[u8]) -> Self {
        Self {
            alg: Algorithm::HS256,
            decoding: DecodingKey::from_secret(secret),
            validation: validation(Algorithm::HS256),
        }
    }
}

/// Verifies tokens with the keys it holds: Ed25519 public keys by `kid`
/// (several at once, so a rotation needs no downtime) and, when
/// configured, the HS256 secret for tokens without a `kid`.
#[derive(Clone)]
pub struct TokenVerifier {
    public: Vec<(PublicKey, Key)>,
    hs256: Option<Key>,
    max_ttl: Option<i64>,
}

impl fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("mode", &self.mode())
            .field("kids", &self.kids().collect::<Vec<_>>())
            .finish()
    }
}

impl TokenVerifier {
    /// HS256 with a shared secret only (development, and the old default).
    pub fn hs256(secret: &[u8]) -> Self {
        Self { public: Vec::new(), hs256: Some(Key::hs256(secret)), max_ttl: None }
    }

    /// EdDSA with these public keys only.
    pub fn eddsa(keys: impl IntoIterator<Item = PublicKey>) -> Self {
        let public = keys.into_iter().map(|k| (k.clone(), Key::eddsa(&k))).collect();
        Self { public, hs256: None, max_ttl: None }
    }

    /// Refuses tokens whose lifetime (`exp - iat`) exceeds `secs`.
    pub fn with_max_ttl(mut self, secs: i64) -> Self {
        self.max_ttl = Some(secs);
        self
    }

    /// The longest lifetime accepted, when capped.
    pub fn max_ttl(&self) -> Option<i64> {
        self.max_ttl
    }

    /// Also accepts HS256 tokens (without `kid`) signed with `secret`.
    pub fn with_hs256(mut self, secret: &[u8]) -> Self {
        self.hs256 = Some(Key::hs256(secret));
        self
    }

    /// Also accepts tokens signed by `key` (a no-op when it is held).
    pub fn with_key(mut self, key: PublicKey) -> Self {
        if !self.public.iter().any(|(k, _)| k.kid == key.kid) {
            let entry = Key::eddsa(&key);
            self.public.push((key, entry));
        }
        self
    }

    /// The ids of the public keys held, in order.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.public.iter().map(|(k, _)| k.kid.as_str())
    }

    /// The public keys held (what `/.well-known/jwks.json` serves).
    pub fn public_keys(&self) -> Vec<PublicKey> {
        self.public.iter().map(|(k, _)| k.clone()).collect()
    }

    pub fn accepts_hs256(&self) -> bool {
        self.hs256.is_some()
    }

    /// `eddsa`, `hs256` or `eddsa+hs256` (both: a migration in progress).
    pub fn mode(&self) -> &'static str {
        match (self.public.is_empty(), self.hs256.is_some()) {
            (false, false) => "eddsa",
            (false, true) => "eddsa+hs256",
            (true, true) => "hs256",
            (true, false) => "none",
        }
    }

    /// Checks header, key, signature, audience and times; returns the
    /// claims.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        use jsonwebtoken::errors::ErrorKind;
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::TooLong);
        }
        let header = jsonwebtoken::decode_header(token).map_err(TokenError::Malformed)?;
        if header.crit.is_some() {
            return Err(TokenError::CriticalHeader);
        }
        let key = match &header.kid {
            Some(kid) => match self.public.iter().find(|(k, _)| &k.kid == kid) {
                Some((_, key)) => key,
                None => return Err(TokenError::UnknownKey(kid.chars().take(64).collect())),
            },
            None => self.hs256.as_ref().ok_or(TokenError::MissingKid)?,
        };
        if header.alg != key.alg {
            return Err(TokenError::WrongAlgorithm {
                found: format!("{:?}", header.alg),
                expected: alg_name(key.alg),
            });
        }
        let claims = match jsonwebtoken::decode::<Claims>(token, &key.decoding, &key.validation) {
            Ok(data) => data.claims,
            Err(e) => {
                return Err(match e.kind() {
                    ErrorKind::ExpiredSignature => TokenError::Expired,
                    ErrorKind::ImmatureSignature => TokenError::NotYetValid,
                    ErrorKind::InvalidAudience => TokenError::WrongAudience,
                    ErrorKind::InvalidSignature => TokenError::BadSignature,
                    ErrorKind::InvalidAlgorithm => TokenError::WrongAlgorithm {
                        found: format!("{:?}", header.alg),
                        expected: alg_name(key.alg),
                    },
                    _ => TokenError::Malformed(e),
                });
            }
        };
        // jsonwebtoken does not look at `iat`; a token "issued" later than
        // now is forged or from a broken clock, and would outlive a
        // revocation of its subject "before now".
        if claims.iat > unix_now().saturating_add(LEEWAY_SECS as i64) {
            return Err(TokenError::IssuedInFuture);
        }
        if claims.jti.as_ref().is_some_and(|j| j.len() > MAX_JTI_LEN) {
            return Err(TokenError::JtiTooLong);
        }
        if let Some(max) = self.max_ttl
            && claims.exp.saturating_sub(claims.iat) > max
        {
            return Err(TokenError::LifetimeTooLong { max });
        }
        Ok(claims)
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A fresh token id: 16 random bytes, base64url.
pub fn new_jti() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>())
}

/// Mints tokens (the control plane's `token` command, dev mode, tests,
/// tools).
#[derive(Clone)]
pub struct TokenSigner {
    key: EncodingKey,
    header: Header,
    public: Option<PublicKey>,
    max_ttl: Option<i64>,
}

impl fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSigner")
            .field("alg", &alg_name(self.header.alg))
            .field("kid", &self.header.kid)
            .field("max_ttl", &self.max_ttl)
            .finish_non_exhaustive()
    }
}

impl TokenSigner {
    /// HS256 with a shared secret: tokens without `kid`.
    pub fn hs256(secret: &[u8]) -> Self {
        Self {
            key: EncodingKey::from_secret(secret),
            header: Header::new(Algorithm::HS256),
            public: None,
            max_ttl: None,
        }
    }

    /// EdDSA with `key`: every token's `kid` is the public key's thumbprint.
    pub fn eddsa(key: &SigningKey) -> Self {
        let public = PublicKey::new(key.verifying_key());
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(public.kid.clone());
        Self {
            key: EncodingKey::from_ed_der(&pkcs8_der(key)),
            header,
            public: Some(public),
            max_ttl: None,
        }
    }

    /// Refuses to mint tokens living longer than `secs`.
    pub fn with_max_ttl(mut self, secs: i64) -> Self {
        self.max_ttl = Some(secs);
        self
    }

    pub fn max_ttl(&self) -> Option<i64> {
        self.max_ttl
    }

    /// The public half, for EdDSA signers (what verifiers must hold).
    pub fn public_key(&self) -> Option<&PublicKey> {
        self.public.as_ref()
    }

    /// `EdDSA` or `HS256`.
    pub fn algorithm(&self) -> &'static str {
        alg_name(self.header.alg)
    }

    /// A verifier that accepts exactly what this signer mints.
    pub fn verifier_for(&self, secret_if_hs256: Option<&[u8]>) -> Option<TokenVerifier> {
        match (&self.public, secret_if_hs256) {
            (Some(p), _) => Some(TokenVerifier::eddsa([p.clone()])),
            (None, Some(s)) => Some(TokenVerifier::hs256(s)),
            (None, None) => None,
        }
    }

    /// A token for `sub` valid from `now` (Unix seconds) for `ttl_secs`,
    /// with a fresh `jti`; refused past the signer's cap.
    pub fn issue(
        &self,
        sub: &str,
        role: Role,
        contexts: ContextScope,
        now: i64,
        ttl_secs: i64,
    ) -> Result<String, MintError> {
        self.issue_for_team(sub, None, role, contexts, now, ttl_secs)
    }

    /// [`TokenSigner::issue`] with a `team` claim (checked with
    /// [`crate::token::check_team`]): the aliases the holder creates are
    /// owned by the team.
    pub fn issue_for_team(
        &self,
        sub: &str,
        team: Option<&str>,
        role: Role,
        contexts: ContextScope,
        now: i64,
        ttl_secs: i64,
    ) -> Result<String, MintError> {
        if sub.starts_with(crate::token::TEAM_OWNER_PREFIX) {
            return Err(MintError::ReservedSubject(sub.to_owned()));
        }
        if let Some(t) = team {
            crate::token::check_team(t)?;
        }
        if ttl_secs <= 0 {
            return Err(MintError::NotPositive(ttl_secs));
        }
        if let Some(max) = self.max_ttl
            && ttl_secs > max
        {
            return Err(MintError::OverCap { ttl: ttl_secs, max });
        }
        let claims = Claims {
            sub: sub.to_owned(),
            role,
            contexts,
            aud: AUDIENCE.into(),
            iat: now,
            exp: now.saturating_add(ttl_secs),
            nbf: None,
            jti: Some(new_jti()),
            team: team.map(str::to_owned),
        };
        Ok(self.sign(&claims))
    }

    /// [`TokenSigner::issue`] for tests and tools, whose signers carry no
    /// cap. Panics when the lifetime is refused; code that mints for
    /// callers uses `issue`.
    pub fn mint(
        &self,
        sub: &str,
        role: Role,
        contexts: ContextScope,
        now: i64,
        ttl_secs: i64,
    ) -> String {
        match self.issue(sub, role, contexts, now, ttl_secs) {
            Ok(token) => token,
            Err(e) => panic!("TokenSigner::mint: {e} (use issue)"),
        }
    }

    /// Signs arbitrary claims (tests use it to make bad tokens on purpose).
    pub fn sign(&self, claims: &Claims) -> String {
        jsonwebtoken::encode(&self.header, claims, &self.key)
            .expect("signing plain claims with a well-formed key cannot fail")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use ed25519_dalek::Signer as _;

    fn now() -> i64 {
        unix_now()
    }

    fn ed(b: u8) -> SigningKey {
        SigningKey::from_bytes(&[b; 32])
    }

    /// `header.claims.signature` built by hand, as PyJWT or an attacker
    /// would: nothing of jsonwebtoken's encoder in between.
    fn by_hand(header: serde_json::Value, claims: serde_json::Value, key: &SigningKey) -> String {
        let msg = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = key.sign(msg.as_bytes());
        format!("{msg}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
    }

    fn hs_by_hand(header: serde_json::Value, claims: serde_json::Value, secret: &[u8]) -> String {
        let msg = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = jsonwebtoken::crypto::sign(
            msg.as_bytes(),
            &EncodingKey::from_secret(secret),
            Algorithm::HS256,
        )
        .unwrap();
        format!("{msg}.{sig}")
    }

    fn claims(iat: i64) -> serde_json::Value {
        serde_json::json!({"sub": "svc", "role": "resolver", "contexts": ["*"],
            "aud": AUDIENCE, "iat": iat, "exp": iat + 600, "jti": "j1"})
    }

    #[test]
    fn round_trip_and_refusals() {
        let s = TokenSigner::hs256(b"secret");
        let v = TokenVerifier::hs256(b"secret");
        let t = s.mint("svc", Role::Resolver, ContextScope::All, now(), 60);
        let c = v.verify(&t).unwrap();
        assert_eq!(c.sub, "svc");
        assert!(c.jti.as_ref().is_some_and(|j| j.len() == 22));

        let expired = s.mint("svc", Role::Resolver, ContextScope::All, now() - 1000, 60);
        assert!(matches!(v.verify(&expired), Err(TokenError::Expired)));

        let other = TokenVerifier::hs256(b"other");
        assert!(matches!(other.verify(&t), Err(TokenError::BadSignature)));

        let mut c = v.verify(&t).unwrap();
        c.aud = "someone-else".into();
        assert!(matches!(v.verify(&s.sign(&c)), Err(TokenError::WrongAudience)));

        c.aud = AUDIENCE.into();
        c.nbf = Some(now() + 1000);
        assert!(matches!(v.verify(&s.sign(&c)), Err(TokenError::NotYetValid)));

        // alg: none, with the same claims.
        let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.", t.split('.').nth(1).unwrap());
        assert!(v.verify(&none).is_err());
        assert!(matches!(v.verify(&"a".repeat(5000)), Err(TokenError::TooLong)));
    }

    #[test]
    fn eddsa_by_kid_and_rotation_with_two_keys() {
        let (old, new) = (TokenSigner::eddsa(&ed(1)), TokenSigner::eddsa(&ed(2)));
        let both = TokenVerifier::eddsa([
            old.public_key().unwrap().clone(),
            new.public_key().unwrap().clone(),
        ]);
        assert_eq!(both.mode(), "eddsa");
        for s in [&old, &new] {
            let t = s.mint("svc", Role::Admin, ContextScope::All, now(), 60);
            assert_eq!(both.verify(&t).unwrap().role, Role::Admin);
        }
        // After the rotation the old key is dropped: its tokens name a kid
        // nobody holds.
        let only_new = TokenVerifier::eddsa([new.public_key().unwrap().clone()]);
        let t = old.mint("svc", Role::Admin, ContextScope::All, now(), 60);
        assert!(
            matches!(only_new.verify(&t), Err(TokenError::UnknownKey(k)) if k == old.public_key().unwrap().kid)
        );
    }

    #[test]
    fn an_hs256_token_is_refused_by_an_eddsa_verifier_whatever_the_secret() {
        let v = TokenVerifier::eddsa([PublicKey::new(ed(1).verifying_key())]);
        let t = TokenSigner::hs256(b"any").mint("x", Role::Admin, ContextScope::All, now(), 60);
        assert!(matches!(v.verify(&t), Err(TokenError::MissingKid)));
        // HS256 naming the EdDSA key (the classic confusion: the public key
        // as HMAC secret) is refused on the algorithm, before any MAC.
        let kid = PublicKey::new(ed(1).verifying_key()).kid;
        let forged = hs_by_hand(
            serde_json::json!({"alg": "HS256", "kid": kid}),
            claims(now()),
            ed(1).verifying_key().as_bytes(),
        );
        assert!(matches!(v.verify(&forged), Err(TokenError::WrongAlgorithm { .. })));
        // And an EdDSA token is never checked against the HS256 secret.
        let hs = TokenVerifier::hs256(b"secret");
        let t = TokenSigner::eddsa(&ed(1)).mint("x", Role::Admin, ContextScope::All, now(), 60);
        assert!(matches!(hs.verify(&t), Err(TokenError::UnknownKey(_))));
    }

    #[test]
    fn rfc_cases_on_tokens_built_by_hand() {
        let key = ed(3);
        let kid = PublicKey::new(key.verifying_key()).kid;
        let v = TokenVerifier::eddsa([PublicKey::new(key.verifying_key())]);
        let header = serde_json::json!({"alg": "EdDSA", "typ": "JWT", "kid": kid});
        assert!(v.verify(&by_hand(header.clone(), claims(now()), &key)).is_ok());

        // RFC 7515 §4.1.11: crit names extensions that must be understood.
        let mut crit = header.clone();
        crit["crit"] = serde_json::json!(["exp"]);
        assert!(matches!(
            v.verify(&by_hand(crit, claims(now()), &key)),
            Err(TokenError::CriticalHeader)
        ));

        // Issued an hour from now.
        assert!(matches!(
            v.verify(&by_hand(header.clone(), claims(now() + 3600), &key)),
            Err(TokenError::IssuedInFuture)
        ));
        // Within the leeway is fine.
        assert!(v.verify(&by_hand(header.clone(), claims(now() + 10), &key)).is_ok());

        // RFC 7519 §4.1.3: an array that contains the audience.
        let mut many = claims(now());
        many["aud"] = serde_json::json!(["billing", AUDIENCE]);
        let c = v.verify(&by_hand(header.clone(), many.clone(), &key)).unwrap();
        assert!(c.aud.contains(AUDIENCE));
        many["aud"] = serde_json::json!(["billing"]);
        assert!(matches!(
            v.verify(&by_hand(header.clone(), many, &key)),
            Err(TokenError::WrongAudience)
        ));

        let mut no_aud = claims(now());
        no_aud.as_object_mut().unwrap().remove("aud");
        assert!(v.verify(&by_hand(header.clone(), no_aud, &key)).is_err());

        let mut long = claims(now());
        long["jti"] = "j".repeat(MAX_JTI_LEN + 1).into();
        assert!(matches!(v.verify(&by_hand(header, long, &key)), Err(TokenError::JtiTooLong)));

        // The same three on HS256.
        let hs = TokenVerifier::hs256(b"secret");
        let h = serde_json::json!({"alg": "HS256", "typ": "JWT"});
        let mut crit = h.clone();
        crit["crit"] = serde_json::json!(["b64"]);
        assert!(matches!(
            hs.verify(&hs_by_hand(crit, claims(now()), b"secret")),
            Err(TokenError::CriticalHeader)
        ));
        assert!(matches!(
            hs.verify(&hs_by_hand(h.clone(), claims(now() + 3600), b"secret")),
            Err(TokenError::IssuedInFuture)
        ));
        let mut many = claims(now());
        many["aud"] = serde_json::json!([AUDIENCE, "other"]);
        assert!(hs.verify(&hs_by_hand(h, many, b"secret")).is_ok());
    }

    #[test]
    fn lifetimes_are_capped_at_mint() {
        let s = TokenSigner::eddsa(&ed(4)).with_max_ttl(3600);
        assert!(s.issue("x", Role::Viewer, ContextScope::All, now(), 3600).is_ok());
        assert_eq!(
            s.issue("x", Role::Viewer, ContextScope::All, now(), 3601),
            Err(MintError::OverCap { ttl: 3601, max: 3600 })
        );
        assert_eq!(
            s.issue("x", Role::Viewer, ContextScope::All, now(), 0),
            Err(MintError::NotPositive(0))
        );
        let a = s.issue("x", Role::Viewer, ContextScope::All, now(), 60).unwrap();
        let b = s.issue("x", Role::Viewer, ContextScope::All, now(), 60).unwrap();
        let v = s.verifier_for(None).unwrap();
        assert_ne!(v.verify(&a).unwrap().jti, v.verify(&b).unwrap().jti);
        // And where tokens are accepted.
        let long =
            TokenSigner::eddsa(&ed(4)).mint("x", Role::Viewer, ContextScope::All, now(), 3601);
        assert!(v.verify(&long).is_ok());
        let capped = v.with_max_ttl(3600);
        assert!(matches!(capped.verify(&long), Err(TokenError::LifetimeTooLong { max: 3600 })));
        assert!(capped.verify(&a).is_ok());
        assert!(!format!("{s:?}").contains("key:"));
    }
}
