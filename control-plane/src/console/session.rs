//! Console sessions: server-side, in memory, keyed by the SHA-256 of a
//! random id that only the browser's cookie holds.
//!
//! What a session keeps is the credential the admin signed in with (an API
//! key or a token), never sent back to the browser, never logged (its
//! `Debug` is redacted), because every request re-authenticates it through
//! `crate::auth::authenticate`: a revoked API key (or a revoked token, once
//! revocation is checked there) ends its console sessions at the next click,
//! and an expired token ends its session at its `exp`. Holding only the
//! `Principal` would keep a revoked key's session alive until it expired.
//!
//! Consequences, documented in the README: a restart signs everyone out;
//! several control-plane instances behind one name need sticky sessions
//! (or the admin signs in again on the other instance).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The cookie's name.
pub const COOKIE: &str = "nexus_console";

/// Bounds on the map: a flood of sign-ins cannot grow memory without end.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Sessions in all.
    pub max_sessions: usize,
    /// Sessions of one principal (name); its oldest is ended past this.
    pub max_per_principal: usize,
    /// Ended after this long without a request.
    pub idle: Duration,
    /// Ended this long after sign-in, however busy.
    pub absolute: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_sessions: 10_000,
            max_per_principal: 20,
            idle: Duration::from_secs(30 * 60),
            absolute: Duration::from_secs(8 * 3600),
        }
    }
}

/// The secret a session re-authenticates with on every request.
#[derive(Clone)]
pub struct Credential(String);

impl Credential {
    pub fn new(raw: String) -> Self {
        Self(raw)
    }

    /// The `Authorization` header value the API would have been sent.
    pub fn header(&self) -> String {
        format!("Bearer {}", self.0)
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credential(<redacted>)")
    }
}

#[derive(Debug, Clone)]
struct Entry {
    credential: Credential,
    /// The principal's name when signing in (for the per-principal bound).
    owner: String,
    csrf: String,
    created: Instant,
    last_seen: Instant,
}

/// What a request learns from its session.
#[derive(Debug, Clone)]
pub struct Found {
    pub credential: Credential,
    /// The synchronizer token every form of this session carries.
    pub csrf: String,
}

/// A new session: the cookie value (shown to the browser once) and how
/// long it lives. Its CSRF token reaches the pages through [`Found`].
#[derive(Debug, Clone)]
pub struct Opened {
    pub id: String,
    pub max_age: Duration,
}

#[derive(Debug, Default)]
pub struct Sessions {
    limits: Limits,
    map: Mutex<HashMap<[u8; 32], Entry>>,
}

fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

