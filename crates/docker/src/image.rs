//! Images as immutable artifacts: a tag is resolved once, at deploy, to the image ID the release
//! records and runs; retention removes the images slipway built that no kept release needs.
//!
//! Without a registry an image has no RepoDigest, so the content-addressed image ID (`sha256:…`, the
//! digest of its config) is the reference that cannot move. RepoDigests are reported too, for images
//! that came from a registry.

use crate::engine::Engine;
use crate::error::{DockerError, has_status};
use crate::labels;
use bollard::query_parameters::{ListImagesOptions, RemoveImageOptions, TagImageOptions};
use std::fmt;

/// A local image ID: `sha256:` and 64 lowercase hex digits.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageId(String);

impl ImageId {
    pub fn parse(text: &str) -> Result<ImageId, String> {
        let hex = text.strip_prefix("sha256:").unwrap_or_default();
        if hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(ImageId(text.to_owned()))
        } else {
            Err(format!(
                "{text:?} is not an image ID like sha256:<64 hex digits>"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 12 hex digits `docker images` shows.
    pub fn short(&self) -> &str {
        &self.0["sha256:".len().."sha256:".len() + 12]
    }
}

impl fmt::Display for ImageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a reference pointed at when it was resolved.
#[derive(Clone, Debug)]
pub struct ResolvedImage {
    pub id: ImageId,
    /// `repo@sha256:…` when the image came from a registry; empty for local builds.
    pub repo_digests: Vec<String>,
    pub repo_tags: Vec<String>,
    /// The image's `USER` (empty: root).
    pub user: String,
    /// The image declares a HEALTHCHECK (its status is then reported, see [`crate::Health`]).
    pub has_healthcheck: bool,
}

impl Engine {
    /// Resolves `name:tag` (or `name@sha256:…`) to the image it names now. Given an image ID, checks
    /// that it is still there ([`DockerError::ReleaseImageGone`] if not).
    pub async fn resolve_image(&self, reference: &str) -> Result<ResolvedImage, DockerError> {
        let inspect = match self.docker.inspect_image(reference).await {
            Ok(inspect) => inspect,
            Err(err) if has_status(&err, 404) => {
                let host = self.host().to_owned();
                return Err(match ImageId::parse(reference) {
                    Ok(_) => DockerError::ReleaseImageGone {
                        id: reference.to_owned(),
                        host,
                    },
                    Err(_) => DockerError::ImageNotFound {
                        reference: reference.to_owned(),
                        host,
                    },
                });
            }
            Err(err) => return Err(self.error(&format!("inspect image {reference}"), err)),
        };
        let id = inspect.id.as_deref().unwrap_or_default();
        let id = ImageId::parse(id).map_err(|reason| DockerError::Engine {
            action: format!("inspect image {reference}"),
            message: reason,
        })?;
        let config = inspect.config.unwrap_or_default();
        let has_healthcheck = config
            .healthcheck
            .and_then(|check| check.test)
            .is_some_and(|test| test.first().is_some_and(|kind| kind != "NONE"));
        Ok(ResolvedImage {
            id,
            repo_digests: inspect.repo_digests.unwrap_or_default(),
            repo_tags: inspect.repo_tags.unwrap_or_default(),
            user: config.user.unwrap_or_default(),
            has_healthcheck,
        })
    }

    /// Points `repository:tag` at `image` (moving the tag if it pointed elsewhere).
    pub async fn tag_image(&self, image: &ImageId, reference: &str) -> Result<(), DockerError> {
        let (repo, tag) = split_reference(reference);
        let options = TagImageOptions {
            repo: Some(repo.to_owned()),
            tag: Some(tag.to_owned()),
        };
        self.docker
            .tag_image(image.as_str(), Some(options))
            .await
            .map_err(|err| self.error(&format!("tag {image} as {reference}"), err))
    }

    /// Removes the images this owner built for `app` except `keep` (the releases that may still run:
    /// stable, rollback targets, anything running) and except images any owned container still uses.
    /// Returns what was removed. An image the engine refuses to remove (a container of someone else
    /// uses it) is kept and logged, not an error.
    pub async fn remove_images(
        &self,
        app: &str,
        keep: &[ImageId],
    ) -> Result<Vec<ImageId>, DockerError> {
        let options = ListImagesOptions {
            filters: Some(labels::owner_filter(self.owner(), &[(labels::APP, app)])),
            ..ListImagesOptions::default()
        };
        let built = self
            .docker
            .list_images(Some(options))
            .await
            .map_err(|err| self.error("list images", err))?;
        let built: Vec<ImageId> = built
            .iter()
            .filter_map(|image| ImageId::parse(&image.id).ok())
            .collect();
        let in_use: Vec<ImageId> = self
            .list_owned()
            .await?
            .into_iter()
            .filter_map(|container| container.image)
            .collect();
        let mut removed = Vec::new();
        for image in images_to_remove(&built, keep, &in_use) {
            // Forced, so an image with several tags goes in one call; the engine still refuses to
            // remove an image a running container uses.
            let options = RemoveImageOptions {
                force: true,
                noprune: false,
                platforms: None,
            };
            match self
                .docker
                .remove_image(image.as_str(), Some(options), None)
                .await
            {
                Ok(_) => removed.push(image),
                Err(err) if has_status(&err, 404) => {}
                Err(err) if has_status(&err, 409) => {
                    tracing::info!(%image, "kept: the engine says it is in use: {err}");
                }
                Err(err) => return Err(self.error(&format!("remove image {image}"), err)),
            }
        }
        Ok(removed)
    }
}

/// Which of `candidates` retention removes: not kept, not used by a container. Sorted, no duplicates.
pub fn images_to_remove(
    candidates: &[ImageId],
    keep: &[ImageId],
    in_use: &[ImageId],
) -> Vec<ImageId> {
    let mut doomed: Vec<ImageId> = candidates
        .iter()
        .filter(|image| !keep.contains(image) && !in_use.contains(image))
        .cloned()
        .collect();
    doomed.sort();
    doomed.dedup();
    doomed
}

/// `repo:tag` → (repo, tag); `repo` alone means `latest`. A `:` before the last `/` is a registry
/// port, not a tag.
pub(crate) fn split_reference(reference: &str) -> (&str, &str) {
    match reference.rfind(':') {
        Some(colon) if !reference[colon..].contains('/') => {
            (&reference[..colon], &reference[colon + 1..])
        }
        _ => (reference, "latest"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(digit: char) -> ImageId {
        ImageId::parse(&format!("sha256:{}", digit.to_string().repeat(64))).unwrap()
    }

    #[test]
    fn image_ids_are_strict() {
        let image = id('a');
        assert_eq!(image.short(), "aaaaaaaaaaaa");
        for bad in [
            "",
            "sha256:",
            "shop:v1",
            "sha256:ABC",
            &format!("sha512:{}", "a".repeat(64)),
            &format!("sha256:{}", "g".repeat(64)),
        ] {
            assert!(ImageId::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn retention_keeps_kept_and_used_images() {
        let all = [id('1'), id('2'), id('3'), id('4'), id('2')];
        let doomed = images_to_remove(&all, &[id('1')], &[id('3')]);
        assert_eq!(doomed, vec![id('2'), id('4')]);
        assert!(images_to_remove(&all, &all, &[]).is_empty());
    }

    #[test]
    fn references_split_into_repository_and_tag() {
        assert_eq!(split_reference("shop:v1"), ("shop", "v1"));
        assert_eq!(split_reference("shop"), ("shop", "latest"));
        assert_eq!(
            split_reference("registry:5000/team/shop:abc"),
            ("registry:5000/team/shop", "abc")
        );
        assert_eq!(
            split_reference("registry:5000/team/shop"),
            ("registry:5000/team/shop", "latest")
        );
    }
}
