//! Releases: an artifact plus the spec it runs with, immutable and numbered `v1, v2, …` per app.
//!
//! A rollback makes a *new* release from an old one (Heroku's semantics), so history only grows and
//! "what ran when" is always answerable.

use crate::spec::AppSpec;
use serde::{Deserialize, Serialize};

/// A release number within an app: `v1` is 1.
pub type Version = u64;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Release {
    pub app: String,
    pub version: Version,
    /// The user's label (`--version LABEL`), e.g. a git sha or semver.
    pub label: Option<String>,
    /// Content digest of the frozen artifact (`sha256:…`).
    pub artifact: String,
    pub spec: AppSpec,
    /// Unix milliseconds.
    pub created_at: i64,
    pub created_by: String,
    pub message: Option<String>,
    /// Set when this release was made by `rollback`: the release whose bits and config it copies.
    pub rollback_of: Option<Version>,
    pub status: ReleaseStatus,
    /// Why the release failed or was rolled back, for `status` and `history`.
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseStatus {
    /// Recorded, its rollout not finished yet.
    Pending,
    /// Currently serving as the stable release.
    Active,
    /// Served once, replaced by a later release.
    Superseded,
    /// Its rollout failed or was aborted; it never became stable.
    Failed,
}

impl ReleaseStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseStatus::Pending => "pending",
            ReleaseStatus::Active => "active",
            ReleaseStatus::Superseded => "superseded",
            ReleaseStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => ReleaseStatus::Pending,
            "active" => ReleaseStatus::Active,
            "superseded" => ReleaseStatus::Superseded,
            "failed" => ReleaseStatus::Failed,
            _ => return None,
        })
    }
}

/// `v12` for 12.
pub fn display_version(v: Version) -> String {
    format!("v{v}")
}

/// Parses `v12` or `12`.
pub fn parse_version(s: &str) -> Option<Version> {
    s.strip_prefix('v')
        .unwrap_or(s)
        .parse()
        .ok()
        .filter(|v| *v > 0)
}
