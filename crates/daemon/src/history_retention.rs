//! How long the history that grows with every deploy is kept: the policy, and what it means for one
//! app's tables at a given time. Pure: `ops/history_pruning.rs` reads the facts from the store, asks
//! here, and deletes in small batches.
//!
//! Three kinds of history, each kept by count (rows per app) and by age, whichever lets go first:
//!
//! - **events**: the journal of what happened (instance ready, rollout steps…): 100,000 per app, 30 days;
//! - **rollouts**: finished rollouts with their state: 10,000 per app, 180 days;
//! - **audit**: who asked for what (`audit` events, the daemon's own journal of tokens made and revoked,
//!   the flag audit and finished flag ramps): 100,000 per app, 365 days — kept longest.
//!
//! Whatever the policy says, what the daemon still needs stays: the events since the current rollout
//! started, unfinished rollouts and those that made the stable release, its rollback target or a
//! release in the current rollout, and each flag's newest audit entry and ramp. Releases are never
//! pruned (the history of releases is `slipway history`); cron runs keep their own `history`.

use crate::retention::kept_versions;
use slipway_core::release::{Release, Version};
use slipway_store::{Cut, EventKinds, HistoryExtent, TableExtent};
use std::time::Duration;

/// The app name under which the daemon journals its own audit events (tokens made and revoked).
pub const DAEMON_JOURNAL: &str = "-daemon";

/// One kind of history: the newest `rows` (per app) that are younger than `age` stay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keep {
    pub rows: u64,
    pub age: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryRetention {
    pub events: Keep,
    pub rollouts: Keep,
    pub audit: Keep,
    /// How often a pruning round runs.
    pub every: Duration,
    /// Rows deleted per transaction; a round pauses between batches.
    pub batch: usize,
}

const DAY: Duration = Duration::from_secs(24 * 3600);

impl Default for HistoryRetention {
    fn default() -> Self {
        HistoryRetention {
            events: Keep {
                rows: 100_000,
                age: DAY * 30,
            },
            rollouts: Keep {
                rows: 10_000,
                age: DAY * 180,
            },
            audit: Keep {
                rows: 100_000,
                age: DAY * 365,
            },
            every: Duration::from_secs(600),
            batch: 500,
        }
    }
}

/// A table (and which of its rows) that one pruning job works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Events(EventKinds),
    Rollouts,
    FlagAudit,
    FlagRamps,
}

/// What the daemon still needs of one app's history, whatever the policy says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Needed {
    /// Events from this time on (the current rollout's start) stay.
    pub events_from_ms: Option<i64>,
    /// Rollouts to these versions stay (stable, rollback target, the current rollout's releases).
    pub versions: Vec<Version>,
}

/// What the daemon needs of an app with these releases (newest first) and this rollout in progress
/// (`(started_at, from, to)`).
pub fn needed(releases: &[Release], rollout: Option<(i64, Option<Version>, Version)>) -> Needed {
    let in_use: Vec<Version> = rollout
        .iter()
        .flat_map(|(_, from, to)| from.iter().copied().chain([*to]))
        .collect();
    // keep = 0: only the stable release, its rollback target and what is in use.
    let mut versions: Vec<Version> = kept_versions(releases, 0, &in_use).into_iter().collect();
    versions.sort_unstable();
    Needed {
        events_from_ms: rollout.map(|(started_at, _, _)| started_at),
        versions,
    }
}

impl HistoryRetention {
    /// The tables of one app, and the policy each is kept by.
    pub fn jobs(&self, app: &str) -> Vec<(Table, Keep)> {
        if app == DAEMON_JOURNAL {
            // Everything in the daemon's own journal is audit.
            return vec![(Table::Events(EventKinds::All), self.audit)];
        }
        vec![
            (Table::Events(EventKinds::NotAudit), self.events),
            (Table::Events(EventKinds::Audit), self.audit),
            (Table::Rollouts, self.rollouts),
            (Table::FlagAudit, self.audit),
            (Table::FlagRamps, self.audit),
        ]
    }
}

impl HistoryRetention {
    /// Whether a round could delete anything: not when every table is within the row limit and the
    /// age of each policy that prunes it (a count and an age over all apps bound each app's).
    pub fn may_prune(&self, extent: &HistoryExtent, now_ms: u64) -> bool {
        let beyond = |table: TableExtent, keeps: &[Keep]| {
            keeps.iter().any(|&keep| {
                table.rows > keep.rows
                    || table
                        .oldest_ms
                        .is_some_and(|oldest| oldest < cut(keep, now_ms, None).before_ms)
            })
        };
        // The same policies as `jobs`: events by both (audit and the rest), the others by one.
        beyond(extent.events, &[self.events, self.audit])
            || beyond(extent.rollouts, &[self.rollouts])
            || beyond(extent.flag_audit, &[self.audit])
            || beyond(extent.flag_ramps, &[self.audit])
    }
}

