//! The Docker runtime: a release's instances as containers on a Docker engine.
//!
//! It offers the controller what the process runtime (`slipway-runtime`) offers, in the same words:
//! start an instance, learn where it answers and when it ends (exit code, OOM kill), read its output,
//! stop it with a grace period once the proxy drained it, and find it again after a daemon restart. It
//! knows nothing of routes, rollouts or the store. Probes run in slipway against the published port,
//! exactly as for processes; the image's own HEALTHCHECK is only reported.
//!
//! - [`Engine`] is the connection (`DOCKER_HOST` or the default socket, a short connect timeout, a
//!   clear [`DockerError::EngineUnreachable`] instead of a hang) and the owner label (`engine.rs`).
//! - Images are immutable artifacts: tags resolve to image IDs, which releases record and run
//!   (`image.rs`); `build` makes a content-tagged image from a Dockerfile through the Engine API
//!   (`build.rs`, `context.rs`); retention removes what no kept release needs.
//! - [`ContainerSpec`] → create request is a pure function holding every secure default
//!   (`spec.rs`, `create.rs`); running, inspecting, waiting and stopping are in `container.rs`.
//! - Secrets are files on a host tmpfs, bind-mounted read-only, owned by the container's user
//!   (`secrets.rs`, `user.rs`); they never appear in `docker inspect`.
//! - Labels (`labels.rs`) name app, release, process, instance and owner; `list_owned` reads them back
//!   for adoption (`owned.rs`).
//! - [`ContainerSupervisor`] gives the controller the process runtime's shape for containers: start,
//!   adopt, stop, and `InstanceEvent`s — the runtime's one supervisor over a container workload
//!   (`container_supervisor.rs`, `container_workload.rs`);
//!   [`Connector`] connects to the engine on first use (`connector.rs`).

mod address;
mod build;
mod connector;
mod container;
mod container_logs;
mod container_supervisor;
mod container_workload;
mod context;
mod create;
mod engine;
mod error;
mod exit;
mod health;
mod image;
pub mod labels;
mod one_off;
mod owned;
mod secrets;
mod spec;
mod user;

pub use build::{BuildRequest, BuiltImage, content_tag};
pub use connector::Connector;
pub use container::{ContainerInfo, RunningContainer};
pub use container_logs::{LogLine, LogStream};
pub use container_supervisor::{ContainerStatus, ContainerSupervisor};
pub use container_workload::ContainerInstance;
pub use context::{BuildContext, DockerIgnore, pack as pack_context};
pub use create::create_body;
pub use engine::{DEFAULT_HOST, Engine, EngineConfig};
pub use error::DockerError;
pub use exit::ContainerExit;
pub use health::Health;
pub use image::{ImageId, ResolvedImage, images_to_remove};
pub use labels::InstanceLabels;
pub use owned::OwnedContainer;
pub use spec::{ContainerSpec, Limits, Network, SECRETS_DIR, Security};
