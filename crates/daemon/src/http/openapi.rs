//! The OpenAPI 3.1 document of the API door (`/v1/…` and `/metrics`), served at
//! `GET /v1/openapi.json`.
//!
//! It is driven by the role table: every API entry of [`ROUTES`] becomes one operation, with the
//! role it needs (`x-slipway-role`, and in words in its description), and what [`docs`] says of it
//! — its query parameters, its request body, its answer and the refusals its handler makes. The
//! schemas are the wire types' own (`#[derive(ToSchema)]` in `slipway-api`, and the store rows
//! answered as they are), so a field added to a type is in the document too. The refusals every
//! route of the door shares are added here: 401 (no or a wrong token), 429 (an address locked out
//! after wrong tokens), 403 (a role too low: only where the route needs more than a viewer), and
//! those of the extractors (`extract.rs`): a body, query or path that does not parse.
//!
//! A route in the table with no entry in [`docs`], or an entry for a route that is not in the
//! table, fails a unit test below. `ci/schemathesis.sh` checks the document against a running
//! daemon: every answer's status, content type and body must be what it says.
//!
//! Not described: the dashboard (HTML pages, not an API) and OFREP (`/ofrep/…`: its own protocol
//! and its own evaluation keys, described by the OpenFeature project).

use crate::http::auth::Role;
use crate::http::route_table::{Access, Door, ROUTES, Route, Verb};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;
use std::sync::LazyLock;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{
    HttpMethod, Operation, OperationBuilder, Parameter, ParameterBuilder, ParameterIn,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::{Response as Answer, ResponseBuilder, ResponsesBuilder};
use utoipa::openapi::schema::{
    ArrayBuilder, ComponentsBuilder, ObjectBuilder, OneOfBuilder, Schema, Type,
};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, InfoBuilder, OpenApi, OpenApiBuilder, Paths, Ref, RefOr, Required};
use utoipa::{IntoParams, ToSchema};

/// `GET /v1/openapi.json`: the document, built once, on the first request.
pub(crate) async fn serve() -> Response {
    static TEXT: LazyLock<String> = LazyLock::new(|| {
        document()
            .to_json()
            .expect("an OpenAPI document serialises to JSON")
    });
    ([(header::CONTENT_TYPE, "application/json")], TEXT.as_str()).into_response()
}

/// The name of the bearer-token security scheme.
const BEARER: &str = "bearer";

/// The document: one operation per API entry of [`ROUTES`].
pub fn document() -> OpenApi {
    let described = docs();
    let mut paths = Paths::new();
    let mut components = ComponentsBuilder::new()
        .security_scheme(
            BEARER,
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "`Authorization: Bearer <token>`: a token made by `slipway token create \
                         NAME --role viewer|deployer|admin`, or the daemon's own admin token \
                         (in `<state-dir>/api-token`).",
                    ))
                    .build(),
            ),
        )
        .response(
            UNAUTHORIZED,
            refusal("No token, or not one of the daemon's: send `Authorization: Bearer <token>`."),
        )
        .response(
            FORBIDDEN,
            refusal(
                "The token is valid, but its role is below the one this operation needs \
                 (`x-slipway-role`).",
            ),
        )
        .response(
            TOO_MANY,
            ResponseBuilder::from(refusal(
                "Too many wrong tokens came from this address: it is locked out for a while.",
            ))
            .header(
                "Retry-After",
                HeaderBuilder::new()
                    .schema(
                        ObjectBuilder::new()
                            .schema_type(Type::Integer)
                            .minimum(Some(0)),
                    )
                    .description(Some("Seconds until the address may try again."))
                    .build(),
            )
            .build(),
        );
    let mut schemas: BTreeMap<String, RefOr<Schema>> = BTreeMap::new();
    for (name, schema) in Shape::of::<slipway_api::ApiError>().components {
        schemas.insert(name, schema);
    }
    for route in ROUTES.iter().filter(|r| r.door == Door::Api) {
        let doc = described
            .iter()
            .find(|d| d.verb == route.verb && d.path == route.path);
        let operation = operation(route, doc, &mut schemas);
        paths.add_path_operation(route.path, vec![method(route.verb)], operation);
    }
    components = components.schemas_from_iter(schemas);
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("slipway API")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(INTRODUCTION))
                .build(),
        )
        .paths(paths)
        .components(Some(components.build()))
        .security(Some([SecurityRequirement::new(
            BEARER,
            Vec::<String>::new(),
        )]))
        .build()
}

const INTRODUCTION: &str = "\
The HTTP API of the slipway daemon: what the `slipway` CLI and the dashboard use. Over TCP \
(`slipway serve --api ADDR`) every request needs `Authorization: Bearer <token>`, and each \
operation needs a role (`x-slipway-role`): viewer < deployer < admin, each allowed what the one \
before it is. On the daemon's local unix socket (`<state-dir>/slipway.sock`, mode 0600) no token \
is asked for.\n\n\
Every refusal has the body `{\"kind\": \"not_found\", \"error\": \"...\"}` (`ApiError`): `kind` \
is what a program acts on, `error` says what happened and what to do. Times are unix \
milliseconds.";

const UNAUTHORIZED: &str = "Unauthorized";
const FORBIDDEN: &str = "Forbidden";
const TOO_MANY: &str = "TooManyRequests";

/// A refusal: its description, with the `ApiError` body.
fn refusal(description: &str) -> Answer {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            Content::new(Some(Ref::from_schema_name("ApiError"))),
        )
        .build()
}

fn method(verb: Verb) -> HttpMethod {
    match verb {
        Verb::Get => HttpMethod::Get,
        Verb::Post => HttpMethod::Post,
        Verb::Delete => HttpMethod::Delete,
    }
}

fn role_of(route: &Route) -> Role {
    match route.access {
        Access::Role(role) => role,
        // The API door has only roles (route_table's tests hold it so); else the least of them.
        Access::Public | Access::EvaluationKey => Role::Viewer,
    }
}

