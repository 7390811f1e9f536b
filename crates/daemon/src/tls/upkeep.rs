//! The task that keeps every host's certificate: it reads which hosts want TLS from the store (the
//! stable release and the one rolling out, of every app), loads file certificates again when their
//! mtime changes, orders ACME certificates that are missing or due (one task per order, so a slow CA
//! holds up no other host), and publishes the result to the [`CertStore`] and the status list.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::sign::CertifiedKey;
use slipway_api::CertStatus;
use slipway_core::spec::TlsSpec;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::tls::acme::{Acme, Issued, write_private};
use crate::tls::cert_facts::{self, CertFacts};
use crate::tls::cert_store::CertStore;
use crate::tls::revocation::Reason;
use crate::tls::{Ask, TlsSettings, pem_files, renewal};

/// How often the store and the certificate files are looked at again.
const LOOK_AGAIN: Duration = Duration::from_secs(2);

pub(super) struct Upkeep {
    acme: Option<Arc<Acme>>,
    store: Arc<slipway_store::Store>,
    dir: PathBuf,
    certs: Arc<CertStore>,
    status: Arc<Mutex<Vec<CertStatus>>>,
    hosts: BTreeMap<String, Host>,
    fallback: Option<Host>,
    /// Names approved for on-demand TLS (`on_demand.rs`): kept like an app's `tls = "auto"` host.
    on_demand: std::collections::BTreeSet<String>,
    /// Each release's hosts and TLS setting, read once: a release never changes, and reading and
    /// parsing every app's spec every look was most of an idle daemon's work with 100 apps.
    routing: std::collections::HashMap<(String, u64), (Vec<String>, Option<TlsSpec>)>,
}

/// One host's certificate and what happened to it.
struct Host {
    app: Option<String>,
    source: TlsSpec,
    cert: Option<Arc<CertifiedKey>>,
    facts: Option<CertFacts>,
    /// The files' mtimes when last read (files only).
    stamp: Option<(SystemTime, SystemTime)>,
    failures: u32,
    last_error: Option<String>,
    /// Not before then (backoff after a failure, or the renewal time).
    next_attempt: Option<SystemTime>,
    ordering: bool,
    /// This host's place in the renewal jitter, −1..1 (fixed per host, so renewals do not move).
    jitter: f64,
    /// A revocation asked for: done when the order under way (or started for it) ends.
    revoking: Option<Revocation>,
    /// What became of the last revocation asked for, for `certs`.
    revocation_note: Option<String>,
}

/// A certificate to revoke once it is replaced.
struct Revocation {
    der: Vec<u8>,
    serial: String,
    reason: Reason,
}

/// An order's end, sent back to the loop.
type Done = (String, Result<Issued, String>);

/// A revocation's end: host, serial, reason, the CA's answer.
type Revoked = (String, String, Reason, Result<(), String>);

impl Upkeep {
    pub(super) fn new(
        settings: TlsSettings,
        acme: Option<Arc<Acme>>,
        store: Arc<slipway_store::Store>,
        dir: PathBuf,
        certs: Arc<CertStore>,
        status: Arc<Mutex<Vec<CertStatus>>>,
    ) -> Upkeep {
        let fallback = settings.fallback.as_ref().map(|(cert, key)| {
            Host::new(
                None,
                TlsSpec::Files {
                    cert: cert.display().to_string(),
                    key: key.display().to_string(),
                },
            )
        });
        Upkeep {
            acme,
            store,
            dir,
            certs,
            status,
            hosts: BTreeMap::new(),
            fallback,
            on_demand: Default::default(),
            routing: Default::default(),
        }
    }

