//! Certificates from an ACME CA (Let's Encrypt by default): one account per state dir, one order per host,
//! validated by HTTP-01 (the proxy answers on the plain listener) or TLS-ALPN-01 (the TLS listener
//! presents the challenge certificate). The account key is kept in `tls/account.json`, mode 0600, and
//! never logged.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, ExternalAccountKey,
    Identifier, NewAccount, NewOrder, OrderStatus, RetryPolicy, RevocationRequest,
};
use rustls::sign::CertifiedKey;
use slipway_proxy::AcmeChallenges;
use tokio::sync::OnceCell;

use crate::tls::acme_client::AcmeHttp;
use crate::tls::cert_store::CertStore;
use crate::tls::revocation::Reason;

/// Let's Encrypt's production directory.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// How the daemon talks to its CA (`serve --acme-*`).
#[derive(Debug, Clone)]
pub struct AcmeSettings {
    pub directory: String,
    pub email: Option<String>,
    /// A root to trust for the CA's own API (a private or test CA).
    pub ca_root: Option<PathBuf>,
    /// External Account Binding: key id and base64url HMAC key (ZeroSSL, private CAs).
    pub eab: Option<(String, String)>,
    pub challenge: Challenge,
}

/// Which validation the daemon offers the CA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Challenge {
    Http01,
    TlsAlpn01,
}

/// A certificate just issued: chain and key, as PEM.
pub struct Issued {
    pub chain_pem: String,
    pub key_pem: String,
}

pub struct Acme {
    settings: AcmeSettings,
    account_file: PathBuf,
    account: OnceCell<Account>,
    http01: AcmeChallenges,
    certs: Arc<CertStore>,
}

/// The longest one order may take, from creation to certificate.
const ORDER_DEADLINE: Duration = Duration::from_secs(120);

impl Acme {
    pub fn new(
        settings: AcmeSettings,
        account_file: PathBuf,
        http01: AcmeChallenges,
        certs: Arc<CertStore>,
    ) -> Acme {
        Acme {
            settings,
            account_file,
            account: OnceCell::new(),
            http01,
            certs,
        }
    }

    /// Orders a certificate for `host`; the error says what the CA or the validation answered.
    pub async fn issue(&self, host: &str) -> Result<Issued, String> {
        match tokio::time::timeout(ORDER_DEADLINE, self.order(host)).await {
            Ok(result) => result,
            Err(_) => Err(format!(
                "the CA did not issue within {} s",
                ORDER_DEADLINE.as_secs()
            )),
        }
    }

    async fn order(&self, host: &str) -> Result<Issued, String> {
        let account = self.account.get_or_try_init(|| self.open_account()).await?;
        let identifiers = [Identifier::Dns(host.to_owned())];
        let mut order = account
            .new_order(&NewOrder::new(&identifiers))
            .await
            .map_err(|e| format!("the CA refused the order: {e}"))?;
        let mut published = Vec::new();
        let mut authorizations = order.authorizations();
        let mut outcome = Ok(());
        while let Some(authorization) = authorizations.next().await {
            let mut authorization = match authorization {
                Ok(a) => a,
                Err(e) => {
                    outcome = Err(format!("cannot read the authorization: {e}"));
                    break;
                }
            };
            if authorization.status != AuthorizationStatus::Pending {
                continue;
            }
            let kind = match self.settings.challenge {
                Challenge::Http01 => ChallengeType::Http01,
                Challenge::TlsAlpn01 => ChallengeType::TlsAlpn01,
            };
            let Some(mut challenge) = authorization.challenge(kind.clone()) else {
                outcome = Err(format!("the CA offers no {kind:?} challenge for {host}"));
                break;
            };
            let key_authorization = challenge.key_authorization();
            match self.settings.challenge {
                Challenge::Http01 => {
                    self.http01
                        .insert(&challenge.token, key_authorization.as_str());
                    published.push(challenge.token.clone());
                }
                Challenge::TlsAlpn01 => {
                    let cert = alpn_challenge_cert(host, key_authorization.digest().as_ref())?;
                    self.certs.add_challenge(host, cert);
                }
            }
            if let Err(e) = challenge.set_ready().await {
                outcome = Err(format!("the CA refused the challenge: {e}"));
                break;
            }
        }
        let result = match outcome {
            Ok(()) => self.finish(&mut order, host).await,
            Err(e) => Err(e),
        };
        for token in published {
            self.http01.remove(&token);
        }
        self.certs.remove_challenge(host);
        result
    }

