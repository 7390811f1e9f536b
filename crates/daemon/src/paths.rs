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
    /// Where an upgrading daemon hands its sockets to the new one (`handover.rs`).
    pub fn handover(&self) -> PathBuf {
        self.root.join("handover.sock")
    }
    /// The serving daemon's pid, written once it accepts (`kill -USR2 $(cat daemon.pid)` upgrades it).
    pub fn daemon_pid(&self) -> PathBuf {
        self.root.join("daemon.pid")
    }
    /// The proxy's actual listen address, written at start (useful with port 0).
    /// The TLS listener's address (`--tls-listen`), like `proxy.addr`.
    pub fn proxy_tls_addr(&self) -> PathBuf {
        self.root.join("proxy-tls.addr")
    }
    /// The ACME account key and issued certificates with their keys (0700 folder, 0600 files).
    pub fn tls(&self) -> PathBuf {
        self.root.join("tls")
    }
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
    /// Backups being written: one folder each, of links to the files they hold (`ops/backup.rs`).
    pub fn backup_staging(&self) -> PathBuf {
        self.root.join("backup-tmp")
    }
    /// App folders sent with `slipway deploy`, one per deploy (`ops/uploads.rs`).
    pub fn uploads(&self) -> PathBuf {
        self.root.join("uploads")
    }
    /// The token the TCP API requires, when none is given (mode 0600).
    pub fn token(&self) -> PathBuf {
        self.root.join("api-token")
    }

    /// Who this daemon is on a Docker engine (the `slipway.owner` label of its containers and builds):
    /// derived from the state dir, so a restarted daemon recognises its own containers and two daemons
    /// sharing an engine never touch each other's.
    pub fn docker_owner(&self) -> String {
        format!("slipway-{}", self.digest())
    }

    /// Where containers' secret files are written before they start: a tmpfs (never on disk),
    /// private to this state dir, so it survives a daemon restart with its adopted containers.
    pub fn docker_secrets(&self) -> PathBuf {
        PathBuf::from(format!("/dev/shm/slipway-{}", self.digest()))
    }

    /// 16 hex digits of the state dir's absolute path.
    fn digest(&self) -> String {
        use sha2::Digest;
        let path = std::fs::canonicalize(&self.root).unwrap_or_else(|_| self.root.clone());
        let digest = sha2::Sha256::digest(path.as_os_str().as_encoded_bytes());
        hex::encode(&digest[..8])
    }
}
