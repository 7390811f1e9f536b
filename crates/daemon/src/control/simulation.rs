//! The controller's decisions driven through thousands of simulated rollouts, the way
//! `crates/core/tests/simulation.rs` drives the core alone — but here with instances: the decisions
//! (`desired`, `instance_plan`, `instance_events`, `rollout_end`, `wake`) run as the driver runs them,
//! against a simulated world with faults: instances that crash, crash-loop or never get ready, probes
//! that flap, an engine that refuses to start anything for a while, drains that take time, an operator
//! who aborts, and the daemon restarted mid-step (rebuilt from the persisted rollout, its processes
//! gone). Deterministic: a seeded xorshift, simulated milliseconds, no IO.
//!
//! Time only moves to the next world event, operator action or the controller's own `next_wake` (no
//! analysis rounds here): a timer the wake logic forgot — a deadline for a release that never gets
//! ready, the end of a timed canary pause — stalls the rollout, and the scenario fails.

use crate::control::app_state::{ActiveRollout, AppState};
use crate::control::desired::{Releases, plan_app};
use crate::control::instance_events::on_instance_event;
use crate::control::instance_plan::{plan, wanted};
use crate::control::managed::Managed;
use crate::control::rollout_end::end_rollout;
use crate::control::runtimes::RuntimeKind;
use crate::control::test_support;
use crate::control::wake::next_wake;
use rand::{Rng as _, SeedableRng};
use slipway_core::release::{Release, Version};
use slipway_core::rollout::{Outcome, Rollout, Signal};
use slipway_runtime::{InstanceEvent, InstanceState};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

/// Seeded, so every run of the simulation is the same.
type Rng = rand::rngs::StdRng;

fn below(rng: &mut Rng, n: u64) -> u64 {
    rng.random_range(0..n)
}

fn chance(rng: &mut Rng, percent: u64) -> bool {
    below(rng, 100) < percent
}

const APP: &str = "sim";
/// Simulated time a scenario may take before it counts as stuck (deadlines are 60 s).
const LIMIT_MS: u64 = 30 * 60_000;

fn release(version: Version, web: u32, worker: bool, strategy: &str) -> Release {
    let worker = if worker {
        "[processes.worker]\ncmd = \"w\"\nreplicas = 1\n"
    } else {
        ""
    };
    let body = format!(
        "[processes.web]\ncmd = \"s\"\nreplicas = {web}\n{worker}\
         [deploy]\nprogress_deadline = \"60s\"\n{strategy}"
    );
    test_support::release(APP, version, &body)
}

fn strategy(rng: &mut Rng) -> &'static str {
    const STRATEGIES: [&str; 7] = [
        "strategy = \"rolling\"",
        "strategy = \"rolling\"\nmax_surge = 0\nmax_unavailable = 1",
        "strategy = \"recreate\"",
        "strategy = \"blue-green\"\nscale_down_delay = \"5s\"",
        "strategy = \"blue-green\"\nauto_promote = false",
        "strategy = \"canary\"\nsteps = [{ weight = 25 }, { pause = \"10s\" }, { weight = 50 }]",
        "strategy = \"canary\"\nsteps = [{ weight = 50 }, { pause = {} }]",
    ];
    STRATEGIES[below(rng, STRATEGIES.len() as u64) as usize]
}

/// How one simulated instance behaves once started.
#[derive(Clone, Copy, Debug)]
enum Fate {
    /// Ready after this long, then stays up (maybe with one flapping probe).
    Ready { after: u64, flap_at: Option<u64> },
    /// Ready, then crashes once and comes back.
    CrashOnce { after: u64 },
    /// Never ready: crash-loops after this long.
    CrashLoop { after: u64 },
    /// Starts, never passes its readiness check.
    NeverReady,
}

/// Something the world will tell the controller at a time.
struct Pending {
    at: u64,
    id: String,
    state: InstanceState,
}

