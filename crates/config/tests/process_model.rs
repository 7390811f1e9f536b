//! The 12-factor process model in `slipway.toml`: a Procfile beside it, `[release]`, `[cron.*]`,
//! `stop_signal`.

mod support;

use slipway_core::spec::{Concurrency, StopSignal};
use std::path::Path;
use std::time::Duration;
use support::rejects;

fn app_dir(procfile: &str, toml: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Procfile"), procfile).unwrap();
    let path = dir.path().join("slipway.toml");
    std::fs::write(&path, toml).unwrap();
    (dir, path)
}

#[test]
fn a_procfile_alone_gives_the_process_types_and_the_release_phase() {
    let (_dir, path) = app_dir(
        "web: ./server --port $PORT\nworker: ./work\nclock: ./tick\nrelease: ./migrate\n",
        "app = \"shop\"\n",
    );
    let spec = slipway_config::load(&path).unwrap();
    let names: Vec<_> = spec.processes.keys().cloned().collect();
    assert_eq!(names, ["clock", "web", "worker"]);
    assert_eq!(spec.processes["web"].cmd, "./server --port $PORT");
    assert_eq!(spec.processes["worker"].replicas, 1);
    assert_eq!(spec.release_phase.cmd.as_deref(), Some("./migrate"));
}

#[test]
fn the_toml_refines_procfile_types_without_repeating_commands() {
    let (_dir, path) = app_dir(
        "web: ./server\nworker: ./work\n",
        "app = \"shop\"\n[processes.web]\nreplicas = 3\nreadiness = { http = \"/ready\" }\n\n[processes.worker]\ngrace = \"5s\"\nstop_signal = \"INT\"\n",
    );
    let spec = slipway_config::load(&path).unwrap();
    assert_eq!(spec.processes["web"].cmd, "./server");
    assert_eq!(spec.processes["web"].replicas, 3);
    assert_eq!(spec.processes["worker"].grace, Duration::from_secs(5));
    assert_eq!(spec.processes["worker"].stop_signal, StopSignal::Sigint);
}

#[test]
fn procfile_mistakes_point_at_the_procfile_line() {
    let (dir, path) = app_dir("web: ./server\nworker ./work\n", "app = \"shop\"\n");
    let e = slipway_config::load(&path).unwrap_err();
    let issue = &e.issues()[0];
    assert_eq!(issue.file, dir.path().join("Procfile"));
    assert_eq!(issue.line, 2);
    assert!(
        issue
            .help
            .as_deref()
            .unwrap()
            .contains("web: ./server --port $PORT")
    );
}

#[test]
fn a_type_missing_from_both_files_needs_a_cmd() {
    let (_dir, path) = app_dir(
        "web: ./server\n",
        "app = \"shop\"\n[processes.worker]\nreplicas = 1\n",
    );
    let e = slipway_config::load(&path).unwrap_err();
    assert!(
        e.to_string()
            .contains("missing `cmd` in [processes.worker]"),
        "{e}"
    );
    assert!(
        e.to_string().contains("`worker: <command>` in a Procfile"),
        "{e}"
    );
}

#[test]
fn release_and_cron_sections() {
    let text = "app = \"shop\"\n[processes.web]\ncmd = \"./s\"\n[release]\ncmd = \"./migrate\"\nrollback_cmd = \"./down\"\ntimeout = \"2m\"\nmigrations = \"db/*.sql\"\n[cron.report]\nschedule = \"0 3 * * mon\"\ncmd = \"./report\"\nconcurrency = \"replace\"\nhistory = 3\n";
    let spec = slipway_config::parse(text, Path::new("/a/slipway.toml")).unwrap();
    assert_eq!(spec.release_phase.rollback_cmd.as_deref(), Some("./down"));
    assert_eq!(spec.release_phase.timeout, Duration::from_secs(120));
    assert_eq!(spec.release_phase.migrations, ["db/*.sql"]);
    let job = &spec.cron["report"];
    assert_eq!(job.concurrency, Concurrency::Replace);
    assert_eq!(job.history, 3);
    assert_eq!(job.timeout, Duration::from_secs(3600));
}

#[test]
fn bad_schedules_and_signals_are_explained() {
    let base = "app = \"shop\"\n[processes.web]\ncmd = \"./s\"\n";
    rejects(
        &format!("{base}[cron.x]\nschedule = \"*/5 * * *\"\ncmd = \"./x\"\n"),
        5,
        "schedule: a schedule has 5 fields",
        "minute hour day-of-month month day-of-week",
    );
    rejects(
        &format!(
            "{base}[cron.x]\nschedule = \"@daily\"\ncmd = \"./x\"\nconcurrency = \"forbidd\"\n"
        ),
        7,
        "unknown concurrency",
        "did you mean \"forbid\"?",
    );
    rejects(
        &format!("{base}stop_signal = \"SIGSTOP\"\n"),
        4,
        "unknown stop_signal",
        "SIGTERM, SIGINT",
    );
    rejects(
        &format!("{base}[release]\ncmdd = \"./m\"\n"),
        5,
        "unknown key `cmdd` in [release]",
        "did you mean `cmd`?",
    );
}

#[test]
fn a_drill_schedule_is_read_with_defaults_and_bad_ones_are_explained() {
    let base = "app = \"shop\"\n[processes.web]\ncmd = \"./s\"\n";
    let spec = parse(&format!("{base}[drill]\nschedule = \"0 10 * * 2\"\n"));
    let drill = spec.drill.expect("a scheduled drill");
    assert_eq!(drill.schedule, "0 10 * * 2");
    assert_eq!(
        (drill.weight, drill.error_rate),
        (5, 0.5),
        "slipway drill's defaults"
    );
    let spec = parse(&format!(
        "{base}[drill]\nschedule = \"@weekly\"\nweight = 10\nerror_rate = \"20%\"\n"
    ));
    let drill = spec.drill.unwrap();
    assert_eq!((drill.weight, drill.error_rate), (10, 0.2));
    assert!(parse(base).drill.is_none());

    rejects(
        &format!("{base}[drill]\nschedule = \"0 10 * *\"\n"),
        5,
        "[drill] schedule: a schedule has 5 fields",
        "Tuesdays 10:00 UTC",
    );
    rejects(
        &format!("{base}[drill]\nweight = 5\n"),
        4,
        "schedule",
        "schedule = \"0 10 * * 2\"",
    );
    rejects(
        &format!("{base}[drill]\nschedule = \"@daily\"\nweight = 80\n"),
        6,
        "must be between 1 and 50",
        "from 1 to 50",
    );
    rejects(
        &format!("{base}[drill]\nschedule = \"@daily\"\nerror_rate = 0.5\n"),
        6,
        "error_rate",
        "",
    );
    rejects(
        "app = \"shop\"\n[processes.worker]\ncmd = \"./w\"\n[drill]\nschedule = \"@daily\"\n",
        4,
        "[drill] needs a process named `web`",
        "only [processes.web] serves requests",
    );
}

fn parse(text: &str) -> slipway_core::spec::AppSpec {
    slipway_config::parse(text, Path::new("slipway.toml")).unwrap()
}