/// The operation for one route, its schemas added to `schemas`.
fn operation(
    route: &Route,
    doc: Option<&Doc>,
    schemas: &mut BTreeMap<String, RefOr<Schema>>,
) -> Operation {
    let role = role_of(route);
    let mut add = |shape: &Shape| {
        for (name, schema) in &shape.components {
            schemas
                .entry(name.clone())
                .or_insert_with(|| schema.clone());
        }
    };
    let mut op = OperationBuilder::new()
        .tag(tag(route.path))
        .extensions(Some(
            [("x-slipway-role", serde_json::json!(role.as_str()))]
                .into_iter()
                .collect::<Extensions>(),
        ));
    for name in path_parameters(route.path) {
        op = op.parameter(
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .description(Some(path_parameter_meaning(name)))
                // An empty segment matches no route.
                .schema(Some(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .min_length(Some(1)),
                ))
                .build(),
        );
    }
    let needs = format!(
        "Needs a token of role **{}** or above (viewer < deployer < admin).",
        role.as_str()
    );
    // What every route of the door may answer, whatever the handler does; 400s are gathered.
    let mut bad_request: Vec<&str> = Vec::new();
    let mut errors: BTreeMap<u16, String> = BTreeMap::new();
    if !path_parameters(route.path).is_empty() {
        bad_request.push("A path parameter is not UTF-8 once percent-decoded.");
    }
    let Some(doc) = doc else {
        return op
            .summary(Some(format!("{} {}", route.verb.as_str(), route.path)))
            .description(Some(format!("(Not described in http/openapi.rs.) {needs}")))
            .responses(door_responses(role, ResponsesBuilder::new()).build())
            .build();
    };
    op = op
        .operation_id(Some(doc.id))
        .summary(Some(doc.summary))
        .description(Some(format!("{} {needs}", doc.description)));
    if !doc.query.is_empty() {
        op = op.parameters(Some(doc.query.clone()));
        bad_request.push(
            "A query parameter does not parse (a number that is not one, or negative \
             where it cannot be).",
        );
    }
    if let Some(body) = doc.body.as_ref().filter(|b| b.media == GZIP) {
        op = op.request_body(Some(
            RequestBodyBuilder::new()
                .required(Some(Required::True))
                .description(Some(
                    "A folder as tar.gz (`Content-Type: application/gzip`).",
                ))
                .content(GZIP, Content::new(Some(body.shape.schema.clone())))
                .build(),
        ));
        errors.insert(
            415,
            "The body is not `Content-Type: application/gzip`.".into(),
        );
    } else if let Some(body) = &doc.body {
        add(&body.shape);
        op = op.request_body(Some(
            RequestBodyBuilder::new()
                .required(Some(if body.required {
                    Required::True
                } else {
                    Required::False
                }))
                .description(Some(if body.required {
                    "JSON (`Content-Type: application/json`)."
                } else {
                    "Optional: sent without a `Content-Type`, the request has no body; with one, \
                     it must be JSON."
                }))
                .content(
                    "application/json",
                    Content::new(Some(body.shape.schema.clone())),
                )
                .build(),
        ));
        bad_request.push("The body is not JSON.");
        errors.insert(413, "The body is over the size limit (2 MB).".into());
        errors.insert(
            415,
            "The body is not `Content-Type: application/json`.".into(),
        );
        errors.insert(
            422,
            "The body is JSON but does not fit the request's schema (a field missing, of the wrong \
             type, or a number out of range)."
                .into(),
        );
    }
    for (status, why) in doc.errors {
        if *status == 400 {
            bad_request.insert(0, why);
        } else {
            errors.insert(*status, why.to_string());
        }
    }
    if !bad_request.is_empty() {
        errors.insert(400, bad_request.join(" Or: "));
    }
    let mut responses = ResponsesBuilder::new();
    let (status, description, content) = &doc.ok;
    let mut ok = ResponseBuilder::new().description(*description);
    match content {
        Body::Json(shape) => {
            add(shape);
            ok = ok.content("application/json", Content::new(Some(shape.schema.clone())));
        }
        Body::Text => {
            ok = ok.content(
                "text/plain",
                Content::new(Some(ObjectBuilder::new().schema_type(Type::String))),
            );
        }
        Body::Tar => {
            ok = ok.content(
                "application/x-tar",
                Content::new(Some(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .content_media_type("application/x-tar"),
                )),
            );
        }
    }
    responses = responses.response(status.to_string(), ok.build());
    for (status, why) in errors {
        responses = responses.response(status.to_string(), refusal(&why));
    }
    op.responses(door_responses(role, responses).build())
        .build()
}

/// The door's own refusals, before the handler runs: 401 and 429 for everyone, 403 where a viewer's
/// token is not enough.
fn door_responses(role: Role, responses: ResponsesBuilder) -> ResponsesBuilder {
    let mut responses = responses
        .response("401", Ref::from_response_name(UNAUTHORIZED))
        .response("429", Ref::from_response_name(TOO_MANY));
    if role > Role::Viewer {
        responses = responses.response("403", Ref::from_response_name(FORBIDDEN));
    }
    responses
}

/// `{app}`, `{key}`… of a route pattern, in order.
fn path_parameters(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .collect()
}

fn path_parameter_meaning(name: &str) -> &'static str {
    match name {
        "app" => "The app's name (`app` in its slipway.toml).",
        "job" => "A cron job's name (`[cron.NAME]` in the stable release's slipway.toml).",
        "key" => "A flag's key.",
        "name" => "The name given when it was made.",
        "host" => "A host name from an app's `[routing] hosts`.",
        _ => "(not described)",
    }
}

/// Operations are grouped by what they act on.
fn tag(path: &str) -> &'static str {
    if path.starts_with("/v1/tokens") {
        "tokens"
    } else if path.contains("/flag") {
        "flags"
    } else if path.starts_with("/v1/apps") || path == "/v1/deploy" {
        "apps"
    } else {
        "daemon"
    }
}

/// A schema, and the named schemas it refers to (for `components.schemas`).
#[derive(Clone)]
struct Shape {
    schema: RefOr<Schema>,
    components: Vec<(String, RefOr<Schema>)>,
}

