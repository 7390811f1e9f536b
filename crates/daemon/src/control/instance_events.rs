//! What an instance's state change means to its app, decided without IO: the instance's new state
//! (and a container's new address), the notes worth an event, and a rollout failed at once when its
//! new release crash-loops.

use crate::control::app_state::AppState;
use crate::control::managed::state_name;
use crate::control::runtimes::RuntimeKind;
use slipway_core::release::Version;
use slipway_core::rollout::Signal;
use slipway_runtime::{InstanceEvent, InstanceState};
use std::net::SocketAddr;

/// An event for the app's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Note {
    pub release: Version,
    pub kind: &'static str,
    pub text: String,
}

/// Applies the event; `container_addr` is where a container answers now, if it is one.
pub(crate) fn on_instance_event(
    app: &mut AppState,
    event: &InstanceEvent,
    container_addr: Option<SocketAddr>,
) -> Vec<Note> {
    let mut notes = Vec::new();
    let Some(m) = app.instances.iter_mut().find(|m| m.id == event.id) else {
        return notes;
    };
    m.state = event.state.clone();
    // A container's or a pod's address is known once it runs, and moves when a crash replaced it
    // (or the instance was rebound to another pod of its ReplicaSet).
    if m.runtime != RuntimeKind::Process
        && m.is_web()
        && !m.retiring
        && let Some(addr) = container_addr
        && m.backend.as_ref().map(|b| b.addr) != Some(addr)
    {
        m.backend = Some(slipway_proxy::Backend::new(m.id.clone(), addr));
    }
    if m.retiring {
        return notes;
    }
    let is_new = app
        .rollout
        .as_ref()
        .is_some_and(|r| r.machine.to == event.release);
    if is_new && event.state == InstanceState::Ready {
        // Recorded so the time from "ready" to "serving" can be measured (bench/deploys.sh).
        notes.push(Note {
            release: event.release,
            kind: "instance_ready",
            text: format!("{} is ready", event.id),
        });
    }
    if matches!(
        event.state,
        InstanceState::Backoff { .. } | InstanceState::CrashLoop { .. } | InstanceState::Unready
    ) {
        notes.push(Note {
            release: event.release,
            kind: "instance",
            text: format!(
                "{} {}: {}",
                event.id,
                state_name(&event.state),
                event.message
            ),
        });
    }
    // A new release that crash-loops will not get better by waiting for the deadline.
    if let (InstanceState::CrashLoop { .. }, true) = (&event.state, is_new) {
        let reason = format!(
            "instance {} of v{} is crash-looping: {}",
            event.id, event.release, event.message
        );
        if let Some(r) = app.rollout.as_mut() {
            r.machine.signal(Signal::Fail { reason });
        }
    }
    notes
}
