//! `GET /api/admin/export`: the registry as the declarative file import
//! takes (`nexus_protocol::AliasFile`), so export → import is a no-op.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header::ACCEPT, header::CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use nexus_protocol::{AliasFile, Context};

use super::schema::AliasFileSchema;
use crate::domain::rbac::{Action, Scope};
use crate::web::Shared;
use crate::web::caller::Caller;
use crate::web::error::ApiError;

/// The contexts of `?context=a&context=b` or `?context=a,b`; `None` when
/// none is named. Any other parameter is refused, like everywhere else.
fn contexts(query: Option<&str>) -> Result<Option<Vec<Context>>, ApiError> {
    let mut out = Vec::new();
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if k != "context" {
            return Err(ApiError::BadRequest(format!(
                "unknown query parameter {k:?}; this route takes context"
            )));
        }
        for c in v.split(',').map(str::trim).filter(|c| !c.is_empty()) {
            let c = Context::parse(c).map_err(|e| ApiError::BadRequest(format!("context: {e}")))?;
            if !out.contains(&c) {
                out.push(c);
            }
        }
    }
    Ok((!out.is_empty()).then_some(out))
}

/// JSON when the client asks for it, YAML otherwise.
fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/json") && !v.contains("yaml"))
}

/// The active aliases of the contexts named (or of every context the
/// caller may read), sorted by context then alias.
#[utoipa::path(
    get,
    path = "/api/admin/export",
    operation_id = "export_aliases",
    tag = "aliases",
    params(
        ("context" = Option<Vec<String>>, Query, explode = true,
         description = "Contexts to export, repeated (`context=a&context=b`) or comma-separated \
                        (`context=a,b`); all the caller may read when absent"),
    ),
    responses(
        (status = 200, description = "The declarative file; `x-nexus-version` is the registry \
                                      version it was read at",
         headers(("x-nexus-version" = i64, description = "Registry version of this state")),
         content(
            (AliasFileSchema = "application/yaml",
             example = "aliases:\n- context: frontend\n  alias: user-profile\n  canonical: https://api.nexus.com/v1/users/profile\n  is_active: true\n"),
            (AliasFileSchema = "application/json"),
         )),
    )
)]
pub(crate) async fn export(
    State(st): State<Shared>,
    caller: Caller,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let named = contexts(query.as_deref())?;
    let visible = match &named {
        Some(list) => {
            for c in list {
                caller.may(Action::ReadAliases, Scope::Context(c.as_str()))?;
            }
            Some(list.iter().map(ToString::to_string).collect())
        }
        None => caller.may_list(Action::ReadAliases)?,
    };
    let exported = st.store.export(visible.as_deref()).await?;
    let json = wants_json(&headers);
    // Rendering 100,000 entries is CPU work: off the async workers.
    let file = AliasFile { aliases: exported.entries };
    let body = tokio::task::spawn_blocking(move || {
        if json {
            serde_json::to_vec_pretty(&file).map_err(ApiError::internal)
        } else {
            serde_saphyr::to_string(&file).map(String::into_bytes).map_err(ApiError::internal)
        }
    })
    .await
    .map_err(ApiError::internal)??;
    let mut res = body.into_response();
    let kind = if json { "application/json" } else { "application/yaml" };
    res.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(kind));
    res.headers_mut().insert("x-nexus-version", HeaderValue::from(exported.version));
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contexts_repeat_or_come_comma_separated() {
        let names = |q| contexts(Some(q)).unwrap().unwrap();
        let got: Vec<String> = names("context=frontend&context=backend,system&context=frontend")
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(got, ["frontend", "backend", "system"]);
        assert!(contexts(None).unwrap().is_none());
        assert!(contexts(Some("context=")).unwrap().is_none());
        assert!(matches!(contexts(Some("ctx=a")), Err(ApiError::BadRequest(_))));
        assert!(matches!(contexts(Some("context=Not%20One")), Err(ApiError::BadRequest(_))));
    }
}
