//! `GET /v1/certs` and `POST /v1/certs/{host}/renew`: the TLS certificates the daemon serves.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One host's certificate, as `slipway certs` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct CertStatus {
    pub host: String,
    /// The app whose `[routing] tls` names this host; `None` for the fallback certificate.
    pub app: Option<String>,
    /// `acme` (issued and renewed by the daemon) or `files`.
    pub source: String,
    /// The issuer's common name; `None` until a certificate is there.
    pub issuer: Option<String>,
    /// Unix seconds.
    pub not_after: Option<u64>,
    /// When the daemon will renew it (ACME) or try again after a failure, Unix seconds.
    pub next_renewal: Option<u64>,
    /// Why the last attempt failed (a file unreadable, the CA's answer); cleared on success.
    pub last_error: Option<String>,
    /// Failed attempts in a row.
    pub failures: u32,
}

/// The answer of `POST /v1/certs/{host}/renew`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RenewStarted {
    pub host: String,
}
