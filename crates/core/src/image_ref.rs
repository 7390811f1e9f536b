//! An image reference as registries read it: `[domain/]path[:tag][@digest]`. Pure, so which registry
//! holds an image, and whether a reference is already pinned, are decided the same way everywhere.
//!
//! The domain is the first `/`-separated component when it looks like a host (it has a `.` or a `:`,
//! or is `localhost`), as Docker decides; otherwise the image is Docker Hub's, whose one-component
//! names live under `library/`.

use std::fmt;

/// Docker Hub, the registry of references without a domain.
pub const DOCKER_HUB: &str = "docker.io";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// The registry host as written (`registry.example.com:5000`); `None` for Docker Hub's short names.
    pub domain: Option<String>,
    /// The repository inside the registry, as written (`team/shop`, `nginx`).
    pub path: String,
    pub tag: Option<String>,
    /// `sha256:<64 hex>`: a reference with one names exactly one image, whatever its tag says.
    pub digest: Option<String>,
}

impl ImageRef {
    /// Reads `reference`; the error says what is wrong with it.
    pub fn parse(reference: &str) -> Result<ImageRef, String> {
        let (name, digest) = match reference.split_once('@') {
            Some((name, digest)) => {
                check_digest(digest)?;
                (name, Some(digest.to_owned()))
            }
            None => (reference, None),
        };
        let (name, tag) = match name.rfind(':') {
            Some(colon) if !name[colon..].contains('/') => {
                let tag = &name[colon + 1..];
                if tag.is_empty() || tag.len() > 128 || !tag.chars().all(tag_char) {
                    return Err(format!(
                        "the tag \"{tag}\" is not a tag (letters, digits, `_`, `.`, `-`; 128 at most)"
                    ));
                }
                (&name[..colon], Some(tag.to_owned()))
            }
            _ => (name, None),
        };
        let (domain, path) = match name.split_once('/') {
            Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
                (Some(first.to_owned()), rest)
            }
            _ => (None, name),
        };
        if path.is_empty() || path.split('/').any(|part| part.is_empty()) {
            return Err("has no repository name".to_owned());
        }
        if !path
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/".contains(c))
        {
            return Err("has a repository name with characters other than lowercase letters, digits, `.`, `_`, `-` and `/`".to_owned());
        }
        Ok(ImageRef {
            domain,
            path: path.to_owned(),
            tag,
            digest,
        })
    }

    /// Pinned: the reference names one image by digest, so it can be run as it is.
    pub fn is_pinned(&self) -> bool {
        self.digest.is_some()
    }

    /// The registry host: the domain, or Docker Hub's.
    pub fn registry(&self) -> &str {
        self.domain.as_deref().unwrap_or(DOCKER_HUB)
    }

    /// The repository as the registry's API names it (Docker Hub's short names under `library/`).
    pub fn repository(&self) -> String {
        if self.domain.is_none() && !self.path.contains('/') {
            format!("library/{}", self.path)
        } else {
            self.path.clone()
        }
    }

    /// What to ask the registry for: the digest, else the tag (`latest` when none is written).
    pub fn manifest_reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// The same repository pinned to `digest`: what a release records and a node pulls.
    pub fn pinned(&self, digest: &str) -> String {
        match &self.domain {
            Some(domain) => format!("{domain}/{}@{digest}", self.path),
            None => format!("{}@{digest}", self.path),
        }
    }

    /// A registry on this host (`localhost`, `127.0.0.0/8`, `[::1]`) speaks plain HTTP, as Docker and
    /// containerd assume; every other one HTTPS.
    pub fn is_local_registry(&self) -> bool {
        let host = self.registry();
        let host = match host.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or_default(),
            None => host.split(':').next().unwrap_or_default(),
        };
        host == "localhost"
            || host == "::1"
            || host
                .parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(domain) = &self.domain {
            write!(f, "{domain}/")?;
        }
        f.write_str(&self.path)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// A content digest as registries give it: `sha256:` and 64 lowercase hex digits.
pub fn check_digest(digest: &str) -> Result<(), String> {
    match digest.strip_prefix("sha256:") {
        Some(hex)
            if hex.len() == 64
                && hex
                    .chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)) =>
        {
            Ok(())
        }
        _ => Err(format!(
            "the digest \"{digest}\" is not `sha256:` and 64 lowercase hex digits (what `docker push` or \
             `docker inspect --format '{{{{index .RepoDigests 0}}}}'` prints)"
        )),
    }
}

fn tag_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_.-".contains(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn the_domain_is_the_first_component_only_when_it_looks_like_a_host() {
        let r = ImageRef::parse("registry.example.com:5000/team/shop:2.1").unwrap();
        assert_eq!(r.domain.as_deref(), Some("registry.example.com:5000"));
        assert_eq!(
            (r.path.as_str(), r.tag.as_deref()),
            ("team/shop", Some("2.1"))
        );
        assert_eq!(r.repository(), "team/shop");
        let r = ImageRef::parse("team/shop").unwrap();
        assert_eq!(
            (r.registry(), r.repository().as_str()),
            ("docker.io", "team/shop")
        );
        assert_eq!(r.manifest_reference(), "latest");
        let r = ImageRef::parse("nginx:1.27").unwrap();
        assert_eq!(r.repository(), "library/nginx");
        let r = ImageRef::parse("localhost/shop").unwrap();
        assert_eq!(r.domain.as_deref(), Some("localhost"));
    }

    #[test]
    fn a_digest_pins_and_survives_a_round_trip() {
        let text = format!("127.0.0.1:5000/shop:v2@{DIGEST}");
        let r = ImageRef::parse(&text).unwrap();
        assert!(r.is_pinned());
        assert_eq!(r.manifest_reference(), DIGEST);
        assert_eq!(r.to_string(), text);
        assert_eq!(r.pinned(DIGEST), format!("127.0.0.1:5000/shop@{DIGEST}"));
        assert!(!ImageRef::parse("shop:v2").unwrap().is_pinned());
        assert_eq!(
            ImageRef::parse("shop").unwrap().pinned(DIGEST),
            format!("shop@{DIGEST}")
        );
    }

    #[test]
    fn bad_references_say_what_is_wrong() {
        for (bad, says) in [
            ("shop@sha256:abc", "64 lowercase hex"),
            ("shop@md5:0123", "not `sha256:`"),
            ("shop:", "is not a tag"),
            ("shop:v 2", "is not a tag"),
            ("Shop:v2", "lowercase"),
            ("registry.example.com/", "no repository"),
            ("a//b", "no repository"),
        ] {
            let err = ImageRef::parse(bad).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn only_registries_on_this_host_are_plain_http() {
        for local in [
            "localhost:5000/a",
            "127.0.0.1:5000/a",
            "127.3.2.1/a",
            "[::1]:5000/a",
        ] {
            assert!(
                ImageRef::parse(local).unwrap().is_local_registry(),
                "{local}"
            );
        }
        for remote in [
            "ghcr.io/a/b",
            "10.0.0.1:5000/a",
            "shop",
            "localhost.example.com/a",
        ] {
            assert!(
                !ImageRef::parse(remote).unwrap().is_local_registry(),
                "{remote}"
            );
        }
    }
}
