//! The controller's side of analysis. Once a second (`analyze`): snapshot every release's counters (for
//! sliding windows, `/metrics` and the autoscaler), keep each canary rollout's analysis sessions in step
//! with its current step, judge them, and start the external checks that are due. In between
//! (`judge_sessions`, every `wake::JUDGE_EVERY_MS` while a rollout analyses): snapshot only the canary and
//! the stable release, start a new step's session, and judge again, so a verdict waits for evidence, not
//! for the next second — the sequential tests stay valid however often they are looked at. A fail rolls
//! back at once.

use crate::clock::now_ms;
use crate::control::analysis_session::{EXTERNAL_EVERY_MS, Purpose, Session};
use crate::control::app_state::AppState;
use crate::control::controller::{Controller, Msg};
use crate::providers::{CheckContext, CheckResult};
use slipway_core::analysis::{Judgement, Window};
use slipway_core::release::Version;
use slipway_core::rollout::{Rollout, Signal};
use slipway_core::slo::GATE_TEMPLATE;
use slipway_core::spec::{AnalysisTemplate, CanaryStep, Strategy};
use slipway_core::verdict::Verdict;
use std::collections::BTreeMap;

/// Seconds of per-second snapshots kept for sliding windows.
pub const HISTORY_SECONDS: usize = 60;

impl Controller {
    /// The once-a-second round, when it is due; says whether it ran (the autoscaler samples on it).
    pub(crate) fn analyze(&mut self) -> bool {
        let now = now_ms();
        if now < self.next_analysis_at {
            return false;
        }
        self.next_analysis_at = now + 1_000;
        self.last_judged = now;
        let names: Vec<String> = self.apps.keys().cloned().collect();
        for name in names {
            self.analyze_app(&name, now);
        }
        self.judge_watches();
        true
    }

    /// Between rounds: judges every session on fresh counts of its canary and stable release. A changed
    /// verdict sets `verdict_changed`, so that the rollout acts on it now (a fail rolls back).
    pub(crate) fn judge_sessions(&mut self) {
        let now = now_ms();
        self.last_judged = now;
        self.judge_watches();
        let names: Vec<String> = self
            .apps
            .iter()
            .filter(|(_, a)| crate::control::wake::judging(a))
            .map(|(name, _)| name.clone())
            .collect();
        for name in names {
            let Some(app) = self.apps.get(&name) else {
                continue;
            };
            let Some(active) = app.rollout.as_ref() else {
                continue;
            };
            let (from, to) = (active.machine.from, active.machine.to);
            let windows = snapshot(app, from.into_iter().chain([to]));
            self.keep_sessions_in_step(&name, now, &windows);
            let canary = windows.get(&to).cloned().unwrap_or_default();
            let stable = from.and_then(|v| windows.get(&v).cloned());
            self.judge_app(&name, now, &canary, stable.as_ref());
        }
    }

    fn analyze_app(&mut self, name: &str, now: u64) {
        let Some(app) = self.apps.get_mut(name) else {
            return;
        };
        let windows = snapshot(app, app.metrics.keys().copied().collect::<Vec<_>>());
        app.history.push_back((now, windows.clone()));
        while app.history.len() > HISTORY_SECONDS + 1 {
            app.history.pop_front();
        }
        app.series.record(&app.history);
        self.count_slo(name, &windows, now);
        let Some(app) = self.apps.get_mut(name) else {
            return;
        };
        let Some(active) = app.rollout.as_ref() else {
            for mut s in app.sessions.drain(..) {
                if let Some(reply) = s.reply.take() {
                    let _ = reply.send(Judgement {
                        verdict: Verdict::Inconclusive,
                        detail: "the rollout ended before the gate decided".into(),
                    });
                }
            }
            return;
        };
        let (from, to) = (active.machine.from, active.machine.to);
        self.keep_sessions_in_step(name, now, &windows);
        let canary_now = windows.get(&to).cloned().unwrap_or_default();
        let stable_now = from.and_then(|v| windows.get(&v).cloned());
        self.judge_app(name, now, &canary_now, stable_now.as_ref());
        self.run_external_checks(name, now);
    }