fn key(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

impl Sessions {
    pub fn new(limits: Limits) -> Self {
        Self { limits, map: Mutex::new(HashMap::new()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Entry>> {
        match self.map.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn live(&self, e: &Entry, now: Instant) -> bool {
        now.duration_since(e.last_seen) < self.limits.idle
            && now.duration_since(e.created) < self.limits.absolute
    }

    /// Opens a session for `owner` holding `credential`, ending expired
    /// ones and, past the bounds, the oldest.
    pub fn open(&self, credential: Credential, owner: &str, now: Instant) -> Opened {
        let id = random_token();
        let csrf = random_token();
        let mut map = self.lock();
        map.retain(|_, e| self.live(e, now));
        let mine: Vec<([u8; 32], Instant)> =
            map.iter().filter(|(_, e)| e.owner == owner).map(|(k, e)| (*k, e.created)).collect();
        if mine.len() >= self.limits.max_per_principal
            && let Some((k, _)) = mine.iter().min_by_key(|(_, c)| *c)
        {
            map.remove(k);
        }
        if map.len() >= self.limits.max_sessions {
            let oldest = map.iter().min_by_key(|(_, e)| e.last_seen).map(|(k, _)| *k);
            if let Some(k) = oldest {
                map.remove(&k);
            }
        }
        map.insert(
            key(&id),
            Entry { credential, owner: owner.to_owned(), csrf, created: now, last_seen: now },
        );
        Opened { id, max_age: self.limits.absolute }
    }

    /// The live session `id` names, touched; an expired one is ended.
    pub fn find(&self, id: &str, now: Instant) -> Option<Found> {
        let k = key(id);
        let mut map = self.lock();
        let live = map.get(&k).map(|e| self.live(e, now))?;
        if !live {
            map.remove(&k);
            return None;
        }
        let e = map.get_mut(&k)?;
        e.last_seen = now;
        Some(Found { credential: e.credential.clone(), csrf: e.csrf.clone() })
    }

    /// Ends session `id` (sign-out, or a credential no longer accepted).
    pub fn end(&self, id: &str) {
        self.lock().remove(&key(id));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// Whether a form's token is the session's (constant time).
pub fn csrf_matches(session: &str, form: &str) -> bool {
    session.len() == form.len() && bool::from(session.as_bytes().ct_eq(form.as_bytes()))
}

/// The session id in a `Cookie` header, if any.
pub fn from_cookie_header(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty() && v.len() <= 64)
}

/// `Set-Cookie` for a new session: HttpOnly, SameSite=Strict, scoped to
/// the console, Secure when the console is reached over TLS.
pub fn set_cookie(id: &str, max_age: Duration, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{COOKIE}={id}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        max_age.as_secs()
    )
}

/// `Set-Cookie` that removes the cookie.
pub fn clear_cookie(secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0{secure}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_sessions: 3,
            max_per_principal: 2,
            idle: Duration::from_secs(10),
            absolute: Duration::from_secs(100),
        }
    }

    #[test]
    fn a_session_is_found_until_idle_or_absolute_expiry_or_its_end() {
        let s = Sessions::new(limits());
        let t0 = Instant::now();
        let o = s.open(Credential::new("k".into()), "a", t0);
        let found = s.find(&o.id, t0 + Duration::from_secs(9)).unwrap();
        assert!(!found.csrf.is_empty() && found.csrf != o.id, "a token of its own");
        assert!(s.find(&o.id, t0 + Duration::from_secs(18)).is_some(), "touched at 9 s");
        assert!(s.find(&o.id, t0 + Duration::from_secs(29)).is_none(), "idle for 11 s");
        let o = s.open(Credential::new("k".into()), "a", t0);
        for i in 1..=10 {
            assert!(s.find(&o.id, t0 + Duration::from_secs(i * 9)).is_some());
        }
        assert!(s.find(&o.id, t0 + Duration::from_secs(100)).is_none(), "absolute limit");
        let o = s.open(Credential::new("k".into()), "a", t0);
        s.end(&o.id);
        assert!(s.find(&o.id, t0).is_none());
        assert!(s.find("not-a-session", t0).is_none());
    }

    #[test]
    fn the_map_is_bounded_in_all_and_per_principal() {
        let s = Sessions::new(limits());
        let t0 = Instant::now();
        let a1 = s.open(Credential::new("k".into()), "a", t0);
        let a2 = s.open(Credential::new("k".into()), "a", t0 + Duration::from_millis(1));
        let a3 = s.open(Credential::new("k".into()), "a", t0 + Duration::from_millis(2));
        let now = t0 + Duration::from_millis(3);
        assert!(s.find(&a1.id, now).is_none(), "a's oldest ended");
        assert!(s.find(&a2.id, now).is_some() && s.find(&a3.id, now).is_some());
        s.open(Credential::new("k".into()), "b", now);
        s.open(Credential::new("k".into()), "c", now);
        assert_eq!(s.len(), 3);
    }

    #[test]
    fn cookies_and_tokens() {
        assert_eq!(from_cookie_header("a=b; nexus_console=xyz; c=d"), Some("xyz"));
        assert_eq!(from_cookie_header("a=b"), None);
        assert_eq!(from_cookie_header("nexus_console="), None);
        let c = set_cookie("xyz", Duration::from_secs(60), true);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.ends_with("Secure"));
        assert!(!set_cookie("xyz", Duration::from_secs(60), false).contains("Secure"));
        assert!(
            csrf_matches("abc", "abc") && !csrf_matches("abc", "abd") && !csrf_matches("a", "")
        );
        assert_eq!(format!("{:?}", Credential::new("nxk_secret".into())), "Credential(<redacted>)");
    }
}
