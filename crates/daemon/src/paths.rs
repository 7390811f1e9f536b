//! The state directory's layout: everything the daemon keeps lives under one folder.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Paths {
    pub root: PathBuf,
}

impl Paths {
    pub fn new(root: &Path) -> Paths {
        Paths {
            root: root.to_path_buf(),
        }
    }
    /// The SQLite database.
    pub fn db(&self) -> PathBuf {
        self.root.join("slipway.db")
    }
    /// The local API socket (mode 0600: the file's owner is the only user of the local API).
    pub fn socket(&self) -> PathBuf {
        self.root.join("slipway.sock")
    }
    /// The proxy's actual listen address, written at start (useful with port 0).
    pub fn proxy_addr(&self) -> PathBuf {
        self.root.join("proxy.addr")
    }
    pub fn artifacts(&self) -> PathBuf {
        self.root.join("artifacts")
    }
    /// One pid file per running instance, so a restarted daemon finds what a crashed one left.
    pub fn run(&self) -> PathBuf {
        self.root.join("run")
    }
    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }
    pub fn instance_log(&self, app: &str, release: u64, instance: &str) -> PathBuf {
        self.logs()
            .join(app)
            .join(format!("v{release}"))
            .join(format!("{instance}.log"))
    }
    /// The token the TCP API requires, when none is given (mode 0600).
    pub fn token(&self) -> PathBuf {
        self.root.join("api-token")
    }
}