    /// Drops the sessions the rollout no longer wants and starts those it wants now, with these counts as
    /// their baseline: an analysis step's session starts within one judging interval of the step.
    fn keep_sessions_in_step(&mut self, name: &str, now: u64, windows: &BTreeMap<Version, Window>) {
        let Some(app) = self.apps.get_mut(name) else {
            return;
        };
        let Some(active) = app.rollout.as_ref() else {
            return;
        };
        let (from, to) = (active.machine.from, active.machine.to);
        let mut wanted = sessions_wanted(&active.machine);
        let slo_gate = self
            .releases
            .get(&(name.to_string(), to))
            .and_then(|r| r.spec.slo.as_ref())
            .filter(|slo| slo.canary_gate)
            .filter(|_| matches!(active.machine.strategy, Strategy::Canary(_)))
            .cloned();
        if slo_gate.is_some() {
            wanted.push((Purpose::Slo, GATE_TEMPLATE.to_string()));
        }
        keep_wanted(&mut app.sessions, &wanted);
        let missing: Vec<(Purpose, String)> = wanted
            .into_iter()
            .filter(|(p, n)| !app.sessions.iter().any(|s| s.purpose == *p && s.name == *n))
            .collect();
        if missing.is_empty() {
            return;
        }
        let templates = self
            .releases
            .get(&(name.to_string(), to))
            .map(|r| r.spec.analysis.clone())
            .unwrap_or_default();
        let Some(app) = self.apps.get_mut(name) else {
            return;
        };
        for (purpose, template_name) in missing {
            let template = match purpose {
                Purpose::Slo => match slo_gate.as_ref().and_then(|slo| slo.gate_template()) {
                    Some(t) => t,
                    None => continue, // no objective a canary could exceed
                },
                _ => templates.get(&template_name).cloned().unwrap_or_default(),
            };
            let canary = windows.get(&to).cloned().unwrap_or_default();
            let stable = from.and_then(|v| windows.get(&v).cloned());
            app.sessions.push(Session::new(
                &template_name,
                template,
                purpose,
                now,
                canary,
                stable,
            ));
        }
    }

    /// Judges every session of the app on these counts, answers finished gates and tells the rollout.
    /// Called right after `keep_sessions_in_step`, so a past step's session never speaks for this one.
    fn judge_app(
        &mut self,
        name: &str,
        now: u64,
        canary_now: &Window,
        stable_now: Option<&Window>,
    ) {
        let Some(app) = self.apps.get_mut(name) else {
            return;
        };
        let Some(active) = app.rollout.as_ref() else {
            return;
        };
        let to = active.machine.to;
        let fast_burn = self
            .releases
            .get(&(name.to_string(), to))
            .and_then(|r| r.spec.slo.as_ref())
            .map_or(14.4, |slo| slo.fast_burn());
        let mut signals = Vec::new();
        let mut events = Vec::new();
        let mut finished_gates = Vec::new();
        for (i, s) in app.sessions.iter_mut().enumerate() {
            let before = s.last.as_ref().map(|j| j.verdict);
            let j = s.judge(canary_now, stable_now);
            if before != Some(j.verdict) {
                events.push(format!(
                    "analysis {} ({}): {} — {}",
                    s.name,
                    purpose_name(&s.purpose),
                    j.verdict.as_str(),
                    j.detail
                ));
            }
            match s.purpose {
                // The SLO gate only ever fails a canary: its pass is not a step's pass.
                Purpose::Slo if j.verdict == Verdict::Fail => signals.push(Signal::Analysis {
                    template: s.name.clone(),
                    verdict: j.verdict,
                    detail: format!(
                        "the canary would burn the error budget {}× as fast as the window allows or faster: {}",
                        fast_burn, j.detail
                    ),
                }),
                Purpose::Slo => {}
                Purpose::Gate => {
                    if j.verdict == Verdict::Fail || s.ends_at.is_some_and(|end| now >= end) {
                        finished_gates.push(i);
                    }
                }
                _ => signals.push(Signal::Analysis {
                    template: s.name.clone(),
                    verdict: j.verdict,
                    detail: j.detail.clone(),
                }),
            }
        }
        self.verdict_changed |= !events.is_empty() || !finished_gates.is_empty();
        for i in finished_gates.into_iter().rev() {
            let mut s = app.sessions.remove(i);
            if let (Some(reply), Some(j)) = (s.reply.take(), s.last.take()) {
                let _ = reply.send(j);
            }
        }
        if let Some(active) = app.rollout.as_mut() {
            for signal in signals {
                active.machine.signal(signal);
            }
        }
        for text in events {
            self.event(name, Some(to), "analysis", &text);
        }
    }

