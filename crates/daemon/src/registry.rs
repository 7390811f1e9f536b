//! A tag → its digest, asked of the image's registry (the OCI distribution API), for releases that run
//! where no Docker engine here holds the images: on Kubernetes a release records `repo@sha256:…`, which
//! every node can pull and no later push can move. Anonymous, or with the login of the app's image
//! pull secret when the registry asks (basic, or the bearer-token exchange Docker Hub, GHCR, … use);
//! a registry on this host is plain HTTP, as Docker and containerd assume.

use sha2::{Digest, Sha256};
use slipway_core::image_ref::{ImageRef, check_digest};
use std::time::Duration;

/// One question to a registry takes at most this long: a deploy fails within seconds, not minutes.
const TIMEOUT: Duration = Duration::from_secs(15);
/// A manifest (or an index of them) is a few KiB; more is not one.
const MANIFEST_CAP: usize = 4 << 20;
/// Every kind of manifest a tag may name: a multi-platform index is pinned as a whole, so each node
/// pulls its own platform's image from it.
const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json";

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(
        "{image} is not in its registry ({registry} answered 404): push it first, or check the name and tag"
    )]
    NotFound { image: String, registry: String },
    #[error(
        "{registry} wants credentials to read {image}: name a pull secret with a login for it in \
         [kubernetes] image_pull_secrets (the daemon reads it: `slipway kube rbac --pull-secret NAME`), \
         or write the digest yourself, image = \"{pinned_hint}\" (`docker push` prints it)"
    )]
    NeedsCredentials {
        image: String,
        registry: String,
        pinned_hint: String,
    },
    #[error(
        "{registry} refused the login of the app's image pull secrets for {image}: check the \
         secret's username and password (or token) and its rights on the repository"
    )]
    LoginRefused { image: String, registry: String },
    #[error("cannot reach the registry {registry} for {image}: {reason}")]
    Unreachable {
        image: String,
        registry: String,
        reason: String,
    },
    #[error("the registry {registry} answered {what} for {image}")]
    Refused {
        image: String,
        registry: String,
        what: String,
    },
}

/// A registry login (username, password or token), from an image pull secret.
pub type Login<'a> = (&'a str, &'a str);

/// How a request to the registry is authorized.
#[derive(Clone, Copy)]
enum Auth<'a> {
    Anonymous,
    Basic(Login<'a>),
    Bearer(&'a str),
}

/// The digest `image`'s tag names now (`sha256:…`), as its registry says; `login` is used only
/// when the registry asks for credentials.
pub async fn digest(
    http: &reqwest::Client,
    image: &ImageRef,
    login: Option<Login<'_>>,
) -> Result<String, RegistryError> {
    let registry = image.registry().to_owned();
    let url = format!(
        "{}/v2/{}/manifests/{}",
        base_url(image),
        image.repository(),
        image.manifest_reference()
    );
    let unreachable = |reason: String| RegistryError::Unreachable {
        image: image.to_string(),
        registry: registry.clone(),
        reason,
    };
    let refused = |what: String| RegistryError::Refused {
        image: image.to_string(),
        registry: registry.clone(),
        what,
    };
    // Without a login the registry cannot be asked for more; with one, it turned it down.
    let denied = || match login {
        None => RegistryError::NeedsCredentials {
            image: image.to_string(),
            registry: registry.clone(),
            pinned_hint: image.pinned("sha256:<64 hex digits>"),
        },
        Some(_) => RegistryError::LoginRefused {
            image: image.to_string(),
            registry: registry.clone(),
        },
    };
    let ask = |auth: Auth<'_>, method: reqwest::Method| {
        let request = http
            .request(method, &url)
            .header(reqwest::header::ACCEPT, ACCEPT)
            .timeout(TIMEOUT);
        match auth {
            Auth::Anonymous => request,
            Auth::Basic((user, password)) => request.basic_auth(user, Some(password)),
            Auth::Bearer(token) => request.bearer_auth(token),
        }
    };
    let mut answer = ask(Auth::Anonymous, reqwest::Method::HEAD)
        .send()
        .await
        .map_err(|e| unreachable(error_chain(&e)))?;
    let mut token = None;
    let mut auth = Auth::Anonymous;
    if answer.status() == reqwest::StatusCode::UNAUTHORIZED {
        let challenge = answer
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(Challenge::parse);
        match challenge {
            Some(Challenge::Bearer { realm, service }) => {
                token = Some(
                    bearer_token(http, image, &realm, service, login)
                        .await
                        .map_err(|e| match e {
                            TokenError::Denied => denied(),
                            TokenError::Unreachable(reason) => unreachable(reason),
                            TokenError::Refused(what) => refused(what),
                        })?,
                );
            }
            Some(Challenge::Basic) => match login {
                Some(login) => auth = Auth::Basic(login),
                None => return Err(denied()),
            },
            None => return Err(denied()),
        }
        if let Some(token) = &token {
            auth = Auth::Bearer(token);
        }
        answer = ask(auth, reqwest::Method::HEAD)
            .send()
            .await
            .map_err(|e| unreachable(error_chain(&e)))?;
        if matches!(answer.status().as_u16(), 401 | 403) {
            return Err(denied());
        }
    }
    match answer.status().as_u16() {
        200 => {}
        404 => {
            return Err(RegistryError::NotFound {
                image: image.to_string(),
                registry,
            });
        }
        other => return Err(refused(format!("HTTP {other}"))),
    }
    let said = answer
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let digest = match said {
        Some(digest) => digest,
        // Not every registry says the digest on HEAD: it is the hash of the manifest's bytes.
        None => {
            let body = ask(auth, reqwest::Method::GET)
                .send()
                .await
                .map_err(|e| unreachable(error_chain(&e)))?
                .bytes()
                .await
                .map_err(|e| unreachable(error_chain(&e)))?;
            if body.len() > MANIFEST_CAP {
                return Err(refused(format!("a manifest of {} bytes", body.len())));
            }
            format!("sha256:{}", hex::encode(Sha256::digest(&body)))
        }
    };
    check_digest(&digest).map_err(refused)?;
    Ok(digest)
}

