//! Feature flags in the daemon: every app's flags compiled in memory, changed through one place, served
//! over OFREP, ramped on a schedule.
//!
//! Evaluation reads an immutable snapshot (`ArcSwap`): it never waits for a writer. A change —
//! from the CLI, an import on deploy, a revert, a ramp step — goes through [`Flags::change`], which holds
//! the one writer lock, computes the new set, writes every changed flag with its audit row and the app's
//! new generation in one transaction, and only then swaps the compiled set in and tells the OFREP event
//! streams. A change that fails to validate or to commit leaves both the store and the served set as
//! they were.

pub mod import;
pub mod keys;
pub mod ramps;
pub(crate) mod stored;

use crate::clock::now_ms;
use crate::error::Error;
use arc_swap::ArcSwap;
use slipway_flags::FlagSet;
use slipway_store::{FlagKey, Store, StoreError, Tx};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// One app's flags as served.
#[derive(Debug, Default)]
pub struct AppFlags {
    pub set: FlagSet,
    /// Bumped on every change; the OFREP ETag is made from it.
    pub generation: i64,
    /// Unix milliseconds of each flag's last change.
    pub changed_at: BTreeMap<String, i64>,
}

/// An evaluation key, as the OFREP path needs it.
#[derive(Debug)]
pub struct EvaluationKey {
    pub app: String,
    pub name: String,
    pub limiter: keys::Limiter,
}

/// Sent to the OFREP event streams after each change.
#[derive(Debug, Clone)]
pub struct Changed {
    pub app: String,
    pub generation: i64,
    pub at_ms: i64,
}

/// Who changes a flag, and why; recorded in the audit log.
#[derive(Debug, Clone)]
pub struct Edit {
    pub who: String,
    pub action: String,
    pub reason: Option<String>,
    pub origin: Origin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A person or a deploy: a change to a ramping flag stops its ramp.
    Operator,
    /// A ramp's own step; dropped if that ramp has stopped meanwhile.
    Ramp(i64),
}

pub struct Flags {
    store: Arc<Store>,
    apps: ArcSwap<HashMap<String, Arc<AppFlags>>>,
    keys: ArcSwap<HashMap<keys::KeyHash, Arc<EvaluationKey>>>,
    /// Serializes changes: each is read, computed and written as a whole.
    writer: Mutex<()>,
    changes: broadcast::Sender<Changed>,
    /// Cancelled at shutdown so that open event streams end and the API can drain.
    pub closing: CancellationToken,
}