    /// Starts the external checks of every session that is due, in the background.
    fn run_external_checks(&mut self, name: &str, now: u64) {
        let canary_url = self.canary_url(name);
        let needed = self
            .apps
            .get(name)
            .is_some_and(|a| a.sessions.iter().any(|s| s.has_external()));
        if !needed {
            return;
        }
        let http = self.http();
        let Some(app) = self.apps.get_mut(name) else {
            return;
        };
        let Some(active) = app.rollout.as_ref() else {
            return;
        };
        let (canary_service, stable_service) =
            self.runtimes
                .release_services(name, active.machine.to, active.machine.from);
        let ctx = CheckContext {
            app: name.to_string(),
            canary: active.machine.to,
            stable: active.machine.from,
            canary_url,
            canary_service,
            stable_service,
        };
        for s in app.sessions.iter_mut() {
            if s.external_running || now < s.external_due || !s.has_external() {
                continue;
            }
            s.external_running = true;
            s.external_due = now + EXTERNAL_EVERY_MS;
            let checks = s.template.checks.clone();
            let (key_name, key_purpose) = (s.name.clone(), s.purpose.clone());
            let ctx = ctx.clone();
            let client = http.clone();
            let tx = self.tx.clone();
            let app_name = name.to_string();
            tokio::spawn(async move {
                let mut results = Vec::new();
                for check in &checks {
                    results.push(crate::providers::run(check, &ctx, &client).await);
                }
                let _ = tx.send(Msg::External {
                    app: app_name,
                    session: (key_name, key_purpose),
                    results,
                });
            });
        }
    }

    pub(crate) fn on_external_results(
        &mut self,
        app: &str,
        session: (String, Purpose),
        results: Vec<Option<CheckResult>>,
    ) {
        let Some(a) = self.apps.get_mut(app) else {
            return;
        };
        if let Some(s) = a
            .sessions
            .iter_mut()
            .find(|s| s.name == session.0 && s.purpose == session.1)
        {
            s.external_running = false;
            for (slot, r) in s.external.iter_mut().zip(results) {
                if r.is_some() {
                    *slot = r;
                }
            }
        }
    }

    /// `slipway gate`: judge the canary against the stable release for `for_ms`; answers early on fail.
    pub(crate) fn start_gate(
        &mut self,
        app: &str,
        template: AnalysisTemplate,
        for_ms: u64,
        reply: tokio::sync::oneshot::Sender<Judgement>,
    ) -> Result<(), (tokio::sync::oneshot::Sender<Judgement>, String)> {
        let now = now_ms();
        let Some(a) = self.apps.get_mut(app) else {
            return Err((reply, format!("no app named {app}")));
        };
        let Some(active) = a.rollout.as_ref() else {
            return Err((
                reply,
                format!("{app} has no rollout in progress: there is no canary to gate"),
            ));
        };
        let (from, to) = (active.machine.from, active.machine.to);
        let metrics_of = |v: Version| a.metrics.get(&v).map(|m| m.snapshot());
        let canary = metrics_of(to).unwrap_or_default();
        let stable = from.and_then(metrics_of);
        let mut s = Session::new("gate", template, Purpose::Gate, now, canary, stable);
        s.ends_at = Some(now + for_ms);
        s.reply = Some(reply);
        a.sessions.push(s);
        Ok(())
    }

    /// A ready canary instance's address, for smoke tests.
    fn canary_url(&self, name: &str) -> Option<String> {
        let app = self.apps.get(name)?;
        let to = app.rollout.as_ref()?.machine.to;
        app.instances
            .iter()
            .find(|m| m.release == to && m.serving())
            .and_then(|m| m.backend.as_ref())
            .map(|b| format!("http://{}", b.addr))
    }
}

