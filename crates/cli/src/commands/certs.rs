//! `slipway certs [--json]`: every TLS host's certificate (issuer, expiry, next renewal, last error);
//! `slipway certs renew HOST`: a new certificate now; `slipway certs revoke HOST`: a new certificate,
//! then the old one revoked by the CA.

use super::Context;
use crate::output::{table, time};
use slipway_api::{CertStatus, RenewStarted, RevokeCert, RevokeStarted};
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
        "SERIAL",
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
            c.serial.clone().unwrap_or_else(|| "-".to_owned()),
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
    for c in &certs {
        if let Some(revocation) = &c.revocation {
            println!("{}: revocation: {revocation}", c.host);
        }
    }
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

pub async fn revoke(ctx: &Context, host: &str, reason: &str) -> anyhow::Result<ExitCode> {
    let body = RevokeCert {
        reason: Some(reason.to_owned()),
    };
    let started: RevokeStarted = ctx
        .client
        .post(&format!("/v1/certs/{host}/revoke"), &body)
        .await?;
    if ctx.json() {
        crate::output::json(&started)?;
    } else {
        println!(
            "ordering a new certificate for {}; certificate {} is then revoked ({}): \
             `slipway certs` shows the new one and the revocation",
            started.host, started.serial, started.reason
        );
    }
    Ok(ExitCode::SUCCESS)
}
