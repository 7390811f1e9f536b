//! A missing or dead engine is a prompt, clear error naming the address and the fix, never a hang.
//! Needs no engine, so it always runs.

use slipway_docker::{DockerError, Engine, EngineConfig};
use std::path::PathBuf;
use std::time::Duration;

/// Bounds a hang; the connect timeout inside is a few seconds.
const DEADLINE: Duration = Duration::from_secs(30);

fn config(host: String) -> EngineConfig {
    EngineConfig {
        host: Some(host),
        owner: "test-unreachable".into(),
        secrets_root: PathBuf::from("/dev/shm/slipway-test-unreachable"),
    }
}

async fn connect_error(host: String) -> String {
    let result = tokio::time::timeout(DEADLINE, Engine::connect(config(host.clone())))
        .await
        .expect("connecting to a dead engine hung");
    match result {
        Err(err @ DockerError::EngineUnreachable { .. }) => {
            let message = err.to_string();
            assert!(message.contains(&host), "{message}");
            assert!(message.contains("DOCKER_HOST"), "{message}");
            message
        }
        Err(other) => panic!("expected EngineUnreachable, got {other}"),
        Ok(_) => panic!("connected to {host}"),
    }
}

#[tokio::test]
async fn a_missing_socket_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let host = format!("unix://{}/docker.sock", dir.path().display());
    let message = connect_error(host).await;
    assert!(message.contains("there is no socket at"), "{message}");
}

#[tokio::test]
async fn a_socket_nobody_listens_on_is_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("docker.sock");
    // A socket file left by an engine that died: it exists, but connecting is refused.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    connect_error(format!("unix://{}", path.display())).await;
}

#[tokio::test]
async fn a_closed_tcp_port_is_unreachable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    connect_error(format!("tcp://127.0.0.1:{port}")).await;
}

#[tokio::test]
async fn a_silent_engine_times_out_instead_of_hanging() {
    // Accepts connections and never answers: the connect timeout must end the wait.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let _held = std::thread::spawn(move || {
        let mut open = Vec::new();
        for stream in listener.incoming().take(4).flatten() {
            open.push(stream);
        }
        std::thread::sleep(Duration::from_secs(20));
    });
    let message = connect_error(format!("tcp://127.0.0.1:{port}")).await;
    assert!(message.contains("no answer within"), "{message}");
}
