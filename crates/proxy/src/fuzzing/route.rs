//! The route table's per-request lookup ([`CompiledTable::choose`]), as the proxy calls it.

use std::sync::Arc;

use http::header::HeaderValue;
use http::{HeaderMap, Method};

use crate::backend::Backend;
use crate::route_table::{Choice, CompiledTable, RequestView, RouteTable};

/// A route table compiled once, as the proxy does when one is published.
pub struct Router {
    table: CompiledTable,
}

/// What routing reads of a request.
pub struct RoutingRequest<'a> {
    /// The `Host`, port already stripped.
    pub host: &'a str,
    pub path: &'a str,
    /// From `X-Slipway-Release`.
    pub preview: Option<u64>,
    pub headers: &'a HeaderMap,
    pub method: &'a Method,
    pub body_less: bool,
    pub client_ip: &'a HeaderValue,
}

/// The outcome of routing one request, owned so the lease on the backend is already given back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routed {
    NoApp,
    UnknownRelease {
        app: String,
        release: u64,
    },
    NotReady {
        app: String,
    },
    Chosen {
        app: String,
        release: u64,
        preview: bool,
        /// The chosen backend's id.
        backend: String,
        set_cookie: Option<Vec<u8>>,
        /// The shadow backend's id, when the request is mirrored.
        shadow: Option<String>,
    },
}

impl Router {
    pub fn new(table: RouteTable) -> Router {
        Router {
            table: CompiledTable::compile(Arc::new(table), None),
        }
    }

    pub fn route(&self, request: &RoutingRequest<'_>) -> Routed {
        let view = RequestView {
            host: request.host,
            path: request.path,
            preview: request.preview,
            headers: request.headers,
            method: request.method,
            body_less: request.body_less,
            client_ip: request.client_ip,
        };
        match self.table.choose(&view) {
            Choice::NoApp => Routed::NoApp,
            Choice::UnknownRelease { app, release } => Routed::UnknownRelease {
                app: app.to_string(),
                release,
            },
            // Held or answered by the proxy (scaled to zero, maintenance): not routed to an instance.
            Choice::NotReady { app } | Choice::Idle { app } => Routed::NotReady {
                app: app.to_string(),
            },
            Choice::Hold(hold) => Routed::NotReady {
                app: hold.app.to_string(),
            },
            Choice::Chosen(target) => Routed::Chosen {
                app: target.app.to_string(),
                release: target.release,
                preview: target.preview,
                backend: id(target.lease.backend()),
                set_cookie: target.set_cookie.map(|v| v.as_bytes().to_vec()),
                shadow: target.shadow.map(|plan| id(plan.lease.backend())),
            },
        }
    }
}

fn id(backend: &Arc<Backend>) -> String {
    backend.id.clone()
}
