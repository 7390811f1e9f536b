//! The IO of leader election: reads and writes the Lease by `lease.rs`'s rules, each write
//! conditional on the `resourceVersion` read (optimistic concurrency: of two writers one gets 409).

use crate::lease::{Candidate, Decision, Record};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::PostParams;
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch};

/// A candidate for one Lease.
pub struct LeaderElection {
    api: Api<Lease>,
    name: String,
    candidate: Candidate,
}

/// What one round did.
enum Round {
    Leading,
    Standby(String),
}

impl LeaderElection {
    pub async fn connect(
        namespace: Option<String>,
        name: &str,
        identity: String,
        duration: Duration,
    ) -> Result<LeaderElection, String> {
        let (client, namespace) = crate::client(namespace).await?;
        Ok(LeaderElection {
            api: Api::namespaced(client, &namespace),
            name: name.to_owned(),
            candidate: Candidate::new(identity, duration),
        })
    }

    pub fn identity(&self) -> &str {
        self.candidate.identity()
    }

    /// Returns once this candidate holds the Lease; `on_standby` hears each new holder meanwhile.
    pub async fn acquire(&mut self, mut on_standby: impl FnMut(&str)) -> Result<(), String> {
        let mut last_holder = None;
        loop {
            match self.round().await {
                Ok(Round::Leading) => return Ok(()),
                Ok(Round::Standby(holder)) => {
                    if last_holder.as_ref() != Some(&holder) {
                        on_standby(&holder);
                        last_holder = Some(holder);
                    }
                }
                // Lost a race (409) or the API server is away: the next round reads again.
                Err(error) => tracing::debug!(%error, lease = %self.name, "lease round failed"),
            }
            // A standby checks as often as a leader renews: it notices a release within that.
            tokio::time::sleep(self.candidate.renew_every().min(Duration::from_secs(1))).await;
        }
    }

    /// Keeps renewing in the background; the `Leadership` says when it is lost.
    pub fn hold(mut self) -> Leadership {
        let (lost_tx, lost) = watch::channel(false);
        let (stop, mut stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let mut renewed = Instant::now();
            loop {
                tokio::select! {
                    _ = &mut stopped => return self,
                    _ = tokio::time::sleep(self.candidate.renew_every()) => {}
                }
                match self.round().await {
                    Ok(Round::Leading) => renewed = Instant::now(),
                    Ok(Round::Standby(holder)) => {
                        tracing::error!(lease = %self.name, %holder, "another controller holds the lease now");
                        let _ = lost_tx.send(true);
                        return self;
                    }
                    Err(error) => {
                        tracing::warn!(%error, lease = %self.name, "cannot renew the lease")
                    }
                }
                if self.candidate.lost(renewed, Instant::now()) {
                    let _ = lost_tx.send(true);
                    return self;
                }
            }
        });
        Leadership {
            lost,
            stop: Some(stop),
            task,
        }
    }

    /// One read and, if the rules say so, one conditional write.
    async fn round(&mut self) -> Result<Round, String> {
        let read = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(|e| format!("cannot read the lease {}: {e}", self.name))?;
        let record = read.as_ref().map(record_of);
        let now = jiff_now();
        match self.candidate.decide(record.as_ref(), Instant::now()) {
            Decision::Standby { holder } => Ok(Round::Standby(holder)),
            Decision::Create => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(self.spec(now.clone(), now, 0)),
                };
                self.api
                    .create(&PostParams::default(), &lease)
                    .await
                    .map_err(|e| format!("cannot create the lease {}: {e}", self.name))?;
                Ok(Round::Leading)
            }
            Decision::Acquire { transitions } => {
                self.write(read, |me, spec| {
                    *spec = me.spec(now.clone(), now, transitions)
                })
                .await
            }
            Decision::Renew => {
                self.write(read, |_, spec| spec.renew_time = Some(now))
                    .await
            }
        }
    }

    async fn write(
        &self,
        read: Option<Lease>,
        change: impl FnOnce(&Self, &mut LeaseSpec),
    ) -> Result<Round, String> {
        let mut lease = read.expect("a decision to write follows a read lease");
        // `resourceVersion` stays as read: the API server refuses the write if it changed since.
        change(self, lease.spec.get_or_insert_with(LeaseSpec::default));
        self.api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
            .map_err(|e| format!("cannot write the lease {}: {e}", self.name))?;
        Ok(Round::Leading)
    }

    fn spec(&self, acquired: MicroTime, renewed: MicroTime, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.candidate.identity().to_owned()),
            lease_duration_seconds: Some(
                i32::try_from(self.candidate.duration().as_secs().max(1)).unwrap_or(i32::MAX),
            ),
            acquire_time: Some(acquired),
            renew_time: Some(renewed),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    /// Gives the Lease up (holder empty), so a standby takes over at its next check, not after
    /// a whole duration. Only if it is still mine.
    async fn release(&mut self) -> Result<(), String> {
        let read = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(|e| format!("cannot read the lease {}: {e}", self.name))?;
        let Some(mut lease) = read else { return Ok(()) };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(self.candidate.identity()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.renew_time = Some(jiff_now());
        self.api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
            .map_err(|e| format!("cannot release the lease {}: {e}", self.name))?;
        Ok(())
    }
}

/// The Lease held: renewed in the background until lost or released.
pub struct Leadership {
    lost: watch::Receiver<bool>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<LeaderElection>,
}

impl Leadership {
    /// Resolves `true` once the Lease is lost (another holder, or no renew in time), `false` if it
    /// was released instead.
    pub fn lost(&self) -> impl std::future::Future<Output = bool> + Send + 'static {
        let mut lost = self.lost.clone();
        async move { lost.wait_for(|lost| *lost).await.is_ok() }
    }

    /// Stops renewing and keeps the Lease as it is: for a successor that renews it under the same
    /// identity (`slipway upgrade`). `lost()` then resolves `false`.
    pub async fn hand_on(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = self.task.await;
    }

    /// Stops renewing and gives the Lease up.
    pub async fn release(mut self) -> Result<(), String> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let mut election = self
            .task
            .await
            .map_err(|e| format!("the lease renewal task failed: {e}"))?;
        if *self.lost.borrow() {
            return Ok(());
        }
        election.release().await
    }
}

fn record_of(lease: &Lease) -> Record {
    let spec = lease.spec.clone().unwrap_or_default();
    Record {
        holder: spec.holder_identity.unwrap_or_default(),
        duration: Duration::from_secs(spec.lease_duration_seconds.unwrap_or(0).max(0) as u64),
        renew_time: spec.renew_time.map(|t| t.0.to_string()).unwrap_or_default(),
        transitions: spec.lease_transitions.unwrap_or(0),
    }
}

fn jiff_now() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}
