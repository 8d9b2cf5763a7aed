//! What the OpenAPI 3.1 document adds to the handlers' own
//! `#[utoipa::path]` descriptions (the route table, `api::routes`, builds
//! the document from those, so a routed handler is a documented one): the
//! document's head, and what every route shares, added here once — the
//! security schemes, the error responses each kind of route can give (the
//! codes of `web/error.rs`), and the publish barrier's parameters on every
//! write (`barrier.rs`).

use crate::web::error::ErrorBody;
use utoipa::Modify;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, ResponseBuilder};

/// The security scheme names.
pub(crate) const JWT: &str = "jwt";
pub(crate) const API_KEY: &str = "api_key";

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
pub(crate) struct ApiDoc;

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

/// Adds what every route shares to `doc`, the route table's document: the
/// router starts from [`ApiDoc`], whose modifiers ran before any path was
/// added, so these go on once every path is there.
pub(crate) fn add_shared(doc: &mut OpenApi) {
    Errors.modify(doc);
    Barrier.modify(doc);
}
