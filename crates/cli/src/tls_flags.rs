//! `slipway serve`'s TLS flags: the HTTPS listener, the fallback certificate, the ACME CA, and a
//! certificate for the TCP API; see docs/tls.md.

use std::net::SocketAddr;
use std::path::PathBuf;

use slipway_daemon::tls::TlsSettings;
use slipway_daemon::tls::acme::{AcmeSettings, Challenge, LETS_ENCRYPT};

#[derive(clap::Args)]
pub struct TlsFlags {
    /// Also serve HTTPS here (HTTP/2 and HTTP/1.1); the bound address goes to <state-dir>/proxy-tls.addr.
    #[arg(long, value_name = "ADDR")]
    pub tls_listen: Option<SocketAddr>,
    /// A certificate (PEM chain) for names no app's certificate covers, e.g. a wildcard.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// The ACME account's contact; turns on certificates for apps with `tls = "auto"`.
    #[arg(long, value_name = "EMAIL")]
    pub acme_email: Option<String>,
    /// The ACME directory (default: Let's Encrypt); giving it turns ACME on too.
    #[arg(long, value_name = "URL")]
    pub acme_directory: Option<String>,
    /// A root certificate (PEM) to trust for the ACME API itself (a private or test CA).
    #[arg(long, value_name = "FILE")]
    pub acme_ca_root: Option<PathBuf>,
    /// External Account Binding key id (ZeroSSL, private CAs).
    #[arg(long, value_name = "KID", requires = "acme_eab_hmac_key")]
    pub acme_eab_kid: Option<String>,
    /// External Account Binding HMAC key, base64url.
    #[arg(
        long,
        value_name = "KEY",
        requires = "acme_eab_kid",
        env = "SLIPWAY_ACME_EAB_HMAC_KEY",
        hide_env_values = true
    )]
    pub acme_eab_hmac_key: Option<String>,
    /// How the CA validates a host: `http-01` (on the plain listener, port 80 for a public CA) or
    /// `tls-alpn-01` (on the HTTPS listener, port 443).
    #[arg(long, value_name = "KIND", default_value = "http-01", value_parser = ["http-01", "tls-alpn-01"])]
    pub acme_challenge: String,
    /// On-demand TLS: a name no app lists gets an ACME certificate during its first handshake, if
    /// `GET URL?domain=NAME` answers 2xx (needs --acme-email or --acme-directory).
    #[arg(long, value_name = "URL")]
    pub on_demand_ask: Option<String>,
    /// Serve the TCP API and dashboard over TLS with this certificate (PEM chain); the session cookie is
    /// then `Secure`.
    #[arg(long, value_name = "FILE", requires = "api_tls_key")]
    pub api_tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --api-tls-cert.
    #[arg(long, value_name = "FILE", requires = "api_tls_cert")]
    pub api_tls_key: Option<PathBuf>,
}

impl TlsFlags {
    pub fn settings(&self) -> TlsSettings {
        let acme =
            (self.acme_email.is_some() || self.acme_directory.is_some()).then(|| AcmeSettings {
                directory: self
                    .acme_directory
                    .clone()
                    .unwrap_or_else(|| LETS_ENCRYPT.to_owned()),
                email: self.acme_email.clone(),
                ca_root: self.acme_ca_root.clone(),
                eab: self
                    .acme_eab_kid
                    .clone()
                    .zip(self.acme_eab_hmac_key.clone()),
                challenge: if self.acme_challenge == "tls-alpn-01" {
                    Challenge::TlsAlpn01
                } else {
                    Challenge::Http01
                },
            });
        TlsSettings {
            acme,
            fallback: self.tls_cert.clone().zip(self.tls_key.clone()),
            on_demand_ask: self.on_demand_ask.clone(),
        }
    }

    pub fn api_cert(&self) -> Option<(PathBuf, PathBuf)> {
        self.api_tls_cert.clone().zip(self.api_tls_key.clone())
    }
}
