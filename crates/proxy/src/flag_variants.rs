//! Answers counted per feature-flag variant. An app that names the variants it served in a response
//! header — `Slipway-Flags: new-checkout=on, dark-mode=off` — lets a flag ramp judge the variant's users
//! against everyone else's at the same time (on vs off), not only the app's traffic before vs after a
//! step. The header is the app's note to the proxy: it is counted and dropped, never sent to the client.
//!
//! Counters are per app, flag and variant, cumulative for as long as the proxy runs (the daemon reads
//! them as it reads the releases' counters). Only responses carrying the header pay for a lookup.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use http::HeaderName;
use slipway_core::analysis::Window;

use crate::release_metrics::ReleaseMetrics;

pub(crate) static SLIPWAY_FLAGS: HeaderName = HeaderName::from_static("slipway-flags");

/// At most this many flag variants are counted per app: a buggy app naming a new variant in every
/// response must not grow the proxy's memory; what is beyond is not counted.
const MAX_VARIANTS_PER_APP: usize = 256;

/// Longest flag key or variant name counted.
const MAX_NAME: usize = 128;

type Variants = HashMap<Box<str>, HashMap<Box<str>, Arc<ReleaseMetrics>>>;

#[derive(Default)]
pub struct FlagVariants {
    apps: Mutex<HashMap<Arc<str>, Variants>>,
}

impl std::fmt::Debug for FlagVariants {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlagVariants").finish_non_exhaustive()
    }
}

impl FlagVariants {
    /// Counts one answer of `app` (its status and time to the response head) for each flag variant its
    /// `Slipway-Flags` value names. Malformed parts are skipped.
    pub(crate) fn record(&self, app: &Arc<str>, value: &[u8], status: u16, micros: u64) {
        let Ok(text) = std::str::from_utf8(value) else {
            return;
        };
        let mut apps = self.apps.lock().unwrap_or_else(|p| p.into_inner());
        let flags = match apps.get_mut(&**app) {
            Some(flags) => flags,
            None => apps.entry(Arc::clone(app)).or_default(),
        };
        for (flag, variant) in pairs(text) {
            let metrics = match flags.get(flag).and_then(|v| v.get(variant)) {
                Some(metrics) => metrics,
                // Counted only for a new variant: the common answer names known ones.
                None if flags.values().map(HashMap::len).sum::<usize>() >= MAX_VARIANTS_PER_APP => {
                    continue;
                }
                None => flags
                    .entry(flag.into())
                    .or_default()
                    .entry(variant.into())
                    .or_insert_with(ReleaseMetrics::new),
            };
            metrics.record(status, micros);
        }
    }

    /// Everything counted for `flag` of `app`, by variant: cumulative since the proxy started.
    pub fn snapshot(&self, app: &str, flag: &str) -> Vec<(String, Window)> {
        let apps = self.apps.lock().unwrap_or_else(|p| p.into_inner());
        let Some(variants) = apps.get(app).and_then(|flags| flags.get(flag)) else {
            return Vec::new();
        };
        let mut counted: Vec<(String, Window)> = variants
            .iter()
            .map(|(variant, metrics)| (variant.to_string(), metrics.snapshot()))
            .collect();
        counted.sort_by(|a, b| a.0.cmp(&b.0));
        counted
    }

    /// Forgets an app's counters (it was removed).
    pub fn forget(&self, app: &str) {
        let mut apps = self.apps.lock().unwrap_or_else(|p| p.into_inner());
        apps.remove(app);
    }
}

/// The `flag=variant` pairs of a `Slipway-Flags` value: comma-separated, spaces around them ignored,
/// names of visible ASCII without `,` `=` or spaces, up to 128 bytes.
pub(crate) fn pairs(value: &str) -> impl Iterator<Item = (&str, &str)> {
    value.split(',').filter_map(|part| {
        let (flag, variant) = part.split_once('=')?;
        let (flag, variant) = (flag.trim(), variant.trim());
        (is_name(flag) && is_name(variant)).then_some((flag, variant))
    })
}

fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b',' && b != b'=')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pairs_and_skips_what_is_malformed() {
        let read: Vec<_> =
            pairs(" new-checkout=on,dark-mode = off ,=x,y=,bad, a=b=c , ok=1").collect();
        assert_eq!(
            read,
            [("new-checkout", "on"), ("dark-mode", "off"), ("ok", "1")]
        );
    }

    #[test]
    fn counts_per_app_flag_and_variant_within_a_bound() {
        let variants = FlagVariants::default();
        let (shop, blog): (Arc<str>, Arc<str>) = ("shop".into(), "blog".into());
        variants.record(&shop, b"checkout=on, theme=dark", 500, 1_000);
        variants.record(&shop, b"checkout=off", 200, 1_000);
        variants.record(&shop, b"checkout=on", 200, 1_000);
        variants.record(&blog, b"checkout=on", 200, 1_000);
        let counted = variants.snapshot("shop", "checkout");
        let summary: Vec<_> = counted
            .iter()
            .map(|(v, w)| (v.as_str(), w.requests, w.errors))
            .collect();
        assert_eq!(summary, [("off", 1, 0), ("on", 2, 1)]);
        assert_eq!(variants.snapshot("shop", "theme")[0].1.requests, 1);
        assert_eq!(variants.snapshot("blog", "checkout")[0].1.requests, 1);
        assert!(variants.snapshot("shop", "none").is_empty());

        for i in 0..1_000 {
            variants.record(&blog, format!("f{i}=x").as_bytes(), 200, 1);
        }
        let names: usize = (0..1_000)
            .filter(|i| !variants.snapshot("blog", &format!("f{i}")).is_empty())
            .count();
        assert_eq!(names + 1, MAX_VARIANTS_PER_APP, "bounded per app");
        variants.forget("blog");
        assert!(variants.snapshot("blog", "checkout").is_empty());
    }
}
