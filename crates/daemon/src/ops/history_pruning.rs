//! The background task that keeps history bounded: every `--prune-every`, for each app, it asks
//! `history_retention` what may go and deletes it in batches of `batch` rows, one short transaction
//! each, pausing between batches — a request waiting for the database waits for one batch at most,
//! never for the whole round. A round that fails is logged and tried again at the next one.

use crate::clock::now_ms;
use crate::error::Error;
use crate::history_retention::{self, HistoryRetention, Table};
use slipway_store::{Store, StoreError, Tx};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The pause between two batches of one round.
const BREATHER: Duration = Duration::from_millis(5);
/// The first round comes this soon after start (or `every`, if shorter).
const FIRST_ROUND: Duration = Duration::from_secs(60);

/// Rows one round deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    pub events: usize,
    pub rollouts: usize,
    pub flag_audit: usize,
    pub flag_ramps: usize,
}

impl Pruned {
    fn total(&self) -> usize {
        self.events + self.rollouts + self.flag_audit + self.flag_ramps
    }
}

/// Runs rounds until `stop`.
pub async fn run(store: Arc<Store>, policy: HistoryRetention, stop: CancellationToken) {
    let mut wait = policy.every.min(FIRST_ROUND);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        wait = policy.every;
        match round(&store, &policy, &stop).await {
            Ok(pruned) if pruned.total() > 0 => {
                let rows = blocking(&store, |s| s.history_rows()).await.ok();
                tracing::info!(
                    events = pruned.events,
                    rollouts = pruned.rollouts,
                    flag_audit = pruned.flag_audit,
                    flag_ramps = pruned.flag_ramps,
                    left = ?rows,
                    "pruned old history ({} rows) as the retention policy says",
                    pruned.total()
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("cannot prune old history (next try in {wait:?}): {e}"),
        }
    }
}

/// One pass over every app's history.
pub async fn round(
    store: &Arc<Store>,
    policy: &HistoryRetention,
    stop: &CancellationToken,
) -> Result<Pruned, Error> {
    let now = now_ms();
    let mut pruned = Pruned::default();
    // Young, small history (the usual case) has nothing to go: no round over every app.
    if !policy.may_prune(&blocking(store, |s| s.history_extent()).await?, now) {
        return Ok(pruned);
    }
    for app in blocking(store, |s| s.history_apps()).await? {
        let needed = {
            let app = app.clone();
            blocking(store, move |s| {
                let rollout = s
                    .active_rollout(&app)?
                    .map(|r| (r.started_at, r.from, r.to));
                let in_use: Vec<_> = rollout
                    .iter()
                    .flat_map(|(_, from, to)| from.iter().copied().chain([*to]))
                    .collect();
                let releases = s.releases_for_retention(&app, 0, &in_use)?;
                Ok(history_retention::needed(&releases, rollout))
            })
            .await?
        };
        for (table, keep) in policy.jobs(&app) {
            let floor = {
                let app = app.clone();
                blocking(store, move |s| {
                    s.transaction(|tx| floor(tx, &app, table, keep.rows))
                })
                .await?
            };
            let cut = history_retention::cut(keep, now, floor);
            loop {
                if stop.is_cancelled() {
                    return Ok(pruned);
                }
                let (app, versions, batch) = (app.clone(), needed.versions.clone(), policy.batch);
                let from = needed.events_from_ms;
                let n = blocking(store, move |s| {
                    s.transaction(|tx| match table {
                        Table::Events(kinds) => tx.prune_events(&app, kinds, cut, from, batch),
                        Table::Rollouts => tx.prune_rollouts(&app, cut, &versions, batch),
                        Table::FlagAudit => tx.prune_flag_audit(&app, cut, batch),
                        Table::FlagRamps => tx.prune_flag_ramps(&app, cut, batch),
                    })
                })
                .await?;
                *match table {
                    Table::Events(_) => &mut pruned.events,
                    Table::Rollouts => &mut pruned.rollouts,
                    Table::FlagAudit => &mut pruned.flag_audit,
                    Table::FlagRamps => &mut pruned.flag_ramps,
                } += n;
                if n < policy.batch {
                    break;
                }
                tokio::time::sleep(BREATHER).await;
            }
        }
    }
    Ok(pruned)
}

fn floor(tx: &Tx<'_>, app: &str, table: Table, keep: u64) -> Result<Option<i64>, StoreError> {
    match table {
        Table::Events(kinds) => tx.events_floor(app, kinds, keep),
        Table::Rollouts => tx.rollouts_floor(app, keep),
        Table::FlagAudit => tx.flag_audit_floor(app, keep),
        Table::FlagRamps => tx.flag_ramps_floor(app, keep),
    }
}

/// Runs a store call off the async threads.
async fn blocking<T: Send + 'static>(
    store: &Arc<Store>,
    f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, Error> {
    let store = store.clone();
    match tokio::task::spawn_blocking(move || f(&store)).await {
        Ok(done) => Ok(done?),
        Err(e) => Err(Error::internal(format!("a pruning step stopped: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history_retention::{DAEMON_JOURNAL, Keep};

    fn tiny() -> HistoryRetention {
        let keep = Keep {
            rows: 3,
            age: Duration::from_secs(3600),
        };
        HistoryRetention {
            events: keep,
            rollouts: keep,
            audit: Keep { rows: 5, ..keep },
            every: Duration::from_secs(1),
            batch: 2,
        }
    }

    #[tokio::test]
    async fn a_round_keeps_what_the_policy_says_in_small_batches() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("db")).unwrap());
        let now = now_ms() as i64;
        for i in 0..20 {
            store.add_event("shop", None, "note", "m", now - i).unwrap();
            store
                .add_event("shop", None, "audit", "asked", now - i)
                .unwrap();
            store
                .add_event(DAEMON_JOURNAL, None, "token_created", "t", now - i)
                .unwrap();
        }
        // Older than an hour: goes whatever the count says.
        store
            .add_event("quiet", None, "note", "old", now - 7_200_000)
            .unwrap();
        let pruned = round(&store, &tiny(), &CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(pruned.events, 17 + 15 + 15 + 1);
        let shop = store.events(Some("shop"), 0, 100).unwrap();
        assert_eq!(shop.iter().filter(|e| e.kind == "note").count(), 3);
        assert_eq!(shop.iter().filter(|e| e.kind == "audit").count(), 5);
        assert_eq!(store.events(Some(DAEMON_JOURNAL), 0, 100).unwrap().len(), 5);
        assert!(store.events(Some("quiet"), 0, 100).unwrap().is_empty());
        // A second round finds nothing more.
        let again = round(&store, &tiny(), &CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(again, Pruned::default());
    }
}
