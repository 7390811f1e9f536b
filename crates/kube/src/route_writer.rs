//! Writes where an app's traffic goes when a gateway (or a Service) routes it instead of slipway's
//! proxy: the release Services and the app's HTTPRoute (`http_route.rs`) with the rollout's weights,
//! and the stable Service's selector (`services.rs`). One task does the IO; the controller publishes
//! what it wants and never waits on the API server.
//!
//! Every write is a server-side apply with the field manager `slipway`: the API server records the
//! fields slipway owns (`managedFields`), merges the rest, and refuses a change to a field another
//! manager owns. The HTTPRoute's apply is never forced (it is slipway's own object; a conflict means
//! someone else writes that route, and the rollout fails saying so). The Services' are: the release
//! Services are slipway's by name, and the stable Service's selector is what the config asked slipway
//! to switch. Order per app: a new release's Service before the route names it, the route, then the
//! Services of releases it no longer names.

use crate::http_route::{self, FIELD_MANAGER, HeaderRule, MirrorTo, RouteTarget, WeightedBackend};
use crate::landed::{LandedRoute, Landings};
use crate::names::{self, Key};
use crate::services;
use k8s_openapi::api::core::v1::Service;
use kube::api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::{Api, Client};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// One release's part of an app's traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseTraffic {
    pub release: u64,
    pub weight: u32,
    /// Its web process's port.
    pub port: u16,
}

/// What an app's traffic should look like on the cluster now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppTraffic {
    pub app: String,
    pub releases: Vec<ReleaseTraffic>,
    /// `[kubernetes] gateway`: the HTTPRoute to write.
    pub gateway: Option<RouteTarget>,
    /// `[kubernetes] service`: the Service whose selector follows the release with all the traffic.
    pub service: Option<String>,
    /// `[kubernetes] namespace`: where the app's Services and HTTPRoute are (`None`: the daemon's).
    pub namespace: Option<String>,
    /// A canary's `route` steps: requests that match go to their release (one of `releases`).
    pub matches: Vec<ReleaseMatch>,
    /// A canary's `mirror` step: this share of requests copied to the release (one of `releases`).
    pub mirror: Option<ReleaseMirror>,
}

/// Requests with all these headers (and this cookie) go to `release`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseMatch {
    pub release: u64,
    pub headers: Vec<(String, String)>,
    /// One at most: a gateway matches a cookie through the one `Cookie` header.
    pub cookie: Option<(String, String)>,
}

/// `percent` of requests copied to `release`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseMirror {
    pub release: u64,
    pub percent: u32,
}

/// Told (app, why) when a write fails; the next change is written again from scratch.
pub type OnFailure = Arc<dyn Fn(&str, String) + Send + Sync>;

/// Hands the task what each app wants; cheap to clone.
#[derive(Clone)]
pub struct RouteWriter {
    tx: mpsc::UnboundedSender<AppTraffic>,
    sent: Arc<Mutex<BTreeMap<String, AppTraffic>>>,
    pub(crate) landed: Landings,
    pub(crate) client: Client,
    pub(crate) requests: Arc<AtomicU64>,
}

impl RouteWriter {
    pub(crate) fn start(
        client: Client,
        namespace: String,
        owner: String,
        requests: Arc<AtomicU64>,
        on_failure: OnFailure,
    ) -> RouteWriter {
        let (tx, rx) = mpsc::unbounded_channel();
        let sent = Arc::new(Mutex::new(BTreeMap::new()));
        let landed = Landings::default();
        let task = Task {
            client: client.clone(),
            namespace,
            owner,
            requests: requests.clone(),
            on_failure,
            sent: sent.clone(),
            apps: BTreeMap::new(),
            landed: landed.clone(),
        };
        tokio::spawn(task.run(rx));
        RouteWriter {
            tx,
            sent,
            landed,
            client,
            requests,
        }
    }

    /// Writes `traffic` unless it is what was last published for its app.
    pub fn publish(&self, traffic: AppTraffic) {
        let mut sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        if sent.get(&traffic.app) == Some(&traffic) {
            return;
        }
        sent.insert(traffic.app.clone(), traffic.clone());
        let _ = self.tx.send(traffic);
    }
}

/// What is on the cluster for one app, as far as this task wrote it.
#[derive(Default)]
struct Written {
    /// Releases whose Service was applied.
    services: BTreeSet<u64>,
    /// Release Services left by an earlier daemon were looked for (once).
    swept: bool,
    /// The stable Service: its name, the release it selects, whether slipway made it.
    stable: Option<(String, Option<u64>, bool)>,
}

