//! The text of a rate-limit setting, one format for both planes'
//! per-credential limits (`API_RATE_LIMIT` on the control plane,
//! `EDGE_RATE_LIMIT` on the edges): `off`, or `N/s`, `N/m`, `N/h`.

use std::num::NonZeroU32;
use std::time::Duration;

/// A sustained rate: `count` requests per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: NonZeroU32,
    pub per: Duration,
}

impl Rate {
    /// The time one request's allowance takes to come back (`per / count`).
    pub fn period(self) -> Duration {
        self.per / self.count.get()
    }
}

/// A rate that is not `off`, `N/s`, `N/m` or `N/h` with N at least 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?}: want off, or N/s, N/m or N/h with N at least 1")]
pub struct BadRate(pub String);

/// Parses a rate setting; `Ok(None)` is `off` (any case).
pub fn parse(text: &str) -> Result<Option<Rate>, BadRate> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let bad = || BadRate(text.to_owned());
    let (n, unit) = text.split_once('/').ok_or_else(bad)?;
    let count: NonZeroU32 = n.trim().parse().map_err(|_| bad())?;
    let per = match unit.trim() {
        "s" => Duration::from_secs(1),
        "m" => Duration::from_secs(60),
        "h" => Duration::from_secs(3600),
        _ => return Err(bad()),
    };
    Ok(Some(Rate { count, per }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse() {
        let r = parse(" 600/m ").unwrap().unwrap();
        assert_eq!(
            (r.count.get(), r.per, r.period()),
            (600, Duration::from_secs(60), Duration::from_millis(100))
        );
        assert_eq!(parse("OFF").unwrap(), None);
        for bad in ["0/s", "10", "10/d", "x/s", "-1/s", "", "5/"] {
            assert_eq!(parse(bad), Err(BadRate(bad.to_owned())), "{bad:?}");
        }
    }
}
