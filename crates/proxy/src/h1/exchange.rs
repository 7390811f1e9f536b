//! One request on the fast path, from its parsed head to the end of its response: route and pick as the
//! hyper path does, send the rewritten head and the body (one `send` when the body is here and small) on a
//! pooled socket, read the response head, record the metrics, and relay the body by its framing.
//!
//! Whether a request that got no response head is tried again is decided by the rule in `retry`, which
//! the hyper path follows too.
//!
//! While waiting for the instance, the client socket is watched too: a client that goes away ends the
//! exchange (as hyper does), so its backend's `in_flight` does not wait for an answer nobody reads.

use std::future::poll_fn;
use std::io;
use std::sync::Arc;
use std::task::Poll;

use http::header::HeaderValue;
use http::{Method, StatusCode};
use tokio::time::Instant;

use crate::before_routing;
use crate::forward::{
    bad_gateway_message, gateway_timeout_message, idle_message, injected_message, is_idempotent,
    move_to_other_instance, too_large,
};
use crate::h1::chunked::ChunkedDecoder;
use crate::h1::connection::{Client, Next};
use crate::h1::forward_head::{self, Forwarding};
use crate::h1::gate::ClientStream;
use crate::h1::relay::Relayed;
use crate::h1::request_head::{RequestBody, RequestHead, SpanHeaders};
use crate::h1::response_head::{self, ClientHead, ParsedResponse, ResponseHead};
use crate::h1::shadow_copy;
use crate::h1::socket_io::{Waited, wait_instance, write_head_and};
use crate::headers;
use crate::instance_socket::InstanceSocket;
use crate::release_metrics::micros_since;
use crate::retry::{self, Attempt, Decision, Replayable};
use crate::route_table::{Choice, RequestView, Target, host_without_port, parse_release};
use crate::shadow::{self, Pair, PrimaryTap};

/// The instance buffer's starting size; a longer response head grows it up to [`MAX_REPLY_HEAD`].
pub(crate) const REPLY_SIZE: usize = 16 * 1024;

/// Longest response head accepted from an instance (hyper's client buffer limit is about this).
const MAX_REPLY_HEAD: usize = 400 * 1024;

/// How sending the request went.
enum Sent {
    All,
    /// The first write failed: nothing of the request reached the instance.
    Nothing(io::Error),
    Partly(io::Error),
    /// The client's chunked body is malformed.
    BadBody,
    /// The client's chunked body went over the app's limit.
    TooLarge,
    ClientGone,
    TimedOut,
}

/// How waiting for the response head went.
enum Head {
    /// The head, rewritten into `out`, and how many bytes of `reply` are filled.
    Complete(ResponseHead, usize),
    /// The connection closed (or failed) before any byte of a response.
    Nothing(io::Error),
    Invalid(String),
    ClientGone,
    TimedOut,
}

/// Why no response head came from an instance.
enum Failure {
    /// Answered with a proxy page (502, 504) counted against the target.
    Gateway(StatusCode, String),
    /// The client's chunked body is malformed: 400.
    BadBody,
    /// The client's chunked body went over the app's limit: 413.
    TooLarge(u64),
    /// The client went away: nobody to answer.
    ClientGone,
}

/// Why a request got no target on the fast path.
pub(super) enum Unrouted {
    /// Answered with the proxy's page.
    Page(StatusCode, String),
    /// The hyper path serves it: the proxy's own answers (ACME challenges, redirects to HTTPS), and
    /// requests held until their app can serve (`held`).
    HandOff,
}

