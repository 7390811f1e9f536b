//! TLS for the proxy's HTTPS listener: which certificate each host gets, and keeping them valid.
//!
//! Apps name their hosts' certificate in `[routing] tls`: `"auto"` (issued by ACME, renewed at two
//! thirds of the lifetime) or `{ cert, key }` files (read again when they change). A fallback
//! certificate (`serve --tls-cert/--tls-key`) answers any other name, wildcards included. One task
//! ([`upkeep`]) owns the per-host state; handshakes read the [`CertStore`] it publishes, and the API
//! reads the [`CertStatus`](slipway_api::CertStatus) list it keeps. One host failing (a file
//! unreadable, a CA refusing) never stops the others: its error is kept, logged and recorded as an
//! event, and it is tried again with backoff.

pub mod acme;
mod acme_client;
pub mod cert_facts;
pub mod cert_store;
pub mod on_demand;
pub mod pem_files;
pub mod renewal;
pub mod revocation;
pub mod server_config;
mod upkeep;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use slipway_api::CertStatus;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::error::Error;
pub use cert_store::CertStore;

/// What `serve` was told about TLS.
#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    /// The CA for `tls = "auto"`; `None`: such hosts get an error in `certs` and the fallback.
    pub acme: Option<acme::AcmeSettings>,
    /// A certificate for names no app's certificate covers (a wildcard, typically).
    pub fallback: Option<(PathBuf, PathBuf)>,
    /// On-demand TLS: names no app lists get an ACME certificate during their first handshake if
    /// this URL approves them (`on_demand.rs`).
    pub on_demand_ask: Option<String>,
}

/// The running TLS certificate keeper.
pub struct Tls {
    pub certs: Arc<CertStore>,
    /// For the HTTPS listener, when on-demand TLS is on.
    pub on_demand: Option<Arc<on_demand::OnDemand>>,
    status: Arc<Mutex<Vec<CertStatus>>>,
    asks: mpsc::UnboundedSender<Ask>,
    /// An ACME CA is configured (`--acme-email` / `--acme-directory`).
    acme: bool,
    look: Arc<tokio::sync::Notify>,
}

impl Tls {
    /// Starts the keeper; it stops when `stop` is cancelled.
    pub fn start(
        settings: TlsSettings,
        store: Arc<slipway_store::Store>,
        dir: PathBuf,
        http01: slipway_proxy::AcmeChallenges,
        stop: CancellationToken,
    ) -> anyhow::Result<(Arc<Tls>, tokio::task::JoinHandle<()>)> {
        std::fs::create_dir_all(&dir)?;
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
        let certs = Arc::new(CertStore::default());
        let status = Arc::new(Mutex::new(Vec::new()));
        let (asks, requests) = mpsc::unbounded_channel();
        let (approved, approvals) = mpsc::unbounded_channel();
        let on_demand = match (&settings.on_demand_ask, &settings.acme) {
            (Some(ask), Some(_)) => {
                let ask = reqwest::Url::parse(ask)
                    .map_err(|e| anyhow::anyhow!("--on-demand-ask {ask}: not a URL ({e})"))?;
                Some(Arc::new(on_demand::OnDemand::new(
                    ask,
                    certs.clone(),
                    approved,
                )))
            }
            (Some(_), None) => anyhow::bail!(
                "--on-demand-ask needs an ACME CA to order from: add --acme-email (or --acme-directory)"
            ),
            (None, _) => None,
        };
        let acme = settings.acme.clone().map(|s| {
            Arc::new(acme::Acme::new(
                s,
                dir.join("account.json"),
                http01,
                certs.clone(),
            ))
        });
        let settings_acme = acme.is_some();
        let keeper = upkeep::Upkeep::new(settings, acme, store, dir, certs.clone(), status.clone());
        let look = Arc::new(tokio::sync::Notify::new());
        let task = tokio::spawn(keeper.run(requests, approvals, look.clone(), stop));
        Ok((
            Arc::new(Tls {
                certs,
                on_demand,
                status,
                asks,
                acme: settings_acme,
                look,
            }),
            task,
        ))
    }

    /// Every host's certificate, by host name.
    pub fn status(&self) -> Vec<CertStatus> {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Reads the apps' TLS settings again now (after a deploy or a rollback).
    pub fn look_now(&self) {
        self.look.notify_one();
    }

    /// Asks for a new certificate for `host` now (ACME hosts), or a reload of its files.
    pub fn renew(&self, host: &str) -> Result<(), Error> {
        let host = self.known(host)?.host;
        self.send(Ask::Renew(host))
    }

    /// Replaces `host`'s ACME certificate with a new one and has the CA revoke the old one once it is
    /// replaced (or the order failed: a revocation asked for is never held back). The serial revoked.
    pub fn revoke(&self, host: &str, reason: revocation::Reason) -> Result<String, Error> {
        let status = self.known(host)?;
        if status.source != "acme" {
            return Err(Error::conflict(format!(
                "{} is served from certificate files: the CA that issued them revokes them; \
                 replace the files and `slipway certs renew {}` reads them again",
                status.host, status.host
            )));
        }
        if !self.acme {
            return Err(Error::conflict(
                "revoking needs the ACME CA that issued the certificate: start the daemon with \
                 --acme-email (and --acme-directory if it is not Let's Encrypt)",
            ));
        }
        let Some(serial) = status.serial else {
            return Err(Error::conflict(format!(
                "{} has no certificate yet: there is nothing to revoke",
                status.host
            )));
        };
        self.send(Ask::Revoke(status.host, serial.clone(), reason))?;
        Ok(serial)
    }

    fn known(&self, host: &str) -> Result<CertStatus, Error> {
        let host = host.to_ascii_lowercase();
        self.status()
            .into_iter()
            .find(|s| s.host == host)
            .ok_or_else(|| {
                Error::not_found(format!(
                    "no app names {host} in [routing] hosts with tls set; `slipway certs` lists the hosts"
                ))
            })
    }

    fn send(&self, ask: Ask) -> Result<(), Error> {
        self.asks
            .send(ask)
            .map_err(|_| Error::unavailable("the daemon is shutting down"))
    }
}

/// What the API asks of the keeper.
pub(crate) enum Ask {
    Renew(String),
    /// Host, the serial of the certificate to revoke (the one the caller saw), why.
    Revoke(String, String, revocation::Reason),
}
