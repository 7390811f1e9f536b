//! `slipway drill`: a rollback rehearsed on the live app. The stable release again — same artifact, same
//! spec, a new release number whose message and events say it is a drill — rolled out as a canary at a
//! small weight, a share of whose requests the proxy fails on purpose (`AppSpec::drill_fault`, applied
//! only while it is the rollout's canary). The ordinary canary analysis must catch it and roll it back;
//! nothing else is special about it. No release phase runs: the stable release's migrations already ran.

use crate::clock::now_ms;
use crate::control::traffic::{AppTraffic, traffic};
use crate::error::Error;
use crate::ops::deploy::Deployer;
use crate::ops::drill_report::{self, Started};
use slipway_api::{DeployAccepted, DrillRequest};
use slipway_core::spec::{CanarySpec, CanaryStep, DeploySpec, DrillFault, Strategy};
use std::sync::Arc;
use std::time::Duration;

/// The analysis template a drill's canary step runs (the watch's default: the error rate may exceed the
/// stable release's by at most one point).
pub const DRILL_TEMPLATE: &str = "slipway-drill";
/// The canary's weight unless asked, in percent.
pub const DEFAULT_WEIGHT: u32 = 5;
/// The share of the canary's requests failed unless asked.
pub const DEFAULT_ERROR_RATE: f64 = 0.5;
/// How long the drill's analysis step may take to catch the failures; after it the canary holds (never
/// promotes) until aborted.
const ANALYSIS_FOR: Duration = Duration::from_secs(120);

impl Deployer {
    /// Starts a drill and the task that follows it to its report (`ops/drill_report.rs`).
    pub async fn drill(
        self: &Arc<Self>,
        app: &str,
        req: DrillRequest,
    ) -> Result<DeployAccepted, Error> {
        let weight = req.weight.unwrap_or(DEFAULT_WEIGHT);
        if !(1..=50).contains(&weight) {
            return Err(Error::bad_request(format!(
                "--weight {weight}: a drill's canary gets 1 to 50 percent of the traffic"
            )));
        }
        let error_rate = req.error_rate.unwrap_or(DEFAULT_ERROR_RATE);
        if !(error_rate > 0.0 && error_rate <= 1.0) {
            return Err(Error::bad_request(format!(
                "--error-rate {error_rate}: the share of the canary's requests to fail must be above 0 and at most 100%"
            )));
        }
        let Some(stable) = self.stable_release(app)? else {
            return Err(Error::conflict(format!(
                "{app} has no stable release to rehearse a rollback with: deploy one first"
            )));
        };
        if !stable.spec.processes.contains_key("web") {
            return Err(Error::conflict(format!(
                "{app} has no web process: a drill fails a canary's requests, and {app} serves none"
            )));
        }
        if let Some(hold) = self.slo_hold_reason(app).await? {
            return Err(Error::conflict(format!(
                "{app}'s error budget is spent ([slo] hold_deploys: {hold}); a drill would spend more.\n\
                 Run it once the budget recovers (see `slipway status`)"
            )));
        }
        let holder = format!("drill by {}", req.who);
        let percent = (error_rate * 100.0 * 10.0).round() / 10.0;
        let message = format!(
            "drill: v{} again as a canary at {weight}% with {percent}% of its requests failed on purpose",
            stable.version
        );
        // The app's counters before the drill's canary takes any traffic.
        let mut before = AppTraffic::default();
        before.update(&traffic(&self.controller, app).await?);
        let at = now_ms() as i64;
        let accepted = self
            .under_lock(app, &holder, async {
                let spec = drill_spec(&stable.spec, error_rate);
                let release = self.record_derived(&stable, spec, &req.who, &message, |_| Ok(()))?;
                self.event(app, Some(release.version), "drill", &message);
                let strategy = drill_strategy(weight, &stable.spec);
                self.hand_over(release, false, Some(strategy)).await
            })
            .await
            .map_err(|e| match e.kind {
                crate::error::ErrorKind::Conflict => {
                    Error::conflict(format!("cannot drill now: {}", e.message))
                }
                _ => e,
            })?;
        let started = Started {
            app: app.to_string(),
            release: accepted.release,
            rollout: accepted.rollout,
            by: req.who.clone(),
            at,
            traffic: before,
        };
        tokio::spawn(drill_report::follow(self.clone(), started));
        Ok(accepted)
    }
}

/// The stable release's spec with the drill's fault and the template its analysis step runs.
fn drill_spec(
    stable: &slipway_core::spec::AppSpec,
    error_rate: f64,
) -> slipway_core::spec::AppSpec {
    let mut spec = stable.clone();
    spec.drill_fault = Some(DrillFault { error_rate });
    spec.analysis.insert(
        DRILL_TEMPLATE.to_string(),
        DeploySpec::default_watch_template(),
    );
    spec
}

/// A canary at `weight`, judged at once; it never promotes: after the analysis it holds until aborted.
fn drill_strategy(weight: u32, stable: &slipway_core::spec::AppSpec) -> Strategy {
    let sticky = match &stable.deploy.strategy {
        Strategy::Canary(c) => c.sticky.clone(),
        _ => None,
    };
    Strategy::Canary(CanarySpec {
        steps: vec![
            CanaryStep::Weight(weight),
            CanaryStep::Analysis {
                template: DRILL_TEMPLATE.to_string(),
                duration: ANALYSIS_FOR,
            },
            CanaryStep::Pause(None),
        ],
        sticky,
        background_analysis: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::test_support::release;

    #[test]
    fn a_drill_is_the_stable_spec_with_a_fault_judged_at_once_and_never_promoted() {
        let stable = release("a", 3, "[processes.web]\ncmd = \"serve\"");
        let spec = drill_spec(&stable.spec, 0.5);
        assert_eq!(spec.drill_fault, Some(DrillFault { error_rate: 0.5 }));
        assert!(spec.analysis.contains_key(DRILL_TEMPLATE));
        assert_eq!(
            spec.processes, stable.spec.processes,
            "the same release again"
        );
        let Strategy::Canary(c) = drill_strategy(5, &stable.spec) else {
            panic!("a canary");
        };
        assert_eq!(c.steps[0], CanaryStep::Weight(5));
        assert!(matches!(c.steps[1], CanaryStep::Analysis { .. }));
        assert_eq!(
            c.steps.last(),
            Some(&CanaryStep::Pause(None)),
            "never promoted"
        );
    }
}