    pub(super) async fn run(
        mut self,
        mut asks: mpsc::UnboundedReceiver<Ask>,
        mut approved: mpsc::UnboundedReceiver<String>,
        look: Arc<tokio::sync::Notify>,
        stop: CancellationToken,
    ) {
        let (done_tx, mut done) = mpsc::unbounded_channel::<Done>();
        let (revoked_tx, mut revoked) = mpsc::unbounded_channel::<Revoked>();
        loop {
            self.look(&done_tx);
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(LOOK_AGAIN) => {}
                () = look.notified() => {}
                Some(ask) = asks.recv() => self.asked(ask),
                Some((host, result)) = done.recv() => self.ordered(&host, result, &revoked_tx),
                Some((host, serial, reason, result)) = revoked.recv() => {
                    self.revoked(&host, &serial, reason, result);
                }
                Some(host) = approved.recv() => {
                    self.on_demand.insert(host);
                }
            }
        }
    }

    fn asked(&mut self, ask: Ask) {
        match ask {
            Ask::Renew(host) => {
                if let Some(h) = self.hosts.get_mut(&host) {
                    h.next_attempt = None;
                    h.stamp = None;
                }
            }
            Ask::Revoke(host, serial, reason) => {
                let Some(h) = self.hosts.get_mut(&host) else {
                    return;
                };
                // Only the certificate the caller saw: a renewal may have replaced it meanwhile.
                let der = h.cert.as_ref().and_then(|c| c.cert.first());
                let current = h.facts.as_ref().map(|f| f.serial.as_str());
                if let (Some(der), Some(current)) = (der, current)
                    && current == serial
                {
                    h.revocation_note = Some(format!(
                        "{serial} to be revoked ({}) once replaced",
                        reason.name()
                    ));
                    h.revoking = Some(Revocation {
                        der: der.to_vec(),
                        serial,
                        reason,
                    });
                    h.next_attempt = None;
                    tracing::info!(%host, reason = reason.name(),
                        "revoking a certificate: ordering its replacement first");
                }
            }
        }
    }

    /// One pass: the hosts wanted now, their files, their orders; then publish.
    fn look(&mut self, done: &mpsc::UnboundedSender<Done>) {
        match self.wanted() {
            Ok(mut wanted) => {
                for host in &self.on_demand {
                    wanted
                        .entry(host.clone())
                        .or_insert_with(|| (None, TlsSpec::Auto));
                }
                self.hosts.retain(|host, _| wanted.contains_key(host));
                for (host, (app, source)) in wanted {
                    let entry = self
                        .hosts
                        .entry(host)
                        .or_insert_with(|| Host::new(app.clone(), source.clone()));
                    if entry.source != source {
                        *entry = Host::new(app.clone(), source);
                    }
                    entry.app = app;
                }
            }
            Err(error) => tracing::warn!(%error, "cannot read the apps' TLS settings"),
        }
        let now = SystemTime::now();
        if let Some(fallback) = &mut self.fallback {
            fallback.refresh_files("(fallback)", None);
        }
        let names: Vec<String> = self.hosts.keys().cloned().collect();
        for name in names {
            let Some(host) = self.hosts.get_mut(&name) else {
                continue;
            };
            match host.source.clone() {
                TlsSpec::Files { .. } => {
                    if let Some(error) = host.refresh_files(&name, host.app.clone()) {
                        self.record(&name, "certificate_failed", &error);
                    }
                }
                TlsSpec::Auto => self.maybe_order(&name, now, done),
            }
        }
        self.publish();
    }

    /// Host → (app, source) for every app's stable release and the release it is rolling out to.
    fn wanted(&mut self) -> anyhow::Result<BTreeMap<String, (Option<String>, TlsSpec)>> {
        let mut wanted = BTreeMap::new();
        let mut seen = std::collections::HashSet::new();
        for app in self.store.apps()? {
            let mut versions = Vec::new();
            versions.extend(self.store.stable(&app)?);
            versions.extend(self.store.active_rollout(&app)?.map(|r| r.to));
            for version in versions {
                let key = (app.clone(), version);
                if !self.routing.contains_key(&key) {
                    let Some(release) = self.store.release(&app, version)? else {
                        continue;
                    };
                    let routing = release.spec.routing;
                    self.routing
                        .insert(key.clone(), (routing.hosts, routing.tls));
                }
                let Some((hosts, Some(tls))) = self.routing.get(&key) else {
                    seen.insert(key);
                    continue;
                };
                for host in hosts {
                    wanted
                        .entry(host.clone())
                        .or_insert_with(|| (Some(app.clone()), tls.clone()));
                }
                seen.insert(key);
            }
        }
        // Releases no longer stable or rolling out are forgotten.
        self.routing.retain(|key, _| seen.contains(key));
        Ok(wanted)
    }

    fn maybe_order(&mut self, name: &str, now: SystemTime, done: &mpsc::UnboundedSender<Done>) {
        let dir = self.dir.clone();
        let Some(host) = self.hosts.get_mut(name) else {
            return;
        };
        if host.cert.is_none() && host.failures == 0 && !host.ordering {
            // A certificate issued before a restart.
            if let Ok(cert) = pem_files::load(&cert_path(&dir, name), &key_path(&dir, name)) {
                host.set_cert(cert);
            }
        }
        if host.ordering || host.next_attempt.is_some_and(|at| now < at) {
            return;
        }
        let Some(acme) = self.acme.clone() else {
            if host.last_error.is_none() {
                host.last_error = Some(
                    "tls = \"auto\" needs an ACME CA: start the daemon with --acme-email (and --tls-listen)"
                        .to_owned(),
                );
            }
            return;
        };
        host.ordering = true;
        let name = name.to_owned();
        let done = done.clone();
        tracing::info!(host = %name, "ordering a certificate");
        tokio::spawn(async move {
            let result = acme.issue(&name).await;
            let _ = done.send((name, result));
        });
    }

    /// An order ended: keep the certificate, or the error and when to try again; then revoke the
    /// certificate replaced, if asked to.
    fn ordered(
        &mut self,
        name: &str,
        result: Result<Issued, String>,
        revoked: &mpsc::UnboundedSender<Revoked>,
    ) {
        let dir = self.dir.clone();
        let Some(host) = self.hosts.get_mut(name) else {
            return;
        };
        host.ordering = false;
        let kept = result.and_then(|issued| {
            let cert = pem_files::parse(issued.chain_pem.as_bytes(), issued.key_pem.as_bytes())?;
            write_private(&cert_path(&dir, name), issued.chain_pem.as_bytes())
                .and_then(|()| write_private(&key_path(&dir, name), issued.key_pem.as_bytes()))
                .map_err(|e| format!("cannot save the certificate in {}: {e}", dir.display()))?;
            Ok(cert)
        });
        match kept {
            Ok(cert) => {
                host.set_cert(cert);
                let until = host.facts.as_ref().map(|f| f.not_after);
                tracing::info!(host = %name, ?until, "certificate issued");
                let message = format!("certificate issued for {name}");
                self.record(name, "certificate_issued", &message);
            }
            Err(error) => {
                host.failures += 1;
                let wait = renewal::backoff(host.failures);
                host.next_attempt = Some(SystemTime::now() + wait);
                host.last_error = Some(error.clone());
                tracing::warn!(host = %name, %error, retry_in = ?wait,
                    "cannot get a certificate; the host keeps its current one (or none)");
                let message = format!(
                    "cannot get a certificate for {name}: {error} (next try in {} s)",
                    wait.as_secs()
                );
                self.record(name, "certificate_failed", &message);
            }
        }
        self.publish();
        let pending = self.hosts.get_mut(name).and_then(|h| h.revoking.take());
        if let (Some(pending), Some(acme)) = (pending, self.acme.clone()) {
            let (name, revoked) = (name.to_owned(), revoked.clone());
            tokio::spawn(async move {
                let result = acme.revoke(&pending.der, pending.reason).await;
                let _ = revoked.send((name, pending.serial, pending.reason, result));
            });
        }
    }

    fn revoked(&mut self, host: &str, serial: &str, reason: Reason, result: Result<(), String>) {
        let reason = reason.name();
        let (kind, message) = match result {
            Ok(()) => {
                tracing::info!(%host, %serial, reason, "certificate revoked");
                let message = format!("certificate {serial} of {host} revoked ({reason})");
                ("certificate_revoked", message)
            }
            Err(error) => {
                tracing::warn!(%host, %serial, %error, "cannot revoke a certificate");
                let message = format!("cannot revoke certificate {serial} of {host}: {error}");
                ("certificate_revoke_failed", message)
            }
        };
        self.record(host, kind, &message);
        if let Some(h) = self.hosts.get_mut(host) {
            h.revocation_note = Some(message);
        }
        self.publish();
    }

    fn record(&self, host: &str, kind: &str, message: &str) {
        let Some(app) = self.hosts.get(host).and_then(|h| h.app.clone()) else {
            return;
        };
        let now = crate::clock::now_ms() as i64;
        if let Err(error) = self.store.add_event(&app, None, kind, message, now) {
            tracing::warn!(%error, "cannot record a TLS event");
        }
    }

    fn publish(&self) {
        let by_host: HashMap<String, Arc<CertifiedKey>> = self
            .hosts
            .iter()
            .filter_map(|(name, h)| Some((name.clone(), h.cert.clone()?)))
            .collect();
        self.certs.publish(by_host);
        self.certs
            .set_fallback(self.fallback.as_ref().and_then(|f| f.cert.clone()));
        let mut status: Vec<CertStatus> =
            self.hosts.iter().map(|(name, h)| h.status(name)).collect();
        if let Some(fallback) = &self.fallback {
            status.push(fallback.status("*"));
        }
        *self.status.lock().unwrap_or_else(|e| e.into_inner()) = status;
    }
}

