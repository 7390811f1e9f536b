//! What changed between two releases, for the history: the artifact digest, config keys (names only:
//! values may be sensitive even when they are not secrets), secret names, the process formation and the
//! strategy. Pure.

use slipway_core::release::Release;
use std::collections::BTreeMap;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReleaseDiff {
    /// (before, after) digests when the bits changed.
    pub artifact: Option<(String, String)>,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    pub secrets_added: Vec<String>,
    pub secrets_removed: Vec<String>,
    /// (process, before, after) replicas.
    pub formation: Vec<(String, u32, u32)>,
    pub strategy: Option<(String, String)>,
}

impl ReleaseDiff {
    pub fn is_empty(&self) -> bool {
        *self == ReleaseDiff::default()
    }
}

/// The variables a release's instances get (config vars win over `[env]`).
fn vars(r: &Release) -> BTreeMap<&str, &str> {
    let mut all: BTreeMap<&str, &str> = r
        .spec
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    all.extend(
        r.spec
            .config_vars
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    );
    all
}

pub fn diff(before: &Release, after: &Release) -> ReleaseDiff {
    let mut d = ReleaseDiff::default();
    if before.artifact != after.artifact {
        d.artifact = Some((before.artifact.clone(), after.artifact.clone()));
    }
    let (a, b) = (vars(before), vars(after));
    for (k, v) in &b {
        match a.get(k) {
            None => d.added.push(k.to_string()),
            Some(old) if old != v => d.changed.push(k.to_string()),
            _ => {}
        }
    }
    d.removed = a
        .keys()
        .filter(|k| !b.contains_key(*k))
        .map(|k| k.to_string())
        .collect();
    let (sa, sb) = (&before.spec.secrets, &after.spec.secrets);
    d.secrets_added = sb
        .keys()
        .filter(|k| !sa.contains_key(*k))
        .cloned()
        .collect();
    d.secrets_removed = sa
        .keys()
        .filter(|k| !sb.contains_key(*k))
        .cloned()
        .collect();
    let (fa, fb) = (&before.spec.processes, &after.spec.processes);
    let names: std::collections::BTreeSet<&String> = fa.keys().chain(fb.keys()).collect();
    for name in names {
        let old = fa.get(name).map_or(0, |p| p.replicas);
        let new = fb.get(name).map_or(0, |p| p.replicas);
        if old != new {
            d.formation.push((name.clone(), old, new));
        }
    }
    let (s1, s2) = (
        before.spec.deploy.strategy.name(),
        after.spec.deploy.strategy.name(),
    );
    if s1 != s2 {
        d.strategy = Some((s1.to_string(), s2.to_string()));
    }
    d
}

/// `sha256:0123456789ab…` → `0123456789ab`.
pub fn short_digest(digest: &str) -> &str {
    let hexpart = digest.strip_prefix("sha256:").unwrap_or(digest);
    &hexpart[..hexpart.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release(v: u64) -> Release {
        let toml = "app = \"shop\"\n[env]\nA = \"1\"\nB = \"2\"\n[processes.web]\ncmd = \"./s\"\nreplicas = 2\n";
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("slipway.toml");
        std::fs::write(&path, toml).unwrap();
        let spec = slipway_config::load(&path).unwrap();
        Release {
            app: "shop".into(),
            version: v,
            label: None,
            artifact: format!("sha256:{}", "a".repeat(64)),
            spec,
            created_at: 0,
            created_by: "t".into(),
            message: None,
            rollback_of: None,
            status: slipway_core::release::ReleaseStatus::Active,
            reason: None,
        }
    }

    #[test]
    fn finds_bits_keys_and_formation() {
        let a = release(1);
        assert!(diff(&a, &a.clone()).is_empty());
        let mut b = release(2);
        b.artifact = format!("sha256:{}", "b".repeat(64));
        b.spec.env.remove("A");
        b.spec.env.insert("C".into(), "3".into());
        b.spec.config_vars.insert("B".into(), "20".into());
        b.spec.processes.get_mut("web").unwrap().replicas = 4;
        let d = diff(&a, &b);
        assert_eq!(
            short_digest(&d.artifact.as_ref().unwrap().1),
            "bbbbbbbbbbbb"
        );
        assert_eq!(d.added, ["C"]);
        assert_eq!(d.removed, ["A"]);
        assert_eq!(d.changed, ["B"]);
        assert_eq!(d.formation, [("web".to_string(), 2, 4)]);
        assert_eq!(d.strategy, None);
    }
}
