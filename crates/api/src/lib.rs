//! slipway's API as it travels: the JSON shapes of every request and answer, and the typed error an
//! answer carries when it is refused.
//!
//! Why a crate of its own: the CLI needs these types to talk to a daemon, and nothing else of the
//! daemon; with them here, a client builds without the control plane, and the daemon and the CLI cannot
//! drift apart because they compile against one definition.

mod apps;
mod certs;
mod error;
pub mod flags;

pub use apps::*;
pub use certs::{CertStatus, RenewStarted, RevokeCert, RevokeStarted};
pub use error::{ApiError, ErrorKind};