impl<S: ClientStream> Client<S> {
    pub(super) async fn exchange(&mut self, head: &RequestHead) -> Next {
        // One clock read serves the latency metrics, the deadline and the pool's idle check.
        let arrived = Instant::now();
        let (mut target, method) = match self.route(head) {
            Ok(routed) => routed,
            Err(Unrouted::Page(status, message)) => return self.page(head, status, &message).await,
            // Nothing of the request was consumed: the hyper path starts on it.
            Err(Unrouted::HandOff) => return Next::HandOff,
        };
        if let (Some(max), RequestBody::Length(n)) = (target.max_body, head.body)
            && n > max
        {
            drop(target);
            return self
                .page(head, StatusCode::PAYLOAD_TOO_LARGE, &too_large(max))
                .await;
        }
        if target.injected {
            // `slipway drill`: failed on purpose, before anything reaches an instance.
            let micros = micros_since(arrived.into_std());
            target.metrics.record_injected(503, micros);
            let message = injected_message(&target);
            drop(target);
            return self
                .page(head, StatusCode::SERVICE_UNAVAILABLE, &message)
                .await;
        }
        let request_id = if head.has_request_id {
            [0; 32]
        } else {
            headers::request_id()
        };
        // The shadow copy leaves first, so it sees the request at about the same time as the primary.
        let mut tap = target.shadow.take().map(|plan| {
            let pair = Pair::new(plan.report.clone());
            plan.report.count_mirrored();
            let copy = shadow_copy::request(
                &self.input.buf,
                head,
                &self.headers,
                &self.conn.client_ip,
                self.conn.tls,
                &request_id,
                plan.lease.backend(),
            );
            tokio::spawn(shadow::run(
                Arc::clone(&self.conn.shared),
                plan.lease,
                copy,
                arrived.into_std(),
                pair.clone(),
            ));
            Box::new(PrimaryTap::new(pair))
        });
        let answer = self
            .forward(head, &mut target, &method, &request_id, arrived)
            .await;
        let (mut socket, response, filled) = match answer {
            Ok(answer) => answer,
            Err(Failure::Gateway(status, message)) => {
                return self
                    .failed(head, &target, arrived, tap, status, &message)
                    .await;
            }
            Err(Failure::BadBody) => {
                drop((target, tap));
                let message = "malformed chunked request body";
                return self.page(head, StatusCode::BAD_REQUEST, message).await;
            }
            Err(Failure::TooLarge(max)) => {
                drop((target, tap));
                return self
                    .page(head, StatusCode::PAYLOAD_TOO_LARGE, &too_large(max))
                    .await;
            }
            Err(Failure::ClientGone) => return Next::Close,
        };

        let micros = micros_since(arrived.into_std());
        target.metrics.record(response.status, micros);
        if let Some((from, to)) = response.flags {
            let variants = &self.conn.shared.routes.flag_variants;
            variants.record(&target.app, &self.reply[from..to], response.status, micros);
        }
        if let Some(tap) = &mut tap {
            tap.head(
                StatusCode::from_u16(response.status).unwrap_or(StatusCode::OK),
                micros,
            );
        }
        if response.event_stream {
            target.lease.become_stream();
        }
        let close = self.closes_after(head);
        match self.relay(&mut socket, &response, filled, &mut tap).await {
            Relayed::Complete { reusable } => {
                if let Some(tap) = &mut tap {
                    tap.end(true);
                }
                target.lease.release();
                if reusable && !response.close {
                    let backend = target.lease.backend();
                    backend.sockets.checkin(socket, std::time::Instant::now());
                }
                if close { Next::Close } else { Next::KeepAlive }
            }
            Relayed::Broken => Next::Close,
        }
    }

    /// The client connection closes after this exchange: asked by the client, or shutting down.
    pub(super) fn closes_after(&self, head: &RequestHead) -> bool {
        head.close || self.stop.is_stopping()
    }

    /// Sends the rewritten head (in `out`) and the request body, the part already received in the same
    /// write.
    async fn send(
        &mut self,
        socket: &mut InstanceSocket,
        head: &RequestHead,
        max_body: Option<u64>,
        deadline: Instant,
    ) -> Sent {
        // A chunked body's payload is counted against the limit as it passes (a length was checked before).
        let mut payload_left = max_body.unwrap_or(u64::MAX);
        let body_start = head.end;
        let mut left = match head.body {
            RequestBody::Length(n) => n,
            _ => 0,
        };
        let mut chunked = (head.body == RequestBody::Chunked).then(ChunkedDecoder::new);
        let mut first = true;
        loop {
            let received = &self.input.buf[body_start..self.input.end];
            let (take, done) = match (&mut chunked, head.body) {
                (Some(decoder), _) => {
                    let mut over = false;
                    let fed = decoder.feed(received, |data| {
                        over |= payload_left < data.len() as u64;
                        payload_left = payload_left.saturating_sub(data.len() as u64);
                    });
                    match fed {
                        _ if over => return Sent::TooLarge,
                        Ok(n) => (n, decoder.is_done()),
                        Err(_) => return Sent::BadBody,
                    }
                }
                (None, RequestBody::Length(_)) => {
                    let n = usize::try_from(left)
                        .unwrap_or(usize::MAX)
                        .min(received.len());
                    (n, left == n as u64)
                }
                (None, _) => (0, true),
            };
            let body = &self.input.buf[body_start..body_start + take];
            let write = write_head_and(&mut socket.stream, &mut self.out, body);
            match self.response_timer.bound(deadline, write).await {
                None => return Sent::TimedOut,
                Some(Ok(())) => {}
                Some(Err((0, error))) if first => return Sent::Nothing(error),
                Some(Err((_, error))) => return Sent::Partly(error),
            }
            first = false;
            self.input.remove(body_start, take);
            if chunked.is_none() {
                left -= take as u64;
            }
            if done {
                return Sent::All;
            }
            let Client {
                stream,
                input,
                response_timer,
                ..
            } = self;
            let read = poll_fn(|cx| {
                if let Poll::Ready(read) = input.poll_fill(stream, cx) {
                    return Poll::Ready(Some(read));
                }
                response_timer.poll_passed(cx, deadline).map(|()| None)
            });
            match read.await {
                None => return Sent::TimedOut,
                Some(Ok(n)) if n > 0 => {}
                Some(_) => return Sent::ClientGone,
            }
        }
    }

