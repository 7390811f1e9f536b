//! `slipway token create|list|revoke`: API tokens with roles. A new token is printed once, on stdout
//! alone (so `TOKEN=$(slipway token create ci --role deployer)` works); the daemon keeps only its hash.

use super::{Context, who};
use crate::output::{table, time};
use serde::Deserialize;
use slipway_api::{TokenCreated, TokenRequest};
use std::process::ExitCode;

#[derive(Deserialize, serde::Serialize)]
struct Listed {
    name: String,
    role: String,
    created_at: i64,
    created_by: String,
    last_used_at: Option<i64>,
}

pub async fn create(ctx: &Context, name: &str, role: &str) -> anyhow::Result<ExitCode> {
    let request = TokenRequest {
        name: name.to_string(),
        role: role.to_string(),
        who: who(),
    };
    let created: TokenCreated = match ctx.client.post("/v1/tokens", &request).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    eprintln!(
        "token {} ({}) created; it is shown only now, keep it somewhere safe:",
        created.name, created.role
    );
    if ctx.json() {
        crate::output::json(&created)?;
    } else {
        println!("{}", created.token);
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn list(ctx: &Context) -> anyhow::Result<ExitCode> {
    let tokens: Vec<Listed> = ctx.client.get("/v1/tokens").await?;
    if ctx.json() {
        crate::output::json(&tokens)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = table(&["NAME", "ROLE", "CREATED", "BY", "LAST USED"]);
    for k in &tokens {
        t.add_row(vec![
            k.name.clone(),
            k.role.clone(),
            time(k.created_at),
            k.created_by.clone(),
            k.last_used_at.map(time).unwrap_or_else(|| "never".into()),
        ]);
    }
    println!("{t}");
    Ok(ExitCode::SUCCESS)
}

pub async fn revoke(ctx: &Context, name: &str) -> anyhow::Result<ExitCode> {
    match ctx
        .client
        .delete::<serde_json::Value>(&format!("/v1/tokens/{name}"))
        .await
    {
        Ok(_) => {
            if ctx.json() {
                crate::output::json(&serde_json::json!({ "revoked": name }))?;
            } else {
                println!("token {name} revoked");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(1))
        }
    }
}
