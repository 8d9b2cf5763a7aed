//! What every reader of the environment shares, on both planes: the
//! error, the typed parsers over an injected lookup, and [`Secret`].
//! Each plane wraps [`EnvError`] in its own configuration error, which
//! adds the refusals only it makes.

use std::fmt;
use std::path::PathBuf;

/// Why a variable was refused.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error("{name}={value:?} is not valid: {reason}")]
    Invalid { name: &'static str, value: String, reason: String },
    #[error("cannot read {name} {path:?}: {source}")]
    KeyFile { name: &'static str, path: PathBuf, source: std::io::Error },
}

/// One type for every secret of both planes; redacted in `Debug`.
pub use nexus_protocol::Secret;

/// The switch that lets a binary fall back to the public development key
/// of the state signature when none is configured: for tests only (`dev`
/// generates real keys). Without it, a control plane that publishes and an
/// edge that syncs refuse to start without their key: whoever can write
/// Redis could otherwise sign any state, API-key grants included.
pub const INSECURE_DEV_KEYS: &str = "NEXUS_INSECURE_DEV_KEYS";

/// Whether [`INSECURE_DEV_KEYS`] is on.
pub fn insecure_dev_keys(env: &impl Fn(&str) -> Option<String>) -> Result<bool, EnvError> {
    switch(env, INSECURE_DEV_KEYS, false)
}

/// `name` parsed as `T`, `None` when unset.
pub fn parsed<T>(
    env: &impl Fn(&str) -> Option<String>,
    name: &'static str,
) -> Result<Option<T>, EnvError>
where
    T: std::str::FromStr,
    T::Err: fmt::Display,
{
    env(name)
        .map(|value| {
            value.trim().parse().map_err(|e: T::Err| EnvError::Invalid {
                name,
                reason: e.to_string(),
                value,
            })
        })
        .transpose()
}

/// A yes/no switch (`true`/`false`, `on`/`off`, `1`/`0`, `yes`/`no`);
/// `default` when unset or empty.
pub fn switch(
    env: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: bool,
) -> Result<bool, EnvError> {
    match env(name).as_deref().map(str::trim) {
        None | Some("") => Ok(default),
        Some("1" | "true" | "on" | "yes") => Ok(true),
        Some("0" | "false" | "off" | "no") => Ok(false),
        Some(other) => Err(EnvError::Invalid {
            name,
            value: other.to_owned(),
            reason: "expected true/false (or on/off)".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_and_switches_refuse_what_they_do_not_know() {
        let s = Secret::new("redis://:pw@host");
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert_eq!(s.expose(), "redis://:pw@host");
        let env = |k: &str| (k == "X").then(|| " off ".to_owned());
        assert!(!switch(&env, "X", true).unwrap());
        assert!(switch(&env, "Y", true).unwrap());
        assert!(switch(&|_: &str| Some("maybe".into()), "X", true).is_err());
        assert_eq!(parsed::<u16>(&|_: &str| Some(" 7 ".into()), "N").unwrap(), Some(7));
    }
}