struct World {
    rng: Rng,
    now: u64,
    seq: u64,
    pending: Vec<Pending>,
    /// Instances draining after they left the table: removed when their drain is over.
    draining: Vec<(u64, String)>,
    /// The engine refuses every start until then (Docker gone, a full disk).
    engine_down_until: u64,
    /// How the new release's instances fare; the stable release's are always healthy.
    bad_new_release: Option<Fate>,
}

impl World {
    fn fate(&mut self, new: bool) -> Fate {
        if new && let Some(f) = self.bad_new_release {
            return f;
        }
        let after = 100 + below(&mut self.rng, 3_000);
        match below(&mut self.rng, 20) {
            0 if new => Fate::CrashOnce { after },
            1 => Fate::Ready {
                after,
                flap_at: Some(after + 500 + below(&mut self.rng, 2_000)),
            },
            _ => Fate::Ready {
                after,
                flap_at: None,
            },
        }
    }

    fn start(&mut self, version: Version, process: &str, new: bool) -> Result<Managed, String> {
        if self.now < self.engine_down_until {
            return Err("the engine is not answering".into());
        }
        self.seq += 1;
        let id = format!("{APP}-v{version}-{process}-{}", self.seq);
        let at = self.now;
        let tell = |after: u64, state: InstanceState| Pending {
            at: at + after,
            id: id.clone(),
            state,
        };
        let mut events = Vec::new();
        match self.fate(new) {
            Fate::Ready { after, flap_at } => {
                events.push(tell(after, InstanceState::Ready));
                if let Some(flap) = flap_at {
                    events.push(tell(flap, InstanceState::Unready));
                    events.push(tell(flap + 700, InstanceState::Ready));
                }
            }
            Fate::CrashOnce { after } => {
                events.push(tell(after, InstanceState::Ready));
                events.push(tell(after + 800, backoff()));
                events.push(tell(after + 2_000, InstanceState::Ready));
            }
            Fate::CrashLoop { after } => {
                events.push(tell(after / 2, backoff()));
                events.push(tell(after, crash_loop()));
            }
            Fate::NeverReady => {}
        }
        self.pending.extend(events);
        let addr = SocketAddr::from(([127, 0, 0, 1], 10_000 + (self.seq % 50_000) as u16));
        Ok(Managed {
            id: id.clone(),
            release: version,
            process: process.to_string(),
            backend: (process == "web").then(|| slipway_proxy::Backend::new(id, addr)),
            runtime: RuntimeKind::Process,
            state: InstanceState::Starting,
            retiring: false,
            seq: self.seq,
        })
    }

    fn next_event_at(&self) -> Option<u64> {
        let events = self.pending.iter().map(|p| p.at);
        let drains = self.draining.iter().map(|d| d.0);
        events.chain(drains).min()
    }
}

fn backoff() -> InstanceState {
    InstanceState::Backoff {
        restarts: 1,
        delay: Duration::from_millis(500),
        last_exit: "exit 1".into(),
    }
}

fn crash_loop() -> InstanceState {
    InstanceState::CrashLoop {
        restarts: 5,
        last_exit: "exit 1".into(),
    }
}

/// The controller's side: its state and what it has persisted.
struct Controller {
    app: AppState,
    releases: Releases,
    /// The rollout as last persisted (what a restarted daemon reads back).
    persisted: Option<serde_json::Value>,
    next_analysis_at: u64,
    last_run: u64,
    /// Every end recorded, in order.
    ended: Vec<(Version, Outcome)>,
}

