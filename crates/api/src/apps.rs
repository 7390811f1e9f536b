//! The API's JSON shapes, shared by the daemon and the CLI so they cannot drift apart.

use serde::{Deserialize, Serialize};
use slipway_core::release::{Release, Version};
use utoipa::ToSchema;

// `Version` is an alias of `u64`: fields of it say `#[schema(value_type = u64)]`, or the OpenAPI
// document would refer to a schema named `u64` (utoipa sees an alias as a type of its own).

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeployRequest {
    /// The `slipway.toml` to deploy: an absolute path on the daemon's host; with `upload`, the
    /// file's name inside the uploaded folder.
    pub config: String,
    /// `POST /v1/uploads`' answer: the app folder was sent first, and `config` is in it. The
    /// daemon removes the upload once this deploy is over, whatever its outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload: Option<String>,
    pub label: Option<String>,
    pub message: Option<String>,
    /// Who asked, e.g. `alice@laptop`; recorded with the release.
    pub who: String,
    /// `deploy --canary N`: start a canary at N % and hold there (for CI pipelines: gate, ramp, promote).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 100)]
    pub canary: Option<u32>,
    /// `deploy --strict`: refuse when the migration guard finds destructive statements.
    #[serde(default)]
    pub strict: bool,
    /// `deploy --image REF`: web's image for this deploy (and that of every process naming the same image).
    #[serde(default)]
    pub image: Option<String>,
    /// `deploy --build`: build the app folder's Dockerfile and deploy that image as web's.
    #[serde(default)]
    pub build: bool,
    /// `deploy --override-slo "reason"`: deploy although the app's error budget is spent (`[slo]
    /// hold_deploys`); the reason is recorded with the release and in its events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_slo: Option<String>,
}

/// `POST /v1/uploads`: the folder is on the daemon's disk, for one deploy (`DeployRequest.upload`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UploadAccepted {
    /// Names the upload in `DeployRequest.upload`.
    pub upload: String,
    /// Regular files unpacked, and their bytes.
    pub files: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeployAccepted {
    pub app: String,
    #[schema(value_type = u64)]
    pub release: Version,
    pub rollout: i64,
    /// Things the user should know (destructive migrations, a rollback without a down migration).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// The release phase (or, for a rollback, the rollback command), when one ran.
    #[serde(default)]
    pub phase: Option<PhaseReport>,
}

/// How a release phase (or a rollback command) went.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PhaseReport {
    pub cmd: String,
    /// "succeeded", "failed: exited with status 1", "timed out after 600s and was stopped".
    pub outcome: String,
    pub exit_code: Option<i32>,
    pub seconds: f64,
    /// Its last lines.
    pub output: String,
    /// Where all of its output is.
    pub log: String,
    /// How the release still serving fared after the phase (`[release] stable_watch`), when watched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_watch: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RollbackRequest {
    #[schema(value_type = Option<u64>)]
    pub to: Option<Version>,
    pub who: String,
    pub message: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AppStatus {
    pub app: String,
    pub stable: Option<ReleaseSummary>,
    pub rollout: Option<RolloutStatus>,
    /// A release kept warm after a blue-green switch, and when it will be scaled down.
    pub warm: Option<WarmRelease>,
    pub instances: Vec<InstanceView>,
    /// The last rollout's end, when it did not succeed: why.
    pub last_failure: Option<String>,
    /// Per release, the last 10 seconds of traffic through the proxy.
    #[serde(default)]
    pub traffic: Vec<ReleaseTraffic>,
    /// Set when the web process scales with its load (`replicas = { min, max }`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling: Option<ScalingStatus>,
    /// Set while the app is in maintenance (`slipway maintenance on`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance: Option<MaintenanceStatus>,
    /// The last watch after promotion (`[deploy] watch`): running, or how it ended. Absent before the
    /// first rollout that replaced a release (and after a daemon restart: a watch is not resumed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch: Option<WatchStatus>,
    /// The app's `[slo]`: each objective's error budget over the window and its burn rates. Absent
    /// without `[slo]` (or before its first second of counting).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo: Option<SloStatus>,
}