    /// Reads the instance's response head into `reply` (interim 1xx responses skipped) and rewrites it
    /// into `out`.
    async fn read_response_head(
        &mut self,
        socket: &mut InstanceSocket,
        head: &RequestHead,
        set_cookie: Option<&HeaderValue>,
        hsts_max_age: Option<u64>,
        deadline: Instant,
    ) -> Head {
        let mut filled = 0;
        loop {
            if filled > 0 {
                let client = ClientHead {
                    head_request: head.method.of(&self.input.buf) == b"HEAD",
                    set_cookie: set_cookie.map(HeaderValue::as_bytes),
                    hsts_max_age,
                    close: self.closes_after(head),
                };
                match response_head::parse(&self.reply[..filled], &client, &mut self.out) {
                    ParsedResponse::Complete(response) => {
                        crate::busy_poll::traffic_seen();
                        return Head::Complete(response, filled);
                    }
                    ParsedResponse::Informational(len) => {
                        self.reply.copy_within(len..filled, 0);
                        filled -= len;
                        continue;
                    }
                    ParsedResponse::Partial => {}
                    ParsedResponse::Invalid(what) => return Head::Invalid(what.to_owned()),
                }
                if filled == self.reply.len() {
                    if self.reply.len() >= MAX_REPLY_HEAD {
                        return Head::Invalid("sent a response head that is too long".to_owned());
                    }
                    self.reply.resize(self.reply.len() * 2, 0);
                }
            }
            match wait_instance(
                &mut socket.stream,
                &mut self.reply[filled..],
                &mut self.stream,
                &mut self.input,
                Some((&mut self.response_timer, deadline)),
            )
            .await
            {
                Waited::Read(Ok(n)) if n > 0 => filled += n,
                Waited::Read(Ok(_)) if filled == 0 => {
                    return Head::Nothing(io::ErrorKind::UnexpectedEof.into());
                }
                Waited::Read(Err(error)) if filled == 0 => return Head::Nothing(error),
                Waited::Read(_) => {
                    return Head::Invalid(
                        "closed the connection in the middle of the response head".to_owned(),
                    );
                }
                Waited::ClientGone => return Head::ClientGone,
                Waited::TimedOut => return Head::TimedOut,
            }
        }
    }
}

impl<S: ClientStream> Client<S> {
    /// Where the request goes (its backend already counted), or the page saying why nowhere.
    fn route(&self, head: &RequestHead) -> Result<(Target, Method), Unrouted> {
        let buf = &self.input.buf;
        // The head parser only lets tokens and plain ASCII through.
        let host = std::str::from_utf8(head.host.of(buf)).map_or("", host_without_port);
        let (Ok(method), Ok(path)) = (
            Method::from_bytes(head.method.of(buf)),
            std::str::from_utf8(head.path.of(buf)),
        ) else {
            return Err(Unrouted::Page(
                StatusCode::BAD_REQUEST,
                "invalid request".to_owned(),
            ));
        };
        let table = self.conn.shared.routes.inner.load();
        if before_routing::wants_hyper(&table, self.conn.tls, host, path) {
            return Err(Unrouted::HandOff);
        }
        let preview = match head.preview {
            None => None,
            Some(value) => {
                let release = std::str::from_utf8(value.of(buf))
                    .ok()
                    .and_then(parse_release);
                let message = "X-Slipway-Release must name a release like v7";
                Some(release.ok_or(Unrouted::Page(StatusCode::NOT_FOUND, message.to_owned()))?)
            }
        };
        let choice = table.choose(&RequestView {
            host,
            path,
            preview,
            headers: &SpanHeaders {
                buf,
                headers: &self.headers,
            },
            method: &method,
            body_less: head.body == RequestBody::None,
            client_ip: &self.conn.client_ip,
        });
        let page = |status, message| Err(Unrouted::Page(status, message));
        match choice {
            Choice::Chosen(target) => Ok((target, method)),
            Choice::NoApp => page(
                StatusCode::NOT_FOUND,
                format!("no app is routed for host {host:?} and path {path:?}"),
            ),
            Choice::UnknownRelease { app, release } => page(
                StatusCode::NOT_FOUND,
                format!("app {app} has no release v{release}"),
            ),
            Choice::NotReady { app } => page(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("no ready instance of app {app}"),
            ),
            Choice::Idle { app } => page(StatusCode::OK, idle_message(&app)),
            Choice::Hold(_) => Err(Unrouted::HandOff),
        }
    }