impl Controller {
    /// One wake-up of the driver: decide, check, act.
    fn reconcile(&mut self, world: &mut World) {
        let now = world.now;
        self.last_run = now;
        let decided = plan_app(APP, &mut self.app, &self.releases, now);
        if let Some(state) = decided.persist {
            self.persisted = Some(state);
        }
        check_traffic_goes_to_ready_instances(&self.app, &decided.desired.weight);
        if decided.finished
            && let Some(ended) = end_rollout(&mut self.app, now)
        {
            self.ended.push((ended.to, ended.outcome));
            self.persisted = None;
        }
        let wanted = wanted(APP, &decided.desired, &self.releases);
        let instance_plan = plan(&self.app.instances, &wanted);
        for m in self.app.instances.iter_mut() {
            if instance_plan.retire.contains(&m.id) {
                assert!(!m.retiring, "{} retired twice", m.id);
                m.retiring = true;
                let drain = now + 1 + below(&mut world.rng, 1_500);
                world.draining.push((drain, m.id.clone()));
            }
        }
        let to = self.app.rollout.as_ref().map(|r| r.machine.to);
        for (version, process) in instance_plan.start {
            match world.start(version, &process, Some(version) == to) {
                Ok(m) => self.app.instances.push(m),
                Err(reason) => {
                    if let Some(r) = self.app.rollout.as_mut()
                        && r.machine.to == version
                    {
                        r.machine.signal(Signal::Fail { reason });
                    }
                    break;
                }
            }
        }
        // After acting, every (release, process) has the count it wants, or a start was refused.
        if world.now >= world.engine_down_until {
            for (v, p, n) in &wanted {
                let live = self
                    .app
                    .instances
                    .iter()
                    .filter(|m| !m.retiring && m.release == *v && m.process == *p)
                    .count() as u32;
                assert_eq!(live, *n, "v{v} {p}: {live} running, {n} wanted");
            }
        }
    }

    /// A daemon restarted after `kill -9`: processes were reaped, the rollout is read back.
    fn restart(&mut self, world: &mut World) {
        let rollout = self.persisted.as_ref().map(|state| {
            let machine: Rollout = serde_json::from_value(state.clone()).unwrap();
            ActiveRollout::new(1, machine, false)
        });
        self.app = AppState {
            stable: self.app.stable,
            rollout,
            ..AppState::default()
        };
        world.pending.clear();
        world.draining.clear();
        self.last_run = 0;
    }
}

/// Traffic only goes to ready instances: a release given weight has a serving instance, unless
/// nothing of the app serves at all (then the proxy answers 503 whatever the weights).
fn check_traffic_goes_to_ready_instances(app: &AppState, weight: &BTreeMap<Version, u32>) {
    let serving = |v: Version| app.instances.iter().any(|m| m.release == v && m.serving());
    let any_serving = weight.keys().any(|v| serving(*v));
    for (&v, &w) in weight {
        let first_release = app.stable.is_none();
        if w > 0 && any_serving && !first_release {
            // Once done, the new release is the stable one: its crashes are the world's, not a plan's.
            let rollout = app.rollout.as_ref().filter(|r| !r.machine.is_done());
            let is_new = rollout.is_some_and(|r| r.machine.to == v);
            assert!(
                !is_new || serving(v),
                "v{v} (the new release) has weight {w} but no serving instance: {:?}",
                rollout.map(|r| (&r.machine.phase, &r.machine.strategy, r.seen))
            );
        }
    }
}

