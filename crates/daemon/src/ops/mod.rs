//! The operations layer: what an operator asks for, carried out against the store and handed to the
//! controller — deploy and rollback (with images, the release phase, the migration guard and the watch of
//! the stable release after the phase), scale,
//! config vars, cron; backups, and the pruning of old history. Each takes the app's lock or a transaction, records what it did, and leaves the
//! previous release serving when it fails.

pub mod backup;
pub mod config_vars;
pub mod cron;
pub mod deploy;
pub mod drill;
pub mod drill_report;
pub mod drill_schedule;
pub mod history_pruning;
pub mod images;
pub mod maintenance;
pub mod migration_check;
pub mod one_off;
pub mod release_phase;
pub mod scale;
pub mod stable_releases;
pub mod stable_watch;
pub mod uploads;
pub mod watch_rollback;