/// The sessions a rollout wants now: its current `analysis` step's, and its background analysis.
pub(crate) fn sessions_wanted(rollout: &Rollout) -> Vec<(Purpose, String)> {
    let mut wanted = Vec::new();
    if let Strategy::Canary(spec) = &rollout.strategy {
        let step = rollout.canary.step;
        if let Some(CanaryStep::Analysis { template, .. }) = spec.steps.get(step) {
            wanted.push((Purpose::Step(step), template.clone()));
        }
        if let Some(bg) = &spec.background_analysis {
            wanted.push((Purpose::Background, bg.clone()));
        }
    }
    wanted
}

/// Drops the sessions the rollout no longer wants (a gate stays until it answers).
fn keep_wanted(sessions: &mut Vec<Session>, wanted: &[(Purpose, String)]) {
    sessions.retain(|s| {
        s.purpose == Purpose::Gate || wanted.iter().any(|(p, n)| *p == s.purpose && *n == s.name)
    });
}

/// The proxy's counters of these releases now; a canary route's requests count for the rollout's canary.
fn snapshot(
    app: &AppState,
    versions: impl IntoIterator<Item = Version>,
) -> BTreeMap<Version, Window> {
    let mut windows: BTreeMap<Version, Window> = versions
        .into_iter()
        .filter_map(|v| app.metrics.get(&v).map(|m| (v, m.snapshot())))
        .collect();
    if let Some(r) = &app.rollout {
        let rules: Vec<Window> = r.rule_metrics.iter().map(|m| m.snapshot()).collect();
        add_route_traffic(&mut windows, r.machine.to, &rules);
    }
    windows
}

/// Requests a canary route sent to the canary are the canary's traffic too.
fn add_route_traffic(windows: &mut BTreeMap<Version, Window>, canary: Version, rules: &[Window]) {
    let total = windows.entry(canary).or_default();
    for w in rules {
        total.requests += w.requests;
        total.errors += w.errors;
        total.latency.merge(&w.latency);
    }
}

pub fn purpose_name(p: &Purpose) -> String {
    match p {
        Purpose::Step(i) => format!("step {}", i + 1),
        Purpose::Background => "background".into(),
        Purpose::Gate => "gate".into(),
        Purpose::Watch => "watch".into(),
        Purpose::Slo => "slo gate".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::test_support::web_release;

    fn rollout(deploy: &str, step: usize) -> Rollout {
        let r = web_release("a", 2, 2, deploy);
        let mut m = Rollout::new("a", Some((1, 2)), 2, 2, r.spec.deploy.strategy, 0, 60_000);
        m.canary.step = step;
        m
    }

    #[test]
    fn an_analysis_step_and_the_background_analysis_each_get_a_session() {
        let deploy = "strategy = \"canary\"\nbackground_analysis = \"bg\"\n\
                      steps = [{ weight = 10 }, { analysis = \"golden\", for = \"1m\" }]\n\
                      [analysis.golden]\nerror_rate = { max = \"1%\" }\n\
                      [analysis.bg]\nerror_rate = { max = \"5%\" }";
        assert_eq!(
            sessions_wanted(&rollout(deploy, 0)),
            [(Purpose::Background, "bg".to_string())]
        );
        assert_eq!(
            sessions_wanted(&rollout(deploy, 1)),
            [
                (Purpose::Step(1), "golden".to_string()),
                (Purpose::Background, "bg".to_string())
            ]
        );
        assert!(sessions_wanted(&rollout("strategy = \"rolling\"", 0)).is_empty());
    }

    #[test]
    fn route_traffic_counts_for_the_canary() {
        let window = |requests, errors| Window {
            requests,
            errors,
            ..Window::default()
        };
        let mut windows = BTreeMap::from([(1, window(100, 1)), (2, window(10, 0))]);
        add_route_traffic(&mut windows, 2, &[window(5, 1), window(3, 0)]);
        assert_eq!((windows[&2].requests, windows[&2].errors), (18, 1));
        assert_eq!(
            windows[&1].requests, 100,
            "the stable release's stays its own"
        );
    }
}
