//! The controller: one task that owns the live state of every app and makes the world match it.
//!
//! It is level-triggered. Each time something happens (a command, an instance event, a drain finished,
//! a timer the decisions asked for in `wake`) it recomputes, per app, how many instances of each release
//! should run and how traffic is split — from the persisted rollout and what it observes — then starts,
//! retires and re-routes instances to match. A daemon restarted after a crash reloads the rollouts from
//! the store and carries on. The decisions are pure functions in their own files (`desired`,
//! `instance_plan`, `instance_events`, `rollout_start`, `rollout_end`, `wake`); this task and its
//! `impl Controller` blocks (`inbox`, `converge`, `analysis_round`, `adopt`) only perform their effects.
//! The controller's fields are private to the `control` layer.
//!
//! The one ordering rule of the data plane lives here: an instance leaves the route table (the new table
//! is published and no request can still pick it), drains, and only then is it stopped.

use crate::clock::now_ms;
use crate::control::app_state::{ActiveRollout, AppState};
use crate::control::proxy_table;
use crate::control::runtimes::Runtimes;
use crate::error::Error;
use crate::paths::Paths;
use slipway_api::AppStatus;
use slipway_core::release::{Release, Version};
use slipway_core::rollout::{Rollout, Signal};
use slipway_proxy::RouteHandle;
use slipway_runtime::InstanceEvent;
use slipway_store::{ArtifactStore, RolloutOutcome, Store};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// How long to sleep when nothing is timed (no app yet): any event wakes the controller sooner.
const IDLE: Duration = Duration::from_secs(3600);

