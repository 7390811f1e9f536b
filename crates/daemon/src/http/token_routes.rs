//! `/v1/tokens`: make, list and revoke API tokens. Over TCP only an admin gets here (`auth.rs`); on the
//! local socket, whoever can open it (mode 0600: the host's admin) can.

use crate::http::auth::{Identity, Role};
use crate::http::extract::{Json, Path};
use crate::http::route_table::{Door, Routes};
use crate::http::tokens;
use crate::http::{Answer, Api, error};
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use slipway_api::{TokenCreated, TokenRequest, TokenRevoked};

/// Token changes belong to no app; the event journal files them under this name.
pub const AUDIT_APP: &str = crate::history_retention::DAEMON_JOURNAL;

pub fn routes() -> Routes<Api> {
    Routes::new(Door::Api)
        .get("/v1/tokens", list)
        .post("/v1/tokens", create)
        .delete("/v1/tokens/{name}", revoke)
}

async fn create(
    State(api): State<Api>,
    caller: Option<Extension<Identity>>,
    Json(req): Json<TokenRequest>,
) -> Answer {
    let Some(role) = Role::parse(&req.role) else {
        return Err(error(
            StatusCode::BAD_REQUEST,
            format!("role {:?}: it is viewer, deployer or admin", req.role),
        ));
    };
    if !tokens::valid_name(&req.name) {
        return Err(error(
            StatusCode::BAD_REQUEST,
            format!(
                "token name {:?}: 1 to 64 letters, digits, '-', '_', '.', '@' (and not {:?})",
                req.name,
                tokens::LEGACY_NAME
            ),
        ));
    }
    // Over TCP the token's name is who made it; on the socket the CLI says who it runs as.
    let by = match caller {
        Some(Extension(id)) => format!("token {}", id.name),
        None => req.who.clone(),
    };
    let token = tokens::generate();
    let hash = tokens::hash(&token);
    let now = crate::clock::now_ms() as i64;
    let store = api.store.clone();
    let (name, role_text) = (req.name.clone(), role.as_str());
    let added = tokio::task::spawn_blocking(move || {
        if !store.create_token(&name, role_text, &hash, &by, now)? {
            return Ok(false);
        }
        store.add_event(
            AUDIT_APP,
            None,
            "token_created",
            &format!("token {name} ({role_text}) created by {by}"),
            now,
        )?;
        Ok::<_, slipway_store::StoreError>(true)
    })
    .await
    .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    if !added {
        return Err(error(
            StatusCode::CONFLICT,
            format!(
                "a token named {} exists; revoke it first (`slipway token revoke {}`) or pick another name",
                req.name, req.name
            ),
        ));
    }
    Ok((
        StatusCode::CREATED,
        Json(TokenCreated {
            name: req.name,
            role: role.as_str().into(),
            token,
        }),
    )
        .into_response())
}

async fn list(State(api): State<Api>) -> Answer {
    let list = api
        .store
        .tokens()
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(list).into_response())
}

async fn revoke(
    State(api): State<Api>,
    caller: Option<Extension<Identity>>,
    Path(name): Path<String>,
) -> Answer {
    let gone = api
        .store
        .revoke_token(&name)
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    if !gone {
        return Err(error(
            StatusCode::NOT_FOUND,
            format!("no token named {name}; `slipway token list` shows them"),
        ));
    }
    let by = caller.map_or_else(
        || "the local socket".to_string(),
        |c| format!("token {}", c.0.name),
    );
    let _ = api.store.add_event(
        AUDIT_APP,
        None,
        "token_revoked",
        &format!("token {name} revoked by {by}"),
        crate::clock::now_ms() as i64,
    );
    Ok(Json(TokenRevoked { revoked: name }).into_response())
}
