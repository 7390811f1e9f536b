//! `GET /v1/openapi.json` on a real daemon's TCP API: any valid token reads it, it is OpenAPI 3.1, and it
//! lists every API route of the role table (`slipway_daemon::http::route_table::ROUTES`) with the role
//! it needs — and nothing else. Spot checks that the daemon answers as the document says: the health
//! answer has every field its schema requires, and a refused body comes back with a status and a body
//! the document lists for that operation. (`ci/schemathesis.sh` checks every operation at length.)

mod support;

use serde_json::Value;
use slipway_daemon::http::route_table::{Access, Door, ROUTES};
use std::collections::BTreeSet;
use support::World;
use support::http::{Response, request};

fn get(world: &World, path: &str, token: Option<&str>) -> Response {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = bearer
        .iter()
        .map(|b| ("Authorization", b.as_str()))
        .collect();
    request(world.api_addr(), "GET", path, &headers, "", true)
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

fn json(answer: &Response) -> Value {
    assert_eq!(
        answer.header("content-type"),
        Some("application/json"),
        "{answer:?}"
    );
    serde_json::from_str(&answer.body).unwrap_or_else(|e| panic!("{e}: {}", answer.body))
}

#[test]
fn any_valid_token_reads_the_openapi_document_and_it_lists_every_api_route() {
    let world = World::with_daemon_args(&["--api", "127.0.0.1:0"]);
    let viewer = world.create_token("reader", "viewer");

    // No token, no document: the door's 401, with the error body the document describes.
    let refused = get(&world, "/v1/openapi.json", None);
    assert_eq!(refused.status, 401, "{refused:?}");
    assert!(json(&refused)["error"].is_string());

    let answer = get(&world, "/v1/openapi.json", Some(&viewer));
    assert_eq!(answer.status, 200, "{answer:?}");
    let doc = json(&answer);
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));

    let mut listed = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("a path item") {
            listed.insert((method.to_uppercase(), path.clone()));
            let route = ROUTES
                .iter()
                .find(|r| {
                    r.door == Door::Api
                        && r.path == path
                        && r.verb.as_str() == method.to_uppercase()
                })
                .unwrap_or_else(|| {
                    panic!("{method} {path} is in the document but not an API route")
                });
            let Access::Role(role) = route.access else {
                panic!("{route:?}: the API door takes tokens");
            };
            assert_eq!(op["x-slipway-role"], role.as_str(), "{method} {path}");
            assert!(op["responses"]["401"].is_object(), "{method} {path}");
        }
    }
    let routes: BTreeSet<_> = ROUTES
        .iter()
        .filter(|r| r.door == Door::Api)
        .map(|r| (r.verb.as_str().to_string(), r.path.to_string()))
        .collect();
    assert_eq!(listed, routes);
    assert!(listed.contains(&("GET".to_string(), "/v1/openapi.json".to_string())));
    assert!(listed.contains(&("GET".to_string(), "/metrics".to_string())));

    // The health answer has every field the document says it must.
    let health = json(&get(&world, "/v1/health", Some(&viewer)));
    let schema = &doc["components"]["schemas"]["Health"];
    let required = schema["required"]
        .as_array()
        .expect("Health's required fields");
    assert!(!required.is_empty());
    for field in required {
        let field = field.as_str().unwrap();
        assert!(health.get(field).is_some(), "{field} missing from {health}");
    }

    // A body that is not JSON: the status and the error body are the document's for that operation.
    let admin = world.create_token("root", "admin");
    let bearer = format!("Bearer {admin}");
    let refused = request(
        world.api_addr(),
        "POST",
        "/v1/tokens",
        &[("Authorization", &bearer), ("Content-Type", "text/plain")],
        "name=x",
        true,
    )
    .unwrap();
    assert_eq!(refused.status, 415, "{refused:?}");
    let error = json(&refused);
    assert_eq!(error["kind"], "bad_request");
    let documented = &doc["paths"]["/v1/tokens"]["post"]["responses"]["415"];
    assert_eq!(
        documented["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ApiError"
    );
}
