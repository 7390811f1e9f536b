//! `[cron.<name>]` jobs: run on their schedule (UTC) in the stable release's artifact (on Kubernetes,
//! its image: `one_off.rs`) and env, with the
//! job's concurrency policy, their runs recorded (exit code, end of output) and the oldest dropped.
//!
//! The scheduler looks once a second at each app's stable release, so a deploy that changes a job's
//! schedule or command applies to the next run. Runs missed while the daemon was down are not made up.

use crate::clock::now_ms;
use crate::error::Error;
use crate::ops::one_off::{OneOff, OneOffs};
use crate::ops::stable_releases::StableReleases;
use slipway_api::{CronJobView, CronView};
use slipway_core::release::Release;
use slipway_core::schedule::Schedule;
use slipway_core::spec::{Concurrency, CronSpec};
use slipway_runtime::JobEnd;
use slipway_store::Store;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

/// How much of a run's output is kept with it in the state store.
const OUTPUT_KEPT: usize = 16 * 1024;

type JobKey = (String, String);

struct Running {
    run_id: i64,
    started_at: i64,
    stop: Option<oneshot::Sender<()>>,
}

pub struct Cron {
    store: Arc<Store>,
    one_offs: Arc<OneOffs>,
    logs_dir: PathBuf,
    running: Mutex<HashMap<JobKey, Vec<Running>>>,
    /// Next due time per job, for the schedule it was computed from.
    next: Mutex<HashMap<JobKey, (String, i64)>>,
    /// The stable releases with cron jobs.
    stables: Mutex<StableReleases>,
    stop_all: CancellationToken,
}

/// What `cron run` (or the schedule) led to.
pub enum Triggered {
    Started(i64),
    Skipped(String),
}

impl Cron {
    pub fn new(store: Arc<Store>, one_offs: Arc<OneOffs>, logs_dir: PathBuf) -> Arc<Cron> {
        if let Err(e) = store.transaction(|tx| tx.close_abandoned_cron_runs(now_ms() as i64)) {
            tracing::warn!("cannot close the cron runs of a previous daemon: {e}");
        }
        Arc::new(Cron {
            store,
            one_offs,
            logs_dir,
            running: Mutex::new(HashMap::new()),
            next: Mutex::new(HashMap::new()),
            stables: Mutex::new(StableReleases::new(|r| !r.spec.cron.is_empty())),
            stop_all: CancellationToken::new(),
        })
    }

