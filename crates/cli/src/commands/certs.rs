//! `slipway certs [--json]`: every TLS host's certificate (issuer, expiry, next renewal, last error);
//! `slipway certs renew HOST`: a new certificate now.

use super::Context;
use crate::output::{table, time};
use slipway_api::{CertStatus, RenewStarted};
use std::process::ExitCode;

pub async fn list(ctx: &Context) -> anyhow::Result<ExitCode> {
    let certs: Vec<CertStatus> = ctx.client.get("/v1/certs").await?;
    if ctx.json() {
        crate::output::json(&certs)?;
        return Ok(ExitCode::SUCCESS);
    }
    if certs.is_empty() {
        println!("no app sets [routing] tls, and there is no fallback certificate");
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = table(&[
        "HOST",
        "APP",
        "SOURCE",
        "ISSUER",
        "NOT AFTER",
        "NEXT RENEWAL",
        "LAST ERROR",
    ]);
    let at = |secs: Option<u64>| secs.map_or("-".to_owned(), |s| time(s as i64 * 1000));
    for c in &certs {
        t.add_row(vec![
            c.host.clone(),
            c.app.clone().unwrap_or_else(|| "(fallback)".to_owned()),
            c.source.clone(),
            c.issuer.clone().unwrap_or_else(|| "-".to_owned()),
            at(c.not_after),
            at(c.next_renewal),
            match &c.last_error {
                Some(e) => format!("{e} ({} failures)", c.failures),
                None => String::new(),
            },
        ]);
    }
    println!("{t}");
    Ok(ExitCode::SUCCESS)
}

pub async fn renew(ctx: &Context, host: &str) -> anyhow::Result<ExitCode> {
    let started: RenewStarted = ctx
        .client
        .post(&format!("/v1/certs/{host}/renew"), &serde_json::json!({}))
        .await?;
    if ctx.json() {
        crate::output::json(&started)?;
    } else {
        println!(
            "renewing the certificate of {}: `slipway certs` shows the outcome",
            started.host
        );
    }
    Ok(ExitCode::SUCCESS)
}