struct Task {
    client: Client,
    namespace: String,
    owner: String,
    requests: Arc<AtomicU64>,
    on_failure: OnFailure,
    sent: Arc<Mutex<BTreeMap<String, AppTraffic>>>,
    apps: BTreeMap<String, Written>,
    landed: Landings,
}

impl Task {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<AppTraffic>) {
        while let Some(first) = rx.recv().await {
            // Only the newest wish of each app is written.
            let mut wanted = BTreeMap::from([(first.app.clone(), first)]);
            while let Ok(next) = rx.try_recv() {
                wanted.insert(next.app.clone(), next);
            }
            for (app, traffic) in wanted {
                let written = self.write(&traffic).await;
                if written.is_ok() {
                    self.landed.update(&app, |l| l.written = true);
                }
                if let Err(why) = written {
                    tracing::warn!("{app}: {why}");
                    self.sent
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&app);
                    (self.on_failure)(&app, why);
                }
            }
        }
    }

    /// The app's Services, in its namespace.
    fn services(&self, t: &AppTraffic) -> Api<Service> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        Api::namespaced(self.client.clone(), self.namespace(t))
    }

    fn namespace<'a>(&'a self, t: &'a AppTraffic) -> &'a str {
        t.namespace.as_deref().unwrap_or(&self.namespace)
    }

    fn key(app: &str, release: u64) -> Key {
        Key {
            app: app.to_owned(),
            release,
            process: "web".to_owned(),
        }
    }

    async fn write(&mut self, t: &AppTraffic) -> Result<(), String> {
        if let Some(target) = &t.gateway {
            self.write_route(t, target).await?;
        }
        if let Some(name) = &t.service {
            self.write_stable(t, name).await?;
        }
        Ok(())
    }

    async fn write_route(&mut self, t: &AppTraffic, target: &RouteTarget) -> Result<(), String> {
        let owned = PatchParams::apply(FIELD_MANAGER).force();
        for r in &t.releases {
            if self
                .apps
                .entry(t.app.clone())
                .or_default()
                .services
                .contains(&r.release)
            {
                continue;
            }
            let key = Self::key(&t.app, r.release);
            let name = key.service_name(&self.owner);
            let service = services::release_service(&key, &self.owner, r.port);
            self.services(t)
                .patch(&name, &owned, &Patch::Apply(&service))
                .await
                .map_err(|e| format!("cannot apply Service {name} (v{}): {e}", r.release))?;
            self.apps
                .entry(t.app.clone())
                .or_default()
                .services
                .insert(r.release);
        }
        let backends: Vec<WeightedBackend> = t
            .releases
            .iter()
            .map(|r| WeightedBackend {
                service: Self::key(&t.app, r.release).service_name(&self.owner),
                port: r.port,
                weight: r.weight,
            })
            .collect();
        let backend_of = |release: u64| {
            let port = t.releases.iter().find(|r| r.release == release)?.port;
            Some(WeightedBackend {
                service: Self::key(&t.app, release).service_name(&self.owner),
                port,
                weight: 1,
            })
        };
        let rules: Vec<HeaderRule> = t
            .matches
            .iter()
            .filter_map(|m| {
                Some(HeaderRule {
                    headers: m.headers.clone(),
                    cookie: m.cookie.clone(),
                    backend: backend_of(m.release)?,
                })
            })
            .collect();
        let mirror = t.mirror.as_ref().and_then(|m| {
            Some(MirrorTo {
                backend: backend_of(m.release)?,
                percent: m.percent,
            })
        });
        let route = http_route::object(
            target,
            &t.app,
            &self.owner,
            &backends,
            &rules,
            mirror.as_ref(),
        );
        let api: Api<DynamicObject> = Api::namespaced_with(
            self.client.clone(),
            self.namespace(t),
            &http_route::resource(),
        );
        self.requests.fetch_add(1, Ordering::Relaxed);
        match api
            .patch(
                &target.route,
                &PatchParams::apply(FIELD_MANAGER),
                &Patch::Apply(&route),
            )
            .await
        {
            Ok(applied) => {
                let landed = LandedRoute {
                    namespace: self.namespace(t).to_owned(),
                    target: target.clone(),
                    carries: t
                        .releases
                        .iter()
                        .filter(|r| r.weight > 0)
                        .map(|r| r.release)
                        .chain(t.matches.iter().map(|m| m.release))
                        .chain(t.mirror.iter().map(|m| m.release))
                        .collect(),
                    generation: applied.metadata.generation.unwrap_or(0),
                };
                self.landed.update(&t.app, |l| l.route = Some(landed));
            }
            Err(kube::Error::Api(s)) if s.is_conflict() => {
                return Err(format!(
                    "HTTPRoute {} is written by someone else ({}); slipway never takes over \
                     another manager's rules: give the app a route of its own, attached to the \
                     same Gateway (`route = \"{}-slipway\"` in [kubernetes]); see docs/kubernetes.md",
                    target.route, s.message, t.app
                ));
            }
            Err(kube::Error::Api(s)) if s.is_not_found() => {
                return Err(format!(
                    "cannot apply HTTPRoute {}: the cluster has no Gateway API (install its CRDs, \
                     gateway.networking.k8s.io/v1): {}",
                    target.route, s.message
                ));
            }
            Err(e) => return Err(format!("cannot apply HTTPRoute {}: {e}", target.route)),
        }
        tracing::debug!(
            "HTTPRoute {}: {:?}",
            target.route,
            t.releases
                .iter()
                .map(|r| (r.release, r.weight))
                .collect::<Vec<_>>()
        );
        // The route no longer names these: their Services go.
        let keep: BTreeSet<u64> = t.releases.iter().map(|r| r.release).collect();
        let written = self.apps.entry(t.app.clone()).or_default();
        let mut gone: Vec<u64> = written.services.difference(&keep).copied().collect();
        written.services.retain(|v| keep.contains(v));
        if !written.swept {
            written.swept = true;
            let selector = format!("{}={},{}={}", names::OWNER, self.owner, names::APP, t.app);
            let listed = self
                .services(t)
                .list(&ListParams::default().labels(&selector))
                .await
                .map_err(|e| format!("cannot list Services: {e}"))?;
            gone.extend(
                listed
                    .items
                    .iter()
                    .filter_map(|s| {
                        s.metadata
                            .labels
                            .as_ref()?
                            .get(names::RELEASE)?
                            .parse()
                            .ok()
                    })
                    .filter(|v| !keep.contains(v)),
            );
        }
        for release in gone {
            let name = Self::key(&t.app, release).service_name(&self.owner);
            match self
                .services(t)
                .delete(&name, &DeleteParams::default())
                .await
            {
                Ok(_) => tracing::debug!("deleted Service {name}: no longer routed"),
                Err(kube::Error::Api(s)) if s.is_not_found() => {}
                Err(e) => tracing::warn!("cannot delete Service {name}: {e}"),
            }
        }
        Ok(())
    }

    async fn write_stable(&mut self, t: &AppTraffic, name: &str) -> Result<(), String> {
        let weights: Vec<(u64, u32)> = t.releases.iter().map(|r| (r.release, r.weight)).collect();
        let current = self
            .apps
            .get(&t.app)
            .and_then(|w| w.stable.as_ref())
            .filter(|(n, _, _)| n == name)
            .and_then(|(_, v, _)| *v);
        let Some(release) = services::selected(&weights, current) else {
            return Ok(());
        };
        let landed = self.landed.clone();
        let app = t.app.clone();
        let land = move || landed.update(&app, |l| l.selects = Some(release));
        let known = self
            .apps
            .get(&t.app)
            .and_then(|w| w.stable.as_ref())
            .filter(|(n, _, _)| n == name)
            .map(|(_, _, made)| *made);
        if current == Some(release) {
            land();
            return Ok(());
        }
        // Whose Service it is decides what slipway applies to it (`services::stable_service`).
        let made = match known {
            Some(made) => made,
            None => match self.services(t).get(name).await {
                Ok(s) => s.metadata.labels.as_ref().is_some_and(|l| {
                    l.get(names::MANAGED_BY).map(String::as_str) == Some("slipway")
                        && l.get(names::OWNER) == Some(&self.owner)
                }),
                Err(kube::Error::Api(s)) if s.is_not_found() => true,
                Err(e) => return Err(format!("cannot read Service {name}: {e}")),
            },
        };
        let port = t
            .releases
            .iter()
            .find(|r| r.release == release)
            .map_or(0, |r| r.port);
        let service =
            services::stable_service(name, &Self::key(&t.app, release), &self.owner, port, made);
        self.services(t)
            .patch(
                name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&service),
            )
            .await
            .map_err(|e| format!("cannot point Service {name} at v{release}: {e}"))?;
        tracing::info!("Service {name} now selects v{release}");
        land();
        self.apps.entry(t.app.clone()).or_default().stable =
            Some((name.to_owned(), Some(release), made));
        Ok(())
    }
}
