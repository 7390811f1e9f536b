//! An instance outlives the supervisor that started it, and the next one adopts it: same process, its
//! output still logged, its exit noticed, stopped like any other. A record that does not prove the
//! process is the instance is never adopted.

mod common;

use common::*;
use slipway_runtime::Supervisor;
use std::os::unix::process::CommandExt;

fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Prints a numbered line every 50 ms, forever.
const TICKER: &str = "i=0; while :; do i=$((i+1)); echo tick=$i; sleep 0.05; done";

fn ticks(log: &str) -> Vec<u64> {
    log.lines()
        .filter_map(|l| l.split_once("tick=")?.1.trim().parse().ok())
        .collect()
}

#[test]
fn a_detached_instance_is_adopted_by_the_next_supervisor_with_its_output() {
    let (_tmp, dir) = tempdir();
    let run_dir = dir.join("run");
    let mut guard = KillGuard::default();
    let spec = spec(&dir, "hello-v3-worker-1", TICKER);
    let log = spec.log_path.clone();

    // Supervisor A starts it and hands it over (as an upgrade does), then its runtime ends entirely.
    let runtime_a = current_thread_runtime();
    let pid = runtime_a.block_on(async {
        let (supervisor, _events) = Supervisor::new(run_dir.clone()).expect("supervisor A");
        let pid = supervisor
            .start(spec.clone())
            .expect("start")
            .pid
            .expect("pid");
        wait_until("A logs ticks", || ticks(&read_log(&log)).len() >= 3).await;
        supervisor.detach_all().await;
        pid
    });
    guard.groups.push(pid);
    drop(runtime_a);
    assert!(is_alive(pid), "detaching does not stop the instance");
    let before = ticks(&read_log(&log)).last().copied().expect("ticks");

    let runtime_b = current_thread_runtime();
    runtime_b.block_on(async {
        let (supervisor, mut events) = Supervisor::new(run_dir.clone()).expect("supervisor B");
        guard.supervisors.push(supervisor.clone());
        let mut survivors = supervisor.survivors();
        assert_eq!(survivors.len(), 1, "{survivors:?}");
        let survivor = survivors.remove(0);
        assert_eq!(
            (survivor.id.as_str(), survivor.pid),
            ("hello-v3-worker-1", pid)
        );
        assert_eq!(survivor.identity.app, "hello");
        assert_eq!(survivor.identity.release, 3);
        assert_eq!(survivor.identity.process, "worker");

        let status = supervisor
            .adopt(spec.clone(), survivor, true)
            .expect("adopt");
        assert_eq!(status.pid, Some(pid), "the same process, not a new one");
        wait_event(&mut events, "adopted Ready", |e| {
            is_state(e, &spec.id, "ready")
        })
        .await;
        // What it printed while nobody read waited in the pipe; what it prints now is logged too.
        wait_until("ticks logged after the adoption", || {
            ticks(&read_log(&log))
                .last()
                .is_some_and(|&t| t > before + 3)
        })
        .await;
        let all = ticks(&read_log(&log));
        let gaps: Vec<_> = all.windows(2).filter(|w| w[1] != w[0] + 1).collect();
        assert!(
            gaps.is_empty(),
            "no line lost or doubled across the hand-over: {gaps:?}"
        );
        assert!(
            supervisor.reap_orphans().is_empty(),
            "an adopted instance is not an orphan"
        );

        supervisor.stop(&spec.id).await;
        assert!(
            !is_alive(pid),
            "an adopted instance is stopped like any other"
        );
        assert!(!run_dir.join("hello-v3-worker-1.pid").exists());
        assert!(!run_dir.join("hello-v3-worker-1.stdout").exists());
    });
}

#[test]
fn an_adopted_instance_that_exits_is_restarted_as_a_new_process() {
    let (_tmp, dir) = tempdir();
    let run_dir = dir.join("run");
    let mut guard = KillGuard::default();
    let spec = spec(
        &dir,
        "hello-v3-worker-2",
        "echo started=$$; exec sleep 1000",
    );
    let runtime_a = current_thread_runtime();
    let pid = runtime_a.block_on(async {
        let (supervisor, _events) = Supervisor::new(run_dir.clone()).expect("supervisor A");
        let pid = supervisor
            .start(spec.clone())
            .expect("start")
            .pid
            .expect("pid");
        supervisor.detach_all().await;
        pid
    });
    guard.groups.push(pid);
    drop(runtime_a);

    let runtime_b = current_thread_runtime();
    runtime_b.block_on(async {
        let (supervisor, mut events) = Supervisor::new(run_dir.clone()).expect("supervisor B");
        guard.supervisors.push(supervisor.clone());
        let record = std::fs::read_to_string(run_dir.join("hello-v3-worker-2.pid"));
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"));
        let survivor = supervisor
            .survivors()
            .pop()
            .unwrap_or_else(|| panic!("no survivor: {record:?} {stat:?}"));
        supervisor
            .adopt(spec.clone(), survivor, true)
            .expect("adopt");
        // It dies while adopted: not our child, so only its pidfd tells.
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .expect("kill");
        let exit = wait_event(&mut events, "the adopted run's exit", |e| {
            e.id == spec.id && e.state.name() == "backoff"
        })
        .await;
        assert!(exit.message.contains("adopted"), "{}", exit.message);
        wait_event(&mut events, "a fresh run", |e| {
            is_state(e, &spec.id, "ready")
        })
        .await;
        let new_pid = supervisor
            .status(&spec.id)
            .and_then(|s| s.pid)
            .expect("pid");
        assert_ne!(new_pid, pid);
        supervisor.stop(&spec.id).await;
        assert!(!is_alive(new_pid));
    });
}

#[test]
fn a_record_whose_process_started_at_another_time_is_not_a_survivor() {
    let (_tmp, dir) = tempdir();
    let run_dir = dir.join("run");
    std::fs::create_dir_all(&run_dir).expect("run dir");
    // A process that carries the marker (as if the pid was reused by a fork of the app), but whose
    // start time is not the recorded one.
    let mut other = std::process::Command::new("sleep")
        .arg("1000")
        .env("SLIPWAY_INSTANCE", "old-instance")
        .process_group(0)
        .spawn()
        .expect("spawn sleep");
    let guard = KillGuard {
        supervisors: vec![],
        groups: vec![other.id()],
    };
    std::fs::write(
        run_dir.join("old-instance.pid"),
        format!(
            "{}\nstart 1\napp hello\nrelease 3\nprocess worker\n",
            other.id()
        ),
    )
    .expect("pid file");
    let runtime = current_thread_runtime();
    runtime.block_on(async {
        let (supervisor, _events) = Supervisor::new(run_dir.clone()).expect("supervisor");
        assert!(supervisor.survivors().is_empty());
    });
    drop(guard);
    other.wait().expect("reap sleep");
}
