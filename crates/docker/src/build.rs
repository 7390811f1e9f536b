//! `slipway deploy --build`: the app's Dockerfile built through the Engine API (the classic builder,
//! which every engine has; multi-stage Dockerfiles work), tagged with the digest of its context so the
//! tag names content and is never reused for something else.

use crate::context::{self, BuildContext};
use crate::engine::Engine;
use crate::error::DockerError;
use crate::image::ImageId;
use crate::labels;
use bollard::query_parameters::BuildImageOptions;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

/// A build may pull nothing but still compile a lot; bounded so a wedged engine cannot hang a deploy.
const BUILD_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Digits of the context digest in the tag: plenty to never collide within one app.
const TAG_DIGITS: usize = 12;

/// What to build.
#[derive(Clone, Debug)]
pub struct BuildRequest {
    pub context_dir: PathBuf,
    /// Relative to `context_dir`, usually `Dockerfile`.
    pub dockerfile: String,
    /// The repository part of the tag, e.g. the app's name: `shop` → `shop:<context digest>`.
    pub repository: String,
    /// The `slipway.app` label on the image, which retention goes by.
    pub app: String,
}

/// A built image.
#[derive(Clone, Debug)]
pub struct BuiltImage {
    pub id: ImageId,
    /// `repository:<12 hex digits of the context digest>`.
    pub tag: String,
    /// The build's output lines, for `slipway deploy` to show.
    pub output: Vec<String>,
}

impl Engine {
    /// Builds `request`; fails with [`DockerError::BuildFailed`] quoting the build's last output.
    pub async fn build(&self, request: &BuildRequest) -> Result<BuiltImage, DockerError> {
        let repository = valid_repository(&request.repository)?;
        let dir = request.context_dir.clone();
        let dockerfile = request.dockerfile.clone();
        let BuildContext { tar, digest } =
            tokio::task::spawn_blocking(move || context::pack(&dir, &dockerfile))
                .await
                .map_err(|err| DockerError::BuildContext {
                    path: request.context_dir.clone(),
                    reason: err.to_string(),
                })??;
        let tag = content_tag(&repository, &digest);
        let options = BuildImageOptions {
            dockerfile: request.dockerfile.clone(),
            t: Some(tag.clone()),
            rm: true,
            forcerm: true,
            labels: Some(HashMap::from([
                (labels::APP.to_owned(), request.app.clone()),
                (labels::OWNER.to_owned(), self.owner().to_owned()),
            ])),
            ..BuildImageOptions::default()
        };
        let docker = self.patient(BUILD_TIMEOUT);
        let mut stream = docker.build_image(options, None, Some(bollard::body_full(tar.into())));
        let mut output: Vec<String> = Vec::new();
        let mut built: Option<String> = None;
        let failed = |message: String, output: Vec<String>| DockerError::BuildFailed {
            context: request.context_dir.clone(),
            message,
            output,
        };
        let deadline = tokio::time::Instant::now() + BUILD_TIMEOUT;
        loop {
            let next = match tokio::time::timeout_at(deadline, stream.next()).await {
                Ok(next) => next,
                Err(_) => {
                    return Err(failed(
                        format!("not done after {} minutes", BUILD_TIMEOUT.as_secs() / 60),
                        output,
                    ));
                }
            };
            let Some(item) = next else { break };
            let info = match item {
                Ok(info) => info,
                // The engine reports a failed step as an error item in the stream.
                Err(bollard::errors::Error::DockerStreamError { error }) => {
                    return Err(failed(error, output));
                }
                Err(err) => return Err(self.error(&format!("build {tag}"), err)),
            };
            if let Some(text) = info.stream.as_deref().or(info.status.as_deref()) {
                output.extend(
                    text.lines()
                        .map(str::to_owned)
                        .filter(|l| !l.trim().is_empty()),
                );
            }
            if let Some(detail) = info.error_detail {
                return Err(failed(detail.message.unwrap_or_default(), output));
            }
            if let Some(id) = info.aux.and_then(|aux| aux.id) {
                built = Some(id);
            }
        }
        // Older engines do not send the ID as `aux`: the tag, just set, says which image it is.
        let id = match built {
            Some(id) => ImageId::parse(&id).map_err(|reason| failed(reason, output.clone()))?,
            None => self.resolve_image(&tag).await?.id,
        };
        Ok(BuiltImage { id, tag, output })
    }
}

/// `repository:<first 12 hex digits of the context digest>`.
pub fn content_tag(repository: &str, digest: &str) -> String {
    format!("{repository}:{}", &digest[..TAG_DIGITS.min(digest.len())])
}

/// Docker repositories are lowercase; app names may not be.
fn valid_repository(name: &str) -> Result<String, DockerError> {
    let lower = name.to_ascii_lowercase();
    let ok = !lower.is_empty()
        && lower
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/' | b':'))
        && lower.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(lower)
    } else {
        Err(DockerError::InvalidSpec(format!(
            "{name:?} cannot name an image repository: use letters, digits, '.', '_', '-' and '/'"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_name_content() {
        let digest = "0123456789abcdef".repeat(4);
        assert_eq!(content_tag("shop", &digest), "shop:0123456789ab");
    }

    #[test]
    fn repositories_are_lowercased_and_checked() {
        assert_eq!(valid_repository("Shop").unwrap(), "shop");
        assert_eq!(valid_repository("team/shop").unwrap(), "team/shop");
        for bad in ["", "-shop", "shop app", "shöp"] {
            assert!(valid_repository(bad).is_err(), "{bad:?} accepted");
        }
    }
}