impl Flags {
    /// Loads and compiles every app's flags and the evaluation keys.
    pub fn load(store: Arc<Store>) -> Result<Flags, StoreError> {
        let mut apps = HashMap::new();
        for app in store.flag_apps()? {
            apps.insert(app.clone(), Arc::new(read_app(&store, &app)?));
        }
        let (changes, _) = broadcast::channel(64);
        let flags = Flags {
            store,
            apps: ArcSwap::from_pointee(apps),
            keys: ArcSwap::from_pointee(HashMap::new()),
            writer: Mutex::new(()),
            changes,
            closing: CancellationToken::new(),
        };
        flags.reload_keys()?;
        Ok(flags)
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The app's flags now (empty if it has none).
    pub fn app(&self, app: &str) -> Arc<AppFlags> {
        self.apps.load().get(app).cloned().unwrap_or_default()
    }

    pub fn key(&self, presented: &str) -> Option<Arc<EvaluationKey>> {
        self.keys.load().get(&keys::hash(presented)).cloned()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Changed> {
        self.changes.subscribe()
    }

    /// The one way flags change. `edit_set` gets the current set and returns the new one (or why not);
    /// `also` runs in the same transaction (a ramp's own bookkeeping). Flags that come out equal are
    /// neither written nor audited; a change that changes nothing bumps nothing.
    pub fn change(
        &self,
        app: &str,
        edit: &Edit,
        edit_set: impl FnOnce(&FlagSet) -> Result<FlagSet, Error>,
        also: impl FnOnce(&Tx<'_>) -> Result<(), StoreError>,
    ) -> Result<slipway_api::flags::FlagChanges, Error> {
        let _writing = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.app(app);
        let next = edit_set(&current.set)?;
        if let Origin::Ramp(id) = edit.origin {
            let flag_ramps = self.store.active_flag_ramps().map_err(internal)?;
            if !flag_ramps.iter().any(|r| r.id == id) {
                return Err(Error::conflict(format!("ramp #{id} has stopped")));
            }
        }
        let diffs = diff(&current.set, &next);
        let now = now_ms() as i64;
        let committed = self.store.transaction(|tx| {
            let mut changed = Vec::new();
            for d in &diffs {
                if d.flag != stored::SET_PARTS {
                    match &d.after {
                        Some(text) => tx.put_flag(app, &d.flag, text, now)?,
                        None => {
                            tx.delete_flag(app, &d.flag)?;
                        }
                    }
                }
                let seq = tx.add_flag_audit(
                    app,
                    &d.flag,
                    now,
                    &edit.who,
                    &edit.action,
                    edit.reason.as_deref(),
                    d.before.as_deref(),
                    d.after.as_deref(),
                )?;
                if edit.origin == Origin::Operator {
                    stop_ramp(tx, app, &d.flag, &edit.who, &edit.action, now)?;
                }
                changed.push(slipway_api::flags::FlagChanged {
                    flag: d.flag.clone(),
                    seq,
                    what: d.what().into(),
                });
            }
            also(tx)?;
            let generation = if diffs.is_empty() {
                current.generation
            } else {
                let (evaluators, metadata) = stored::set_parts(&next);
                tx.put_flag_set(app, &evaluators, &metadata, now)?
            };
            Ok(slipway_api::flags::FlagChanges {
                generation,
                changed,
            })
        });
        let changes = committed.map_err(|e| match e {
            e @ (StoreError::FlagRampActive { .. } | StoreError::FlagKeyExists { .. }) => {
                Error::conflict(e.to_string())
            }
            e => internal(e),
        })?;
        if !diffs.is_empty() {
            let mut changed_at = current.changed_at.clone();
            for d in &diffs {
                match d.after {
                    Some(_) => changed_at.insert(d.flag.clone(), now),
                    None => changed_at.remove(&d.flag),
                };
            }
            let served = Arc::new(AppFlags {
                set: next,
                generation: changes.generation,
                changed_at,
            });
            let mut all = HashMap::clone(&self.apps.load());
            all.insert(app.to_string(), served);
            self.apps.store(Arc::new(all));
            let _ = self.changes.send(Changed {
                app: app.to_string(),
                generation: changes.generation,
                at_ms: now,
            });
        }
        Ok(changes)
    }

    /// Records a new evaluation key (its hash) and returns the key, which is never shown again.
    pub fn create_key(
        &self,
        app: &str,
        name: &str,
        rate_per_sec: f64,
        who: &str,
    ) -> Result<String, Error> {
        if name.is_empty() || name.len() > 100 || name.contains('/') {
            return Err(Error::bad_request(format!(
                "key name {name:?}: use 1 to 100 characters, no '/'"
            )));
        }
        if !(rate_per_sec >= 0.0 && rate_per_sec.is_finite()) {
            return Err(Error::bad_request(format!(
                "rate {rate_per_sec}: requests per second, 0 for unlimited"
            )));
        }
        let key = keys::generate().map_err(|e| Error::internal(e.to_string()))?;
        let record = FlagKey {
            app: app.to_string(),
            name: name.to_string(),
            hash: hex::encode(keys::hash(&key)),
            rate_per_sec,
            created_at: now_ms() as i64,
            created_by: who.to_string(),
        };
        self.store
            .transaction(|tx| tx.add_flag_key(&record))
            .map_err(|e| match e {
                e @ StoreError::FlagKeyExists { .. } => Error::conflict(e.to_string()),
                e => internal(e),
            })?;
        self.reload_keys().map_err(internal)?;
        Ok(key)
    }

    pub fn revoke_key(&self, app: &str, name: &str) -> Result<(), Error> {
        let gone = self
            .store
            .transaction(|tx| tx.delete_flag_key(app, name))
            .map_err(internal)?;
        if !gone {
            return Err(Error::not_found(format!(
                "{app} has no evaluation key named {name}; see `slipway flags key list`"
            )));
        }
        self.reload_keys().map_err(internal)
    }

    fn reload_keys(&self) -> Result<(), StoreError> {
        let old = self.keys.load();
        let mut by_hash = HashMap::new();
        for key in self.store.flag_keys(None)? {
            let Some(hash) = hex::decode(&key.hash)
                .ok()
                .and_then(|h| keys::KeyHash::try_from(h).ok())
            else {
                tracing::warn!(app = %key.app, key = %key.name, "unreadable evaluation key hash; the key will not work");
                continue;
            };
            // A key that stays keeps its limiter: a reload must not hand out a fresh burst.
            let entry = old
                .get(&hash)
                .filter(|k| k.app == key.app && k.name == key.name)
                .cloned()
                .unwrap_or_else(|| {
                    Arc::new(EvaluationKey {
                        app: key.app.clone(),
                        name: key.name.clone(),
                        limiter: keys::Limiter::new(key.rate_per_sec),
                    })
                });
            by_hash.insert(hash, entry);
        }
        self.keys.store(Arc::new(by_hash));
        Ok(())
    }
}

fn read_app(store: &Store, app: &str) -> Result<AppFlags, StoreError> {
    let parts = store.flag_set(app)?;
    let rows = store.flags(app)?;
    let (evaluators, metadata, generation) = parts
        .map(|p| (p.evaluators, p.metadata, p.generation))
        .unwrap_or_else(|| ("{}".into(), "{}".into(), 0));
    let (set, problems) = stored::set_from_rows(&evaluators, &metadata, &rows);
    for problem in problems {
        tracing::error!(
            app,
            "{problem}; that flag is not served until it is set again"
        );
    }
    Ok(AppFlags {
        set,
        generation,
        changed_at: rows.into_iter().map(|r| (r.key, r.changed_at)).collect(),
    })
}

/// A change by someone else stops the flag's ramp: the ramp would otherwise overwrite it.
fn stop_ramp(
    tx: &Tx<'_>,
    app: &str,
    flag: &str,
    who: &str,
    action: &str,
    now: i64,
) -> Result<(), StoreError> {
    if let Some(record) = tx.active_flag_ramp(app, flag)? {
        let reason = format!("stopped: the flag was changed by {who} ({action})");
        let state = ramps::cancelled_state(&record.state, &reason);
        tx.finish_flag_ramp(record.id, &state, "cancelled", Some(&reason), now)?;
    }
    Ok(())
}

struct Diff {
    flag: String,
    before: Option<String>,
    after: Option<String>,
}

impl Diff {
    fn what(&self) -> &'static str {
        match (&self.before, &self.after) {
            (None, _) => "created",
            (_, None) => "deleted",
            _ => "changed",
        }
    }
}

/// Every flag (and the shared parts, as `$set`) whose stored form differs.
fn diff(before: &FlagSet, after: &FlagSet) -> Vec<Diff> {
    let text = |set: &FlagSet, key: &str| set.get(key).map(stored::flag_text);
    let mut keys: Vec<&str> = before.flags().map(|(k, _)| k).collect();
    keys.extend(after.flags().map(|(k, _)| k));
    keys.sort_unstable();
    keys.dedup();
    let mut diffs: Vec<Diff> = keys
        .into_iter()
        .filter_map(|key| {
            let (b, a) = (text(before, key), text(after, key));
            (b != a).then(|| Diff {
                flag: key.to_string(),
                before: b,
                after: a,
            })
        })
        .collect();
    let (parts_before, parts_after) = (stored::set_parts(before), stored::set_parts(after));
    if parts_before != parts_after {
        let empty = |s: &FlagSet| s.evaluators().is_empty() && s.metadata().is_empty();
        diffs.push(Diff {
            flag: stored::SET_PARTS.into(),
            before: (!empty(before)).then(|| stored::set_parts_json(before).to_string()),
            after: (!empty(after)).then(|| stored::set_parts_json(after).to_string()),
        });
    }
    diffs
}

fn internal(e: StoreError) -> Error {
    Error::internal(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use slipway_flags::Flag;

    fn flags() -> (tempfile::TempDir, Flags) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("s.db")).unwrap());
        (dir, Flags::load(store).unwrap())
    }