/// The cut for rows kept by `keep` at `now_ms`, given the id of the newest `rows`-th row (`floor`,
/// `None` when there are fewer).
pub fn cut(keep: Keep, now_ms: u64, floor: Option<i64>) -> Cut {
    let age_ms = u64::try_from(keep.age.as_millis()).unwrap_or(u64::MAX);
    Cut {
        before_ms: i64::try_from(now_ms.saturating_sub(age_ms)).unwrap_or(i64::MAX),
        below_id: floor,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use slipway_core::release::ReleaseStatus;

    /// Keeps two releases' artifacts, as the tests' specs always did.
    fn release(version: Version, status: ReleaseStatus) -> Release {
        crate::test_release::release_kept(version, status, 2)
    }

    #[test]
    fn the_stable_release_its_rollback_target_and_the_rollout_in_progress_are_needed() {
        use ReleaseStatus::*;
        let releases = vec![
            release(6, Pending),
            release(5, Failed),
            release(4, Active),
            release(3, Superseded),
            release(2, Superseded),
            release(1, Superseded),
        ];
        let settled = needed(&releases, None);
        assert_eq!(settled.versions, [3, 4]);
        assert_eq!(settled.events_from_ms, None);
        let rolling = needed(&releases, Some((1_000, Some(4), 6)));
        assert_eq!(rolling.versions, [3, 4, 6]);
        assert_eq!(rolling.events_from_ms, Some(1_000));
    }

    #[test]
    fn audit_is_kept_longest_and_the_daemon_journal_is_all_audit() {
        let policy = HistoryRetention::default();
        assert!(policy.audit.age > policy.rollouts.age && policy.rollouts.age > policy.events.age);
        let jobs = policy.jobs("shop");
        assert!(jobs.contains(&(Table::Events(EventKinds::Audit), policy.audit)));
        assert!(jobs.contains(&(Table::Events(EventKinds::NotAudit), policy.events)));
        assert!(jobs.contains(&(Table::FlagAudit, policy.audit)));
        assert_eq!(
            policy.jobs(DAEMON_JOURNAL),
            [(Table::Events(EventKinds::All), policy.audit)]
        );
    }

    #[test]
    fn a_round_is_skipped_only_when_every_table_is_within_every_limit() {
        let policy = HistoryRetention {
            events: Keep {
                rows: 10,
                age: Duration::from_secs(60),
            },
            audit: Keep {
                rows: 20,
                age: Duration::from_secs(600),
            },
            ..HistoryRetention::default()
        };
        let now = 1_000_000;
        let young = |rows| TableExtent {
            rows,
            oldest_ms: Some(now as i64 - 1_000),
        };
        let within = HistoryExtent {
            events: young(10),
            rollouts: young(0),
            flag_audit: young(20),
            flag_ramps: TableExtent::default(),
        };
        assert!(!policy.may_prune(&within, now));
        let more_events = HistoryExtent {
            events: young(11),
            ..within
        };
        assert!(
            policy.may_prune(&more_events, now),
            "the events' row limit is the lower"
        );
        let old_event = HistoryExtent {
            events: TableExtent {
                rows: 1,
                oldest_ms: Some(now as i64 - 61_000),
            },
            ..within
        };
        assert!(
            policy.may_prune(&old_event, now),
            "older than the events' age"
        );
        let more_audit = HistoryExtent {
            flag_audit: young(21),
            ..within
        };
        assert!(policy.may_prune(&more_audit, now));
    }

    #[test]
    fn a_cut_is_age_and_count_and_never_underflows() {
        let keep = Keep {
            rows: 5,
            age: Duration::from_secs(60),
        };
        assert_eq!(
            cut(keep, 100_000, Some(42)),
            Cut {
                before_ms: 40_000,
                below_id: Some(42)
            }
        );
        // Younger than the age everywhere: nothing goes by age.
        assert_eq!(cut(keep, 10, None).before_ms, 0);
        let forever = Keep {
            rows: 5,
            age: Duration::MAX,
        };
        assert_eq!(cut(forever, 100_000, None).before_ms, 0);
    }
}