    /// Fires due jobs once a second until `stop`; then stops the runs still going.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => self.fire_due().await,
            }
        }
        self.stop_all.cancel();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while self.running_count() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn running_count(&self) -> usize {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(Vec::len)
            .sum()
    }

    async fn fire_due(self: &Arc<Self>) {
        let now_s = (now_ms() / 1000) as i64;
        let read = self
            .stables
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .read(&self.store);
        let Some(releases) = read else {
            return;
        };
        for release in releases {
            let app = &release.app;
            for (job, spec) in &release.spec.cron {
                let Ok(schedule) = Schedule::parse(&spec.schedule) else {
                    continue;
                };
                let key = (app.clone(), job.clone());
                let due = {
                    let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
                    let entry = next.entry(key).or_insert_with(|| {
                        (
                            spec.schedule.clone(),
                            schedule.next_after(now_s).unwrap_or(i64::MAX),
                        )
                    });
                    if entry.0 != spec.schedule {
                        *entry = (
                            spec.schedule.clone(),
                            schedule.next_after(now_s).unwrap_or(i64::MAX),
                        );
                    }
                    if now_s >= entry.1 {
                        entry.1 = schedule.next_after(now_s).unwrap_or(i64::MAX);
                        true
                    } else {
                        false
                    }
                };
                if due {
                    let _ = self.start(&release, job, spec, "schedule".into());
                }
            }
        }
    }

    fn stable(&self, app: &str) -> Result<Option<Release>, Error> {
        let internal = |e: slipway_store::StoreError| Error::internal(e.to_string());
        match self.store.stable(app).map_err(internal)? {
            Some(v) => self.store.release(app, v).map_err(internal),
            None => Ok(None),
        }
    }

    /// `slipway cron run NAME`: a run now, by the job's concurrency policy.
    pub fn run_now(self: &Arc<Self>, app: &str, job: &str, who: &str) -> Result<Triggered, Error> {
        let release = self
            .stable(app)?
            .ok_or_else(|| Error::not_found(format!("{app} has no stable release yet")))?;
        let Some(spec) = release.spec.cron.get(job).cloned() else {
            return Err(Error::not_found(no_such_job(app, job, &release)));
        };
        self.start(&release, job, &spec, format!("manual by {who}"))
    }

    fn start(
        self: &Arc<Self>,
        release: &Release,
        job: &str,
        spec: &CronSpec,
        trigger: String,
    ) -> Result<Triggered, Error> {
        let app = release.app.clone();
        let key = (app.clone(), job.to_string());
        let now = now_ms() as i64;
        let internal = |e: slipway_store::StoreError| Error::internal(e.to_string());
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let current = running.entry(key.clone()).or_default();
        if !current.is_empty() {
            match spec.concurrency {
                Concurrency::Forbid => {
                    let why = format!(
                        "skipped: run #{} (started {}) is still going and concurrency = \"forbid\"",
                        current[0].run_id,
                        crate::clock::describe_ms(current[0].started_at)
                    );
                    self.store
                        .transaction(|tx| {
                            let id =
                                tx.start_cron_run(&app, job, release.version, &trigger, now)?;
                            tx.finish_cron_run(id, &why, None, "", now, spec.history)
                        })
                        .map_err(internal)?;
                    return Ok(Triggered::Skipped(why));
                }
                Concurrency::Replace => {
                    for r in current.iter_mut() {
                        if let Some(stop) = r.stop.take() {
                            let _ = stop.send(());
                        }
                    }
                }
                Concurrency::Allow => {}
            }
        }
        let run_id = self
            .store
            .transaction(|tx| tx.start_cron_run(&app, job, release.version, &trigger, now))
            .map_err(internal)?;
        let (stop_tx, stop_rx) = oneshot::channel();
        current.push(Running {
            run_id,
            started_at: now,
            stop: Some(stop_tx),
        });
        drop(running);
        let cron = self.clone();
        let release = release.clone();
        let job = job.to_string();
        let spec = spec.clone();
        tokio::spawn(async move {
            let (outcome, code, output) =
                cron.execute(&release, &job, &spec, run_id, stop_rx).await;
            let kept = tail(&output, OUTPUT_KEPT);
            if let Err(e) = cron.store.transaction(|tx| {
                tx.finish_cron_run(run_id, &outcome, code, kept, now_ms() as i64, spec.history)
            }) {
                tracing::error!("cannot record the end of cron run #{run_id}: {e}");
            }
            tracing::info!(app = %release.app, job = %job, run = run_id, "cron run {outcome}");
            let mut running = cron.running.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(list) = running.get_mut(&(release.app.clone(), job.clone())) {
                list.retain(|r| r.run_id != run_id);
            }
        });
        Ok(Triggered::Started(run_id))
    }

    async fn execute(
        &self,
        release: &Release,
        job: &str,
        spec: &CronSpec,
        run_id: i64,
        stop: oneshot::Receiver<()>,
    ) -> (String, Option<i32>, String) {
        let id = format!("{}-v{}-cron-{job}-{run_id}", release.app, release.version);
        let log_path = self
            .logs_dir
            .join(&release.app)
            .join(format!("v{}", release.version))
            .join(format!("{id}.log"));
        let one_off = OneOff {
            release: release.clone(),
            name: format!("cron-{job}"),
            run: run_id.to_string(),
            cmd: spec.cmd.clone(),
            env: BTreeMap::from([
                ("SLIPWAY_CRON_JOB".to_string(), job.to_string()),
                ("SLIPWAY_CRON_RUN".to_string(), run_id.to_string()),
            ]),
            timeout: spec.timeout,
            log_path,
        };
        let all = self.stop_all.clone();
        let cancelled = async move {
            tokio::select! {
                _ = stop => {}
                _ = all.cancelled() => {}
            }
        };
        match self.one_offs.run(one_off, cancelled).await {
            Ok(out) => {
                let outcome = match &out.end {
                    JobEnd::Cancelled => {
                        "stopped (replaced by a newer run, or the daemon stopped)".into()
                    }
                    end => end.describe(spec.timeout),
                };
                (outcome, out.exit_code, out.output)
            }
            Err(e) => (format!("failed: {e}"), None, String::new()),
        }
    }

    /// `slipway cron list`: every job of the stable release, when it runs next, its recent runs.
    pub fn view(&self, app: &str) -> Result<CronView, Error> {
        let release = self
            .stable(app)?
            .ok_or_else(|| Error::not_found(format!("{app} has no stable release yet")))?;
        let internal = |e: slipway_store::StoreError| Error::internal(e.to_string());
        let now_s = (now_ms() / 1000) as i64;
        let mut jobs = Vec::new();
        for (name, spec) in &release.spec.cron {
            let runs = self
                .store
                .cron_runs(app, Some(name), spec.history as usize + 8)
                .map_err(internal)?;
            let next_run_at = Schedule::parse(&spec.schedule)
                .ok()
                .and_then(|s| s.next_after(now_s))
                .map(|s| s * 1000);
            jobs.push(CronJobView {
                name: name.clone(),
                schedule: spec.schedule.clone(),
                cmd: spec.cmd.clone(),
                concurrency: spec.concurrency.as_str().to_string(),
                next_run_at,
                runs,
            });
        }
        Ok(CronView {
            app: app.to_string(),
            release: release.version,
            jobs,
        })
    }
}

fn no_such_job(app: &str, job: &str, release: &Release) -> String {
    let names: Vec<&str> = release.spec.cron.keys().map(String::as_str).collect();
    if names.is_empty() {
        format!("{app} v{} has no [cron] jobs", release.version)
    } else {
        format!(
            "{app} has no cron job `{job}`; it has: {}",
            names.join(", ")
        )
    }
}

fn tail(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut cut = text.len() - max;
    while !text.is_char_boundary(cut) {
        cut += 1;
    }
    &text[cut..]
}
