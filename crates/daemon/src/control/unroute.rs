//! A release of an app that a gateway or a Service routes on Kubernetes keeps its web pods until the
//! traffic has left them: the route (or selector) without it written, the gateway's report that it
//! read that route (`slipway_kube`'s `unrouted`), then the app's `traffic_lag` for the gateway's
//! data plane or kube-proxy to follow. Only then are they drained and removed, as any instance is.
//! slipway's own proxy needs none of this: it stops picking an instance the moment its table is
//! published.

use std::time::Duration;

/// What a retiring instance waits for before it drains; `wait` returns the events to record.
pub(crate) struct Unroute {
    pub(crate) writer: slipway_kube::RouteWriter,
    pub(crate) app: String,
    pub(crate) release: u64,
    /// How long the write and the gateway's report may take (the process's `drain_timeout`).
    pub(crate) limit: Duration,
    pub(crate) delay: Duration,
}

impl Unroute {
    /// Waits; returns (event kind, message) for what could not be confirmed.
    pub(crate) async fn wait(self) -> Option<(&'static str, String)> {
        let note = match self
            .writer
            .unrouted(&self.app, self.release, self.limit)
            .await
        {
            Ok(None) => None,
            Ok(Some(note)) => Some(("gateway_silent", note)),
            Err(why) => Some((
                "unroute_timeout",
                format!("{why}; removing its pods anyway"),
            )),
        };
        tokio::time::sleep(self.delay).await;
        note
    }
}
