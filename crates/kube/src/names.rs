//! The names and labels slipway gives what it creates in a namespace. Every object carries its owner
//! (one daemon's state dir, as for containers), so two daemons sharing a namespace never touch each
//! other's ReplicaSets; the app, release and process say what an object runs, and the release hash
//! (of the pod template) tells two templates of one release apart.

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const OWNER: &str = "slipway.dev/owner";
pub const APP: &str = "slipway.dev/app";
pub const RELEASE: &str = "slipway.dev/release";
pub const PROCESS: &str = "slipway.dev/process";
pub const RELEASE_HASH: &str = "slipway.dev/release-hash";
/// On a controller's own pod with `serve --lease --pod`: `leader` or `standby` (`own_pod.rs`).
pub const ROLE: &str = "slipway.dev/role";
/// Lowest first when a ReplicaSet scales down (among pods equally ready).
pub const DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";
/// The one container of a pod.
pub const CONTAINER: &str = "app";

/// What one ReplicaSet runs: a process of a release of an app.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub app: String,
    pub release: u64,
    pub process: String,
}

impl Key {
    /// The ReplicaSet's (and its Secret's) name: readable, a DNS label, and unique per owner.
    pub fn object_name(&self, owner: &str) -> String {
        let digest = Sha256::digest(
            format!("{owner}\0{}\0{}\0{}", self.app, self.release, self.process).as_bytes(),
        );
        let mut readable = dns_label(&format!("{}-v{}-{}", self.app, self.release, self.process));
        readable.truncate(40);
        let readable = readable.trim_end_matches('-');
        format!("{readable}-{}", hex::encode(&digest[..4]))
    }

    /// The name of the Service selecting this key's pods (a gateway's backend for one release):
    /// the ReplicaSet's, made a DNS-1035 label (a Service name starts with a letter).
    pub fn service_name(&self, owner: &str) -> String {
        let name = self.object_name(owner);
        if name.starts_with(|c: char| c.is_ascii_digit()) {
            format!("r{name}")
        } else {
            name
        }
    }

    /// The labels that select this key's pods (the owner's included).
    pub fn selector(&self, owner: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            (OWNER.to_owned(), owner.to_owned()),
            (APP.to_owned(), label_value(&self.app)),
            (RELEASE.to_owned(), self.release.to_string()),
            (PROCESS.to_owned(), label_value(&self.process)),
        ])
    }

    /// Reads the key back from an object's labels.
    pub fn from_labels(labels: &BTreeMap<String, String>) -> Option<Key> {
        Some(Key {
            app: labels.get(APP)?.clone(),
            release: labels.get(RELEASE)?.parse().ok()?,
            process: labels.get(PROCESS)?.clone(),
        })
    }
}

/// Lowercase letters, digits and '-', starting and ending with a letter or digit.
fn dns_label(text: &str) -> String {
    let mapped: String = text
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9') => c,
            _ => '-',
        })
        .collect();
    mapped.trim_matches('-').to_owned()
}

/// A label value: at most 63 of `[A-Za-z0-9._-]`. slipway's app and process names already are.
fn label_value(text: &str) -> String {
    let mut value: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    value.truncate(63);
    value
}

/// The first 10 hex digits of the SHA-256 of `bytes`.
pub fn short_hash(bytes: &[u8]) -> String {
    hex::encode(&Sha256::digest(bytes)[..5])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Key {
        Key {
            app: "shop".into(),
            release: 12,
            process: "web_api".into(),
        }
    }

    #[test]
    fn names_are_dns_labels_unique_per_owner() {
        let a = key().object_name("slipway-aaaa");
        let b = key().object_name("slipway-bbbb");
        assert!(a.starts_with("shop-v12-web-api-"), "{a}");
        assert_ne!(a, b);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        );
        let long = Key {
            app: "a".repeat(60),
            release: 1,
            process: "web".into(),
        };
        assert!(long.object_name("o").len() <= 49);
    }

    #[test]
    fn a_service_name_starts_with_a_letter() {
        assert_eq!(key().service_name("o"), key().object_name("o"));
        let digits = Key {
            app: "7shop".into(),
            ..key()
        };
        assert!(digits.service_name("o").starts_with("r7shop-v12-"));
    }

    #[test]
    fn a_key_reads_back_from_its_labels() {
        let labels = key().selector("slipway-1");
        assert_eq!(Key::from_labels(&labels), Some(key()));
        assert_eq!(labels[OWNER], "slipway-1");
    }
}