/// One scenario: v1 stable and serving, then a rollout to v2 with faults; returns the outcome.
fn scenario(seed: u64) -> (Outcome, String) {
    let mut rng = Rng::seed_from_u64(seed);
    let web = 1 + below(&mut rng, 4) as u32;
    let worker = chance(&mut rng, 30);
    let strategy = strategy(&mut rng);
    let bad = match below(&mut rng, 10) {
        0 => Some(Fate::CrashLoop {
            after: 500 + below(&mut rng, 2_000),
        }),
        1 => Some(Fate::NeverReady),
        _ => None,
    };
    let mut world = World {
        rng,
        now: 0,
        seq: 0,
        pending: Vec::new(),
        draining: Vec::new(),
        engine_down_until: 0,
        bad_new_release: None,
    };
    let v1 = release(1, web, worker, "strategy = \"rolling\"");
    let v2 = release(2, 1 + below(&mut world.rng, 4) as u32, worker, strategy);
    let mut c = Controller {
        app: AppState {
            stable: Some(1),
            ..AppState::default()
        },
        releases: Releases::new(),
        persisted: None,
        // No analysis rounds here (they would wake the driver every second and hide a forgotten
        // timer): only the decisions' own timers, the world and the operator move time.
        next_analysis_at: u64::MAX,
        last_run: 0,
        ended: Vec::new(),
    };
    c.releases.insert((APP.into(), 1), v1);
    c.releases.insert((APP.into(), 2), v2.clone());
    // v1 comes up and serves.
    let mut nobody = Operator::default();
    run_until(&mut c, &mut world, &mut nobody, |c| {
        c.app.instances.iter().filter(|m| m.serving()).count() as u32 == web
    });
    // The rollout to v2 starts, with its faults.
    world.bad_new_release = bad;
    if chance(&mut world.rng, 15) {
        world.engine_down_until = world.now + below(&mut world.rng, 5_000);
    }
    let machine = Rollout::new(
        APP,
        Some((1, web)),
        2,
        v2.spec.web_replicas(),
        v2.spec.deploy.strategy.clone(),
        world.now,
        60_000,
    );
    c.persisted = Some(serde_json::to_value(&machine).unwrap());
    c.app.rollout = Some(ActiveRollout::new(1, machine, false));
    let start = world.now;
    let mut operator = Operator {
        restart_at: chance(&mut world.rng, 20).then(|| start + below(&mut world.rng, 8_000)),
        abort_at: chance(&mut world.rng, 10).then(|| start + below(&mut world.rng, 8_000)),
        next_promote: 0,
    };
    run_until(&mut c, &mut world, &mut operator, |c| {
        c.app.rollout.is_none()
    });
    // Then it settles: a warm release retires after its delay, the loser's instances drain and go.
    run_until(&mut c, &mut world, &mut operator, |c| {
        c.app.warm.is_none()
            && c.app
                .instances
                .iter()
                .all(|m| Some(m.release) == c.app.stable)
    });
    let (to, outcome) = *c.ended.last().expect("the rollout ended");
    assert_eq!(to, 2);
    check_the_end(&c, outcome);
    (outcome, strategy.to_string())
}

/// What people do during a rollout: an operator who promotes whatever waits for it every few
/// seconds and may abort, and a daemon that may be killed and restarted.
#[derive(Default)]
struct Operator {
    restart_at: Option<u64>,
    abort_at: Option<u64>,
    next_promote: u64,
}

impl Operator {
    fn act(&mut self, c: &mut Controller, world: &mut World) {
        let now = world.now;
        if self.restart_at.is_some_and(|t| t <= now) {
            self.restart_at = None;
            c.restart(world);
        }
        if let Some(r) = c.app.rollout.as_mut() {
            if self.abort_at.is_some_and(|t| t <= now) {
                self.abort_at = None;
                let reason = "an operator said abort".to_string();
                r.machine.signal(Signal::Abort { reason });
            }
            if self.next_promote > 0 && now >= self.next_promote {
                self.next_promote = 0;
                r.machine.signal(Signal::Promote);
            }
        }
    }

    /// Something waits for a promote (blue-green's switch, an open canary pause): it comes a few
    /// seconds later. Only then — so an operator never wakes the driver by accident.
    fn notice(&mut self, c: &Controller, now: u64) {
        let Some(r) = c.app.rollout.as_ref() else {
            return;
        };
        let waiting = !r.machine.is_done() && r.machine.next_timer().is_none();
        if waiting && self.next_promote == 0 {
            self.next_promote = now + 3_000;
        }
    }

    fn next_at(&self) -> Option<u64> {
        let promote = (self.next_promote > 0).then_some(self.next_promote);
        [self.restart_at, self.abort_at, promote]
            .into_iter()
            .flatten()
            .min()
    }
}

