//! The ACME client's HTTP: the daemon's reqwest (rustls with ring), trusting one extra root when the
//! CA's API has a private certificate (`--acme-ca-root`, e.g. pebble's). instant-acme's own client would
//! bring hyper-rustls and a second verifier stack.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;

use bytes::Bytes;
use http_body_util::BodyExt;
use instant_acme::{BodyWrapper, BytesResponse, HttpClient};

pub struct AcmeHttp {
    client: reqwest::Client,
}

impl AcmeHttp {
    pub fn new(ca_root: Option<&Path>) -> anyhow::Result<AcmeHttp> {
        // Installs ring as the process's provider (once).
        let _ = crate::http_client::new();
        let mut builder = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .user_agent(concat!("slipway/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = ca_root {
            let pem = std::fs::read(path).map_err(|e| {
                anyhow::anyhow!("cannot read the ACME CA root {}: {e}", path.display())
            })?;
            let root = reqwest::Certificate::from_pem(&pem)
                .map_err(|e| anyhow::anyhow!("{} is not a PEM certificate: {e}", path.display()))?;
            builder = builder.add_root_certificate(root);
        }
        Ok(AcmeHttp {
            client: builder.build()?,
        })
    }
}

type Boxed<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl HttpClient for AcmeHttp {
    fn request(
        &self,
        req: http::Request<BodyWrapper<Bytes>>,
    ) -> Boxed<Result<BytesResponse, instant_acme::Error>> {
        let client = self.client.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let body = match body.collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(never) => match never {},
            };
            let response = client
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body)
                .send()
                .await
                .map_err(failed)?;
            let mut answer = http::Response::builder().status(response.status());
            if let Some(headers) = answer.headers_mut() {
                *headers = response.headers().clone();
            }
            let bytes = response.bytes().await.map_err(failed)?;
            let answer = answer
                .body(http_body_util::Full::new(bytes))
                .map_err(failed)?;
            Ok(BytesResponse::from(answer))
        })
    }
}

/// The error with its causes ("error sending request: ... : invalid peer certificate"), which reqwest's
/// own message leaves out.
fn failed(error: impl std::error::Error + Send + Sync + 'static) -> instant_acme::Error {
    let chained = format!("{:#}", anyhow::Error::new(error));
    instant_acme::Error::Other(chained.into())
}
