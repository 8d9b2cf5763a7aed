//! Why the configuration was refused: one error for every part of it, a
//! leaf the parts import (never `config.rs`, which imports them).

use std::fmt;

/// Shortest `SECRET_KEY` accepted, in bytes: HS256 wants at least 256 bits.
pub(crate) const MIN_SECRET_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name}: {message}")]
    Invalid { name: &'static str, message: String },
    #[error(
        "no token keys: set NEXUS_TOKEN_SIGNING_KEY (or NEXUS_TOKEN_SIGNING_KEY_FILE, an Ed25519 \
         PKCS#8 PEM), or NEXUS_TOKEN_VERIFY_KEYS for an instance that only verifies; \
         SECRET_KEY (HS256, at least {MIN_SECRET_LEN} random bytes) is for development"
    )]
    MissingSecret,
    #[error(
        "this instance holds only verify keys and cannot mint tokens; set \
         NEXUS_TOKEN_SIGNING_KEY (or mint on the instance that holds it)"
    )]
    NoSigningKey,
}

pub(super) fn invalid(name: &'static str, message: impl fmt::Display) -> ConfigError {
    ConfigError::Invalid { name, message: message.to_string() }
}