impl Shape {
    /// A wire type, referred to by its name.
    fn of<T: ToSchema>() -> Shape {
        let mut components = vec![(T::name().into_owned(), T::schema())];
        T::schemas(&mut components);
        Shape {
            schema: Ref::from_schema_name(T::name()).into(),
            components,
        }
    }

    /// A JSON array of a wire type.
    fn list_of<T: ToSchema>() -> Shape {
        let item = Shape::of::<T>();
        Shape {
            schema: ArrayBuilder::new().items(item.schema).into(),
            components: item.components,
        }
    }

    /// One of several shapes.
    fn one_of(shapes: Vec<Shape>) -> Shape {
        let mut one_of = OneOfBuilder::new();
        let mut components = Vec::new();
        for shape in shapes {
            one_of = one_of.item(shape.schema);
            components.extend(shape.components);
        }
        Shape {
            schema: RefOr::T(Schema::OneOf(one_of.build())),
            components,
        }
    }

    /// A schema written here, for an answer that has no wire type.
    fn inline(schema: impl Into<RefOr<Schema>>) -> Shape {
        Shape {
            schema: schema.into(),
            components: Vec::new(),
        }
    }
}

/// What a success answer carries.
enum Body {
    Json(Box<Shape>),
    /// `text/plain` (UTF-8).
    Text,
    /// `application/x-tar`: a backup file.
    Tar,
}

impl Body {
    fn json(shape: Shape) -> Body {
        Body::Json(Box::new(shape))
    }
}

struct RequestBody {
    shape: Shape,
    required: bool,
    /// `application/json`, or [`GZIP`] for an upload.
    media: &'static str,
}

const GZIP: &str = "application/gzip";

/// What the document says of one API route beyond the table's verb, path and role.
struct Doc {
    verb: Verb,
    path: &'static str,
    /// `operationId`: unique, for generated clients.
    id: &'static str,
    summary: &'static str,
    description: &'static str,
    query: Vec<Parameter>,
    body: Option<RequestBody>,
    /// The success answer: status, description, body.
    ok: (u16, &'static str, Body),
    /// The refusals the handler itself makes, and when (the door's and the extractors' are added).
    errors: &'static [(u16, &'static str)],
}

impl Doc {
    fn new(verb: Verb, path: &'static str, id: &'static str, summary: &'static str) -> Doc {
        Doc {
            verb,
            path,
            id,
            summary,
            description: "",
            query: Vec::new(),
            body: None,
            ok: (200, "", Body::Text),
            errors: &[],
        }
    }

    fn describe(mut self, description: &'static str) -> Doc {
        self.description = description;
        self
    }

    fn query<Q: IntoParams>(mut self) -> Doc {
        self.query = Q::into_params(|| Some(ParameterIn::Query));
        self
    }

    fn body<T: ToSchema>(mut self) -> Doc {
        self.body = Some(RequestBody {
            shape: Shape::of::<T>(),
            required: true,
            media: "application/json",
        });
        self
    }

    fn optional_body<T: ToSchema>(mut self) -> Doc {
        self.body = Some(RequestBody {
            shape: Shape::of::<T>(),
            required: false,
            media: "application/json",
        });
        self
    }

    /// A tar.gz body (an app folder).
    fn gzip_body(mut self) -> Doc {
        self.body = Some(RequestBody {
            shape: Shape::inline(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .content_media_type(GZIP),
            ),
            required: true,
            media: GZIP,
        });
        self
    }

    fn answers(mut self, status: u16, description: &'static str, body: Body) -> Doc {
        self.ok = (status, description, body);
        self
    }

    fn json<T: ToSchema>(self, status: u16, description: &'static str) -> Doc {
        self.answers(status, description, Body::json(Shape::of::<T>()))
    }

    fn list<T: ToSchema>(self, description: &'static str) -> Doc {
        self.answers(200, description, Body::json(Shape::list_of::<T>()))
    }

    fn refuses(mut self, errors: &'static [(u16, &'static str)]) -> Doc {
        self.errors = errors;
        self
    }
}

// Refusals several routes share.
const INTERNAL: (u16, &str) = (
    500,
    "The daemon failed (its state store, or a task); its log says more.",
);
const STOPPING: (u16, &str) = (
    503,
    "The daemon is shutting down: its controller takes no more requests.",
);
const NO_ROLLOUT: (u16, &str) = (
    409,
    "No rollout of the app is in progress (also for an app that does not exist), or the rollout \
     cannot take this now (its phase is named).",
);
const LOCKED: (u16, &str) = (
    409,
    "Another rollout of the app holds its deploy lock; or a release phase or rollback command \
     failed; or the Docker engine cannot be reached.",
);
const NO_STABLE: (u16, &str) = (404, "The app has no stable release (or does not exist).");

use Verb::{Delete, Get, Post};

