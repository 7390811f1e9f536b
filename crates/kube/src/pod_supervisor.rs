//! The Kubernetes runtime's one task: it owns every ReplicaSet this daemon runs, binds instances to
//! their pods (`binding.rs`), turns the pods' status into the same `InstanceEvent`s the process and
//! container supervisors send (`pod_state.rs`), and writes what changes — a ReplicaSet, its count,
//! a pod's deletion cost — to the API server.
//!
//! Nothing polls: pods arrive through one watch per namespace (kube's runtime watcher, labelled
//! with this daemon's owner): the daemon's, and each one an app names in `[kubernetes] namespace`,
//! watched from its first ReplicaSet on; commands through a channel. Replica counts are written once per batch,
//! so starting five instances is one request. A count is lowered only after the watch has shown the
//! retiring pod's deletion cost (see `binding.rs` for why that pod is the one that goes).

use crate::binding::{self, PodRef, Slot};
use crate::names::{self, DELETION_COST, Key};
use crate::pod_logs;
use crate::pod_state::{self, Observed};
use crate::template::PodTemplate;
use futures_util::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use serde_json::json;
use slipway_runtime::log_capture::{LogSink, Stream};
use slipway_runtime::{InstanceEvent, InstanceState};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// What `status` shows of an instance on a pod.
#[derive(Debug, Clone)]
pub struct PodStatus {
    pub state: InstanceState,
    pub restarts: u32,
    /// The pod's IP and the container's port, while it has a pod.
    pub address: Option<SocketAddr>,
    pub pod: Option<String>,
    /// Its pods' termination grace period.
    pub grace: Duration,
}

/// A ReplicaSet of this daemon found in a namespace (at start-up, to adopt or remove).
#[derive(Debug, Clone)]
pub struct OwnedReplicaSet {
    pub name: String,
    pub namespace: String,
    /// `None` when its labels are missing or malformed.
    pub key: Option<Key>,
    pub replicas: i32,
}

/// An adopted instance and what its pod says right now.
#[derive(Debug, Clone)]
pub struct Adopted {
    pub id: String,
    pub observed: Observed,
}

/// Talks to the supervisor's task; cheap to clone.
#[derive(Clone)]
pub struct PodSupervisor {
    commands: mpsc::UnboundedSender<Command>,
    statuses: Arc<Mutex<BTreeMap<String, PodStatus>>>,
    pub(crate) client: Client,
    pub(crate) namespace: String,
    pub(crate) owner: String,
    pub(crate) requests: Arc<AtomicU64>,
}

enum Command {
    Start {
        id: String,
        template: Box<PodTemplate>,
        log: Option<Arc<LogSink>>,
    },
    Stop {
        id: String,
        done: oneshot::Sender<()>,
    },
    Adopt {
        name: String,
        namespace: String,
        template: Box<PodTemplate>,
        ids: Vec<(String, Option<Arc<LogSink>>)>,
        reply: oneshot::Sender<Vec<Adopted>>,
    },
}

