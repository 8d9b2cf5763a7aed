//! `GET /api/admin/edges`: the fleet as `web::fleet` judges it (where the
//! reports come from is said there), with its regions and a summary.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::schema::FleetSchema;
use crate::domain::rbac::{Action, Scope};
use crate::web::Shared;
use crate::web::caller::Caller;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::fleet::Fleet;

/// The fleet: every edge's region, applied `(epoch, version)`, versions
/// behind, commit→applied lag, last seen, last rejection and state age;
/// per region the slowest edge.
#[utoipa::path(
    get,
    path = "/api/admin/edges",
    operation_id = "list_edges",
    tag = "admin",
    responses(
        (status = 200, description = "The fleet", body = FleetSchema),
        (status = 503, description = "The registry database or Redis is unavailable \
                                      (`store_unavailable`)", body = ErrorBody),
    )
)]
pub(crate) async fn list(State(st): State<Shared>, caller: Caller) -> Result<Response, ApiError> {
    caller.may(Action::ReadAliases, Scope::Global)?;
    let head = st.store.registry_head().await?;
    let Some(bus) = st.propagation.bus() else {
        return Ok(axum::Json(json!({
            "items": [],
            "regions": [],
            "registry": {"epoch": head.epoch, "version": head.version},
            "propagation": "disabled",
            "message": "REDIS_URL is not set: this control plane does not see the fleet",
        }))
        .into_response());
    };
    let fleet =
        Fleet::read(bus, &st.sightings, head.epoch, head.version).await.map_err(ApiError::Fleet)?;
    let stale = fleet.items.iter().filter(|e| e.stale).count();
    let behind = fleet.items.iter().filter(|e| e.versions_behind != Some(0)).count();
    Ok(axum::Json(json!({
        "items": fleet.items,
        "regions": fleet.regions(),
        "registry": {"epoch": head.epoch, "version": head.version},
        "summary": {"edges": fleet.items.len(), "stale": stale, "behind": behind},
        "unreadable": fleet.unreadable,
    }))
    .into_response())
}
