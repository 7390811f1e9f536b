//! The pure core of slipway.
//!
//! Everything here is plain data and pure functions: the app spec (what `slipway.toml` means once parsed),
//! releases, and the rollout state machine that decides, from what is observed, what to do next. There is
//! no IO, no clock and no async here: time is an input. That is what lets the rollout logic be tested
//! with thousands of simulated rollouts in milliseconds, and lets every runtime share the same logic.

pub mod analysis;
pub mod autoscale;
pub mod flag_ramp;
pub mod image_ref;
pub mod migration_guard;
pub mod release;
pub mod rollout;
pub mod schedule;
pub mod schema_watch;
pub mod slo;
pub mod spec;
pub mod strategy;
pub mod verdict;
