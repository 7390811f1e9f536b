//! The certificates the TLS listener presents, chosen by the name the client asks for (SNI): the
//! exact host, then a wildcard one label up, then the fallback certificate. A TLS-ALPN-01 validation
//! (ALPN `acme-tls/1`) gets its challenge certificate instead. The map is swapped whole, so a handshake
//! never waits on the task that loads and renews certificates.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Certificates by host name (lowercase; `*.example.com` for wildcards).
#[derive(Debug, Default)]
pub struct CertStore {
    by_host: ArcSwap<HashMap<String, Arc<CertifiedKey>>>,
    fallback: ArcSwap<Option<Arc<CertifiedKey>>>,
    /// TLS-ALPN-01 challenge certificates, present only while their order is pending.
    challenges: RwLock<HashMap<String, Arc<CertifiedKey>>>,
    /// Woken at every publish, for handshakes waiting on an on-demand certificate.
    changed: tokio::sync::Notify,
}

impl CertStore {
    pub fn publish(&self, by_host: HashMap<String, Arc<CertifiedKey>>) {
        self.by_host.store(Arc::new(by_host));
        self.changed.notify_waiters();
    }

    /// Resolves at the next publish. Take it before looking, so a publish in between is not missed.
    pub fn published(&self) -> impl std::future::Future<Output = ()> + '_ {
        let mut notified = Box::pin(self.changed.notified());
        notified.as_mut().enable();
        notified
    }

    pub fn set_fallback(&self, fallback: Option<Arc<CertifiedKey>>) {
        self.fallback.store(Arc::new(fallback));
    }

    pub fn add_challenge(&self, host: &str, cert: Arc<CertifiedKey>) {
        let mut challenges = self.challenges.write().unwrap_or_else(|e| e.into_inner());
        challenges.insert(host.to_ascii_lowercase(), cert);
    }

    pub fn remove_challenge(&self, host: &str) {
        let mut challenges = self.challenges.write().unwrap_or_else(|e| e.into_inner());
        challenges.remove(&host.to_ascii_lowercase());
    }

    /// The certificate for `name` (no fallback).
    pub fn find(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        let name = name.to_ascii_lowercase();
        let by_host = self.by_host.load();
        if let Some(cert) = by_host.get(&name) {
            return Some(cert.clone());
        }
        let (_, parent) = name.split_once('.')?;
        by_host.get(&format!("*.{parent}")).cloned()
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = hello.server_name();
        let acme = hello
            .alpn()
            .is_some_and(|mut protocols| protocols.any(|p| p == slipway_proxy::ACME_TLS_ALPN));
        if acme {
            let challenges = self.challenges.read().unwrap_or_else(|e| e.into_inner());
            return name.and_then(|n| challenges.get(&n.to_ascii_lowercase()).cloned());
        }
        // No SNI (a client by IP address) or an unknown name: the fallback, if there is one; otherwise the
        // handshake fails with an alert, and nothing else is affected.
        name.and_then(|n| self.find(n))
            .or_else(|| self.fallback.load().as_ref().clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(name: &str) -> Arc<CertifiedKey> {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        let der = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
        let signer = rustls::crypto::ring::sign::any_supported_type(&der).unwrap();
        Arc::new(CertifiedKey::new(vec![cert.der().clone()], signer))
    }

    #[test]
    fn exact_name_then_wildcard_one_label_up() {
        let store = CertStore::default();
        let shop = cert("shop.test");
        let wildcard = cert("*.apps.test");
        store.publish(HashMap::from([
            ("shop.test".to_owned(), shop.clone()),
            ("*.apps.test".to_owned(), wildcard.clone()),
        ]));
        assert!(Arc::ptr_eq(&store.find("SHOP.test").unwrap(), &shop));
        assert!(Arc::ptr_eq(&store.find("a.apps.test").unwrap(), &wildcard));
        assert!(store.find("a.b.apps.test").is_none());
        assert!(store.find("other.test").is_none());
    }
}
