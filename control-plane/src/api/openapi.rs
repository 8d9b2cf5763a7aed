//! The OpenAPI 3.1 document, generated: each handler's `#[utoipa::path]`
//! describes it, and [`super::routes`] registers handlers and their paths
//! from one list, so a routed handler is a documented one. What every
//! route shares is added here once: the security schemes, the error
//! responses each kind of route can give (the codes of `error.rs`), and
//! the publish barrier's parameters on every write (`barrier.rs`).
//!
//! `GET /api/admin/openapi.json` is public: the document describes the
//! API, holds no registry data, and tools (code generators, schemathesis)
//! fetch it before they hold a credential. Every route it describes keeps
//! its own authentication.

use std::sync::OnceLock;

use axum::http::{HeaderValue, header::CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use utoipa::Modify;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, ResponseBuilder};

use super::error::ErrorBody;

/// The security scheme names.
pub const JWT: &str = "jwt";
pub const API_KEY: &str = "api_key";

#[derive(Debug, utoipa::OpenApi)]
#[openapi(
    info(
        title = "NEXUS SSOT control plane",
        description = "Admin API and service endpoints of the NEXUS control plane. Every error \
                       is `{\"error\": \"<code>\", \"message\": \"...\"}` (schema ErrorBody).",
        license(name = "see repository"),
    ),
    security(("jwt" = []), ("api_key" = [])),
    // Schemas only parameters name (the rest come with the bodies).
    components(schemas(ErrorBody, super::admin::ConflictStatus)),
    tags(
        (name = "aliases", description = "Aliases, their history, import and export"),
        (name = "admin", description = "Conflicts, audit, governance, API keys, the fleet"),
        (name = "service", description = "Resolve and service endpoints (the edges answer them too)"),
    ),
    modifiers(&Security, &Errors),
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut OpenApi) {
        let c = doc.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            JWT,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "`Authorization: Bearer <JWT>` with claims sub, role \
                         (admin|editor|viewer|resolver), contexts, aud nexus-ssot, exp",
                    ))
                    .build(),
            ),
        );
        c.add_security_scheme(
            API_KEY,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("nxk_ API key")
                    .description(Some(
                        "`Authorization: Bearer nxk_...`: an API key from POST \
                         /api/admin/api-keys (same header as a JWT)",
                    ))
                    .build(),
            ),
        );
    }
}

/// Adds the error responses a route can give by what it is, unless its own
/// annotation already names that status.
struct Errors;

fn error(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build(),
        )
        .build()
}

fn add(op: &mut Operation, status: &str, description: &str) {
    op.responses.responses.entry(status.to_owned()).or_insert_with(|| error(description).into());
}

impl Modify for Errors {
    fn modify(&self, doc: &mut OpenApi) {
        for item in doc.paths.paths.values_mut() {
            let ops =
                [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for op in ops.into_iter().flatten() {
                // `security: [{}]` marks a public route.
                let public = op.security.as_ref().is_some_and(|s| {
                    s.iter()
                        .all(|r| serde_json::to_value(r).is_ok_and(|v| v == serde_json::json!({})))
                });
                let takes_input = op.parameters.as_ref().is_some_and(|p| !p.is_empty())
                    || op.request_body.is_some();
                if takes_input {
                    add(op, "400", "Malformed request: bad path, query or body (`bad_request`)");
                }
                if !public {
                    add(op, "401", "No or bad credentials (`unauthorized`)");
                    add(
                        op,
                        "403",
                        "The credential's role or contexts do not allow this (`forbidden`; \
                         `not_owner` for an editor writing another owner's alias)",
                    );
                    add(
                        op,
                        "429",
                        "Over this credential's rate limit; retry after the `Retry-After` \
                         seconds (`rate_limited`)",
                    );
                    add(
                        op,
                        "503",
                        "The registry database is unavailable; retry (`store_unavailable`)",
                    );
                }
                add(op, "500", "Unexpected failure, logged under the x-request-id (`internal`)");
            }
        }
    }
}

/// The publish barrier (`barrier.rs`), which every write route takes: its
/// four query parameters and its 202.
struct Barrier;

fn query(name: &str, description: &str, schema: ObjectBuilder) -> utoipa::openapi::path::Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .description(Some(description))
        .schema(Some(schema.build()))
        .build()
}

impl Modify for Barrier {
    fn modify(&self, doc: &mut OpenApi) {
        let string = || ObjectBuilder::new().schema_type(Type::String);
        let params = [
            query(
                "wait",
                "`applied`: answer only once the live edges serve this write (read-your-writes)",
                string().enum_values(Some(["applied"])),
            ),
            query("region", "With `wait`: only the live edges of this region", string()),
            query(
                "quorum",
                "With `wait`: enough when ceil(F x live) edges serve it; 0 < F <= 1, default 1",
                ObjectBuilder::new()
                    .schema_type(Type::Number)
                    .exclusive_minimum(Some(0))
                    .maximum(Some(1)),
            ),
            query(
                "timeout",
                "With `wait`: how long to wait, `Nms` or `Ns`, default 10s, at most 60s",
                string().pattern(Some("^[0-9]+(ms|s)$")),
            ),
        ];
        for item in doc.paths.paths.values_mut() {
            for op in [&mut item.put, &mut item.post, &mut item.delete].into_iter().flatten() {
                op.parameters.get_or_insert_with(Vec::new).extend(params.iter().cloned());
                let accepted = ResponseBuilder::new()
                    .description(
                        "With `wait=applied`: committed, but not served by enough live edges \
                         within the timeout; the body's `barrier` names the stragglers",
                    )
                    .build();
                op.responses.responses.entry("202".to_owned()).or_insert_with(|| accepted.into());
                add(op, "400", "Malformed request: bad path, query or body (`bad_request`)");
            }
        }
    }
}

/// The document, built once from the route table.
pub fn document() -> &'static OpenApi {
    static DOC: OnceLock<OpenApi> = OnceLock::new();
    DOC.get_or_init(|| {
        // The router starts from `ApiDoc`, whose modifiers ran before any
        // path was added: the shared responses go on now, over every path.
        let (_, mut doc) = super::routes().split_for_parts();
        Errors.modify(&mut doc);
        Barrier.modify(&mut doc);
        doc
    })
}

/// Serves the document.
#[utoipa::path(
    get,
    path = "/api/admin/openapi.json",
    tag = "admin",
    security(()),
    responses((status = 200, description = "This document (OpenAPI 3.1)", content_type = "application/json", body = Object)),
)]
pub async fn openapi_json() -> Response {
    static JSON: OnceLock<Vec<u8>> = OnceLock::new();
    let body = JSON.get_or_init(|| serde_json::to_vec(document()).unwrap_or_default());
    let mut res = body.clone().into_response();
    res.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}