    /// Sends the request to the target's instance (on a pooled connection when there is one, retrying
    /// where that is safe; see the module doc) and reads the response head.
    async fn forward(
        &mut self,
        head: &RequestHead,
        target: &mut Target,
        method: &Method,
        request_id: &[u8; 32],
        arrived: Instant,
    ) -> Result<(InstanceSocket, ResponseHead, usize), Failure> {
        let conn = Arc::clone(&self.conn);
        let options = &conn.shared.options;
        let deadline = arrived + options.response_timeout;
        let timed_out = |target: &Target| {
            let message = gateway_timeout_message(target, options.response_timeout);
            Failure::Gateway(StatusCode::GATEWAY_TIMEOUT, message)
        };
        let mut attempt = Attempt::first(Replayable {
            body_less: head.body == RequestBody::None,
            idempotent: is_idempotent(method),
        });
        loop {
            let backend = Arc::clone(target.lease.backend());
            let (failure, what) = 'attempt: {
                let connect = || InstanceSocket::connect(backend.addr, options.connect_timeout);
                let connection =
                    backend
                        .sockets
                        .connection_for(&mut attempt, arrived, options, connect);
                let mut socket = match connection.await {
                    Ok(socket) => socket,
                    Err(failed) => break 'attempt failed,
                };
                forward_head::write(
                    &mut self.out,
                    &self.input.buf,
                    head,
                    &self.headers,
                    &Forwarding {
                        client_ip: conn.client_ip.as_bytes(),
                        request_id,
                        tls: conn.tls,
                    },
                );
                match self
                    .send(&mut socket, head, target.max_body, deadline)
                    .await
                {
                    Sent::All => {}
                    Sent::Nothing(error) => {
                        break 'attempt (closed(false), closed_before_response(&error));
                    }
                    Sent::Partly(error) => {
                        break 'attempt (closed(true), closed_before_response(&error));
                    }
                    Sent::BadBody => return Err(Failure::BadBody),
                    Sent::TooLarge => {
                        return Err(Failure::TooLarge(target.max_body.unwrap_or_default()));
                    }
                    Sent::ClientGone => return Err(Failure::ClientGone),
                    Sent::TimedOut => break 'attempt (retry::Failure::TimedOut, String::new()),
                }
                match self
                    .read_response_head(
                        &mut socket,
                        head,
                        target.set_cookie.as_ref(),
                        target.hsts_max_age.filter(|_| conn.tls),
                        deadline,
                    )
                    .await
                {
                    Head::Complete(response, filled) => return Ok((socket, response, filled)),
                    Head::Nothing(error) => (closed(true), closed_before_response(&error)),
                    Head::Invalid(what) => (retry::Failure::BadResponse, what),
                    Head::ClientGone => return Err(Failure::ClientGone),
                    Head::TimedOut => (retry::Failure::TimedOut, String::new()),
                }
            };
            let decision = attempt.decide(failure);
            match decision {
                // (Moving fails when the release has no other ready instance: then 502.)
                Decision::OtherInstance if move_to_other_instance(&conn.shared.routes, target) => {}
                Decision::SameInstance { fresh } => {
                    tracing::debug!(instance = %backend.id, %what, ?failure, fresh,
                        "no response on a pooled connection; trying again");
                }
                Decision::Answer(StatusCode::GATEWAY_TIMEOUT) => return Err(timed_out(target)),
                Decision::OtherInstance | Decision::Answer(_) => {
                    let message = bad_gateway_message(target, &what);
                    return Err(Failure::Gateway(StatusCode::BAD_GATEWAY, message));
                }
            }
            attempt = attempt.next(failure, decision);
        }
    }
}

fn closed(sent: bool) -> retry::Failure {
    retry::Failure::Closed { sent }
}

/// "failed before sending a response: <cause>" — the hyper path's wording.
fn closed_before_response(error: &io::Error) -> String {
    let cause = if error.kind() == io::ErrorKind::UnexpectedEof {
        "connection closed before message completed".to_owned()
    } else {
        error.to_string()
    };
    format!("failed before sending a response: {cause}")
}
