//! Shared fixtures for the unit tests.

use crate::releases::NewRelease;
use crate::store::Store;
use slipway_core::spec::{
    AppSpec, ArtifactSpec, DeploySpec, ProcessSpec, RetentionSpec, RoutingSpec, Strategy,
};
use std::collections::BTreeMap;
use std::time::Duration;

pub(crate) fn open_temp() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("state.db")).expect("open store");
    (dir, store)
}

pub(crate) fn spec(app: &str) -> AppSpec {
    let web = ProcessSpec {
        cmd: "./server".into(),
        replicas: 2,
        grace: Duration::from_secs(10),
        drain_timeout: Duration::from_secs(30),
        stream_drain_timeout: Duration::from_secs(60),
        readiness: None,
        liveness: None,
        startup: None,
        stop_signal: Default::default(),
        container: None,
        scaling: None,
    };
    AppSpec {
        app: app.into(),
        artifact: ArtifactSpec {
            path: "/srv/app".into(),
            exclude: vec!["target".into()],
        },
        env: BTreeMap::from([("RUST_LOG".to_string(), "info".to_string())]),
        secrets: BTreeMap::new(),
        processes: BTreeMap::from([("web".to_string(), web)]),
        routing: RoutingSpec {
            tls: None,
            redirect_https: false,
            hsts_max_age: None,
            hosts: vec![],
            path_prefix: "/".into(),
            max_body_size: None,
        },
        deploy: DeploySpec {
            strategy: Strategy::BlueGreen {
                auto_promote: true,
                scale_down_delay: Duration::from_secs(30),
            },
            progress_deadline: Duration::from_secs(600),
            watch: Duration::from_secs(300),
            watch_analysis: None,
        },
        retention: RetentionSpec { keep_releases: 5 },
        analysis: Default::default(),
        notify: Vec::new(),
        config_vars: Default::default(),
        release_phase: Default::default(),
        cron: Default::default(),
        kubernetes: Default::default(),
        slo: None,
        drill: None,
        drill_fault: None,
    }
}

pub(crate) fn new_release(app: &str) -> NewRelease {
    NewRelease {
        app: app.into(),
        label: None,
        artifact: format!("sha256:{}", "ab".repeat(32)),
        spec: spec(app),
        created_at: 1_700_000_000_000,
        created_by: "tester".into(),
        message: None,
        rollback_of: None,
    }
}
