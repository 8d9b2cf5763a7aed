//! OpenAPI schemas of bodies whose Rust types live outside `api/` (the
//! domain's, the store's and the protocol's, which stay free of OpenAPI).
//! Each names the type whose JSON it describes; `tests/api/openapi.rs`
//! checks the served bodies' fields against these, so they cannot drift
//! silently.
//!
//! They are never built: only their `ToSchema` derives are used.
#![allow(dead_code)]

use chrono::{DateTime, Utc};
use serde_json::Value;
use utoipa::ToSchema;

use crate::web::fleet::{EdgeView, RegionSummary};

/// An alias as stored, with its owner (`domain::alias::OwnedAlias`).
#[derive(Debug, ToSchema)]
#[schema(as = Alias, example = json!({
    "id": 7, "context": "frontend", "alias": "user-profile",
    "canonical": "https://api.nexus.com/v1/users/profile",
    "description": "Profile of the signed-in user", "expires_at": null, "is_active": true,
    "created_at": "2026-01-05T14:03:00.123Z", "updated_at": "2026-01-05T14:03:00.123Z",
    "created_by": "alice", "version": 42, "owner": "alice"
}))]
pub(crate) struct AliasSchema {
    pub id: i32,
    pub context: String,
    pub alias: String,
    pub canonical: String,
    pub description: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub created_by: Option<String>,
    /// Registry version of the last change to this alias.
    pub version: i64,
    /// Who may change it besides admins (unless its context's governance
    /// sets `shared_ownership`): its creator, or whom an admin gave it to.
    pub owner: String,
}

/// A page of aliases.
#[derive(Debug, ToSchema)]
#[schema(as = AliasPage)]
pub(crate) struct AliasPageSchema {
    pub items: Vec<AliasSchema>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}

/// One entry of the declarative file (`nexus_protocol::AliasEntry`).
#[derive(Debug, ToSchema)]
#[schema(as = AliasEntry, example = json!({
    "context": "frontend", "alias": "user-profile",
    "canonical": "https://api.nexus.com/v1/users/profile", "is_active": true
}))]
pub(crate) struct AliasEntrySchema {
    pub context: String,
    pub alias: String,
    pub canonical: String,
    pub description: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    /// Default true.
    pub is_active: Option<bool>,
}

/// The declarative file (`nexus_protocol::AliasFile`), YAML or JSON.
#[derive(Debug, ToSchema)]
#[schema(as = AliasFile)]
pub(crate) struct AliasFileSchema {
    pub aliases: Vec<AliasEntrySchema>,
}

/// An import's policy for entries that meet an active alias with other
/// content (`domain::import::ImportPolicy`).
#[derive(Debug, ToSchema)]
#[schema(as = ImportPolicy)]
pub(crate) enum ImportPolicySchema {
    #[schema(rename = "reject")]
    Reject,
    #[schema(rename = "skip")]
    Skip,
    #[schema(rename = "replace")]
    Replace,
}

/// What an import did or would do (`domain::import::ImportReport`).
#[derive(Debug, ToSchema)]
#[schema(as = ImportReport, example = json!({
    "created": 1, "updated": 0, "skipped": 0, "unchanged": 99, "conflicts": [],
    "dry_run": true, "from_version": 120, "to_version": 121
}))]
pub(crate) struct ImportReportSchema {
    pub created: u64,
    pub updated: u64,
    pub skipped: u64,
    pub unchanged: u64,
    #[schema(value_type = Vec<Object>)]
    pub conflicts: Vec<Value>,
    /// Under `replace`, entries over aliases others own (`{context, alias,
    /// owner}`); present only when there are some, and then the import is
    /// refused (403 `not_owner`).
    #[schema(value_type = Option<Vec<Object>>)]
    pub not_owned: Option<Vec<Value>>,
    pub dry_run: bool,
    /// Registry versions the import took (`from_version` exclusive).
    pub from_version: i64,
    pub to_version: i64,
}

/// A recorded conflict (`domain::conflict::Conflict`).
#[derive(Debug, ToSchema)]
#[schema(as = Conflict)]
pub(crate) struct ConflictSchema {
    pub id: i32,
    pub context: String,
    pub alias: String,
    /// `duplicate`, `normalization` or `shadowing`.
    pub conflict_type: String,
    #[schema(value_type = Option<Object>)]
    pub existing: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub incoming: Option<Value>,
    /// `keep_existing` or `use_incoming` once resolved.
    pub resolution: Option<String>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, ToSchema)]
#[schema(as = ConflictList)]
pub(crate) struct ConflictListSchema {
    pub items: Vec<ConflictSchema>,
}

/// How a conflict is settled (`domain::conflict::Resolution`).
#[derive(Debug, ToSchema)]
#[schema(as = Resolution)]
pub(crate) enum ResolutionSchema {
    #[schema(rename = "keep_existing")]
    KeepExisting,
    #[schema(rename = "use_incoming")]
    UseIncoming,
}

