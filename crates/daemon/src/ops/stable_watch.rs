//! Old release vs new schema, the IO side: after a release phase and before any traffic moves, watch the
//! release still serving (`[release] stable_watch`) and judge it with `slipway_core::schema_watch`. A
//! clear regression stops the rollout there: the new release's `rollback_cmd` runs (if it has one), the
//! deploy fails saying so plainly, and nothing of the new release starts.

use std::time::Duration;

use slipway_core::analysis::Window;
use slipway_core::release::Release;
use slipway_core::schema_watch;
use slipway_core::verdict::Verdict;
use tokio::time::Instant;

use crate::control::traffic::{AppTraffic, traffic};
use crate::error::Error;
use crate::ops::deploy::Deployer;

/// How often the stable release's counters are read while it is watched.
const LOOK_EVERY: Duration = Duration::from_millis(250);

/// Whether the stable release is watched after the phase.
pub(crate) enum Watch {
    /// Nothing to watch: no phase, no stable release, or `stable_watch = "0s"`.
    Off,
    /// Not watched, and why (said in the deploy's answer and an event).
    Skipped(String),
    /// Watched, against its traffic in the minute before the phase.
    Against(Window),
}

impl Deployer {
    /// The app's traffic in the minute before the release phase: what the stable release is judged
    /// against after it — unless there is nothing to watch, or that minute had no traffic (an idle app
    /// could not be judged in a short watch).
    pub(crate) async fn before_phase(
        &self,
        release: &Release,
        stable: Option<&Release>,
    ) -> Result<Watch, Error> {
        let phase = &release.spec.release_phase;
        let Some(stable) = stable else {
            return Ok(Watch::Off);
        };
        if phase.cmd.is_none() || phase.stable_watch.is_zero() {
            return Ok(Watch::Off);
        }
        let before = traffic(&self.controller, &release.app).await?.last_minute;
        if before.requests == 0 {
            let text = format!(
                "v{} served nothing in the minute before v{}'s release phase: not watched after it",
                stable.version, release.version
            );
            self.event(
                &release.app,
                Some(release.version),
                "stable_watch_skipped",
                &text,
            );
            return Ok(Watch::Skipped(text));
        }
        Ok(Watch::Against(before))
    }

    /// Watches `stable` for up to `[release] stable_watch` after `release`'s phase. Ends early on a
    /// clear verdict; too little traffic to judge goes on. What it found, for the deploy's answer.
    pub(crate) async fn watch_stable(
        &self,
        release: &Release,
        stable: &Release,
        before: &Window,
        who: &str,
    ) -> Result<String, Error> {
        let (app, v, s) = (&release.app, release.version, stable.version);
        let mut counted = AppTraffic::default();
        counted.update(&traffic(&self.controller, app).await?);
        let start = counted.total.clone();
        let until = Instant::now() + release.spec.release_phase.stable_watch;
        loop {
            tokio::time::sleep(LOOK_EVERY).await;
            counted.update(&traffic(&self.controller, app).await?);
            let judged = schema_watch::judge(before, &counted.total.since(&start));
            match judged.verdict {
                Verdict::Pass => {
                    let text = format!(
                        "v{s} still serves well after v{v}'s release phase: {}",
                        judged.detail
                    );
                    self.event(app, Some(v), "stable_watch_passed", &text);
                    return Ok(text);
                }
                Verdict::Inconclusive if Instant::now() < until => {}
                Verdict::Inconclusive => {
                    let text = format!(
                        "v{s} had too little traffic after v{v}'s release phase to judge the new schema ({}); going on",
                        judged.detail
                    );
                    self.event(app, Some(v), "stable_watch_inconclusive", &text);
                    return Ok(text);
                }
                Verdict::Fail => {
                    return Err(self
                        .schema_broke_stable(release, stable, &judged.detail, who)
                        .await);
                }
            }
        }
    }

    /// The rollout stops before any traffic moved: `rollback_cmd` undoes the phase if it can.
    async fn schema_broke_stable(
        &self,
        release: &Release,
        stable: &Release,
        detail: &str,
        who: &str,
    ) -> Error {
        let (app, v, s) = (&release.app, release.version, stable.version);
        let broke = format!(
            "v{v}'s release phase broke v{s}, which is still serving: {detail}. The rollout stopped before v{v} got any traffic"
        );
        self.event(app, Some(v), "stable_watch_failed", &broke);
        let undone = match self.rollback_phase(release, s, who).await {
            Ok(Some(report)) => format!("v{v}'s rollback_cmd `{}` {}", report.cmd, report.outcome),
            Ok(None) => format!(
                "v{v} has no [release] rollback_cmd: the schema stays as its release phase left it — restore it by hand (v{s} keeps failing until then)"
            ),
            Err(e) => format!("v{v}'s rollback_cmd failed: {}", e.first_line()),
        };
        Error::conflict(format!(
            "{broke}; {undone}.\nmake the migration backwards compatible (expand now, contract in a later release), then deploy again"
        ))
    }
}
