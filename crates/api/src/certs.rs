//! `GET /v1/certs`, `POST /v1/certs/{host}/renew` and `POST /v1/certs/{host}/revoke`: the TLS
//! certificates the daemon serves.

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
    /// The serial number of the certificate served, lowercase hex; `None` until one is there.
    #[serde(default)]
    pub serial: Option<String>,
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
    /// The last revocation asked for (`certs revoke`): pending, done, or why the CA refused it.
    #[serde(default)]
    pub revocation: Option<String>,
}

/// The answer of `POST /v1/certs/{host}/renew`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RenewStarted {
    pub host: String,
}

/// The body of `POST /v1/certs/{host}/revoke`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct RevokeCert {
    /// Why (RFC 5280 §5.3.1, the reasons ACME CAs accept): `unspecified` (default), `key-compromise`,
    /// `affiliation-changed`, `superseded` or `cessation-of-operation`.
    #[serde(default)]
    pub reason: Option<String>,
}

/// The answer of `POST /v1/certs/{host}/revoke`: a new certificate is being ordered; the one named
/// here is revoked as soon as it is replaced (or the order failed).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RevokeStarted {
    pub host: String,
    /// The serial number of the certificate being revoked.
    pub serial: String,
    pub reason: String,
}