impl PodSupervisor {
    /// Connects with the kubeconfig (`$KUBECONFIG`, `~/.kube/config`) or, inside a pod, the in-cluster
    /// config; `namespace` defaults to the config's. Fails at once when the namespace's pods cannot be
    /// listed, so `serve` says so instead of failing at the first deploy.
    pub async fn connect(
        namespace: Option<String>,
        owner: String,
        events: mpsc::UnboundedSender<InstanceEvent>,
    ) -> Result<PodSupervisor, String> {
        let config = crate::config().await?;
        let namespace = namespace.unwrap_or_else(|| config.default_namespace.clone());
        let server = config.cluster_url.to_string();
        let client = Client::try_from(config)
            .map_err(|e| format!("cannot make a client for {server}: {e}"))?;
        let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
        let selector = format!("{}={owner}", names::OWNER);
        pods.list(&ListParams::default().labels(&selector).limit(1))
            .await
            .map_err(|e| format!("cannot list pods in namespace {namespace} on {server}: {e}"))?;
        let requests = Arc::new(AtomicU64::new(1));
        let statuses = Arc::new(Mutex::new(BTreeMap::new()));
        let (commands, rx) = mpsc::unbounded_channel();
        let task = Task {
            client: client.clone(),
            home: namespace.clone(),
            owner: owner.clone(),
            events,
            statuses: statuses.clone(),
            requests: requests.clone(),
            sets: BTreeMap::new(),
            pods: BTreeMap::new(),
            watched: BTreeSet::new(),
            to_watch: Vec::new(),
            synced: BTreeSet::new(),
            listings: BTreeMap::new(),
            waiting_for_sync: Vec::new(),
            uncost: BTreeSet::new(),
            unmarked: BTreeSet::new(),
            logs: BTreeMap::new(),
            following: BTreeMap::new(),
            adopted: BTreeSet::new(),
        };
        tokio::spawn(task.run(rx));
        tracing::info!("running image processes as pods in namespace {namespace} on {server}");
        Ok(PodSupervisor {
            commands,
            statuses,
            client,
            namespace,
            owner,
            requests,
        })
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The writer of the apps' HTTPRoutes and Services in this namespace (`route_writer.rs`),
    /// telling `on_failure` what it could not write.
    pub fn route_writer(&self, on_failure: crate::OnFailure) -> crate::RouteWriter {
        crate::RouteWriter::start(
            self.client.clone(),
            self.namespace.clone(),
            self.owner.clone(),
            self.requests.clone(),
            on_failure,
        )
    }

    /// The name of the Service of `app`'s release `release` (its web pods), as the route writer
    /// makes it.
    pub fn release_service(&self, app: &str, release: u64) -> String {
        Key {
            app: app.to_owned(),
            release,
            process: "web".to_owned(),
        }
        .service_name(&self.owner)
    }

    /// Requests sent to the API server so far (the watch counts once).
    pub fn api_requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Starts instance `id` as one more pod of `template`'s ReplicaSet (made on first use). Its
    /// state arrives as events; its pod's output goes to `log_path`.
    pub fn start(&self, id: &str, template: PodTemplate, log_path: &Path) -> PodStatus {
        let status = PodStatus {
            state: InstanceState::Starting,
            restarts: 0,
            address: None,
            pod: None,
            grace: template.grace,
        };
        self.statuses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_owned(), status.clone());
        let _ = self.commands.send(Command::Start {
            id: id.to_owned(),
            template: Box::new(template),
            log: open_log(id, log_path),
        });
        status
    }

    /// Retires the instance (call after the drain): its pod goes first when the count is lowered.
    /// Resolves once that pod is gone.
    pub async fn stop(&self, id: &str) {
        let grace = self.status(id).map_or(Duration::from_secs(30), |s| s.grace);
        let (done, wait) = oneshot::channel();
        if self
            .commands
            .send(Command::Stop {
                id: id.to_owned(),
                done,
            })
            .is_ok()
            && tokio::time::timeout(stop_deadline(grace), wait)
                .await
                .is_err()
        {
            tracing::warn!(
                "the pod of {id} is still there {}s after it was asked to go; going on",
                stop_deadline(grace).as_secs()
            );
        }
    }

    pub fn forget(&self, id: &str) {
        self.statuses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }

    pub fn status(&self, id: &str) -> Option<PodStatus> {
        self.statuses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    /// This daemon's ReplicaSets in its namespace and in `others` (the apps' namespaces). Only its
    /// own namespace must answer: one of `others` that cannot be listed (gone, or its Role removed
    /// after the app left it) is told in the log and skipped.
    pub async fn owned(&self, others: &BTreeSet<String>) -> Result<Vec<OwnedReplicaSet>, String> {
        let mut owned = Vec::new();
        let namespaces = std::iter::once(&self.namespace).chain(others.iter());
        for namespace in namespaces.collect::<BTreeSet<_>>() {
            let api: Api<ReplicaSet> = Api::namespaced(self.client.clone(), namespace);
            self.requests.fetch_add(1, Ordering::Relaxed);
            let listed = api
                .list(&ListParams::default().labels(&format!("{}={}", names::OWNER, self.owner)))
                .await
                .map_err(|e| format!("cannot list ReplicaSets in {namespace}: {e}"));
            let list = match listed {
                Ok(list) => list,
                Err(why) if *namespace != self.namespace => {
                    tracing::warn!("{why}; its ReplicaSets, if any, are left as they are");
                    continue;
                }
                Err(why) => return Err(why),
            };
            owned.extend(list.items.into_iter().map(|rs| OwnedReplicaSet {
                name: rs.metadata.name.clone().unwrap_or_default(),
                namespace: namespace.clone(),
                key: rs.metadata.labels.as_ref().and_then(Key::from_labels),
                replicas: rs.spec.replicas.unwrap_or(0),
            }));
        }
        Ok(owned)
    }

    /// Takes back the ReplicaSet `name` with one instance per (id, log file), bound to its pods once
    /// the watch has listed them; answers what each pod says now.
    pub async fn adopt(
        &self,
        set: &OwnedReplicaSet,
        template: PodTemplate,
        ids: Vec<(String, PathBuf)>,
    ) -> Vec<Adopted> {
        let (reply, answer) = oneshot::channel();
        let ids = ids
            .into_iter()
            .map(|(id, path)| {
                let log = open_log(&id, &path);
                (id, log)
            })
            .collect();
        let _ = self.commands.send(Command::Adopt {
            name: set.name.clone(),
            namespace: set.namespace.clone(),
            template: Box::new(template),
            ids,
            reply,
        });
        answer.await.unwrap_or_default()
    }

    /// The login the image pull secrets `secrets` (in `namespace`, else the daemon's) hold for
    /// `registry`, the first that has one. A secret that is not there is an error: the nodes could
    /// not pull with it either.
    pub async fn registry_login(
        &self,
        namespace: Option<&str>,
        secrets: &[String],
        registry: &str,
    ) -> Result<Option<crate::RegistryLogin>, String> {
        let namespace = namespace.unwrap_or(&self.namespace);
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        for name in secrets {
            self.requests.fetch_add(1, Ordering::Relaxed);
            let secret = api.get(name).await.map_err(|e| match e {
                kube::Error::Api(s) if s.is_not_found() => format!(
                    "the image pull secret {name} is not in namespace {namespace}: make it \
                     (kubectl create secret docker-registry {name} -n {namespace} ...) or fix \
                     [kubernetes] image_pull_secrets"
                ),
                other => {
                    format!("cannot read the image pull secret {name} in {namespace}: {other}")
                }
            })?;
            let data = secret.data.unwrap_or_default();
            let config = data
                .get(".dockerconfigjson")
                .or_else(|| data.get(".dockercfg"));
            if let Some(login) = config.and_then(|c| crate::docker_config::login(&c.0, registry)) {
                return Ok(Some(login));
            }
        }
        Ok(None)
    }

    /// Deletes a ReplicaSet (with its pods), its ConfigMap and its Secret (found, not made: either
    /// may be there).
    pub async fn remove(&self, set: &OwnedReplicaSet) -> Result<(), String> {
        let both = Parts {
            config: true,
            secret: true,
        };
        delete_objects(
            &self.client,
            &set.namespace,
            &set.name,
            both,
            &self.requests,
        )
        .await
    }
}

fn open_log(id: &str, path: &Path) -> Option<Arc<LogSink>> {
    LogSink::open(path)
        .map_err(|e| tracing::warn!("cannot open the log of {id} ({}): {e}", path.display()))
        .ok()
}

/// Which of a ReplicaSet's ConfigMap and Secret there may be.
#[derive(Clone, Copy)]
struct Parts {
    config: bool,
    secret: bool,
}

async fn delete_objects(
    client: &Client,
    namespace: &str,
    name: &str,
    parts: Parts,
    requests: &AtomicU64,
) -> Result<(), String> {
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), namespace);
    let configs: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    requests.fetch_add(
        1 + u64::from(parts.config) + u64::from(parts.secret),
        Ordering::Relaxed,
    );
    let gone = |r: Result<_, kube::Error>| match r {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.is_not_found() => Ok(()),
        Err(e) => Err(format!("cannot delete {name}: {e}")),
    };
    gone(
        sets.delete(name, &DeleteParams::background())
            .await
            .map(|_| ()),
    )?;
    if parts.config {
        gone(
            configs
                .delete(name, &DeleteParams::background())
                .await
                .map(|_| ()),
        )?;
    }
    if parts.secret {
        gone(
            secrets
                .delete(name, &DeleteParams::background())
                .await
                .map(|_| ()),
        )?;
    }
    Ok(())
}

/// One ReplicaSet and its instances.
struct Set {
    template: PodTemplate,
    /// Where it lives: the app's `[kubernetes] namespace`, or the daemon's.
    namespace: String,
    /// Made (or found) on the API server.
    created: bool,
    /// It could not be made: its instances were told why.
    failed: bool,
    /// The count last written.
    written: i32,
    slots: Vec<Slot>,
    /// Per instance: what was last reported, and whether its current pod was ever ready.
    seen: BTreeMap<String, (Observed, Option<String>, bool)>,
    stopping: BTreeMap<String, Vec<oneshot::Sender<()>>>,
    /// Pods whose deletion cost was written and not yet seen in the watch.
    awaiting_cost: BTreeSet<String>,
}

