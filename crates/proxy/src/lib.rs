//! The data plane: an HTTP/1.1 + h2c reverse proxy reading an atomically swapped route table.
//!
//! The controller (in the daemon) decides *where* traffic should go and publishes it as an immutable
//! [`RouteTable`] through a [`RouteHandle`]; the proxy only executes that decision, fast. Per request: one
//! lock-free table load, a host/path lookup, a weighted release pick, a least-outstanding instance pick, and
//! a forward over the backend's own keep-alive pool. Each [`Backend`] counts its in-flight requests and long-lived streams,
//! which is what [`drain`] waits on, so the controller can take an instance out of rotation without failing
//! a request:
//!
//! ```text
//! routes.publish(table_without_instance).await;   // no new request reaches it after this returns
//! drain(&instance, requests_deadline, streams_deadline).await;
//! stop(instance);
//! ```
//!
//! Preview traffic reaches any release (even at weight 0) with `X-Slipway-Release: v7` or the host
//! `v7.<app host>`.
//!
//! The canary features are data in the same table, so the controller drives them by publishing:
//! - each [`ReleaseGroup`] (and each [`RouteRule`]) carries [`ReleaseMetrics`], recorded when a response
//!   head goes out (a few relaxed atomic adds), which the controller's analysis snapshots;
//! - [`RouteRule`]s send requests with given headers/cookies to one release (A/B tests, internal users);
//! - [`Sticky`] keeps a user on one release while the weights move (cookie, or a hash of a header or of
//!   the client address laid out so a canary user stays on the canary as its weight grows);
//! - a [`Mirror`] copies some safe requests to a shadow release and compares its answers into a
//!   [`ShadowReport`], without the client ever seeing them or the canary's metrics counting them.

mod acme_challenges;
mod admission;
mod backend;
mod before_routing;
mod body;
pub mod busy_poll;
mod demand;
mod drain;
mod flag_variants;
mod forward;
mod h1;
mod headers;
mod held;
mod http_date;
mod instance_socket;
mod options;
mod pages;
mod pick;
mod pool;
mod proxy;
mod release_metrics;
mod request_body;
mod request_headers;
mod retry;
mod route_handle;
mod route_match;
mod route_table;
mod shadow;
mod shadow_report;
mod shared;
mod sticky;
mod tls;
mod tunnel;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;

pub use acme_challenges::AcmeChallenges;
pub use backend::Backend;
pub use body::ResponseBody;
pub use demand::Demand;
pub use drain::{DrainOutcome, drain};
pub use flag_variants::FlagVariants;
pub use options::ProxyOptions;
pub use proxy::Proxy;
pub use release_metrics::ReleaseMetrics;
pub use route_handle::RouteHandle;
pub use route_table::{
    AppRoute, InjectedFault, Maintenance, Mirror, ReleaseGroup, RouteRule, RouteTable,
};
pub use shadow_report::{ShadowReport, ShadowSummary};
/// The spec types routing uses, re-exported so the table can be built without naming `slipway_core`.
pub use slipway_core::spec::{RouteMatch, Sticky};
pub use tls::{ACME_TLS_ALPN, OnDemandCerts};