/// Runs the driver until `done`, moving time to the next world event, operator action or the
/// controller's own next wake — nothing else wakes it, as in the real driver.
fn run_until(
    c: &mut Controller,
    world: &mut World,
    operator: &mut Operator,
    done: impl Fn(&Controller) -> bool,
) {
    loop {
        operator.act(c, world);
        c.reconcile(world);
        if done(c) {
            return;
        }
        operator.notice(c, world.now);
        let wake = next_wake([&c.app], c.next_analysis_at, c.last_run);
        let next = [
            wake,
            world.next_event_at(),
            Some(world.engine_down_until),
            operator.next_at(),
        ]
        .into_iter()
        .flatten()
        .filter(|&t| t > world.now && t != u64::MAX)
        .min();
        let Some(next) = next else {
            panic!(
                "nothing will ever happen again, and it has not ended: stable {:?}, warm {:?}, {:?}, instances {:?}",
                c.app.stable,
                c.app.warm.as_ref().map(|w| (w.version, w.retire_at)),
                c.app.rollout.as_ref().map(|r| (&r.machine.phase, r.seen)),
                c.app
                    .instances
                    .iter()
                    .map(|m| (&m.id, &m.state, m.retiring))
                    .collect::<Vec<_>>()
            );
        };
        assert!(
            next < LIMIT_MS,
            "stuck: no end after {LIMIT_MS} ms (now {}, next {next}, wake {wake:?}, world {:?}, operator {:?}): {:?}, instances {:?}",
            world.now,
            world.next_event_at(),
            operator.next_at(),
            c.app
                .rollout
                .as_ref()
                .map(|r| (&r.machine.phase, &r.machine.strategy, r.seen)),
            c.app
                .instances
                .iter()
                .map(|m| (&m.id, &m.state, m.retiring))
                .collect::<Vec<_>>()
        );
        world.now = next;
        deliver(c, world);
    }
}

/// Hands the controller every world event due now: instance states, drains that finished.
fn deliver(c: &mut Controller, world: &mut World) {
    let now = world.now;
    let (due, later): (Vec<_>, Vec<_>) = world.pending.drain(..).partition(|p| p.at <= now);
    world.pending = later;
    for p in due {
        let Some(m) = c.app.instances.iter().find(|m| m.id == p.id) else {
            continue;
        };
        let event = InstanceEvent {
            id: p.id.clone(),
            app: APP.into(),
            release: m.release,
            state: p.state,
            message: "sim".into(),
        };
        on_instance_event(&mut c.app, &event, None);
    }
    let (gone, draining): (Vec<_>, Vec<_>) = world.draining.drain(..).partition(|d| d.0 <= now);
    world.draining = draining;
    for (_, id) in gone {
        c.app.instances.retain(|m| m.id != id);
    }
}

/// After a failed or aborted rollout the stable release is whole and alone; after a successful one
/// the new release is stable, whole and alone.
fn check_the_end(c: &Controller, outcome: Outcome) {
    let stable = match outcome {
        Outcome::Succeeded => 2,
        Outcome::Failed | Outcome::Aborted => 1,
    };
    assert_eq!(c.app.stable, Some(stable), "{outcome:?}");
    let web = c.releases[&(APP.to_string(), stable)].spec.web_replicas() as usize;
    let running = c
        .app
        .instances
        .iter()
        .filter(|m| m.release == stable && m.is_web() && !m.retiring)
        .count();
    assert_eq!(running, web, "v{stable} runs at full scale");
    assert!(
        c.app.instances.iter().all(|m| m.release == stable),
        "nothing of the other release keeps running"
    );
}

#[test]
fn a_thousand_rollouts_with_faults_all_end_and_keep_the_invariants() {
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for seed in 1..=1_000 {
        let (outcome, _) = scenario(seed);
        *outcomes.entry(outcome.as_str().to_string()).or_default() += 1;
    }
    // The faults are real: some rollouts fail, most succeed.
    assert!(
        outcomes.get("succeeded").copied().unwrap_or(0) > 500,
        "{outcomes:?}"
    );
    assert!(
        outcomes.get("failed").copied().unwrap_or(0) > 50,
        "{outcomes:?}"
    );
    assert!(
        outcomes.get("aborted").copied().unwrap_or(0) > 10,
        "{outcomes:?}"
    );
}