/// Every API route's description, keyed by (verb, path) of [`ROUTES`]; the tests hold both equal.
fn docs() -> Vec<Doc> {
    use crate::http::flag_admin::{HistoryQuery, ListQuery};
    use crate::http::{DrillsQuery, EventsQuery, LogsQuery};
    use slipway_api::flags::*;
    use slipway_api::*;
    use slipway_store::{ApiToken, Event};
    vec![
        Doc::new(
            Get,
            "/v1/health",
            "health",
            "Whether the daemon answers, and its version",
        )
        .json::<Health>(200, "The daemon is up."),
        Doc::new(Get, "/metrics", "metrics", "Prometheus metrics")
            .describe(
                "The daemon's and each app's metrics in the Prometheus text format (version \
                 0.0.4).",
            )
            .answers(200, "The metrics.", Body::Text)
            .refuses(&[STOPPING]),
        Doc::new(
            Post,
            "/v1/upgrade",
            "upgrade",
            "Upgrade the daemon in place",
        )
        .describe(
            "Starts the slipway binary now on disk with the daemon's arguments, hands it the \
                 listening sockets and every running instance, and answers once it serves; this \
                 daemon then finishes its in-flight requests and ends. No instance restarts and \
                 no connection is refused (docs/operations.md). Refused, with this daemon serving \
                 on, if the new binary does not start or take over.",
        )
        .json::<slipway_api::Upgraded>(200, "The new daemon serves.")
        .refuses(&[
            (
                500,
                "The new binary did not start or did not take over (this daemon serves on), \
                     or it took over but did not report serving.",
            ),
            (
                503,
                "An upgrade is already under way, or the daemon is stopping.",
            ),
        ]),
        Doc::new(
            Post,
            "/v1/backup",
            "backup",
            "A backup of the daemon's state",
        )
        .describe(
            "One tar file, streamed as it is written: a consistent snapshot of the state \
                 database and the artifacts of every app's stable release, rollback targets and \
                 running releases (docs/operations.md). `slipway restore` unpacks it offline. A \
                 failure after the answer started breaks the transfer instead of ending it.",
        )
        .answers(200, "The backup file.", Body::Tar)
        .refuses(&[
            INTERNAL,
            (
                503,
                "Another snapshot of the state database is being taken, or the daemon is \
                     shutting down: try again.",
            ),
        ]),
        Doc::new(Get, "/v1/certs", "certs", "Every TLS host's certificate")
            .describe(
                "One entry per host whose app sets `[routing] tls`, and `*` for the fallback \
             certificate: issuer, expiry, next renewal or retry, and the last error (docs/tls.md).",
            )
            .json::<Vec<CertStatus>>(200, "The certificates, by host name."),
        Doc::new(
            Post,
            "/v1/certs/{host}/renew",
            "renew_cert",
            "Renew a host's certificate now",
        )
        .describe(
            "Orders a new certificate from the ACME CA now (or reads a host's certificate files \
             again). The answer comes at once; `GET /v1/certs` shows the outcome.",
        )
        .json::<RenewStarted>(202, "The renewal has started.")
        .refuses(&[(404, "No app names this host with `tls` set."), STOPPING]),
        Doc::new(
            Post,
            "/v1/certs/{host}/revoke",
            "revoke_cert",
            "Revoke a host's ACME certificate",
        )
        .describe(
            "Orders a new certificate for the host, then has the CA revoke the one it replaces \
             (also when the order fails: a revocation asked for is never held back). The answer \
             names the serial being revoked; the app's events say when the CA has revoked it.",
        )
        .optional_body::<RevokeCert>()
        .json::<RevokeStarted>(202, "The replacement is being ordered.")
        .refuses(&[
            (400, "An unknown reason."),
            (404, "No app names this host with `tls` set."),
            (
                409,
                "The host's certificate comes from files, it has none yet, or no ACME CA is \
                 configured.",
            ),
            STOPPING,
        ]),
        Doc::new(Get, "/v1/openapi.json", "openapi", "This document").answers(
            200,
            "The OpenAPI 3.1 document of this API.",
            Body::json(Shape::inline(
                ObjectBuilder::new()
                    .schema_type(Type::Object)
                    .property("openapi", ObjectBuilder::new().schema_type(Type::String))
                    .required("openapi")
                    .property("info", ObjectBuilder::new().schema_type(Type::Object))
                    .required("info")
                    .property("paths", ObjectBuilder::new().schema_type(Type::Object))
                    .required("paths"),
            )),
        ),
        Doc::new(
            Post,
            "/v1/uploads",
            "upload",
            "Send an app folder for the next deploy",
        )
        .describe(
            "The folder holding slipway.toml, as tar.gz (what `slipway deploy` sends to a daemon \
             on another host, leaving out what `[artifact] exclude` leaves out). Only folders, \
             files and symlinks leading inside it are accepted; at most 512 MiB sent and 2 GiB \
             unpacked. Name the answer's `upload` in `POST /v1/deploy`: that deploy removes it; \
             one not deployed within an hour is removed.",
        )
        .gzip_body()
        .json::<UploadAccepted>(201, "The folder is unpacked on the daemon's disk.")
        .refuses(&[
            (
                400,
                "The body is not a tar.gz, or it holds an unsafe path (absolute, `..`, beneath a \
                 symlink), a symlink leading out of the folder, or an entry that is not a folder, \
                 file or symlink; or more than 2 GiB unpacked.",
            ),
            (413, "More than 512 MiB sent."),
            INTERNAL,
        ]),
        Doc::new(
            Post,
            "/v1/deploy",
            "deploy",
            "Deploy an app from its slipway.toml",
        )
        .describe(
            "Reads the slipway.toml at `config` (a path on the daemon's host, or with `upload` \
             a file in the uploaded folder), freezes the app's folder into a release, runs its \
             release phase, and starts its rollout. \
             The answer comes once the rollout has started; follow it with `GET \
             /v1/apps/{app}`.",
        )
        .body::<DeployRequest>()
        .json::<DeployAccepted>(202, "The release is recorded and its rollout started.")
        .refuses(&[
            (
                404,
                "The `upload` named is not on the daemon: an upload serves one deploy, and one \
                 not deployed within an hour is removed (upload again).",
            ),
            (
                400,
                "The slipway.toml cannot be read or is not valid (with `upload`: `config` must \
                 name a file inside the upload); or `canary` is not 1 to \
                 100; or the folder cannot be frozen; or an image or build is wrong.",
            ),
            (
                409,
                "Another rollout of the app holds its deploy lock; or `strict` found \
                 destructive migrations; or the release phase failed; or the Docker engine \
                 cannot be reached.",
            ),
            INTERNAL,
            STOPPING,
        ]),
        Doc::new(Get, "/v1/apps", "listApps", "Every app's status")
            .list::<AppStatus>("Each app deployed to this daemon.")
            .refuses(&[STOPPING]),
        Doc::new(Get, "/v1/apps/{app}", "appStatus", "One app's status")
            .describe(
                "Its stable release, its rollout if one is in progress, its instances and \
                 recent traffic.",
            )
            .json::<AppStatus>(200, "The app's status.")
            .refuses(&[(404, "No app of that name has been deployed."), STOPPING]),
        Doc::new(
            Get,
            "/v1/apps/{app}/releases",
            "releases",
            "The app's releases, newest first",
        )
        .list::<ReleaseSummary>("Its releases (none for an app that does not exist).")
        .refuses(&[INTERNAL]),
        Doc::new(
            Get,
            "/v1/apps/{app}/rollouts",
            "rollouts",
            "The app's last 100 rollouts, newest first",
        )
        .list::<RolloutView>("Its rollouts (none for an app that does not exist).")
        .refuses(&[INTERNAL]),
        Doc::new(
            Get,
            "/v1/apps/{app}/events",
            "events",
            "The app's event journal",
        )
        .query::<EventsQuery>()
        .list::<Event>("Events after `after`, oldest first (none for an app that does not exist).")
        .refuses(&[INTERNAL]),
        Doc::new(
            Get,
            "/v1/apps/{app}/logs",
            "logs",
            "The app's instances' output",
        )
        .describe(
            "Lines of its instances' stdout and stderr, each prefixed with the instance's id, \
             in time order. With `follow=true` the answer does not end: new lines follow as \
             they are written.",
        )
        .query::<LogsQuery>()
        .answers(
            200,
            "The lines (empty for an app that does not exist).",
            Body::Text,
        )
        .refuses(&[(400, "The app's name contains `/` or `..`."), INTERNAL]),
        Doc::new(
            Get,
            "/v1/apps/{app}/series",
            "series",
            "The app's traffic over the last minutes, per release",
        )
        .list::<ReleaseSeries>("One series per release that served traffic.")
        .refuses(&[(404, "No app of that name has been deployed."), STOPPING]),
        Doc::new(
            Post,
            "/v1/apps/{app}/promote",
            "promote",
            "Promote a canary to its next step",
        )
        .describe("To the next step of its canary; with `full`, past all of them to 100 %.")
        .optional_body::<PromoteRequest>()
        .json::<Accepted>(200, "The rollout took it.")
        .refuses(&[NO_ROLLOUT, STOPPING]),
        Doc::new(
            Post,
            "/v1/apps/{app}/pause",
            "pause",
            "Pause a rollout where it is",
        )
        .json::<Accepted>(200, "The rollout took it.")
        .refuses(&[NO_ROLLOUT, STOPPING]),
        Doc::new(
            Post,
            "/v1/apps/{app}/resume",
            "resume",
            "Resume a paused rollout",
        )
        .json::<Accepted>(200, "The rollout took it.")
        .refuses(&[NO_ROLLOUT, STOPPING]),
        Doc::new(
            Post,
            "/v1/apps/{app}/ramp",
            "setWeight",
            "Hold a canary at a weight",
        )
        .describe("Sends this percentage of the traffic to the canary and holds it there.")
        .body::<SetWeightRequest>()
        .json::<Accepted>(200, "The rollout took it.")
        .refuses(&[(400, "The weight is over 100."), NO_ROLLOUT, STOPPING]),
        Doc::new(
            Post,
            "/v1/apps/{app}/retry",
            "retry",
            "Roll out again a release whose rollout failed",
        )
        .body::<RetryRequest>()
        .json::<DeployAccepted>(202, "Its rollout started again.")
        .refuses(&[
            (400, "Its migrations are misdeclared; or an image is wrong."),
            (
                409,
                "The app's newest release did not fail (also for an app that does not \
                 exist); or another rollout holds the deploy lock; or the release phase failed; \
                 or an image is gone.",
            ),
            INTERNAL,
            STOPPING,
        ]),
        Doc::new(
            Post,
            "/v1/apps/{app}/drill",
            "drill",
            "Rehearse a rollback on the live app",
        )
        .describe(
            "Rolls out the stable release again, as a new release marked as a drill, as a canary at \
             `weight` percent (5 unless given) whose requests the proxy fails at `error_rate` (0.5 \
             unless given); the canary analysis is to catch it and roll it back. No release phase runs.",
        )
        .body::<DrillRequest>()
        .json::<DeployAccepted>(202, "The drill's release is recorded and its canary started.")
        .refuses(&[
            (400, "The weight is not 1 to 50, or the error rate not above 0 and at most 1."),
            (
                409,
                "The app has no stable release (also for an app that does not exist) or no web \
                 process; or a rollout is in progress; or its error budget is spent and deploys \
                 are held.",
            ),
            INTERNAL,
            STOPPING,
        ]),
        Doc::new(
            Get,
            "/v1/apps/{app}/drills",
            "drills",
            "What the app's drills found",
        )
        .describe(
            "One report per drill (by hand or `[drill] schedule`), newest first, recorded once the \
             drill's canary is gone: timings from its events, failures from the proxy's counters.",
        )
        .query::<DrillsQuery>()
        .list::<DrillReport>("The reports (none for an app that does not exist).")
        .refuses(&[INTERNAL]),
        Doc::new(
            Post,
            "/v1/apps/{app}/gate",
            "gate",
            "Judge the canary against the stable release",
        )
        .describe(
            "Compares the canary's error rate and/or latency with the stable release's \
             for `for_ms`, or less when it fails early.",
        )
        .body::<GateRequest>()
        .json::<GateAnswer>(200, "The verdict: pass, fail or inconclusive.")
        .refuses(&[
            (400, "Neither `error_rate` nor `latency` is given."),
            (
                409,
                "No canary of the app is running to judge (also for an app that does not exist).",
            ),
            INTERNAL,
            STOPPING,
        ]),
        Doc::new(
            Post,
            "/v1/apps/{app}/scale",
            "scale",
            "Change how many instances each process type runs",
        )
        .describe(
            "A new release with the new formation; running instances carry over, only \
             the difference starts or stops.",
        )
        .body::<ScaleRequest>()
        .json::<DeployAccepted>(
            202,
            "The new formation is the stable release (`rollout` is 0: none was needed).",
        )
        .refuses(&[
            (
                400,
                "The formation is empty, names a process type the app does not have, asks \
                 for more than 64 or for web=0, or changes nothing.",
            ),
            NO_STABLE,
            (
                409,
                "A rollout of the app holds its deploy lock, or is in progress.",
            ),
            INTERNAL,
            STOPPING,
        ]),
        Doc::new(
            Post,
            "/v1/apps/{app}/maintenance",
            "maintenanceOn",
            "Hold the app's requests at the proxy (maintenance)",
        )
        .describe(
            "Each request waits up to `hold_seconds` for the maintenance to end, then gets the \
             maintenance page (503 with `Retry-After`). Previews still reach the app. Kept \
             across daemon restarts until `DELETE`.",
        )
        .body::<MaintenanceRequest>()
        .json::<Accepted>(200, "The app is in maintenance.")
        .refuses(&[
            (
                400,
                "The hold is longer than an hour, or the page larger than 256 KiB.",
            ),
            NO_STABLE,
            INTERNAL,
            STOPPING,
        ]),
        Doc::new(
            Delete,
            "/v1/apps/{app}/maintenance",
            "maintenanceOff",
            "End the app's maintenance: held requests go on, in order",
        )
        .json::<Accepted>(
            200,
            "The app serves again (also when it was not in maintenance).",
        )
        .refuses(&[NO_STABLE, INTERNAL, STOPPING]),
        Doc::new(
            Post,
            "/v1/apps/{app}/abort",
            "abort",
            "Stop a rollout and go back to the stable release",
        )
        .optional_body::<AbortRequest>()
        .json::<Accepted>(200, "The rollout took it.")
        .refuses(&[NO_ROLLOUT, STOPPING]),
        Doc::new(
            Post,
            "/v1/apps/{app}/rollback",
            "rollback",
            "Roll back to an earlier release",
        )
        .describe(
            "To `to`, or to the release that served before the stable one; its down \
             migration runs first if it declares one.",
        )
        .body::<RollbackRequest>()
        .json::<DeployAccepted>(
            202,
            "The rollback's release is recorded and its rollout started.",
        )
        .refuses(&[
            (400, "An image of the release is wrong."),
            (
                404,
                "The app has no releases, no release `to`, or no earlier release that served.",
            ),
            LOCKED,
            INTERNAL,
            STOPPING,
        ]),
        Doc::new(
            Get,
            "/v1/apps/{app}/config",
            "config",
            "The stable release's config vars",
        )
        .describe("And where each comes from; secrets by name only.")
        .json::<ConfigView>(200, "The variables.")
        .refuses(&[NO_STABLE, INTERNAL]),
        Doc::new(
            Post,
            "/v1/apps/{app}/config",
            "changeConfig",
            "Set and unset config vars",
        )
        .describe("A new release with the changed variables, rolled out like a deploy.")
        .body::<ConfigChange>()
        .json::<DeployAccepted>(202, "The new release is recorded and its rollout started.")
        .refuses(&[
            (
                400,
                "A name is not a variable name, is set by slipway (`PORT`, `SLIPWAY_…`) or \
                 is a secret; a variable to unset is not set; or nothing changes.",
            ),
            NO_STABLE,
            LOCKED,
            INTERNAL,
            STOPPING,
        ]),
        Doc::new(
            Get,
            "/v1/apps/{app}/cron",
            "cron",
            "The stable release's cron jobs and their recent runs",
        )
        .json::<CronView>(200, "The jobs.")
        .refuses(&[NO_STABLE, INTERNAL]),
        Doc::new(
            Post,
            "/v1/apps/{app}/cron/{job}/run",
            "runCronJob",
            "Run a cron job now",
        )
        .describe(
            "By the job's concurrency policy: with `forbid` and a run going, it is \
             skipped (and says why).",
        )
        .body::<CronRunRequest>()
        .json::<CronRunAnswer>(200, "The run started, or was skipped.")
        .refuses(&[
            (
                404,
                "The app has no stable release (or does not exist), or its stable release \
                 has no such job.",
            ),
            INTERNAL,
        ]),
        Doc::new(
            Get,
            "/v1/apps/{app}/flags",
            "listFlags",
            "The app's feature flags",
        )
        .query::<ListQuery>()
        .json::<FlagList>(200, "Its flags (none for an app that has none).")
        .refuses(&[INTERNAL]),
        Doc::new(
            Get,
            "/v1/apps/{app}/flags/{key}",
            "flag",
            "One flag, in flagd's format, and its ramp",
        )
        .json::<FlagView>(200, "The flag.")
        .refuses(&[(404, "The app has no such flag."), INTERNAL]),
        Doc::new(
            Post,
            "/v1/apps/{app}/flags/{key}",
            "editFlag",
            "Change one flag",
        )
        .describe(
            "`action`: set (create or replace it, or change its default variant or \
             targeting), enable, disable, kill, delete. A change stops the flag's ramp.",
        )
        .body::<FlagEdit>()
        .json::<FlagChanges>(200, "What changed, with each change's audit number.")
        .refuses(&[
            (
                400,
                "The action is unknown, or the flag it would make is not valid.",
            ),
            (
                404,
                "The app has no such flag (for every action but a set with a definition).",
            ),
            INTERNAL,
        ]),
        Doc::new(
            Post,
            "/v1/apps/{app}/flags/{key}/revert",
            "revertFlag",
            "Put a flag back as a past change left it",
        )
        .body::<FlagRevert>()
        .json::<FlagChanges>(200, "What changed.")
        .refuses(&[(404, "The flag has no change of that number."), INTERNAL]),
        Doc::new(
            Post,
            "/v1/apps/{app}/flags/{key}/ramp",
            "rampFlag",
            "Start or stop a flag's ramp",
        )
        .describe(
            "Starts giving `variant` to a growing share of users, step by step, each \
             step judged by the app's traffic unless `unguarded`; or, with `stop`, stops the \
             running ramp and leaves the flag as it is.",
        )
        .body::<FlagRampRequest>()
        .answers(
            200,
            "The first step applied (what changed); or, for `stop`, `{\"ok\": true}`.",
            Body::json(Shape::one_of(vec![
                Shape::of::<FlagChanges>(),
                Shape::of::<Accepted>(),
            ])),
        )
        .refuses(&[
            (
                400,
                "The flag cannot ramp to that variant, or the steps or their length are not valid.",
            ),
            (
                404,
                "The app has no such flag; or, for `stop`, the flag is not ramping.",
            ),
            (
                409,
                "The flag is ramping already; or, for `stop`, its ramp ended meanwhile.",
            ),
            INTERNAL,
            STOPPING,
        ]),
        Doc::new(
            Get,
            "/v1/apps/{app}/flag-set",
            "exportFlags",
            "All of the app's flags as one flagd file",
        )
        .answers(
            200,
            "A flagd flag definition file (https://flagd.dev/reference/flag-definitions/).",
            Body::json(flagd_file()),
        )
        .refuses(&[]),
        Doc::new(
            Post,
            "/v1/apps/{app}/flag-set",
            "importFlags",
            "Apply a flagd file",
        )
        .describe(
            "The file becomes the app's whole flag set, or with `merge`, only the flags \
             it names change.",
        )
        .body::<FlagImport>()
        .json::<FlagChanges>(200, "What changed.")
        .refuses(&[(400, "The document is not a valid flagd file."), INTERNAL]),
        Doc::new(
            Get,
            "/v1/apps/{app}/flag-history",
            "flagHistory",
            "Changes to the app's flags, newest first",
        )
        .query::<HistoryQuery>()
        .list::<FlagAudit>("The changes.")
        .refuses(&[INTERNAL]),
        Doc::new(
            Get,
            "/v1/apps/{app}/flag-keys",
            "listFlagKeys",
            "The app's evaluation keys: names and rates, never a key",
        )
        .list::<FlagKeyView>("The keys.")
        .refuses(&[INTERNAL]),
        Doc::new(
            Post,
            "/v1/apps/{app}/flag-keys",
            "createFlagKey",
            "Make an evaluation key for OFREP clients",
        )
        .describe("The answer is the only time the key is shown: only its hash is kept.")
        .body::<FlagKeyCreate>()
        .json::<FlagKeyCreated>(200, "The key.")
        .refuses(&[
            (
                400,
                "The name is empty, over 100 characters or has a `/`; or the rate is negative.",
            ),
            (409, "The app has a key of that name."),
            INTERNAL,
        ]),
        Doc::new(
            Delete,
            "/v1/apps/{app}/flag-keys/{name}",
            "revokeFlagKey",
            "Revoke an evaluation key",
        )
        .json::<Accepted>(200, "The key opens nothing any more.")
        .refuses(&[(404, "The app has no key of that name."), INTERNAL]),
        Doc::new(
            Get,
            "/v1/tokens",
            "listTokens",
            "The API tokens: names and roles, never a token",
        )
        .list::<ApiToken>(
            "The tokens made with `POST /v1/tokens` (the daemon's own is not listed).",
        )
        .refuses(&[INTERNAL]),
        Doc::new(Post, "/v1/tokens", "createToken", "Make an API token")
            .describe("The answer is the only time the token is shown: only its hash is kept.")
            .body::<TokenRequest>()
            .json::<TokenCreated>(201, "The token.")
            .refuses(&[
                (
                    400,
                    "The role is not viewer, deployer or admin; or the name is not 1 to 64 \
                     letters, digits, `-`, `_`, `.`, `@`.",
                ),
                (409, "A token of that name exists."),
                INTERNAL,
            ]),
        Doc::new(
            Delete,
            "/v1/tokens/{name}",
            "revokeToken",
            "Revoke an API token",
        )
        .json::<TokenRevoked>(200, "The token opens nothing any more.")
        .refuses(&[
            (
                404,
                "No token of that name (the daemon's own cannot be revoked).",
            ),
            INTERNAL,
        ]),
    ]
}