    fn edit(action: &str) -> Edit {
        Edit {
            who: "alice".into(),
            action: action.into(),
            reason: None,
            origin: Origin::Operator,
        }
    }

    fn insert(key: &str, flag: Flag) -> impl FnOnce(&FlagSet) -> Result<FlagSet, Error> {
        move |set| {
            let mut next = set.clone();
            next.insert(key, flag)
                .map_err(|e| Error::bad_request(e.to_string()))?;
            Ok(next)
        }
    }

    #[test]
    fn a_change_is_stored_audited_served_and_announced() {
        let (_dir, flags) = flags();
        let mut events = flags.subscribe();
        let done = flags
            .change(
                "shop",
                &edit("set"),
                insert("f", Flag::boolean(false)),
                |_| Ok(()),
            )
            .unwrap();
        assert_eq!(done.generation, 1);
        assert_eq!(done.changed[0].what, "created");
        assert!(flags.app("shop").set.get("f").is_some());
        assert_eq!(events.try_recv().unwrap().generation, 1);
        // The same again changes nothing: no audit row, no new generation.
        let same = flags
            .change(
                "shop",
                &edit("set"),
                insert("f", Flag::boolean(false)),
                |_| Ok(()),
            )
            .unwrap();
        assert!(same.changed.is_empty());
        assert_eq!(same.generation, 1);
        // Reloading from the store gives the same set.
        let reloaded = Flags::load(flags.store().clone()).unwrap();
        assert_eq!(reloaded.app("shop").set, flags.app("shop").set);
        assert_eq!(reloaded.app("shop").generation, 1);
        assert_eq!(flags.store().flag_audit("shop", None, 10).unwrap().len(), 1);
    }