/// What the API asks of the controller.
pub enum Command {
    /// Roll out `release` (already recorded, its artifact frozen, the app's deploy lock held).
    Start {
        release: Box<Release>,
        /// A rollback: switch as soon as the release is fully ready, whatever its strategy says.
        rollback: bool,
        /// `deploy --canary N`: this strategy for this rollout instead of the release's.
        strategy: Option<slipway_core::spec::Strategy>,
        reply: oneshot::Sender<Result<i64, Error>>,
    },
    /// `slipway scale`: make `release` (the stable release with another formation) stable at once,
    /// keeping the running instances; converge then starts or retires the difference.
    Adopt {
        release: Box<Release>,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    Signal {
        app: String,
        signal: Signal,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    Status {
        app: Option<String>,
        reply: oneshot::Sender<Vec<AppStatus>>,
    },
    /// `slipway gate`: judge the canary for this long (answers early on fail).
    Gate {
        app: String,
        template: slipway_core::spec::AnalysisTemplate,
        for_ms: u64,
        reply: oneshot::Sender<Result<slipway_core::analysis::Judgement, Error>>,
    },
    /// An app's per-release time series for the dashboard (`None`: no such app).
    Series {
        app: String,
        reply: oneshot::Sender<Option<Vec<slipway_api::ReleaseSeries>>>,
    },
    /// An app's SLO: its budget, burn rates and budget chart (`None`: no such app, or no `[slo]`).
    Slo {
        app: String,
        reply: oneshot::Sender<Option<crate::control::slo_round::SloSnapshot>>,
    },
    /// The Prometheus exposition of every app's metrics.
    Metrics { reply: oneshot::Sender<String> },
    /// An app's traffic counters, for flag ramps.
    FlagTraffic {
        app: String,
        reply: oneshot::Sender<crate::control::traffic::TrafficReport>,
    },
    /// `slipway maintenance on|off` (already recorded in the store): hold the app's requests, or
    /// release them.
    Maintenance {
        app: String,
        record: Option<slipway_store::MaintenanceRecord>,
        reply: oneshot::Sender<()>,
    },
    /// Drain and stop every instance, then answer.
    Shutdown { reply: oneshot::Sender<()> },
    /// An upgrade: stop deciding, let the drains under way finish, then let go of every instance
    /// without stopping it (the new daemon adopts them), answer and end.
    HandOver { reply: oneshot::Sender<()> },
}

pub(crate) enum Msg {
    Command(Command),
    /// Answers of a session's external checks.
    External {
        app: String,
        session: (String, crate::control::analysis_session::Purpose),
        results: Vec<Option<crate::providers::CheckResult>>,
    },
    Retired {
        app: String,
        id: String,
        /// Events to record: (kind, message).
        notes: Vec<(&'static str, String)>,
    },
    /// The app's HTTPRoute or Service could not be written (`gateway_traffic.rs`).
    #[cfg(feature = "kubernetes")]
    TrafficFailed {
        app: String,
        reason: String,
    },
}

#[derive(Clone)]
pub struct ControllerHandle {
    tx: mpsc::UnboundedSender<Msg>,
}

impl ControllerHandle {
    pub fn send(&self, command: Command) -> Result<(), Error> {
        self.tx.send(Msg::Command(command)).map_err(|_| {
            Error::unavailable("the controller has stopped (the daemon is shutting down)")
        })
    }

    /// Sends the command `ask` makes around a reply channel, and waits for the answer.
    pub async fn ask<T>(
        &self,
        ask: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, Error> {
        let (reply, answer) = oneshot::channel();
        self.send(ask(reply))?;
        answer
            .await
            .map_err(|_| Error::unavailable("the controller stopped"))
    }
}

pub struct Controller {
    pub(super) store: Arc<Store>,
    pub(super) artifacts: Arc<ArtifactStore>,
    /// Held while freezing, checking out or pruning artifacts: prune must not race the others.
    pub(super) artifact_gate: Arc<std::sync::Mutex<()>>,
    pub(super) runtimes: Runtimes,
    pub(super) routes: RouteHandle,
    pub(super) paths: Paths,
    pub(super) apps: BTreeMap<String, AppState>,
    pub(super) releases: HashMap<(String, Version), Release>,
    pub(super) tx: mpsc::UnboundedSender<Msg>,
    pub(super) inbox: Option<mpsc::UnboundedReceiver<Msg>>,
    pub(super) next_seq: u64,
    /// Every app's route as last published to the proxy.
    pub(super) published: proxy_table::Routes,
    pub(super) shutdown: Option<oneshot::Sender<()>>,
    pub(super) hand_over: Option<oneshot::Sender<()>>,
    pub(super) next_analysis_at: u64,
    /// When the analysis sessions were last judged (`wake::next_judge`).
    pub(super) last_judged: u64,
    /// A judgement changed a verdict since the last reconcile: the rollout acts on it now.
    pub(super) verdict_changed: bool,
    /// The last reconcile changed nothing and no app has anything timed under way (`reconcile`):
    /// until something happens, the once-a-second round only samples and autoscales.
    pub(super) settled: bool,
    /// Rung by the proxy when it holds a request for an app scaled to zero: wake it now.
    pub(super) doorbell: Arc<tokio::sync::Notify>,
    /// Where a regression found by the watch after promotion asks for its rollback (`watch_round`).
    pub(super) watch_rollbacks:
        Option<mpsc::UnboundedSender<crate::control::watch_round::WatchRollback>>,
    /// For external checks and webhooks; made on first use (loading TLS roots costs memory).
    http: std::sync::OnceLock<reqwest::Client>,
}

impl Controller {
    /// Loads every app's stable release and any rollout a previous daemon left unfinished.
    pub fn new(
        store: Arc<Store>,
        artifacts: Arc<ArtifactStore>,
        artifact_gate: Arc<std::sync::Mutex<()>>,
        runtimes: Runtimes,
        routes: RouteHandle,
        paths: Paths,
    ) -> Result<(Controller, ControllerHandle), String> {
        let (tx, inbox) = mpsc::unbounded_channel();
        let mut c = Controller {
            store,
            artifacts,
            artifact_gate,
            runtimes,
            routes,
            paths,
            apps: BTreeMap::new(),
            releases: HashMap::new(),
            tx: tx.clone(),
            inbox: Some(inbox),
            next_seq: now_ms() << 8,
            published: proxy_table::Routes::default(),
            shutdown: None,
            hand_over: None,
            next_analysis_at: 0,
            last_judged: 0,
            verdict_changed: false,
            settled: false,
            doorbell: Arc::new(tokio::sync::Notify::new()),
            watch_rollbacks: None,
            http: std::sync::OnceLock::new(),
        };
        #[cfg(feature = "kubernetes")]
        if let Some(pods) = &c.runtimes.pods {
            let tx = tx.clone();
            c.runtimes.traffic = Some(pods.route_writer(Arc::new(move |app: &str, reason| {
                let _ = tx.send(Msg::TrafficFailed {
                    app: app.to_owned(),
                    reason,
                });
            })));
        }
        c.load()
            .map_err(|e| format!("cannot load the state store: {e}"))?;
        Ok((c, ControllerHandle { tx }))
    }

    fn load(&mut self) -> Result<(), slipway_store::StoreError> {
        for app in self.store.apps()? {
            let stable = self.store.stable(&app)?;
            self.apps.entry(app.clone()).or_default().stable = stable;
        }
        for record in self.store.all_maintenance()? {
            if let Some(app) = self.apps.get_mut(&record.app) {
                app.maintenance = Some(crate::control::app_state::InMaintenance::from(record));
            }
        }
        for record in self.store.active_rollouts()? {
            let machine: Rollout = match serde_json::from_value(record.state.clone()) {
                Ok(m) => m,
                Err(e) => {
                    let reason = format!("unreadable rollout state after restart: {e}");
                    self.store.finish_rollout(
                        record.id,
                        RolloutOutcome::Failed,
                        Some(&reason),
                        now_ms() as i64,
                    )?;
                    continue;
                }
            };
            let app = self.apps.entry(record.app.clone()).or_default();
            let rollback = record.state.get("rollback").is_some();
            app.rollout = Some(ActiveRollout::new(record.id, machine, rollback));
            self.store.add_event(
                &record.app,
                Some(record.to),
                "rollout_resumed",
                &format!("daemon restarted: resuming the rollout to v{}", record.to),
                now_ms() as i64,
            )?;
        }
        self.resume_watches()
    }

    /// Runs until a shutdown command has drained everything.
    pub async fn run(mut self, mut events: mpsc::UnboundedReceiver<InstanceEvent>) {
        let Some(mut inbox) = self.inbox.take() else {
            return;
        };
        let mut last_run = 0;
        let doorbell = Arc::clone(&self.doorbell);
        loop {
            // Sleep until the decisions' next timer (`wake`), or until something happens.
            let decide_at = crate::control::wake::next_wake(
                self.apps.values(),
                self.next_analysis_at,
                last_run,
            );
            let judge_at = crate::control::wake::next_judge(self.apps.values(), self.last_judged);
            let wake = decide_at.into_iter().chain(judge_at).min();
            let sleep = wake.map(|at| Duration::from_millis(at.saturating_sub(now_ms())));
            // Woken only to judge the running analyses: nothing else to decide unless a verdict changed.
            let mut only_judge = false;
            // Woken by the clock alone (no command, instance event or doorbell).
            let mut by_clock = false;
            tokio::select! {
                Some(msg) = inbox.recv() => self.on_message(msg),
                Some(event) = events.recv() => self.on_instance_event(event),
                _ = tokio::time::sleep(sleep.unwrap_or(IDLE)) => {
                    only_judge = judge_at.is_some() && decide_at.is_none_or(|at| now_ms() < at);
                    by_clock = true;
                }
                () = doorbell.notified() => {}
            }
            while let Ok(msg) = inbox.try_recv() {
                self.on_message(msg);
                only_judge = false;
                by_clock = false;
            }
            while let Ok(event) = events.try_recv() {
                self.on_instance_event(event);
                only_judge = false;
                by_clock = false;
            }
            if only_judge && self.hand_over.is_none() && self.shutdown.is_none() {
                self.judge_sessions();
                if std::mem::take(&mut self.verdict_changed) {
                    last_run = now_ms();
                    self.reconcile().await;
                }
                continue;
            }
            // Only the once-a-second round, with every app settled: deciding again would decide the
            // same, so the round costs O(changes), not O(apps), when nothing happens.
            let quiet = by_clock
                && self.settled
                && self.shutdown.is_none()
                && !crate::control::wake::app_timer_due(self.apps.values(), last_run, now_ms());
            last_run = now_ms();
            if self.hand_over.is_some() {
                // No new decision: the new daemon makes them. What is draining finishes here, for
                // the requests this daemon's proxy still serves.
                let retiring = self
                    .apps
                    .values()
                    .flat_map(|a| &a.instances)
                    .any(|m| m.retiring);
                if !retiring && let Some(reply) = self.hand_over.take() {
                    self.write_all_slo();
                    self.runtimes.processes.detach_all().await;
                    self.runtimes.containers.detach_all().await;
                    let _ = reply.send(());
                    return;
                }
                continue;
            }
            if !quiet {
                self.reconcile().await;
            }
            let sampled = self.analyze();
            // Woken often by events, the analyses are still judged on time.
            let judge_due = crate::control::wake::next_judge(self.apps.values(), self.last_judged)
                .is_some_and(|at| now_ms() >= at);
            if judge_due {
                self.judge_sessions();
            }
            // A new count, a changed verdict, are made true at once, not at the next event.
            let scaled = self.shutdown.is_none() && self.autoscale(now_ms(), sampled);
            if std::mem::take(&mut self.verdict_changed) || scaled {
                self.reconcile().await;
            }
            if self.shutdown.is_some() && self.apps.values().all(|a| a.instances.is_empty()) {
                if let Some(reply) = self.shutdown.take() {
                    self.write_all_slo();
                    let _ = reply.send(());
                }
                return;
            }
        }
    }
}

impl Controller {
    pub(crate) fn http(&self) -> reqwest::Client {
        self.http.get_or_init(crate::http_client::new).clone()
    }
}