impl Set {
    fn wanted(&self) -> i32 {
        self.slots.iter().filter(|s| !s.retiring).count() as i32
    }
}

struct Task {
    client: Client,
    /// The daemon's namespace (`--namespace`), watched from the start.
    home: String,
    owner: String,
    events: mpsc::UnboundedSender<InstanceEvent>,
    statuses: Arc<Mutex<BTreeMap<String, PodStatus>>>,
    requests: Arc<AtomicU64>,
    sets: BTreeMap<String, Set>,
    /// Every watched namespace's pods, by name (unique: their ReplicaSets' names are).
    pods: BTreeMap<String, Pod>,
    /// Namespaces watched, and those `run` is to start watching.
    watched: BTreeSet<String>,
    to_watch: Vec<String>,
    /// Namespaces whose first listing is in, and the listings under way.
    synced: BTreeSet<String>,
    listings: BTreeMap<String, BTreeMap<String, Pod>>,
    /// Adoptions waiting for their namespace's first listing.
    waiting_for_sync: Vec<Command>,
    /// Marked pods that a live instance took over (see `binding.rs`): their mark goes.
    uncost: BTreeSet<String>,
    /// Unmarked, and the watch has not shown it yet.
    unmarked: BTreeSet<String>,
    /// Each instance's log file, and what its pod's output is read from: (pod, restarts, since).
    logs: BTreeMap<String, Arc<LogSink>>,
    following: BTreeMap<String, (String, u32)>,
    /// Adopted instances whose first follower skips what the previous daemon read.
    adopted: BTreeSet<String>,
}

/// One namespace's pod watch, its events told with the namespace.
type PodStream =
    futures_util::stream::BoxStream<'static, (String, Result<watcher::Event<Pod>, watcher::Error>)>;

