//! Service level objectives and their error budgets, from the proxy's own counts.
//!
//! Why it is built this way:
//! - **Request-based budgets.** `availability = "99.9%"` over a 30-day window allows 0.1 % of that
//!   window's requests to fail; `latency_p99 = "300ms"` allows 1 % of them to be slower than 300 ms. The
//!   budget left is `1 − bad / allowed`, so it goes below zero once more than the budget was spent.
//! - **Counts per minute** (`ledger.rs`): a 30-day window cannot be kept as per-second snapshots, and a
//!   budget must survive a daemon restart, so the daemon adds each minute's requests, errors and slow
//!   requests into one bucket (persisted), and forgets buckets older than the window. Every window the
//!   budget and the alerts ask about is a sum of buckets.
//! - **Multi-window, multi-burn-rate alerts** (`budget.rs`), as in Google's SRE workbook (ch. 5): a
//!   burn rate is the bad share of a window divided by the share the objective allows (1 = the budget
//!   lasts exactly the window). A pair fires only when both its long window (enough evidence: 1 h at
//!   14.4× is 2 % of a 30-day budget) and its short one (it stops firing soon after the problem stops)
//!   burn at least at its rate.
//! - **The canary gate** (`gate.rs`) asks the same question of a canary: would it burn at the fastest
//!   pair's rate? It answers with the sequential tests of `analysis`, not with windows: a canary lives
//!   minutes, not hours (`docs/analysis.md`, *SLO gate*).
//!
//! Everything here is pure: the time is an input (`now_ms`), the buckets are handed in.

mod budget;
mod gate;
pub use gate::GATE_TEMPLATE;
mod ledger;
mod spec;

pub use budget::{BudgetReport, BurnReport, ObjectiveReport, burndown};
pub use ledger::{Bucket, Counts, Ledger, minute_of};
pub use spec::{BurnAlert, DEFAULT_WINDOW, LatencyObjective, Sli, SloSpec, default_alerts};