    async fn finish(&self, order: &mut instant_acme::Order, host: &str) -> Result<Issued, String> {
        let patience = RetryPolicy::new().timeout(Duration::from_secs(90));
        let status = order
            .poll_ready(&patience)
            .await
            .map_err(|e| format!("validation of {host} failed: {e}"))?;
        if status != OrderStatus::Ready {
            let why = order
                .state()
                .error
                .as_ref()
                .map(|p| p.to_string())
                .unwrap_or_else(|| format!("the order is {status:?}"));
            return Err(format!(
                "validation of {host} failed ({why}): does its DNS point at this server?"
            ));
        }
        let key_pem = order
            .finalize()
            .await
            .map_err(|e| format!("the CA refused to finalize: {e}"))?;
        let chain_pem = order
            .poll_certificate(&patience)
            .await
            .map_err(|e| format!("the CA did not hand out the certificate: {e}"))?;
        Ok(Issued { chain_pem, key_pem })
    }

    /// Asks the CA to revoke `certificate` (DER), signed by the account that ordered it.
    pub async fn revoke(&self, certificate: &[u8], reason: Reason) -> Result<(), String> {
        let account = self.account.get_or_try_init(|| self.open_account()).await?;
        let certificate = rustls::pki_types::CertificateDer::from(certificate.to_vec());
        let request = RevocationRequest {
            certificate: &certificate,
            reason: Some(reason.acme()),
        };
        match tokio::time::timeout(ORDER_DEADLINE, account.revoke(&request)).await {
            Ok(result) => result.map_err(|e| format!("the CA refused to revoke: {e}")),
            Err(_) => Err(format!(
                "the CA did not answer the revocation within {} s",
                ORDER_DEADLINE.as_secs()
            )),
        }
    }

    /// The account from `account.json`, or a new one registered and saved there (0600).
    async fn open_account(&self) -> Result<Account, String> {
        let http = || -> Result<Box<AcmeHttp>, String> {
            AcmeHttp::new(self.settings.ca_root.as_deref())
                .map(Box::new)
                .map_err(|e| e.to_string())
        };
        if let Ok(text) = std::fs::read_to_string(&self.account_file) {
            let saved: Saved = serde_json::from_str(&text)
                .map_err(|e| format!("{} is damaged: {e}", self.account_file.display()))?;
            if saved.directory == self.settings.directory {
                return Account::builder_with_http(http()?)
                    .from_credentials(saved.credentials)
                    .await
                    .map_err(|e| format!("cannot reach the CA: {e}"));
            }
        }
        let contact = self.settings.email.as_ref().map(|e| format!("mailto:{e}"));
        let contacts: Vec<&str> = contact.iter().map(String::as_str).collect();
        let eab = match &self.settings.eab {
            Some((kid, key)) => {
                let key = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(key.trim_end_matches('='))
                    .map_err(|_| "the EAB key is not base64url".to_owned())?;
                Some(ExternalAccountKey::new(kid.clone(), &key))
            }
            None => None,
        };
        let (account, credentials) = Account::builder_with_http(http()?)
            .create(
                &NewAccount {
                    contact: &contacts,
                    terms_of_service_agreed: true,
                    only_return_existing: false,
                },
                self.settings.directory.clone(),
                eab.as_ref(),
            )
            .await
            .map_err(|e| format!("cannot register with the CA: {e}"))?;
        let saved = Saved {
            directory: self.settings.directory.clone(),
            credentials,
        };
        let text = serde_json::to_string(&saved).map_err(|e| e.to_string())?;
        write_private(&self.account_file, text.as_bytes())
            .map_err(|e| format!("cannot save {}: {e}", self.account_file.display()))?;
        Ok(account)
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Saved {
    directory: String,
    credentials: AccountCredentials,
}

/// Writes a secret file: created 0600, replaced atomically.
pub fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let temporary = path.with_extension("tmp");
    let _ = std::fs::remove_file(&temporary);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)
}

/// The self-signed certificate a TLS-ALPN-01 validation expects (RFC 8737 §3).
fn alpn_challenge_cert(host: &str, digest: &[u8]) -> Result<Arc<CertifiedKey>, String> {
    let failed = |e: rcgen::Error| format!("cannot make the TLS-ALPN-01 certificate: {e}");
    let key = rcgen::KeyPair::generate().map_err(failed)?;
    let mut params = rcgen::CertificateParams::new(vec![host.to_owned()]).map_err(failed)?;
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest)];
    let cert = params.self_signed(&key).map_err(failed)?;
    let der = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let signer = rustls::crypto::ring::sign::any_supported_type(&der).map_err(|e| e.to_string())?;
    Ok(Arc::new(CertifiedKey::new(
        vec![cert.der().clone()],
        signer,
    )))
}
