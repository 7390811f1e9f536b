//! The demo app's feature flag: evaluated over OFREP for each `/` request (targeting key: the request's
//! `X-User`, else its number), as an app using an OpenFeature SDK with the OFREP provider does, and named
//! in the `Slipway-Flags` response header so that a flag ramp can judge the variant's users against the
//! others'. Requests served the variant `on` can be made to fail (`DEMO_FLAG_ERROR_RATE`).

use crate::knobs::FlagKnobs;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// The response header naming the variants a response served.
pub const SLIPWAY_FLAGS: &str = "slipway-flags";

pub struct FlagClient {
    knobs: FlagKnobs,
    /// The evaluation key, read once at start.
    api_key: Option<String>,
    http: Client<HttpConnector, Full<Bytes>>,
}

impl FlagClient {
    pub fn new(knobs: FlagKnobs) -> Result<FlagClient, String> {
        let api_key = match &knobs.key_file {
            None => None,
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(|e| {
                        format!("cannot read DEMO_OFREP_KEY_FILE {}: {e}", path.display())
                    })?
                    .trim()
                    .to_owned(),
            ),
        };
        Ok(FlagClient {
            knobs,
            api_key,
            http: Client::builder(TokioExecutor::new()).build_http(),
        })
    }

    pub fn key(&self) -> &str {
        &self.knobs.key
    }

    pub fn on_error_rate_ppm(&self) -> u64 {
        self.knobs.on_error_rate_ppm
    }

    /// The variant OFREP gives `targeting_key`; `None` when it cannot be evaluated (the app then serves
    /// the code's default and names no variant).
    pub async fn variant(&self, targeting_key: &str) -> Option<String> {
        let url = format!(
            "{}/ofrep/v1/evaluate/flags/{}",
            self.knobs.ofrep_url.trim_end_matches('/'),
            self.knobs.key
        );
        let body = serde_json::json!({ "context": { "targetingKey": targeting_key } }).to_string();
        let mut request = Request::post(url).header(header::CONTENT_TYPE, "application/json");
        if let Some(key) = &self.api_key {
            request = request.header("x-api-key", key);
        }
        let request = request.body(Full::new(Bytes::from(body))).ok()?;
        let response = self.http.request(request).await.ok()?;
        if !response.status().is_success() {
            return None;
        }
        let body = response.into_body().collect().await.ok()?.to_bytes();
        let answer: serde_json::Value = serde_json::from_slice(&body).ok()?;
        answer["variant"].as_str().map(str::to_owned)
    }
}
