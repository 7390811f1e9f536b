//! Talks to the daemon: over the unix socket in the state dir (no token needed: the socket is 0600), or
//! over TCP with `SLIPWAY_SERVER` + `SLIPWAY_TOKEN`. One HTTP/1.1 connection per request keeps it simple.

use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde::de::DeserializeOwned;
use slipway_api::{ApiError, ErrorKind};
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub enum Target {
    Socket(PathBuf),
    Tcp {
        authority: String,
        token: Option<String>,
        /// Set for `https://`.
        tls: Option<crate::server_tls::ServerTls>,
    },
}

#[derive(Debug, Clone)]
pub struct Client {
    pub target: Target,
}

impl Client {
    pub fn from_server(
        url: &str,
        token: Option<String>,
        ca_cert: Option<&std::path::Path>,
    ) -> anyhow::Result<Client> {
        let (authority, https) = match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
            (Some(rest), _) => (rest, false),
            (_, Some(rest)) => (rest, true),
            _ => bail!("--server must look like http://HOST:PORT or https://HOST:PORT (got {url})"),
        };
        let authority = authority.trim_end_matches('/').to_string();
        let tls = if https {
            Some(crate::server_tls::ServerTls::new(&authority, ca_cert)?)
        } else {
            None
        };
        Ok(Client {
            target: Target::Tcp {
                authority,
                token,
                tls,
            },
        })
    }

    pub fn from_state_dir(dir: PathBuf) -> Client {
        Client {
            target: Target::Socket(dir.join("slipway.sock")),
        }
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let body = self.send(Method::GET, path, None).await?;
        serde_json::from_slice(&body).with_context(|| format!("unexpected answer to GET {path}"))
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> anyhow::Result<T> {
        let json = serde_json::to_vec(body)?;
        let answer = self.send(Method::POST, path, Some(json)).await?;
        serde_json::from_slice(&answer).with_context(|| format!("unexpected answer to POST {path}"))
    }

    /// POSTs a tar.gz (an app folder).
    pub async fn post_gzip<T: DeserializeOwned>(
        &self,
        path: &str,
        gzip: Vec<u8>,
    ) -> anyhow::Result<T> {
        let response = self
            .request_as(Method::POST, path, Some(("application/gzip", gzip)))
            .await?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            return Err(refusal(status, &bytes).into());
        }
        serde_json::from_slice(&bytes).with_context(|| format!("unexpected answer to POST {path}"))
    }

    /// Whether the daemon is reached over TCP (so it may be on another host).
    pub fn is_remote(&self) -> bool {
        matches!(self.target, Target::Tcp { .. })
    }

    pub async fn delete<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let answer = self.send(Method::DELETE, path, None).await?;
        serde_json::from_slice(&answer)
            .with_context(|| format!("unexpected answer to DELETE {path}"))
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<Bytes> {
        let response = self.request(method, path, body).await?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            return Err(refusal(status, &bytes).into());
        }
        Ok(bytes)
    }

    /// Sends a request whose answer is a stream of bytes (a backup): the response, its body still
    /// streaming, if the daemon accepted; its error if not.
    pub async fn stream(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<hyper::Response<hyper::body::Incoming>> {
        let response = self.request(method, path, body).await?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let bytes = response.into_body().collect().await?.to_bytes();
        Err(refusal(status, &bytes).into())
    }

    /// Sends a request and returns the response with its body still streaming (for `logs -f`).
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<hyper::Response<hyper::body::Incoming>> {
        self.request_as(method, path, body.map(|b| ("application/json", b)))
            .await
    }

    /// Sends a request whose body has this content type.
    async fn request_as(
        &self,
        method: Method,
        path: &str,
        body: Option<(&'static str, Vec<u8>)>,
    ) -> anyhow::Result<hyper::Response<hyper::body::Incoming>> {
        let mut builder = Request::builder().method(method).uri(path);
        let host = match &self.target {
            Target::Socket(_) => "localhost".to_string(),
            Target::Tcp {
                authority, token, ..
            } => {
                if let Some(t) = token {
                    builder = builder.header("authorization", format!("Bearer {t}"));
                }
                authority.clone()
            }
        };
        builder = builder.header("host", host);
        let body = match body {
            Some((content_type, bytes)) => {
                builder = builder.header("content-type", content_type);
                bytes
            }
            None => Vec::new(),
        };
        let request = builder.body(Full::new(Bytes::from(body)))?;
        match &self.target {
            Target::Socket(path) => {
                let stream = tokio::net::UnixStream::connect(path).await.map_err(|e| {
                    anyhow!(
                        "cannot reach the slipway daemon at {}: {e}\n  help: start it with `slipway serve --state-dir {}`, \
                         or point --state-dir / SLIPWAY_STATE_DIR at its state dir",
                        path.display(),
                        path.parent().map(|p| p.display().to_string()).unwrap_or_default()
                    )
                })?;
                send_on(stream, request).await
            }
            Target::Tcp { authority, tls, .. } => {
                let scheme = if tls.is_some() { "https" } else { "http" };
                let stream = tokio::net::TcpStream::connect(authority.as_str())
                    .await
                    .map_err(|e| {
                        anyhow!("cannot reach the slipway daemon at {scheme}://{authority}: {e}")
                    })?;
                match tls {
                    None => send_on(stream, request).await,
                    Some(tls) => {
                        let stream = tls
                            .connector
                            .connect(tls.name.clone(), stream)
                            .await
                            .map_err(|e| {
                                anyhow!(
                                    "TLS with the slipway daemon at https://{authority} failed: {e}\n  help: a private or self-signed certificate needs --ca-cert FILE (SLIPWAY_CA_CERT)"
                                )
                            })?;
                        send_on(stream, request).await
                    }
                }
            }
        }
    }
}

/// The daemon's typed error (`kind` + message); anything else (a proxy in between) is reported as it
/// came, its kind read from the status.
fn refusal(status: StatusCode, bytes: &[u8]) -> ApiError {
    serde_json::from_slice::<ApiError>(bytes).unwrap_or_else(|_| ApiError {
        kind: Some(ErrorKind::from_status(status.as_u16())),
        error: format!(
            "the daemon answered {status}: {}",
            String::from_utf8_lossy(bytes)
        ),
    })
}

async fn send_on<S>(
    stream: S,
    request: Request<Full<Bytes>>,
) -> anyhow::Result<hyper::Response<hyper::body::Incoming>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let response = sender.send_request(request).await?;
    if response.status() == StatusCode::UNAUTHORIZED {
        let bytes = response.into_body().collect().await?.to_bytes();
        bail!("{}", String::from_utf8_lossy(&bytes));
    }
    Ok(response)
}
