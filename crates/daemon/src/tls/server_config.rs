//! The TLS listener's rustls settings: TLS 1.2 and 1.3 only with ring's default suites (no weak ones
//! exist there), HTTP/2 and HTTP/1.1 by ALPN (plus ACME's `acme-tls/1`), resumption by tickets and by
//! session IDs, certificates from the [`CertStore`].

use std::sync::Arc;

use rustls::ServerConfig;

use crate::tls::cert_store::CertStore;

pub fn new(certs: Arc<CertStore>) -> anyhow::Result<Arc<ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(certs);
    config.alpn_protocols = vec![
        b"h2".to_vec(),
        b"http/1.1".to_vec(),
        slipway_proxy::ACME_TLS_ALPN.to_vec(),
    ];
    // Stateless resumption: the ticket key rotates every six hours (rustls's default lifetime).
    config.ticketer = rustls::crypto::ring::Ticketer::new()?;
    config.session_storage = rustls::server::ServerSessionMemoryCache::new(10_000);
    Ok(Arc::new(config))
}
