//! The controller's side of SLOs (`slo_book.rs` decides): every release's traffic counted into its
//! app's minute ledger once a second, the counts written to the store every few seconds and when the
//! daemon stops, the stored minutes read back when an app's book is made (at the first count after a
//! start, or when `[slo]` first appears), and the budget reported to `status`, the dashboard and the
//! deploy hold. The SLO in force is the stable release's `[slo]` (before the first deploy succeeds, the
//! rollout's).

use crate::control::controller::Controller;
use crate::control::slo_book::SloBook;
use slipway_core::analysis::Window;
use slipway_core::release::Version;
use slipway_core::slo::{Bucket, SloSpec, minute_of};
use slipway_store::SloMinute;
use std::collections::BTreeMap;

/// Points of the dashboard's budget chart.
pub(crate) const CHART_POINTS: u32 = 120;

/// An app's SLO now: the spec in force, the budget, and the budget left over the window so far.
pub struct SloSnapshot {
    pub spec: SloSpec,
    pub report: slipway_core::slo::BudgetReport,
    pub burndown: Vec<(u64, Vec<f64>)>,
    /// Why deploys are held, while they are.
    pub hold: Option<String>,
}

impl Controller {
    /// The `[slo]` in force for the app: its stable release's, else its rollout's new release's.
    fn slo_spec(&mut self, name: &str) -> Option<SloSpec> {
        let app = self.apps.get(name)?;
        let v = app
            .stable
            .or_else(|| app.rollout.as_ref().map(|r| r.machine.to))?;
        if let Some(r) = self.releases.get(&(name.to_string(), v)) {
            return r.spec.slo.clone();
        }
        self.release(name, v).ok()?.spec.slo
    }

    /// Counts the releases' traffic since the last round (`windows`: their counters now) into the
    /// app's SLO book, and writes it when due.
    pub(crate) fn count_slo(&mut self, name: &str, windows: &BTreeMap<Version, Window>, now: u64) {
        let spec = self.slo_spec(name);
        let Some(app) = self.apps.get_mut(name) else {
            return;
        };
        match (spec, app.slo.as_mut()) {
            (None, _) => {
                if app.slo.is_some() {
                    self.write_slo(name, now, true);
                    if let Some(app) = self.apps.get_mut(name) {
                        app.slo = None;
                    }
                }
                return;
            }
            (Some(spec), Some(book)) => {
                book.respec(spec, windows);
                book.count(windows, now);
            }
            (Some(spec), None) => {
                let keep_from =
                    (minute_of(now) + 1).saturating_sub(spec.window.as_secs().div_ceil(60) as u32);
                let stored = match self.store.slo_minutes(name, keep_from) {
                    Ok(rows) => rows.into_iter().map(bucket).collect(),
                    Err(e) => {
                        tracing::error!("cannot read {name}'s SLO minutes: {e}");
                        Vec::new()
                    }
                };
                let Some(app) = self.apps.get_mut(name) else {
                    return;
                };
                app.slo = Some(SloBook::new(spec, stored, windows, now));
            }
        }
        self.write_slo(name, now, false);
        let changes = self
            .apps
            .get_mut(name)
            .and_then(|a| a.slo.as_mut())
            .map(|book| book.changes(now))
            .unwrap_or_default();
        for (kind, text) in changes {
            self.event(name, None, kind, &text);
        }
    }

    /// Writes the app's counted minutes when due (`force`: now), and prunes those past the window.
    pub(crate) fn write_slo(&mut self, name: &str, now: u64, force: bool) {
        let Some(book) = self.apps.get_mut(name).and_then(|a| a.slo.as_mut()) else {
            return;
        };
        let Some(due) = book.take_due(now, force) else {
            return;
        };
        let keep_from = book.keep_from(now);
        let rows: Vec<SloMinute> = due
            .into_iter()
            .map(|(minute, c)| SloMinute {
                minute,
                requests: c.requests,
                errors: c.errors,
                slow: c.slow,
            })
            .collect();
        if let Err(e) = self.store.record_slo_minutes(name, &rows, keep_from) {
            tracing::error!("cannot record {name}'s SLO minutes: {e}");
        }
    }

    /// Writes every app's counts: the daemon stops or hands over.
    pub(crate) fn write_all_slo(&mut self) {
        let now = crate::clock::now_ms();
        let names: Vec<String> = self.apps.keys().cloned().collect();
        for name in names {
            self.write_slo(&name, now, true);
        }
    }

    /// The app's SLO now (`None`: no such app, or no `[slo]` counted yet).
    pub(crate) fn slo_snapshot(&self, name: &str, now: u64) -> Option<SloSnapshot> {
        let book = self.apps.get(name)?.slo.as_ref()?;
        Some(SloSnapshot {
            spec: book.spec.clone(),
            report: book.report(now),
            burndown: slipway_core::slo::burndown(&book.spec, &book.ledger, now, CHART_POINTS),
            hold: book.hold(now),
        })
    }
}

fn bucket(m: SloMinute) -> Bucket {
    let sat = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
    Bucket {
        minute: m.minute,
        requests: sat(m.requests),
        errors: sat(m.errors),
        slow: sat(m.slow),
    }
}