impl Host {
    fn new(app: Option<String>, source: TlsSpec) -> Host {
        Host {
            app,
            source,
            cert: None,
            facts: None,
            stamp: None,
            failures: 0,
            last_error: None,
            next_attempt: None,
            ordering: false,
            jitter: rand::random::<f64>() * 2.0 - 1.0,
            revoking: None,
            revocation_note: None,
        }
    }

    fn set_cert(&mut self, cert: Arc<CertifiedKey>) {
        self.facts = cert.cert.first().and_then(|leaf| cert_facts::read(leaf));
        self.cert = Some(cert);
        self.failures = 0;
        self.last_error = None;
        self.next_attempt = match (&self.source, &self.facts) {
            (TlsSpec::Auto, Some(f)) => {
                Some(renewal::renew_at(f.not_before, f.not_after, self.jitter))
            }
            _ => None,
        };
    }

    /// Reads the files again if their mtimes moved; the error, when they cannot be used (the host keeps
    /// the certificate it had).
    fn refresh_files(&mut self, name: &str, _app: Option<String>) -> Option<String> {
        let TlsSpec::Files { cert, key } = &self.source else {
            return None;
        };
        let (cert, key) = (Path::new(cert), Path::new(key));
        let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        let stamp = mtime(cert).zip(mtime(key));
        if stamp.is_some() && stamp == self.stamp {
            return None;
        }
        self.stamp = stamp;
        match pem_files::load(cert, key) {
            Ok(loaded) => {
                tracing::info!(host = %name, "certificate loaded from {}", cert.display());
                self.set_cert(loaded);
                None
            }
            Err(error) => {
                self.failures += 1;
                let known = self.last_error.as_deref() == Some(error.as_str());
                self.last_error = Some(error.clone());
                if known {
                    return None;
                }
                tracing::warn!(host = %name, %error, "cannot use the certificate files");
                Some(format!("cannot use the certificate of {name}: {error}"))
            }
        }
    }

    fn status(&self, name: &str) -> CertStatus {
        let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        CertStatus {
            host: name.to_owned(),
            app: self.app.clone(),
            source: match self.source {
                TlsSpec::Auto => "acme".to_owned(),
                TlsSpec::Files { .. } => "files".to_owned(),
            },
            serial: self.facts.as_ref().map(|f| f.serial.clone()),
            issuer: self.facts.as_ref().map(|f| f.issuer.clone()),
            not_after: self.facts.as_ref().map(|f| secs(f.not_after)),
            next_renewal: self.next_attempt.map(secs),
            last_error: self.last_error.clone(),
            failures: self.failures,
            revocation: self.revocation_note.clone(),
        }
    }
}

fn cert_path(dir: &Path, host: &str) -> PathBuf {
    dir.join(format!("{host}.pem"))
}

fn key_path(dir: &Path, host: &str) -> PathBuf {
    dir.join(format!("{host}.key"))
}