enum TokenError {
    Denied,
    Unreachable(String),
    Refused(String),
}

/// A pull token for `image`'s repository from the registry's token service (with `login`, if any).
async fn bearer_token(
    http: &reqwest::Client,
    image: &ImageRef,
    realm: &str,
    service: Option<String>,
    login: Option<Login<'_>>,
) -> Result<String, TokenError> {
    let scope = format!("repository:{}:pull", image.repository());
    let mut query = vec![("scope", scope.as_str())];
    if let Some(service) = &service {
        query.push(("service", service.as_str()));
    }
    let url = reqwest::Url::parse_with_params(realm, &query).map_err(|e| {
        TokenError::Refused(format!("a token service that is not a URL ({realm}: {e})"))
    })?;
    let mut request = http.get(url).timeout(TIMEOUT);
    if let Some((user, password)) = login {
        request = request.basic_auth(user, Some(password));
    }
    let granted = request.send().await.map_err(|e| {
        TokenError::Unreachable(format!("its token service {realm}: {}", error_chain(&e)))
    })?;
    if matches!(granted.status().as_u16(), 401 | 403) {
        return Err(TokenError::Denied);
    }
    if !granted.status().is_success() {
        return Err(TokenError::Refused(format!(
            "{} from its token service {realm}",
            granted.status()
        )));
    }
    let body: serde_json::Value = granted
        .json()
        .await
        .map_err(|e| TokenError::Refused(format!("a token that is not JSON ({e})")))?;
    body.get("token")
        .or_else(|| body.get("access_token"))
        .and_then(|t| t.as_str())
        .map(str::to_owned)
        .ok_or_else(|| TokenError::Refused("a token answer without a token".to_owned()))
}

/// Where the registry's API is: Docker Hub's is not at `docker.io`.
fn base_url(image: &ImageRef) -> String {
    let host = match image.registry() {
        slipway_core::image_ref::DOCKER_HUB => "registry-1.docker.io",
        host => host,
    };
    let scheme = if image.is_local_registry() {
        "http"
    } else {
        "https"
    };
    format!("{scheme}://{host}")
}

/// reqwest's error with its causes (the top one alone says only "error sending request").
fn error_chain(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A registry's `WWW-Authenticate` answer.
#[derive(Debug, PartialEq, Eq)]
enum Challenge {
    /// Ask `realm` for a token (for `service`), then ask again with it.
    Bearer {
        realm: String,
        service: Option<String>,
    },
    Basic,
}

impl Challenge {
    /// `Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="…"`.
    fn parse(header: &str) -> Option<Challenge> {
        let (scheme, params) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return Some(Challenge::Basic);
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let params = auth_params(params);
        let get = |key: &str| {
            params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v.clone())
        };
        Some(Challenge::Bearer {
            realm: get("realm").filter(|r| r.starts_with("http"))?,
            service: get("service"),
        })
    }
}

/// `key="value", key=value`: values may be quoted and then hold commas (a scope of several actions).
fn auth_params(text: &str) -> Vec<(String, String)> {
    let mut params = Vec::new();
    let mut rest = text.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key.trim().trim_start_matches(',').trim().to_owned();
        let after = after.trim_start();
        let (value, tail) = match after.strip_prefix('"') {
            Some(quoted) => match quoted.find('"') {
                Some(end) => (&quoted[..end], &quoted[end + 1..]),
                None => (quoted, ""),
            },
            None => match after.find(',') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            },
        };
        params.push((key, value.to_owned()));
        rest = tail.trim_start().trim_start_matches(',');
    }
    params
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bearer_challenge_gives_the_token_service() {
        let header = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull,push""#;
        assert_eq!(
            Challenge::parse(header),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
            })
        );
        assert_eq!(
            Challenge::parse("bearer realm=https://ghcr.io/token"),
            Some(Challenge::Bearer {
                realm: "https://ghcr.io/token".into(),
                service: None
            })
        );
        assert_eq!(
            Challenge::parse(r#"Basic realm="x""#),
            Some(Challenge::Basic)
        );
        // A realm that is not a URL, or another scheme: nothing to exchange.
        assert_eq!(Challenge::parse(r#"Bearer realm="file:/etc/passwd""#), None);
        assert_eq!(Challenge::parse("Negotiate"), None);
    }

    #[test]
    fn docker_hub_and_local_registries_have_their_own_urls() {
        let url = |r: &str| base_url(&ImageRef::parse(r).unwrap());
        assert_eq!(url("nginx:1.27"), "https://registry-1.docker.io");
        assert_eq!(url("ghcr.io/team/shop:v2"), "https://ghcr.io");
        assert_eq!(url("127.0.0.1:5000/shop:v2"), "http://127.0.0.1:5000");
        assert_eq!(url("localhost:5000/shop"), "http://localhost:5000");
    }
}
