//! The daemon's outgoing HTTP client (webhooks, Prometheus queries, secret providers): reqwest over
//! rustls, with ring as the process's one TLS crypto provider.

/// A client for outgoing requests; installs ring as rustls's provider first (once per process).
pub fn new() -> reqwest::Client {
    // Fails only when a provider is installed already, which is then the one used.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

#[cfg(test)]
mod tests {
    #[test]
    fn builds_with_the_ring_provider() {
        let _client = super::new();
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
    }
}
