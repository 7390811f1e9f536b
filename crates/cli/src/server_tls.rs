//! `--server https://HOST:PORT`: the CLI's side of the daemon's API over TLS (`serve --api-tls-cert`).
//! The certificate is checked against the system's roots, plus `--ca-cert FILE` (a private CA, or the
//! daemon's self-signed certificate itself) — never skipped.

use anyhow::{Context as _, anyhow};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::path::Path;
use std::sync::Arc;
use tokio_rustls::TlsConnector;

/// What an HTTPS connection to the daemon needs: the connector and the name its certificate must have.
#[derive(Clone)]
pub struct ServerTls {
    pub connector: TlsConnector,
    pub name: ServerName<'static>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("name", &self.name)
            .finish()
    }
}

impl ServerTls {
    /// For `authority` (`host:port`), trusting the system's roots and the certificates in `ca_cert`.
    pub fn new(authority: &str, ca_cert: Option<&Path>) -> anyhow::Result<ServerTls> {
        let mut roots = rustls::RootCertStore::empty();
        let mut pinned = Vec::new();
        // Unreadable system certificates are skipped: --ca-cert may be all that is needed.
        let native = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(native.certs);
        if let Some(path) = ca_cert {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .with_context(|| format!("cannot read --ca-cert {}", path.display()))?
                .collect::<Result<_, _>>()
                .with_context(|| format!("--ca-cert {} is not PEM certificates", path.display()))?;
            if certs.is_empty() {
                return Err(anyhow!("--ca-cert {} holds no certificate", path.display()));
            }
            for cert in certs {
                pinned.push(cert.clone());
                roots.add(cert).with_context(|| {
                    format!("--ca-cert {}: a certificate rustls refuses", path.display())
                })?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::clone(&provider),
        )
        .build()?;
        let verifier = Arc::new(Pinned {
            webpki,
            pinned,
            provider: Arc::clone(&provider),
        });
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        let host = host_of(authority);
        let name = ServerName::try_from(host.to_string())
            .map_err(|_| anyhow!("--server: {host:?} is not a host name or an IP address"))?;
        Ok(ServerTls {
            connector: TlsConnector::from(Arc::new(config)),
            name,
        })
    }
}

/// The usual chain check, and one more way to pass: the server's certificate is exactly one given
/// with `--ca-cert`. A self-signed certificate made with `openssl req -x509` is marked as a CA, which
/// the chain check refuses as a server's own; naming that very certificate trusts it (and nothing it
/// could sign). The handshake's signatures are checked either way.
#[derive(Debug)]
struct Pinned {
    webpki: Arc<rustls::client::WebPkiServerVerifier>,
    pinned: Vec<CertificateDer<'static>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        match self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(verified) => Ok(verified),
            Err(_)
                if self
                    .pinned
                    .iter()
                    .any(|p| p.as_ref() == end_entity.as_ref()) =>
            {
                Ok(rustls::client::danger::ServerCertVerified::assertion())
            }
            Err(e) => Err(e),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// `example.com:8443` → `example.com`; `[::1]:8443` → `::1`.
fn host_of(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    authority
        .rsplit_once(':')
        .map_or(authority, |(host, _)| host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_without_ports() {
        assert_eq!(host_of("example.com:8443"), "example.com");
        assert_eq!(host_of("127.0.0.1:9"), "127.0.0.1");
        assert_eq!(host_of("[::1]:8443"), "::1");
        assert_eq!(host_of("example.com"), "example.com");
    }
}
