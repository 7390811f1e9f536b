//! The controller's side of the watch after promotion (`watch.rs` decides): started when a rollout
//! succeeds, with both releases' counters at the switch; judged with the analyses (every
//! `wake::JUDGE_EVERY_MS` while it watches, and in the once-a-second round); a regression is recorded
//! (event, the release marked failed, the webhooks told) and handed to whoever rolls back
//! (`on_watch_regression`: the daemon's `ops::watch_rollback`, which runs `slipway rollback --to` the
//! replaced release). Another rollout ends a running watch.

use crate::clock::now_ms;
use crate::control::app_state::AppState;
use crate::control::controller::Controller;
use crate::control::rollout_end::Ended;
use crate::control::watch::{SavedWatch, Watch, WatchStep};
use slipway_core::release::{ReleaseStatus, Version};
use slipway_core::verdict::Verdict;
use tokio::sync::mpsc;

/// A promoted release found clearly worse than the one it replaced: roll back to `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchRollback {
    pub app: String,
    /// The replaced release, the rollback's target.
    pub to: Version,
    /// The release that regressed.
    pub regressed: Version,
    /// What the watch saw, in words.
    pub reason: String,
}

impl Controller {
    /// Where the watch's rollbacks go; until this is called a regression is only recorded.
    pub fn on_watch_regression(&mut self) -> mpsc::UnboundedReceiver<WatchRollback> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.watch_rollbacks = Some(tx);
        rx
    }

    /// A rollout has ended (`finish_rollout`): start its release's watch, if it gets one.
    pub(crate) fn start_watch(&mut self, name: &str, ended: &Ended, now: u64) {
        let Ok(release) = self.release(name, ended.to) else {
            return;
        };
        let Some(app) = self.apps.get_mut(name) else {
            return;
        };
        let counts = |app: &AppState, v: Option<Version>| {
            v.and_then(|v| app.metrics.get(&v))
                .map(|m| m.snapshot())
                .unwrap_or_default()
        };
        let release_now = counts(app, Some(ended.to));
        let before = counts(app, ended.from);
        let Some(watch) = Watch::start(ended, &release, release_now, before.clone(), now) else {
            return;
        };
        let text = format!(
            "watching v{} for {} against v{}'s numbers before the switch ({} requests, {:.2}% errors; {}): a clear regression rolls back to v{}",
            watch.release,
            crate::control::watch::span(watch.ends_at - watch.started_at),
            watch.predecessor,
            before.requests,
            before.error_rate().unwrap_or(0.0) * 100.0,
            if watch.template == crate::control::watch::DEFAULT_TEMPLATE {
                "error rate within +1% of it".to_string()
            } else {
                format!("template {}", watch.template)
            },
            watch.predecessor,
        );
        let release = watch.release;
        let saved = watch.saved();
        app.watch = Some(watch);
        self.save_watch(name, &saved);
        self.event(name, Some(release), "watch_started", &text);
    }

    /// At start: the watches a previous daemon left running carry on until their time is over.
    pub(crate) fn resume_watches(&mut self) -> Result<(), slipway_store::StoreError> {
        let now = now_ms();
        for (name, state) in self.store.watches()? {
            let saved: Option<SavedWatch> = serde_json::from_value(state).ok();
            let resumed = saved.and_then(|saved| {
                let release = self.release(&name, saved.release).ok()?;
                let app = self.apps.get(&name)?;
                // Only while the watched release is still the stable one.
                if app.stable != Some(saved.release) || app.rollout.is_some() {
                    return None;
                }
                let counts = app
                    .metrics
                    .get(&saved.release)
                    .map(|m| m.snapshot())
                    .unwrap_or_default();
                Watch::resume(saved, &release, &counts, now)
            });
            let Some(watch) = resumed else {
                self.store.clear_watch(&name)?;
                continue;
            };
            let text = format!(
                "daemon restarted: watching v{} on for {} against v{}'s numbers before the switch",
                watch.release,
                crate::control::watch::span(watch.ends_at - now),
                watch.predecessor
            );
            let release = watch.release;
            if let Some(app) = self.apps.get_mut(&name) {
                app.watch = Some(watch);
            }
            self.event(&name, Some(release), "watch_resumed", &text);
        }
        Ok(())
    }

    fn save_watch(&self, name: &str, saved: &SavedWatch) {
        let state = serde_json::to_value(saved).unwrap_or_default();
        if let Err(e) = self.store.save_watch(name, saved.release, &state) {
            tracing::error!("cannot record the watch of {name}: {e}; a restart would end it");
        }
    }

    /// The watch is over (ended, regressed, superseded): a restarted daemon does not resume it.
    fn forget_watch(&self, name: &str) {
        if let Err(e) = self.store.clear_watch(name) {
            tracing::error!("cannot clear the watch of {name}: {e}");
        }
    }

    /// A rollout starts: a running watch ends (the watched release is being replaced, or rolled back
    /// by hand).
    pub(crate) fn supersede_watch(&mut self, name: &str, by: Version, rollback: bool, now: u64) {
        let Some(w) = self.apps.get_mut(name).and_then(|a| a.watch.as_mut()) else {
            return;
        };
        let watched = w.release;
        if w.supersede(by, now) {
            self.forget_watch(name);
            let how = if rollback {
                "a rollback to"
            } else {
                "a rollout of"
            };
            let text = format!("the watch of v{watched} ended early: {how} v{by} started");
            self.event(name, Some(watched), "watch_ended", &text);
        }
    }

    /// Judges every running watch on its release's counts now, and acts on a regression or an end.
    pub(crate) fn judge_watches(&mut self) {
        let now = now_ms();
        let names: Vec<String> = self
            .apps
            .iter()
            .filter(|(_, a)| crate::control::wake::watching(a))
            .map(|(name, _)| name.clone())
            .collect();
        for name in names {
            let Some(app) = self.apps.get_mut(&name) else {
                continue;
            };
            let AppState { watch, metrics, .. } = app;
            let Some(w) = watch.as_mut() else {
                continue;
            };
            let requests = metrics
                .get(&w.release)
                .map_or(0, |m| m.by_class().iter().sum());
            if !w.needs_judging(requests, now) {
                continue; // nothing new since the last judgement: no snapshot, no work
            }
            let counts = metrics
                .get(&w.release)
                .map(|m| m.snapshot())
                .unwrap_or_default();
            let step = w.judge(&counts, now);
            let (release, predecessor) = (w.release, w.predecessor);
            let since = now.saturating_sub(w.started_at);
            if step != WatchStep::Hold {
                self.forget_watch(&name);
            }
            match step {
                WatchStep::Hold => {}
                WatchStep::Ended(verdict, detail) => {
                    let how = match verdict {
                        Verdict::Pass => "no regression",
                        _ => "no clear regression (too little evidence either way)",
                    };
                    let text = format!(
                        "the watch of v{release} ended after {}: {how} against v{predecessor} ({}: {detail})",
                        crate::control::watch::span(since),
                        verdict.as_str()
                    );
                    self.event(&name, Some(release), "watch_ended", &text);
                }
                WatchStep::Regressed(detail) => {
                    self.watch_regressed(&name, release, predecessor, since, detail)
                }
            }
        }
    }

    fn watch_regressed(
        &mut self,
        name: &str,
        release: Version,
        predecessor: Version,
        since: u64,
        detail: String,
    ) {
        let after = crate::control::watch::span(since);
        let reason = format!("regressed {after} after promotion: {detail}");
        let text =
            format!("the watch of v{release} failed: {reason}; rolling back to v{predecessor}");
        self.event(name, Some(release), "watch_regressed", &text);
        if let Err(e) =
            self.store
                .set_release_status(name, release, ReleaseStatus::Failed, Some(&reason))
        {
            tracing::error!("cannot record v{release} of {name} as failed: {e}");
        }
        if let Some(r) = self.releases.get_mut(&(name.to_string(), release)) {
            r.status = ReleaseStatus::Failed;
        }
        if let Ok(r) = self.release(name, release) {
            let text =
                format!("slipway: {name} v{release} {reason}. Rolling back to v{predecessor}.");
            crate::notify::send(&self.http(), &r.spec.notify, text);
        }
        let asked = self.watch_rollbacks.as_ref().is_some_and(|tx| {
            tx.send(WatchRollback {
                app: name.to_string(),
                to: predecessor,
                regressed: release,
                reason,
            })
            .is_ok()
        });
        if !asked {
            let text = format!(
                "nothing can roll back v{release} here: run `slipway rollback --to v{predecessor}`"
            );
            self.event(name, Some(release), "watch_rollback_failed", &text);
        }
    }
}