/// An app's service level objectives and their error budgets (`[slo]`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SloStatus {
    /// The budget's rolling window.
    pub window_seconds: u64,
    /// The start of the oldest counted minute still in the window (ms since the epoch): counting
    /// starts when `[slo]` is first deployed, so a young budget has seen less than its window.
    pub since: Option<i64>,
    /// A canary fails when it would burn a budget at the fastest alert's rate.
    pub canary_gate: bool,
    /// `slipway deploy` is refused while a budget is spent (unless `--override-slo "reason"`).
    pub hold_deploys: bool,
    /// Why deploys are refused now, while they are.
    pub hold: Option<String>,
    pub objectives: Vec<SloObjectiveStatus>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SloObjectiveStatus {
    /// `availability` or `latency`.
    pub sli: String,
    /// In words: "99.9% of requests succeed", "99% of requests within 300ms".
    pub objective: String,
    /// The share of requests that must be good, e.g. 0.999.
    pub target: f64,
    /// Requests in the window, and the bad ones (failed, or slower than the objective).
    pub requests: u64,
    pub bad: u64,
    /// The share of the budget left: 1 before any bad request, 0 when spent, below 0 when overspent.
    pub budget_left: f64,
    pub burn_rates: Vec<BurnRateStatus>,
}

/// One multi-window burn-rate alert: it fires while both windows burn at least `threshold` times as
/// fast as the window allows.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BurnRateStatus {
    pub long_seconds: u64,
    pub short_seconds: u64,
    pub threshold: f64,
    /// Burn rates over the long and the short window (absent: no requests in it).
    pub long: Option<f64>,
    pub short: Option<f64>,
    pub firing: bool,
}

/// A release judged after it reached 100 % against the release it replaced (that release's numbers from
/// before the switch); a clear regression rolls back to it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WatchStatus {
    #[schema(value_type = u64)]
    pub release: Version,
    /// The replaced release: whose numbers it is compared with, and the rollback's target.
    #[schema(value_type = u64)]
    pub compared_with: Version,
    /// `default` (the error rate within +1% of the replaced release's) or the `watch_analysis` template.
    pub template: String,
    /// `watching`, `ended` (its time is over, no regression), `regressed` (rolled back) or `superseded`
    /// (another rollout started first).
    pub state: String,
    /// Milliseconds since the epoch.
    pub started_at: i64,
    pub ends_at: i64,
    /// When it stopped watching, unless it still does.
    pub ended_at: Option<i64>,
    /// The latest verdict: `pass`, `fail` or `inconclusive` (none before the first look).
    pub verdict: Option<String>,
    pub detail: Option<String>,
}

/// The autoscaler's view of an app.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ScalingStatus {
    pub min: u32,
    pub max: u32,
    /// `concurrency` or `rps`; absent when only idle and wake move the count.
    pub target_kind: Option<String>,
    pub target: Option<u32>,
    /// The web instances the autoscaler wants now (0: scaled to zero).
    pub replicas: u32,
    /// The last second's load, as the target counts it.
    pub load: f64,
    pub idle_after_seconds: Option<u64>,
    /// Changes made since the daemon started.
    pub changes: u64,
    /// The last change, in words, and when (ms since the epoch).
    pub last_change: Option<String>,
    pub last_change_at: Option<i64>,
    /// Per release, its last cold start (from the request that woke it to an instance serving).
    pub cold_starts: Vec<ColdStart>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ColdStart {
    #[schema(value_type = u64)]
    pub release: Version,
    pub millis: u64,
}

/// An app in maintenance: its requests are held, then answered with the maintenance page.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MaintenanceStatus {
    /// ms since the epoch.
    pub since: i64,
    pub hold_seconds: u64,
    pub retry_after_seconds: u64,
    /// The app has its own page (else the proxy's text).
    pub custom_page: bool,
    /// Requests the proxy holds now, waiting for the maintenance to end.
    pub held_requests: u64,
    pub reason: Option<String>,
}

