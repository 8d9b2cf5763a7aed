//! What the NEXUS control plane and edges share, and nothing else: no I/O,
//! no runtime.
//!
//! - [`names`]: `Context` and `AliasName`, the one parsing rule for names.
//! - [`record`]: the alias record and its canonical endpoint.
//! - [`snapshot`]: snapshots and deltas, named by `(epoch, version)`.
//! - [`credentials`]: revocations and API-key grants, carried by both.
//! - [`envelope`]: the signed, hashed envelope and the bounded codec.
//! - [`declarative`]: the YAML/JSON alias file.
//! - [`token`]: token claims and roles.
//! - [`jwt`]: minting and verifying tokens, one policy for both planes.
//! - [`jwk`]: token keys in PEM and JWK form, and their ids.
//! - [`keys`]: Redis key and channel names.
//! - [`head`]: the published head `"epoch:version"` (Redis key and notice).
//! - [`signing`]: Ed25519 key parsing and the development key pair.
//! - [`secret`]: `Secret`, the one redacted configuration value of both planes.
//! - [`quic`]: the frames of the QUIC resolve protocol (`nexus-resolve/1`).
//! - [`rate`]: the text of a rate-limit setting (`N/s`, `N/m`, `N/h`, `off`).

pub mod credentials;
pub mod declarative;
pub mod envelope;
pub mod head;
pub mod jwk;
pub mod jwt;
pub mod keys;
pub mod names;
pub mod quic;
pub mod rate;
pub mod record;
pub mod secret;
pub mod signing;
pub mod snapshot;
pub mod token;

pub use credentials::{CredentialChange, Credentials, KeyDigest, KeyGrant};
pub use declarative::{AliasEntry, AliasFile, FileError};
pub use envelope::{DecodeError, Header, Kind, Limits};
pub use head::{Head, HeadError, Statement};
pub use jwk::{KeyTextError, PublicKey};
pub use jwt::{MintError, TokenError, TokenSigner, TokenVerifier};
pub use names::{AliasName, Context, NameError};
pub use record::{AliasKey, AliasRecord, Canonical, CanonicalError};
pub use secret::Secret;
pub use snapshot::{Delta, DeltaFit, KnownContexts, Snapshot};
pub use token::{AUDIENCE, Audience, Claims, ContextScope, Role};