    #[test]
    fn a_refused_or_failed_change_leaves_everything_as_it_was() {
        let (_dir, flags) = flags();
        flags
            .change(
                "shop",
                &edit("set"),
                insert("f", Flag::boolean(false)),
                |_| Ok(()),
            )
            .unwrap();
        let refused = flags.change(
            "shop",
            &edit("set"),
            |_| Err(Error::bad_request("no")),
            |_| Ok(()),
        );
        assert!(refused.is_err());
        let failed = flags.change(
            "shop",
            &edit("set"),
            insert("g", Flag::boolean(true)),
            |_| Err(StoreError::RolloutNotFound { id: 0 }),
        );
        assert!(failed.is_err());
        assert!(flags.app("shop").set.get("g").is_none());
        assert!(
            flags
                .store()
                .flags("shop")
                .unwrap()
                .iter()
                .all(|f| f.key != "g")
        );
        assert_eq!(flags.app("shop").generation, 1);
    }

    #[test]
    fn keys_evaluate_only_while_they_exist() {
        let (_dir, flags) = flags();
        let key = flags.create_key("shop", "web", 10.0, "alice").unwrap();
        assert_eq!(flags.key(&key).unwrap().app, "shop");
        assert!(flags.key("sfk_nope").is_none());
        let stored = flags.store().flag_keys(None).unwrap();
        assert!(!stored[0].hash.contains(&key[4..]));
        assert!(matches!(
            flags.create_key("shop", "web", 10.0, "bob"),
            Err(Error {
                kind: crate::error::ErrorKind::Conflict,
                ..
            })
        ));
        flags.revoke_key("shop", "web").unwrap();
        assert!(flags.key(&key).is_none());
    }
}