/// An audit row (`store::audit::AuditRow`).
#[derive(Debug, ToSchema)]
#[schema(as = AuditRow)]
pub(crate) struct AuditRowSchema {
    pub id: i32,
    #[schema(example = "alias.update")]
    pub action: String,
    pub user: String,
    pub target: Option<String>,
    pub details: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub before: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub after: Option<Value>,
    pub request_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub is_archived: bool,
    pub archived_at: Option<DateTime<Utc>>,
    /// Hex SHA-256 of the row in the hash chain.
    pub row_hash: Option<String>,
}

#[derive(Debug, ToSchema)]
#[schema(as = AuditPage)]
pub(crate) struct AuditPageSchema {
    pub items: Vec<AuditRowSchema>,
    pub next_cursor: Option<String>,
}

/// The audit chain check (`audit::chain::Report`).
#[derive(Debug, ToSchema)]
#[schema(as = AuditVerify, example = json!({"ok": true, "checked": 1234, "first_bad_id": null}))]
pub(crate) struct AuditVerifySchema {
    pub ok: bool,
    pub checked: u64,
    pub first_bad_id: Option<i32>,
}

/// A role (`nexus_protocol::Role`).
#[derive(Debug, ToSchema)]
#[schema(as = Role)]
pub(crate) enum RoleSchema {
    #[schema(rename = "admin")]
    Admin,
    #[schema(rename = "editor")]
    Editor,
    #[schema(rename = "viewer")]
    Viewer,
    #[schema(rename = "resolver")]
    Resolver,
}

/// A new API key, shown once.
#[derive(Debug, ToSchema)]
#[schema(as = CreatedKey, example = json!({
    "id": 3, "key": "nxk_...", "name": "ci", "role": "editor", "contexts": ["frontend"]
}))]
pub(crate) struct CreatedKeySchema {
    pub id: i32,
    /// The secret; only its digest is stored.
    pub key: String,
    pub name: String,
    pub role: RoleSchema,
    /// Context names, or `["*"]` for all.
    pub contexts: Vec<String>,
    /// RFC 3339, or null: never expires.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A resolve answer.
#[derive(Debug, serde::Deserialize, ToSchema)]
#[schema(as = Resolved, example = json!({"canonical_name": "https://api.nexus.com/v1/users/profile"}))]
pub(crate) struct ResolvedSchema {
    pub canonical_name: String,
}

#[derive(Debug, ToSchema)]
#[schema(as = Health, example = json!({"status": "ok"}))]
pub(crate) struct HealthSchema {
    /// `ok`, or `unavailable` (with `error` and `message`) on a 503.
    pub status: String,
    pub error: Option<String>,
    pub message: Option<String>,
}

#[derive(Debug, ToSchema)]
#[schema(as = ServiceMetrics)]
pub(crate) struct MetricsSchema {
    /// `total_aliases`, `active_aliases`, `inactive_aliases`,
    /// `open_conflicts`, `audit_rows`, `registry_version`,
    /// `response_time_ms`.
    #[schema(value_type = Object)]
    pub metrics: Value,
}

#[derive(Debug, ToSchema)]
#[schema(as = ServiceStatus)]
pub(crate) struct StatusSchema {
    /// `service`, `version`, `uptime_seconds`, `health`
    /// (`healthy|degraded`), `propagation`, `registry_epoch`,
    /// `registry_version`, `registry_age_seconds`.
    #[schema(value_type = Object)]
    pub status: Value,
}

/// The edge fleet (`GET /api/admin/edges`).
#[derive(Debug, ToSchema)]
#[schema(as = Fleet)]
pub(crate) struct FleetSchema {
    pub items: Vec<EdgeView>,
    /// Per region (by name): edges, stale, behind, and the slowest edge by
    /// versions behind and by lag p99.
    pub regions: Vec<RegionSummary>,
    /// `{"epoch": N, "version": N}`: the registry head.
    #[schema(value_type = Object)]
    pub registry: Value,
    /// `{"edges": N, "stale": N, "behind": N}`.
    #[schema(value_type = Option<Object>)]
    pub summary: Option<Value>,
    /// Ids of edges whose report did not parse.
    pub unreadable: Option<Vec<String>>,
    /// `disabled` when this control plane has no Redis.
    pub propagation: Option<String>,
    pub message: Option<String>,
}

/// What an apply did or would do (`store::apply::ApplyReport`).
#[derive(Debug, ToSchema)]
#[schema(as = ApplyReport)]
pub(crate) struct ApplyReportSchema {
    pub dry_run: bool,
    pub prune: bool,
    /// The registry version the plan was computed against: pass it back as
    /// `expected_version` to apply exactly this plan.
    pub from_version: i64,
    pub to_version: i64,
    #[schema(value_type = Object, example = json!({"create": 1, "update": 1, "deactivate": 0, "unchanged": 7, "refused": 0}))]
    pub counts: Value,
    /// Every alias looked at, by context then alias: `action` is `create`,
    /// `update`, `deactivate`, `unchanged` or `refused` (an alias another
    /// owns: an apply with any is refused, 403 `not_owner`), with the
    /// existing alias's `owner` and `before` and `after` records
    /// (`canonical`, `description`, `expires_at`).
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<Value>,
}
