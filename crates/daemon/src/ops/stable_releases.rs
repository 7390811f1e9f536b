//! Every app's stable release as the once-a-second schedulers (cron jobs, scheduled drills) see it:
//! one query for every app's stable version, and a release read (and its spec parsed) only when an
//! app's stable version changed. Each scheduler keeps only the releases it cares about, so an app
//! without cron jobs costs the cron scheduler one comparison a second.

use slipway_core::release::{Release, Version};
use slipway_store::Store;
use std::collections::HashMap;
use std::sync::Arc;

pub struct StableReleases {
    /// Which releases this scheduler keeps (e.g. those with cron jobs).
    wanted: fn(&Release) -> bool,
    /// Each app's stable version as last read, with its release when `wanted` keeps it.
    by_app: HashMap<String, (Version, Option<Arc<Release>>)>,
}

impl StableReleases {
    pub fn new(wanted: fn(&Release) -> bool) -> StableReleases {
        StableReleases {
            wanted,
            by_app: HashMap::new(),
        }
    }

    /// The stable releases `wanted` keeps, ordered by app. `None`: the store could not be read (the
    /// scheduler looks again next second); a release that cannot be read is left out until it can.
    pub fn read(&mut self, store: &Store) -> Option<Vec<Arc<Release>>> {
        let stables = store.stables().ok()?;
        let releases = stables
            .iter()
            .filter_map(|(app, version)| {
                if let Some((_, r)) = self.by_app.get(app).filter(|(v, _)| v == version) {
                    return r.clone();
                }
                let release = store.release(app, *version).ok()??;
                let r = (self.wanted)(&release).then(|| Arc::new(release));
                self.by_app.insert(app.clone(), (*version, r.clone()));
                r
            })
            .collect();
        if self.by_app.len() > stables.len() {
            // An app left: `stables` is ordered by app.
            self.by_app.retain(|app, _| {
                stables
                    .binary_search_by(|(a, _)| a.as_str().cmp(app))
                    .is_ok()
            });
        }
        Some(releases)
    }
}