/// `POST /v1/apps/{app}/maintenance`: put the app in maintenance.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MaintenanceRequest {
    /// How long each request is held before it gets the page (0: the page at once); default 30.
    #[serde(default)]
    pub hold_seconds: Option<u64>,
    /// `Retry-After` on the page; default 60.
    #[serde(default)]
    pub retry_after_seconds: Option<u64>,
    /// The page's HTML (at most 256 KiB); absent: the proxy's text page.
    #[serde(default)]
    pub page: Option<String>,
    /// Why, for the audit log and `status`.
    #[serde(default)]
    pub reason: Option<String>,
    /// Who asked (the CLI's user; the daemon uses the token's name over TCP).
    #[serde(default)]
    pub who: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReleaseSummary {
    #[schema(value_type = u64)]
    pub version: Version,
    pub label: Option<String>,
    pub artifact: String,
    pub created_at: i64,
    pub created_by: String,
    pub message: Option<String>,
    #[schema(value_type = Option<u64>)]
    pub rollback_of: Option<Version>,
    pub status: String,
    pub reason: Option<String>,
    pub strategy: String,
}

impl From<&Release> for ReleaseSummary {
    fn from(r: &Release) -> Self {
        ReleaseSummary {
            version: r.version,
            label: r.label.clone(),
            artifact: r.artifact.clone(),
            created_at: r.created_at,
            created_by: r.created_by.clone(),
            message: r.message.clone(),
            rollback_of: r.rollback_of,
            status: r.status.as_str().to_string(),
            reason: r.reason.clone(),
            strategy: r.spec.deploy.strategy.name().to_string(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RolloutStatus {
    pub id: i64,
    #[schema(value_type = Option<u64>)]
    pub from: Option<Version>,
    #[schema(value_type = u64)]
    pub to: Version,
    /// The strategy's name; `rollback` for a rollback, `drill` for a drill's canary.
    pub strategy: String,
    /// progressing / stopping_old / awaiting_promotion / reverting / done
    pub phase: String,
    pub outcome: Option<String>,
    pub reason: Option<String>,
    /// Percent of traffic to each release, from the current plan.
    pub weight_from: u32,
    pub weight_to: u32,
    pub ready_from: u32,
    pub ready_to: u32,
    pub want_to: u32,
    pub started_at: i64,
    pub deadline: i64,
    #[serde(default)]
    pub canary: Option<CanaryView>,
    #[serde(default)]
    pub analysis: Vec<AnalysisView>,
    /// What mirroring found so far (shadow answers compared with the stable's).
    #[serde(default)]
    pub shadow: Option<ShadowView>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ShadowView {
    pub mirrored: u64,
    pub compared: u64,
    pub status_class_mismatches: u64,
    pub shadow_failures: u64,
    pub latency_diff_mean_ms: f64,
    pub body_compared: u64,
    pub body_mismatches: u64,
    pub skipped_non_idempotent: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WarmRelease {
    #[schema(value_type = u64)]
    pub version: Version,
    pub retire_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InstanceView {
    pub id: String,
    #[schema(value_type = u64)]
    pub release: Version,
    pub process: String,
    pub state: String,
    pub ready: bool,
    pub serving: bool,
    pub pid: Option<u32>,
    pub port: Option<u16>,
    pub restarts: u32,
    /// The pod it runs on (`serve --kubernetes`), absent elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RolloutView {
    pub id: i64,
    #[schema(value_type = Option<u64>)]
    pub from: Option<Version>,
    #[schema(value_type = u64)]
    pub to: Version,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub outcome: Option<String>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, ToSchema)]
pub struct PromoteRequest {
    /// Skip the remaining canary steps.
    #[serde(default)]
    pub full: bool,
}

/// `slipway ramp N` (`POST /v1/apps/{app}/ramp`): hold a canary at this weight. Not a flag ramp, which
/// is a flag's scheduled rollout (`flags::FlagRampRequest`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SetWeightRequest {
    /// Percent of the traffic, 0 to 100.
    #[schema(maximum = 100)]
    pub weight: u32,
}

/// `slipway abort [--reason TEXT]`: the body is optional.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct AbortRequest {
    /// Why, recorded with the rollout's end (over TCP, with the token's name).
    #[serde(default)]
    pub reason: Option<String>,
}

/// `slipway drill`: the stable release again as a canary whose requests fail on purpose.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DrillRequest {
    /// The canary's weight in percent (1 to 50); 5 unless given.
    pub weight: Option<u32>,
    /// The share of the canary's requests the proxy fails (above 0, at most 1); 0.5 unless given.
    pub error_rate: Option<f64>,
    pub who: String,
}

/// What a drill found (`GET /v1/apps/{app}/drills`, `slipway drill --json`): computed by the daemon when
/// the drill's canary is gone, from its events and the proxy's counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DrillReport {
    pub app: String,
    /// The drill's release (the stable one again).
    pub release: u64,
    /// Who started it: a user, or `the schedule` (`[drill] schedule`).
    pub by: String,
    /// Unix milliseconds when it started.
    pub at: i64,
    /// True when the analysis rolled it back and no request failed beyond the injected ones.
    pub passed: bool,
    /// `rolled_back` (the analysis caught it), `not_detected` (aborted after 3 minutes), or how the
    /// rollout otherwise ended.
    pub outcome: String,
    pub reason: Option<String>,
    /// From the drill canary's first ready instance to the analysis verdict.
    pub detection_ms: Option<i64>,
    /// From the first ready instance to the rollout's end (the canary at weight 0).
    pub rollback_ms: Option<i64>,
    /// From the rollout's end to the drill's last instance gone.
    pub drain_ms: Option<i64>,
    /// Requests the proxy failed on purpose.
    pub injected_failures: u64,
    /// Requests that failed otherwise during the drill (5xx answers and requests no instance answered,
    /// of any release of the app), beyond the injected ones.
    pub other_failures: u64,
}

impl DrillReport {
    /// The report in one line (the `drill_passed`/`drill_failed` event, `slipway drill`'s text).
    pub fn summary(&self) -> String {
        let s = |v: Option<i64>| {
            v.map_or("unknown".to_string(), |ms| {
                format!("{:.1}s", ms as f64 / 1000.0)
            })
        };
        let mut text = format!(
            "drill v{} {}: detected in {}, rolled back (weight 0) in {}, drained in {}; \
             {} injected failures, {} other failed requests",
            self.release,
            if self.passed { "passed" } else { "FAILED" },
            s(self.detection_ms),
            s(self.rollback_ms),
            s(self.drain_ms),
            self.injected_failures,
            self.other_failures,
        );
        if self.outcome != "rolled_back" {
            text.push_str(&format!(
                "; the analysis did not roll it back ({}): check the app's canary analysis",
                self.outcome
            ));
        }
        text
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RetryRequest {
    pub who: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GateRequest {
    /// Max excess error rate of the canary over stable, as a fraction (0.01 = 1 point).
    pub error_rate: Option<f64>,
    /// Latency percentile (e.g. 95.0) and its bound in milliseconds.
    pub latency: Option<(f64, u64)>,
    /// How long to judge, in milliseconds; the answer comes earlier on a fail.
    pub for_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GateAnswer {
    /// pass / fail / inconclusive
    pub verdict: String,
    pub detail: String,
}

/// Traffic a release got over the last seconds, from the proxy's own counters.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReleaseTraffic {
    #[schema(value_type = u64)]
    pub release: Version,
    pub window_seconds: u64,
    pub requests: u64,
    pub rps: f64,
    pub error_rate: Option<f64>,
    pub p95_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AnalysisView {
    pub template: String,
    pub purpose: String,
    pub verdict: Option<String>,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CanaryView {
    /// 1-based step being run; steps + 1 while promoting.
    pub step: usize,
    pub steps: usize,
    pub weight: u32,
    pub effective_weight: u32,
    pub paused: bool,
    pub routes: usize,
    pub mirror: u32,
    /// When the current step began (unix ms): with the step's length, the time left.
    #[serde(default)]
    pub step_started_at: i64,
}

/// `slipway scale web=4 worker=2`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ScaleRequest {
    pub formation: std::collections::BTreeMap<String, u32>,
    pub who: String,
}

/// `slipway config set A=1 B=2` / `unset C`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ConfigChange {
    #[serde(default)]
    pub set: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub unset: Vec<String>,
    pub who: String,
}

/// `slipway config`: the stable release's variables and where each comes from.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConfigView {
    pub app: String,
    #[schema(value_type = u64)]
    pub release: Version,
    pub vars: Vec<ConfigEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConfigEntry {
    pub key: String,
    /// `None` for secrets: only their names are ever shown.
    pub value: Option<String>,
    /// "slipway.toml", "config set by alice@laptop", "secret (from a file)".
    pub origin: String,
}

/// `slipway cron list`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CronView {
    pub app: String,
    /// The release whose jobs these are (the stable one).
    #[schema(value_type = u64)]
    pub release: Version,
    pub jobs: Vec<CronJobView>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CronJobView {
    pub name: String,
    pub schedule: String,
    pub cmd: String,
    pub concurrency: String,
    /// Unix milliseconds.
    pub next_run_at: Option<i64>,
    /// Newest first; a run without `finished_at` is still going.
    pub runs: Vec<CronRun>,
}

/// `slipway cron run NAME`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CronRunRequest {
    pub who: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CronRunAnswer {
    /// The run started, or `None` when the policy skipped it.
    pub run: Option<i64>,
    pub skipped: Option<String>,
}

/// `slipway token create NAME --role ROLE`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenRequest {
    /// 1 to 64 letters, digits, `-`, `_`, `.`, `@`; not `api-token` (the daemon's own token's name).
    #[schema(pattern = "^[A-Za-z0-9._@-]{1,64}$")]
    pub name: String,
    /// viewer / deployer / admin
    #[schema(pattern = "^(viewer|deployer|admin)$")]
    pub role: String,
    pub who: String,
}

/// The one answer that carries a token: it is not kept anywhere but its hash.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenCreated {
    pub name: String,
    pub role: String,
    pub token: String,
}

/// A release's traffic over the last minutes, one point every few seconds, column by column (compact).
/// `t` is unix milliseconds; a `None` is "no requests in that interval".
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct ReleaseSeries {
    #[schema(value_type = u64)]
    pub release: Version,
    pub t: Vec<i64>,
    pub rps: Vec<f64>,
    pub error_rate: Vec<Option<f64>>,
    pub p50_ms: Vec<Option<f64>>,
    pub p95_ms: Vec<Option<f64>>,
    pub p99_ms: Vec<Option<f64>>,
}

/// One run of a cron job: when, why, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CronRun {
    pub id: i64,
    pub app: String,
    pub job: String,
    #[schema(value_type = u64)]
    pub release: Version,
    /// "schedule" or "manual by <who>".
    pub trigger: String,
    /// Unix milliseconds.
    pub started_at: i64,
    pub finished_at: Option<i64>,
    /// "succeeded", "failed: ...", "timed out ...", "skipped: ..."; `None` while running.
    pub outcome: Option<String>,
    pub exit_code: Option<i32>,
    pub output: Option<String>,
}

/// `GET /v1/health`: the daemon answers, and which version it is.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// Always `true`: a daemon that answers is up.
    pub ok: bool,
    /// The daemon's version, e.g. `0.1.0`.
    pub version: String,
}

/// `POST /v1/upgrade`: the new daemon serves; the old one finishes its in-flight requests and ends.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Upgraded {
    /// The daemon that was asked, now ending.
    pub from_pid: u32,
    /// The daemon that serves now.
    pub pid: u32,
    /// The version of the binary that serves now, e.g. `0.1.0`.
    pub version: String,
}

/// The answer to a request that has nothing more to say than that it was accepted (promote, pause,
/// resume, ramp, abort; stopping a flag ramp; revoking an evaluation key).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Accepted {
    /// Always `true`.
    pub ok: bool,
}

impl Accepted {
    pub const YES: Accepted = Accepted { ok: true };
}

/// `DELETE /v1/tokens/{name}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenRevoked {
    /// The name of the token that no longer opens anything.
    pub revoked: String,
}
