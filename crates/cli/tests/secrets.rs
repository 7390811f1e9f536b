//! Secrets reach the instances' environment and nowhere else: not the state store, not the logs, not the
//! daemon's output, not the CLI's.

mod support;

use support::{Conf, World, instances, release};

const FILE_SECRET: &str = "file-secret-4f1c9a77e2";
const ENV_SECRET: &str = "env-secret-b83d0c5516";

fn environ(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/environ"))
        .unwrap_or_default()
        .split(|b| *b == 0)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect()
}

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &std::path::Path, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            found.extend(files_containing(&path, needle));
        } else if !kind.is_file() {
            // The socket, and the named pipes app output goes through (reading one waits forever):
            // what passes through a pipe lands in the log files, which are read.
            continue;
        } else if let Ok(bytes) = std::fs::read(&path)
            && bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
        {
            found.push(path.display().to_string());
        }
    }
    found
}

#[test]
fn secrets_reach_instances_and_are_never_stored_or_printed() {
    let world = World::with_daemon_env(&[("SHOP_API_KEY", ENV_SECRET)]);
    // Outside the app folder, so the artifact does not carry it.
    let secret_file = world.root().join("db-url");
    std::fs::write(&secret_file, format!("{FILE_SECRET}\n")).unwrap();
    // The release phase and a cron job get the secrets too (and must not leak them either).
    let conf = Conf::demo("v1").tail(&format!(
        "[secrets]\nDATABASE_URL = {{ file = \"{}\" }}\nAPI_KEY = {{ env = \"SHOP_API_KEY\" }}\n\n\
         [release]\ncmd = \"test -n \\\"$API_KEY\\\" && echo release phase has the key\"\n\n\
         [cron.check]\nschedule = \"@yearly\"\ncmd = \"test -n \\\"$DATABASE_URL\\\" && echo cron has the url\"\n",
        secret_file.display()
    ));
    let deploy = world.deploy_ok(&conf);
    assert_eq!(world.answer(), "v1");

    let status = world.settled();
    for (id, pid) in instances(&status) {
        let env = environ(pid.expect("a pid"));
        assert!(
            env.contains(&format!("DATABASE_URL={FILE_SECRET}")),
            "{id}: file secret missing"
        );
        assert!(
            env.contains(&format!("API_KEY={ENV_SECRET}")),
            "{id}: env secret missing"
        );
    }

    let cron = world.slipway(&["cron", "run", "check"]).ok();
    assert!(cron.stdout.contains("cron has the url"), "{cron}");
    let logs = world.slipway(&["logs", "--process", "release"]).ok();
    assert!(logs.stdout.contains("release phase has the key"), "{logs}");
    let config = world.slipway(&["config", "--json"]).ok().json();
    let api_key = config["vars"]
        .as_array()
        .and_then(|v| v.iter().find(|v| v["key"] == "API_KEY").cloned())
        .expect("secrets are listed by name");
    assert!(api_key["value"].is_null(), "{api_key}");

    let mut outputs = vec![deploy.to_string(), cron.to_string()];
    for args in [
        &["status", "--json"][..],
        &["history", "--json"],
        &["logs"],
        &["status"],
        &["config"],
        &["config", "--json"],
        &["cron", "list", "--json"],
    ] {
        outputs.push(world.slipway(args).ok().to_string());
    }
    for secret in [FILE_SECRET, ENV_SECRET] {
        for out in &outputs {
            assert!(!out.contains(secret), "a secret in CLI output: {out}");
        }
        assert!(
            !world.daemon.log_text().contains(secret),
            "a secret in the daemon log"
        );
        let files = files_containing(&world.daemon.state, secret);
        assert!(
            files.is_empty(),
            "a secret stored in the state dir: {files:?}"
        );
    }
}

#[test]
fn a_missing_secret_fails_the_rollout_naming_it_not_any_value() {
    let world = World::new();
    world.deploy_ok(&Conf::demo("v1"));
    let conf = Conf::demo("v2").tail("[secrets]\nAPI_KEY = { env = \"SLIPWAY_E2E_NOT_SET\" }\n");
    world.write(&conf);
    let run = world.slipway(&["deploy"]).failed();
    assert!(run.stderr.contains("SLIPWAY_E2E_NOT_SET"), "{run}");
    let status = world.settled();
    assert_eq!(status["stable"]["version"], 1, "{status}");
    assert_eq!(release(&world.history(), 2)["status"], "failed");
    assert_eq!(world.answer(), "v1");
}

#[test]
fn a_link_to_a_secret_outside_the_folder_is_refused_and_its_content_goes_nowhere() {
    let world = World::new();
    let secret_file = world.root().join("db-url");
    std::fs::write(&secret_file, format!("{FILE_SECRET}\n")).unwrap();
    // A link in the app folder to a secret file next to it: freezing must not follow it.
    std::os::unix::fs::symlink("../db-url", world.app_dir.join("db-url")).unwrap();
    world.write(&Conf::demo("v1"));
    let run = world.slipway(&["deploy"]).failed();
    assert!(
        run.stderr.contains("db-url is a symlink to ../db-url"),
        "{run}"
    );
    assert!(!run.to_string().contains(FILE_SECRET), "{run}");
    assert!(!world.daemon.log_text().contains(FILE_SECRET));
    let files = files_containing(&world.daemon.state, FILE_SECRET);
    assert!(
        files.is_empty(),
        "the secret frozen into the state dir: {files:?}"
    );
}
