//! On-demand TLS: a certificate for a name no app lists, made while the client's handshake waits —
//! for customers' own domains pointed at this host. Only for names the operator's `ask` URL approves
//! (`GET <ask>?domain=<name>` answering 2xx), never for whatever name a client happens to send: a
//! refusal is remembered for a minute, so a scanner cycling names costs one question each, and at most
//! [`MAX_HOSTS`] names are ever taken on. The order itself is the keeper's (`upkeep.rs`), as for any
//! `tls = "auto"` host: renewed, saved in the state dir, listed by `slipway certs`.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::tls::cert_store::CertStore;

/// How long a handshake waits for its certificate.
const WAIT: Duration = Duration::from_secs(30);
/// How long the ask URL has to answer.
const ASK_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a refusal (or an unanswered question) is remembered.
const REFUSAL_KEPT: Duration = Duration::from_secs(60);
/// The most names taken on demand.
pub const MAX_HOSTS: usize = 10_000;

pub struct OnDemand {
    ask: reqwest::Url,
    http: reqwest::Client,
    certs: Arc<CertStore>,
    /// Approved names, to the keeper.
    approved: mpsc::UnboundedSender<String>,
    refused: Mutex<HashMap<String, Instant>>,
    /// Names approved so far (at most [`MAX_HOSTS`]).
    taken: Mutex<HashSet<String>>,
}

impl OnDemand {
    pub(super) fn new(
        ask: reqwest::Url,
        certs: Arc<CertStore>,
        approved: mpsc::UnboundedSender<String>,
    ) -> OnDemand {
        OnDemand {
            ask,
            http: crate::http_client::new(),
            certs,
            approved,
            refused: Mutex::new(HashMap::new()),
            taken: Mutex::new(HashSet::new()),
        }
    }

    /// Whether the ask URL approves `name` (2xx); remembered for a while when it does not.
    async fn approves(&self, name: &str) -> bool {
        {
            let mut refused = self.refused.lock().unwrap_or_else(|e| e.into_inner());
            refused.retain(|_, at| at.elapsed() < REFUSAL_KEPT);
            if refused.contains_key(name) {
                return false;
            }
        }
        let mut url = self.ask.clone();
        url.query_pairs_mut().append_pair("domain", name);
        let answer = self.http.get(url).timeout(ASK_TIMEOUT).send().await;
        let approved = match answer {
            Ok(answer) => answer.status().is_success(),
            Err(error) => {
                tracing::warn!(host = %name, %error, "the on-demand TLS ask URL did not answer; not issuing");
                false
            }
        };
        if !approved {
            let mut refused = self.refused.lock().unwrap_or_else(|e| e.into_inner());
            refused.insert(name.to_owned(), Instant::now());
        }
        approved
    }

    async fn certificate_for(&self, name: &str) {
        let name = name.to_ascii_lowercase();
        if self.certs.find(&name).is_some() || !self.approves(&name).await {
            return;
        }
        {
            let mut taken = self.taken.lock().unwrap_or_else(|e| e.into_inner());
            if !taken.contains(&name) && taken.len() >= MAX_HOSTS {
                tracing::warn!(host = %name, "on-demand TLS already holds {MAX_HOSTS} names; not issuing");
                return;
            }
            taken.insert(name.clone());
        }
        tracing::info!(host = %name, "on-demand TLS: approved by the ask URL; ordering a certificate");
        if self.approved.send(name.clone()).is_err() {
            return;
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let published = self.certs.published();
            if self.certs.find(&name).is_some() {
                return;
            }
            if tokio::time::timeout_at(deadline, published).await.is_err() {
                tracing::warn!(host = %name, "on-demand TLS: no certificate within {WAIT:?}");
                return;
            }
        }
    }
}

impl slipway_proxy::OnDemandCerts for OnDemand {
    fn prepare<'a>(&'a self, name: &'a str) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(self.certificate_for(name))
    }
}
