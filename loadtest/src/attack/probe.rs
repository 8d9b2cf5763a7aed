//! What the edges answer while an attack runs: the canary alias (whose
//! canonical changed after the attacker's copy was taken), the revoked API
//! key (which must stay refused), and each edge's health.

use std::time::Duration;

/// The edges and what to ask them.
#[derive(Debug, Clone)]
pub struct Probe {
    pub http: reqwest::Client,
    /// Edge base URLs (`http://host:port`).
    pub edges: Vec<String>,
    /// `context/alias` of the canary.
    pub canary: String,
    /// The canary's current canonical: anything else is a rollback or a
    /// forgery served.
    pub current: String,
    /// A credential that resolves (to tell a refusal from a broken probe).
    pub good: String,
    /// The credential revoked since the attacker's copy.
    pub revoked: String,
}

/// The edges at one look.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Observation {
    pub edges: usize,
    /// Edges answering the canary with its current canonical.
    pub current: usize,
    /// Edges that resolved with the revoked credential.
    pub revoked_accepted: usize,
    /// Edges whose status says `stale`.
    pub stale: usize,
}

impl Observation {
    pub fn all_current(&self) -> bool {
        self.current == self.edges
    }

    /// The worse of two looks: fewest current, most accepted, most stale.
    pub fn worst(self, other: Observation) -> Observation {
        Observation {
            edges: self.edges.max(other.edges),
            current: self.current.min(other.current),
            revoked_accepted: self.revoked_accepted.max(other.revoked_accepted),
            stale: self.stale.max(other.stale),
        }
    }
}

impl Probe {
    /// One look at every edge.
    pub async fn look(&self) -> Observation {
        let mut o = Observation { edges: self.edges.len(), ..Observation::default() };
        let path = format!("/api/aliases/resolve/{}", self.canary);
        for edge in &self.edges {
            let url = format!("{edge}{path}");
            if let Some(body) = self.get(&url, &self.good).await
                && body["canonical_name"].as_str() == Some(self.current.as_str())
            {
                o.current += 1;
            }
            if self.get(&url, &self.revoked).await.is_some() {
                o.revoked_accepted += 1;
            }
            let status = self.get(&format!("{edge}/api/aliases/status"), &self.good).await;
            if status.is_some_and(|s| s["status"]["health"] == "stale") {
                o.stale += 1;
            }
        }
        o
    }

    /// Looks every 100 ms for `during` and keeps the worst.
    pub async fn watch(&self, during: Duration) -> Observation {
        let deadline = tokio::time::Instant::now() + during;
        let mut worst = self.look().await;
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
            worst = worst.worst(self.look().await);
        }
        worst
    }

    /// The JSON body of a 200 answer, else `None`.
    async fn get(&self, url: &str, credential: &str) -> Option<serde_json::Value> {
        let res = self.http.get(url).bearer_auth(credential).send().await.ok()?;
        if !res.status().is_success() {
            return None;
        }
        res.json().await.ok()
    }
}