/// The flagd file format, as far as the daemon writes it (`FlagSet::to_flagd_value`): the flags by
/// key, and the shared evaluators and metadata when there are any. Written here because the
/// definitions inside are flagd's JSON, not a wire type of ours.
fn flagd_file() -> Shape {
    let object = || ObjectBuilder::new().schema_type(Type::Object);
    Shape::inline(
        object()
            .property("$schema", ObjectBuilder::new().schema_type(Type::String))
            .required("$schema")
            .property(
                "flags",
                object().description(Some("Each flag's definition, by its key.")),
            )
            .required("flags")
            .property(
                "$evaluators",
                object().description(Some("Targeting rules shared by name (`$ref`).")),
            )
            .property("metadata", object()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::collections::HashSet;

    fn api_routes() -> Vec<&'static Route> {
        ROUTES.iter().filter(|r| r.door == Door::Api).collect()
    }

    fn json() -> Value {
        serde_json::to_value(document()).unwrap()
    }

    #[test]
    fn every_api_route_is_described_and_nothing_else_is() {
        let routes: HashSet<_> = api_routes().iter().map(|r| (r.verb, r.path)).collect();
        let mut described = HashSet::new();
        for d in docs() {
            assert!(
                described.insert((d.verb, d.path)),
                "{} {} is described twice",
                d.verb.as_str(),
                d.path
            );
        }
        let undescribed: Vec<_> = routes.difference(&described).collect();
        assert!(
            undescribed.is_empty(),
            "API routes with no entry in openapi.rs's docs(): {undescribed:?}"
        );
        let unrouted: Vec<_> = described.difference(&routes).collect();
        assert!(
            unrouted.is_empty(),
            "described in openapi.rs but not an API route of route_table.rs: {unrouted:?}"
        );
    }

    #[test]
    fn the_document_lists_exactly_the_api_routes_with_their_roles() {
        let doc = json();
        assert_eq!(doc["openapi"], "3.1.0");
        let mut listed = HashSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                listed.insert((method.to_uppercase(), path.clone()));
                let route = api_routes()
                    .into_iter()
                    .find(|r| r.path == path && r.verb.as_str() == method.to_uppercase())
                    .unwrap_or_else(|| panic!("{method} {path} is not an API route"));
                let role = role_of(route);
                assert_eq!(op["x-slipway-role"], role.as_str(), "{method} {path}");
                let description = op["description"].as_str().unwrap();
                assert!(
                    description.contains(&format!("**{}**", role.as_str())),
                    "{method} {path}: {description}"
                );
                let responses = op["responses"].as_object().unwrap();
                assert!(responses.contains_key("401") && responses.contains_key("429"));
                assert_eq!(responses.contains_key("403"), role > Role::Viewer, "{path}");
                let successes: Vec<_> = responses.keys().filter(|s| s.starts_with('2')).collect();
                assert_eq!(successes.len(), 1, "{method} {path}: {successes:?}");
                for (status, response) in responses {
                    if status.starts_with(['4', '5']) && response.get("$ref").is_none() {
                        assert_eq!(
                            response["content"]["application/json"]["schema"]["$ref"],
                            "#/components/schemas/ApiError",
                            "{method} {path} {status}"
                        );
                    }
                }
            }
        }
        let routes: HashSet<_> = api_routes()
            .iter()
            .map(|r| (r.verb.as_str().to_string(), r.path.to_string()))
            .collect();
        assert_eq!(listed, routes);
        // Neither the dashboard nor OFREP.
        assert!(
            !listed
                .iter()
                .any(|(_, p)| p.starts_with("/ui") || p.starts_with("/ofrep"))
        );
    }

    #[test]
    fn every_operation_needs_the_bearer_token() {
        let doc = json();
        assert_eq!(doc["security"], serde_json::json!([{ "bearer": [] }]));
        let scheme = &doc["components"]["securitySchemes"]["bearer"];
        assert_eq!(scheme["type"], "http");
        assert_eq!(scheme["scheme"], "bearer");
    }

    #[test]
    fn path_parameters_are_the_patterns_own() {
        let doc = json();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let declared: Vec<&str> = op["parameters"]
                    .as_array()
                    .map(|ps| {
                        ps.iter()
                            .filter(|p| p["in"] == "path")
                            .map(|p| p["name"].as_str().unwrap())
                            .collect()
                    })
                    .unwrap_or_default();
                assert_eq!(declared, path_parameters(path), "{method} {path}");
                for name in declared {
                    assert_ne!(
                        path_parameter_meaning(name),
                        "(not described)",
                        "{path}: {name}"
                    );
                }
            }
        }
    }

    #[test]
    fn every_reference_resolves_and_operation_ids_are_unique() {
        let doc = json();
        let mut refs = Vec::new();
        collect_refs(&doc, &mut refs);
        assert!(!refs.is_empty());
        for r in refs {
            let pointer = r
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("{r}: not local"));
            assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
        }
        // Named schemas are wire types; a primitive's name (`u64`) means a type alias was taken for
        // a type (see the note in slipway-api's apps.rs).
        for name in doc["components"]["schemas"].as_object().unwrap().keys() {
            assert!(
                name.starts_with(|c: char| c.is_ascii_uppercase()),
                "a schema named {name}"
            );
        }
        let mut ids = HashSet::new();
        for item in doc["paths"].as_object().unwrap().values() {
            for op in item.as_object().unwrap().values() {
                let id = op["operationId"].as_str().unwrap();
                assert!(ids.insert(id.to_string()), "operationId {id} twice");
            }
        }
    }

    fn collect_refs(value: &Value, refs: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    match (k.as_str(), v) {
                        ("$ref", Value::String(r)) => refs.push(r.clone()),
                        _ => collect_refs(v, refs),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| collect_refs(v, refs)),
            _ => {}
        }
    }

    #[test]
    fn one_name_is_one_schema() {
        // Two wire types of one name would silently share one schema: the first one seen.
        let mut seen: BTreeMap<String, Value> = BTreeMap::new();
        for doc in docs() {
            let shapes = doc.body.iter().map(|b| &b.shape).chain(match &doc.ok.2 {
                Body::Json(shape) => Some(&**shape),
                Body::Text | Body::Tar => None,
            });
            for shape in shapes {
                for (name, schema) in &shape.components {
                    let schema = serde_json::to_value(schema).unwrap();
                    if let Some(before) = seen.insert(name.clone(), schema.clone()) {
                        assert_eq!(before, schema, "two schemas named {name}");
                    }
                }
            }
        }
    }

    #[test]
    fn bodies_and_answers_are_as_the_handlers_take_and_give_them() {
        let doc = json();
        let op = |method: &str, path: &str| doc["paths"][path][method].clone();
        // A required JSON body, and what the extractor refuses.
        let deploy = op("post", "/v1/deploy");
        assert_eq!(deploy["requestBody"]["required"], true);
        assert_eq!(
            deploy["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/DeployRequest"
        );
        for status in ["202", "400", "409", "413", "415", "422", "500", "503"] {
            assert!(deploy["responses"].get(status).is_some(), "deploy {status}");
        }
        // Optional bodies.
        assert_eq!(
            op("post", "/v1/apps/{app}/promote")["requestBody"]["required"],
            false
        );
        assert!(
            op("post", "/v1/apps/{app}/pause")
                .get("requestBody")
                .is_none()
        );
        // Text answers.
        for path in ["/metrics", "/v1/apps/{app}/logs"] {
            let content = &op("get", path)["responses"]["200"]["content"];
            assert!(content.get("text/plain").is_some(), "{path}: {content}");
        }
        // Query parameters come from the handlers' query types.
        let names: Vec<_> = op("get", "/v1/apps/{app}/logs")["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["in"] == "query")
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(names, ["release", "process", "since", "follow", "tail"]);
        let created = &op("post", "/v1/tokens")["responses"]["201"]["content"];
        assert_eq!(
            created["application/json"]["schema"]["$ref"],
            "#/components/schemas/TokenCreated"
        );
    }

    #[tokio::test]
    async fn it_is_served_as_json() {
        let response = serve().await;
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        use http_body_util::BodyExt;
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let served: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(served, json());
    }
}