impl Task {
    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let mut pods = futures_util::stream::SelectAll::<PodStream>::new();
        self.watch(&self.home.clone());
        loop {
            for namespace in std::mem::take(&mut self.to_watch) {
                pods.push(self.pod_stream(namespace));
            }
            tokio::select! {
                command = commands.recv() => {
                    let Some(command) = command else { return };
                    self.command(command).await;
                    // A burst of starts is one write of the count.
                    while let Ok(command) = commands.try_recv() {
                        self.command(command).await;
                    }
                }
                event = pods.next() => {
                    match event {
                        Some((namespace, Ok(event))) => self.watched(&namespace, event).await,
                        Some((namespace, Err(e))) => tracing::warn!("watching pods in {namespace}: {e}; retrying"),
                        None => return,
                    }
                }
            }
            self.flush().await;
        }
    }

    /// Starts watching `namespace`'s pods, once.
    fn watch(&mut self, namespace: &str) {
        if self.watched.insert(namespace.to_owned()) {
            self.to_watch.push(namespace.to_owned());
        }
    }

    fn pod_stream(&self, namespace: String) -> PodStream {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);
        let selector = format!("{}={}", names::OWNER, self.owner);
        if namespace != self.home {
            tracing::info!("watching pods in namespace {namespace} too");
        }
        watcher(pods, watcher::Config::default().labels(&selector))
            .default_backoff()
            .map(move |event| (namespace.clone(), event))
            .boxed()
    }

    /// The namespace of the set `name` (the daemon's if it is unknown).
    fn namespace_of(&self, name: &str) -> String {
        self.sets
            .get(name)
            .map_or_else(|| self.home.clone(), |s| s.namespace.clone())
    }

    /// Makes the ReplicaSet the owner of its `K` of the same name (`patch`: the ownerReference), so
    /// the object goes with it; a failure only leaves it for `remove` to delete.
    async fn tie<K>(&self, name: &str, patch: &serde_json::Value)
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + k8s_openapi::serde::de::DeserializeOwned
            + std::fmt::Debug,
        <K as kube::Resource>::DynamicType: Default,
    {
        let kind = K::kind(&Default::default()).into_owned();
        if let Err(e) = self
            .api::<K>(&self.namespace_of(name))
            .patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
        {
            tracing::warn!("cannot tie {kind} {name} to its ReplicaSet: {e}");
        }
    }

    fn api<K>(&self, namespace: &str) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        self.requests.fetch_add(1, Ordering::Relaxed);
        Api::namespaced(self.client.clone(), namespace)
    }

    async fn command(&mut self, command: Command) {
        match command {
            Command::Start { id, template, log } => {
                if let Some(log) = log {
                    self.logs.insert(id.clone(), log);
                }
                let name = template.key.object_name(&self.owner);
                let namespace = template
                    .placement
                    .namespace
                    .clone()
                    .unwrap_or_else(|| self.home.clone());
                self.watch(&namespace);
                let set = self.sets.entry(name.clone()).or_insert_with(|| Set {
                    template: *template,
                    namespace,
                    created: false,
                    failed: false,
                    written: 0,
                    slots: Vec::new(),
                    seen: BTreeMap::new(),
                    stopping: BTreeMap::new(),
                    awaiting_cost: BTreeSet::new(),
                });
                set.slots.push(Slot {
                    instance: id,
                    pod: None,
                    retiring: false,
                });
                if !set.created && !set.failed {
                    self.create(&name).await;
                }
                self.settle(&name);
            }
            Command::Stop { id, done } => {
                let Some((name, set)) = self
                    .sets
                    .iter_mut()
                    .find(|(_, s)| s.slots.iter().any(|slot| slot.instance == id))
                else {
                    let _ = done.send(());
                    return;
                };
                let name = name.clone();
                let slot = set.slots.iter_mut().find(|s| s.instance == id).unwrap();
                slot.retiring = true;
                let Some(pod) = slot.pod.clone() else {
                    // No pod yet: the lower count removes a surplus one.
                    set.slots.retain(|s| s.instance != id);
                    set.seen.remove(&id);
                    let _ = done.send(());
                    return;
                };
                set.stopping.entry(id.clone()).or_default().push(done);
                self.uncost.remove(&pod);
                let unmarked = self.unmarked.remove(&pod);
                if !unmarked
                    && self
                        .pods
                        .get(&pod)
                        .is_some_and(|p| cost(p) == Some(i32::MIN))
                {
                    // Already marked (a drained pod an instance took over): the watch shows no change.
                    self.settle(&name);
                    return;
                }
                let Some(set) = self.sets.get_mut(&name) else {
                    return;
                };
                set.awaiting_cost.insert(pod.clone());
                let patch =
                    json!({"metadata": {"annotations": {DELETION_COST: i32::MIN.to_string()}}});
                if let Err(e) = self
                    .api::<Pod>(&self.namespace_of(&name))
                    .patch(&pod, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    // Gone already, or unreachable: lower the count anyway.
                    tracing::warn!("cannot mark pod {pod} of {id} to go first: {e}");
                    if let Some(set) = self.sets.get_mut(&name) {
                        set.awaiting_cost.remove(&pod);
                    }
                }
                self.settle(&name);
            }
            Command::Adopt {
                name,
                namespace,
                template,
                ids,
                reply,
            } => {
                if !self.synced.contains(&namespace) {
                    self.watch(&namespace);
                    self.waiting_for_sync.push(Command::Adopt {
                        name,
                        namespace,
                        template,
                        ids,
                        reply,
                    });
                    return;
                }
                let count = ids.len() as i32;
                let ids: Vec<String> = ids
                    .into_iter()
                    .map(|(id, log)| {
                        if let Some(log) = log {
                            self.logs.insert(id.clone(), log);
                        }
                        self.adopted.insert(id.clone());
                        id
                    })
                    .collect();
                let set = self.sets.entry(name.clone()).or_insert_with(|| Set {
                    template: *template,
                    namespace,
                    created: true,
                    failed: false,
                    written: count,
                    slots: Vec::new(),
                    seen: BTreeMap::new(),
                    stopping: BTreeMap::new(),
                    awaiting_cost: BTreeSet::new(),
                });
                for id in &ids {
                    set.slots.push(Slot {
                        instance: id.clone(),
                        pod: None,
                        retiring: false,
                    });
                }
                self.settle_quietly(&name, &ids);
                let set = &self.sets[&name];
                let adopted = ids
                    .iter()
                    .filter_map(|id| {
                        set.seen.get(id).map(|(observed, _, _)| Adopted {
                            id: id.clone(),
                            observed: observed.clone(),
                        })
                    })
                    .collect();
                let _ = reply.send(adopted);
            }
        }
    }

    /// Makes the ConfigMap and the Secret (if any), the ReplicaSet, and ties them to it (so they go
    /// with it).
    async fn create(&mut self, name: &str) {
        let set = &self.sets[name];
        let replicas = set.wanted();
        let namespace = set.namespace.clone();
        let objects = match set.template.objects(&self.owner, replicas) {
            Ok(objects) => objects,
            Err(why) => return self.fail(name, why),
        };
        if let Some(config) = &objects.config {
            match self
                .api::<ConfigMap>(&namespace)
                .create(&PostParams::default(), config)
                .await
            {
                Ok(_) => {}
                // Left by a daemon that did not adopt the ReplicaSet: the same release's env.
                Err(kube::Error::Api(s)) if s.is_already_exists() => {}
                Err(e) => return self.fail(name, format!("cannot create ConfigMap {name}: {e}")),
            }
        }
        if let Some(secret) = &objects.secret {
            let api = self.api::<Secret>(&namespace);
            match api.create(&PostParams::default(), secret).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.is_already_exists() => {
                    let patch = json!({"stringData": secret.string_data});
                    if let Err(e) = api
                        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                    {
                        return self.fail(name, format!("cannot update Secret {name}: {e}"));
                    }
                }
                // The error names the Secret, never its values.
                Err(e) => return self.fail(name, format!("cannot create Secret {name}: {e}")),
            }
        }
        let api = self.api::<ReplicaSet>(&namespace);
        let (uid, written) = match api
            .create(&PostParams::default(), &objects.replica_set)
            .await
        {
            Ok(rs) => (rs.metadata.uid, replicas),
            Err(kube::Error::Api(s)) if s.is_already_exists() => {
                // Left by a daemon on this state dir that did not adopt it: take it as it is.
                match self.api::<ReplicaSet>(&namespace).get(name).await {
                    Ok(rs) => (rs.metadata.uid, rs.spec.replicas.unwrap_or(0)),
                    Err(e) => {
                        return self.fail(name, format!("cannot read ReplicaSet {name}: {e}"));
                    }
                }
            }
            Err(e) => return self.fail(name, format!("cannot create ReplicaSet {name}: {e}")),
        };
        tracing::debug!("created ReplicaSet {name} with {written} pods");
        if let Some(uid) = uid {
            let patch = json!({"metadata": {"ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": name, "uid": uid,
            }]}});
            if objects.config.is_some() {
                self.tie::<ConfigMap>(name, &patch).await;
            }
            if objects.secret.is_some() {
                self.tie::<Secret>(name, &patch).await;
            }
        }
        if let Some(set) = self.sets.get_mut(name) {
            set.created = true;
            set.written = written;
        }
    }

    /// The ReplicaSet cannot be made: every instance of it is crash-looping, with the reason.
    fn fail(&mut self, name: &str, why: String) {
        tracing::warn!("{why}");
        let Some(set) = self.sets.get_mut(name) else {
            return;
        };
        set.failed = true;
        let key = set.template.key.clone();
        for slot in &set.slots {
            let state = InstanceState::CrashLoop {
                restarts: 0,
                last_exit: why.clone(),
            };
            self.statuses
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(
                    slot.instance.clone(),
                    PodStatus {
                        state: state.clone(),
                        restarts: 0,
                        address: None,
                        pod: None,
                        grace: set.template.grace,
                    },
                );
            let _ = self.events.send(InstanceEvent {
                id: slot.instance.clone(),
                app: key.app.clone(),
                release: key.release,
                state,
                message: why.clone(),
            });
        }
    }

    async fn watched(&mut self, namespace: &str, event: watcher::Event<Pod>) {
        let mut touched = BTreeSet::new();
        match event {
            watcher::Event::Init => {
                self.listings.insert(namespace.to_owned(), BTreeMap::new());
            }
            watcher::Event::InitApply(pod) => {
                if let (Some(list), Some(name)) =
                    (self.listings.get_mut(namespace), pod.metadata.name.clone())
                {
                    list.insert(name, pod);
                }
            }
            watcher::Event::InitDone => {
                if let Some(list) = self.listings.remove(namespace) {
                    // The listing replaces what was known of this namespace's pods only.
                    let here = |p: &Pod| p.metadata.namespace.as_deref() == Some(namespace);
                    for pod in self.pods.values().filter(|p| here(p)).chain(list.values()) {
                        touched.extend(set_of(pod));
                    }
                    self.pods.retain(|_, p| !here(p));
                    self.pods.extend(list);
                }
                if self.synced.insert(namespace.to_owned()) {
                    for command in std::mem::take(&mut self.waiting_for_sync) {
                        Box::pin(self.command(command)).await;
                    }
                }
            }
            watcher::Event::Apply(pod) => {
                touched.extend(set_of(&pod));
                if let Some(name) = pod.metadata.name.clone() {
                    self.pods.insert(name, pod);
                }
            }
            watcher::Event::Delete(pod) => {
                touched.extend(set_of(&pod));
                if let Some(name) = &pod.metadata.name {
                    self.pods.remove(name);
                }
            }
        }
        for name in touched {
            if let Some(set) = self.sets.get_mut(&name) {
                set.awaiting_cost.retain(|pod| {
                    self.pods.get(pod).is_some_and(|p| {
                        p.metadata
                            .annotations
                            .as_ref()
                            .and_then(|a| a.get(DELETION_COST))
                            .is_none()
                    })
                });
                self.settle(&name);
            }
        }
    }

    /// The set's pods, oldest first.
    fn pods_of(&self, name: &str) -> Vec<PodRef> {
        let mut pods: Vec<&Pod> = self
            .pods
            .values()
            .filter(|p| set_of(p).as_deref() == Some(name))
            .collect();
        pods.sort_by(|a, b| {
            let created = |p: &Pod| p.metadata.creation_timestamp.clone();
            created(a)
                .cmp(&created(b))
                .then(a.metadata.name.cmp(&b.metadata.name))
        });
        pods.into_iter()
            .map(|p| PodRef {
                name: p.metadata.name.clone().unwrap_or_default(),
                terminating: p.metadata.deletion_timestamp.is_some(),
            })
            .collect()
    }

    fn settle(&mut self, name: &str) {
        self.settle_with(name, &[]);
    }

    /// Like `settle`, but the instances `quiet` report nothing (their state is the answer).
    fn settle_quietly(&mut self, name: &str, quiet: &[String]) {
        self.settle_with(name, quiet);
    }

    /// Rebinds the set's instances and reports every change of state.
    fn settle_with(&mut self, name: &str, quiet: &[String]) {
        let pods = self.pods_of(name);
        let Some(set) = self.sets.get_mut(name) else {
            return;
        };
        if set.failed {
            return;
        }
        binding::bind(&mut set.slots, &pods);
        let port = set.template.port;
        // Ready means a probe passed (web, or an explicit readiness), not just a running container.
        let probed = port.is_some() || set.template.readiness.is_some();
        let key = set.template.key.clone();
        let mut ended = Vec::new();
        for slot in &set.slots {
            // Whatever the instance's state, the output of its pod's current run is read.
            if let Some(pod) = slot.pod.as_ref().and_then(|p| self.pods.get(p))
                && let Some(log) = self.logs.get(&slot.instance)
                && let Some(restarts) = running(pod)
            {
                let run = (slot.pod.clone().unwrap_or_default(), restarts);
                if self.following.get(&slot.instance) != Some(&run) {
                    let since = self.adopted.remove(&slot.instance).then_some(1);
                    let api = Api::namespaced(self.client.clone(), &set.namespace);
                    self.requests.fetch_add(1, Ordering::Relaxed);
                    drop(pod_logs::follow(api, run.0.clone(), log.clone(), since));
                    self.following.insert(slot.instance.clone(), run);
                }
            }
            if slot.retiring {
                if slot.pod.is_none() {
                    ended.push(slot.instance.clone());
                }
                continue;
            }
            let pod = slot.pod.as_ref().and_then(|p| self.pods.get(p));
            if let (Some(p), Some(name)) = (pod, &slot.pod) {
                if cost(p).is_none() {
                    self.unmarked.remove(name);
                } else if !self.unmarked.contains(name) {
                    self.uncost.insert(name.clone());
                }
            }
            let previous = set.seen.get(&slot.instance);
            let same_pod = previous.is_some_and(|(_, p, _)| p.as_ref() == slot.pod.as_ref());
            let ever_ready = same_pod && previous.is_some_and(|(_, _, r)| *r);
            let observed = match pod {
                Some(pod) => pod_state::observe(pod, port, ever_ready, probed),
                None => Observed {
                    state: InstanceState::Starting,
                    message: "waiting for its pod".into(),
                    restarts: previous.map_or(0, |(o, _, _)| o.restarts),
                    address: None,
                },
            };
            let changed = previous.is_none_or(|(o, _, _)| {
                o.state.name() != observed.state.name()
                    || o.restarts != observed.restarts
                    || o.address != observed.address
            });
            let ready_now = ever_ready || observed.state == InstanceState::Ready;
            self.statuses
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(
                    slot.instance.clone(),
                    PodStatus {
                        state: observed.state.clone(),
                        restarts: observed.restarts,
                        address: observed.address,
                        pod: slot.pod.clone(),
                        grace: set.template.grace,
                    },
                );
            if changed && let Some(log) = self.logs.get(&slot.instance) {
                log.write_line(
                    Stream::Slipway,
                    &format!("{}: {}", observed.state.name(), observed.message),
                );
            }
            if changed && !quiet.contains(&slot.instance) {
                let _ = self.events.send(InstanceEvent {
                    id: slot.instance.clone(),
                    app: key.app.clone(),
                    release: key.release,
                    state: observed.state.clone(),
                    message: match &slot.pod {
                        Some(pod) => format!("pod {pod}: {}", observed.message),
                        None => observed.message.clone(),
                    },
                });
            }
            set.seen.insert(
                slot.instance.clone(),
                (observed, slot.pod.clone(), ready_now),
            );
        }
        for id in ended {
            set.slots.retain(|s| s.instance != id);
            set.seen.remove(&id);
            self.following.remove(&id);
            self.adopted.remove(&id);
            if let Some(log) = self.logs.remove(&id) {
                log.write_line(Stream::Slipway, "stopped: its pod is gone");
            }
            for done in set.stopping.remove(&id).unwrap_or_default() {
                let _ = done.send(());
            }
        }
    }

    /// Writes each changed count; deletes a set with no instance and no pod left.
    async fn flush(&mut self) {
        let mut writes = Vec::new();
        let mut empty = Vec::new();
        for (name, set) in &self.sets {
            if !set.created || set.failed {
                if set.slots.is_empty() {
                    empty.push(name.clone());
                }
                continue;
            }
            let wanted = set.wanted();
            // Lowered only once the retiring pod's deletion cost is seen (the controller reads the
            // same API server a moment later).
            if wanted != set.written && (wanted > set.written || set.awaiting_cost.is_empty()) {
                writes.push((name.clone(), wanted));
            }
            if set.slots.is_empty() && set.written == 0 && self.pods_of(name).is_empty() {
                empty.push(name.clone());
            }
        }
        for pod in std::mem::take(&mut self.uncost) {
            let patch = json!({"metadata": {"annotations": {DELETION_COST: null}}});
            let namespace = self
                .pods
                .get(&pod)
                .and_then(|p| p.metadata.namespace.clone())
                .unwrap_or_else(|| self.home.clone());
            if let Err(e) = self
                .api::<Pod>(&namespace)
                .patch(&pod, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                tracing::warn!("cannot unmark pod {pod}: {e}");
            } else {
                self.unmarked.insert(pod);
            }
        }
        for (name, replicas) in writes {
            let patch = json!({"spec": {"replicas": replicas}});
            match self
                .api::<ReplicaSet>(&self.namespace_of(&name))
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    tracing::debug!("ReplicaSet {name}: {replicas} pods");
                    if let Some(set) = self.sets.get_mut(&name) {
                        set.written = replicas;
                    }
                }
                Err(e) => tracing::warn!("cannot set ReplicaSet {name} to {replicas} pods: {e}"),
            }
        }
        for name in empty {
            if let Some(set) = self.sets.remove(&name)
                && set.created
            {
                // Only what the template made: an app without env or secrets has neither.
                let parts = Parts {
                    config: !set.template.env.is_empty(),
                    secret: !set.template.secrets.is_empty(),
                };
                match delete_objects(&self.client, &set.namespace, &name, parts, &self.requests)
                    .await
                {
                    Ok(()) => tracing::info!(
                        "deleted ReplicaSet {name}, its last pod gone ({} API requests so far)",
                        self.requests.load(Ordering::Relaxed)
                    ),
                    Err(e) => tracing::warn!("{e}"),
                }
            }
        }
    }
}

/// The restart count of the pod's container while it runs.
fn running(pod: &Pod) -> Option<u32> {
    let status = pod
        .status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .iter()
        .find(|c| c.name == names::CONTAINER)?;
    status.state.as_ref()?.running.as_ref()?;
    Some(status.restart_count.max(0) as u32)
}

/// The pod's deletion cost, if it has one.
fn cost(pod: &Pod) -> Option<i32> {
    pod.metadata
        .annotations
        .as_ref()?
        .get(DELETION_COST)?
        .parse()
        .ok()
}

/// The ReplicaSet a pod belongs to (its controller).
fn set_of(pod: &Pod) -> Option<String> {
    pod.metadata
        .owner_references
        .as_ref()?
        .iter()
        .find(|o| o.kind == "ReplicaSet" && o.controller == Some(true))
        .map(|o| o.name.clone())
}

/// How long `stop` may wait for a pod to go: its grace period and the kubelet's reaction.
fn stop_deadline(grace: Duration) -> Duration {
    grace + Duration::from_secs(30)
}
