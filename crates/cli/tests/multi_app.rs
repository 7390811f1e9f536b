//! One daemon, several apps: the proxy routes by host and path prefix, and each app rolls out on its own.

mod support;

use std::time::Duration;
use support::http::{get, version_of};
use support::{Conf, World, run_command};

fn app_conf(name: &str, version: &str, routing: &str) -> String {
    let mut c = Conf::demo(version).tail(&format!("[routing]\n{routing}\n"));
    c.app = name.into();
    c.render()
}

/// Writes `<root>/<name>/slipway.toml` and deploys it.
fn deploy(world: &World, name: &str, toml: &str) -> support::Run {
    let dir = world.root().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("slipway.toml"), toml).unwrap();
    let mut cmd = std::process::Command::new(support::bin());
    cmd.args(["deploy", "--state-dir"])
        .arg(&world.daemon.state)
        .current_dir(&dir)
        .env_remove("SLIPWAY_SERVER")
        .env_remove("SLIPWAY_CONFIG");
    run_command(cmd, Duration::from_secs(180))
}

fn answer(world: &World, host: &str, path: &str) -> (u16, String) {
    let r = get(world.daemon.proxy, path, &[("Host", host)]).expect("GET through the proxy");
    // The path is passed on as is (the api app answers 404 for `/api/`): who answered is in the header.
    let who = r
        .header("x-demo-version")
        .map_or_else(|| version_of(&r), String::from);
    (r.status, who)
}

#[test]
fn apps_are_routed_by_host_and_path_and_deploy_independently() {
    let world = World::new();
    deploy(
        &world,
        "shop",
        &app_conf("shop", "shop-v1", "hosts = [\"shop.test\"]"),
    )
    .ok();
    deploy(
        &world,
        "api",
        &app_conf("api", "api-v1", "hosts = [\"shop.test\"]\npath = \"/api\""),
    )
    .ok();
    deploy(
        &world,
        "blog",
        &app_conf("blog", "blog-v1", "hosts = [\"blog.test\"]"),
    )
    .ok();

    assert_eq!(answer(&world, "shop.test", "/"), (200, "shop-v1".into()));
    assert_eq!(
        answer(&world, "SHOP.test:8080", "/"),
        (200, "shop-v1".into())
    );
    // The longest prefix wins, on a segment boundary.
    assert_eq!(answer(&world, "shop.test", "/api/").1, "api-v1");
    assert_eq!(answer(&world, "shop.test", "/api").1, "api-v1");
    assert_eq!(answer(&world, "shop.test", "/apix").1, "shop-v1");
    assert_eq!(answer(&world, "blog.test", "/"), (200, "blog-v1".into()));
    let r = get(world.daemon.proxy, "/", &[("Host", "nobody.test")]).unwrap();
    assert_eq!(r.status, 404, "no app for that host: {r:?}");
    assert!(
        r.header("x-demo-version").is_none(),
        "the proxy answered, not an app: {r:?}"
    );

    deploy(
        &world,
        "blog",
        &app_conf("blog", "blog-v2", "hosts = [\"blog.test\"]"),
    )
    .ok();
    assert_eq!(answer(&world, "blog.test", "/"), (200, "blog-v2".into()));
    assert_eq!(answer(&world, "shop.test", "/"), (200, "shop-v1".into()));

    // Without a config, the CLI asks which app.
    let mut cmd = std::process::Command::new(support::bin());
    cmd.args(["status", "--state-dir"])
        .arg(&world.daemon.state)
        .current_dir(world.root())
        .env_remove("SLIPWAY_APP")
        .env_remove("SLIPWAY_CONFIG");
    let run = run_command(cmd, Duration::from_secs(60)).failed();
    assert!(
        run.stderr.contains("which app?") && run.stderr.contains("--app"),
        "{run}"
    );
}

#[test]
fn state_dir_inside_the_app_folder_is_not_frozen_into_releases() {
    // `slipway serve` with the default `./state`, run from the app folder: the quickstart's layout.
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    let daemon = support::Daemon::start(&app.join("state"), &[]);
    std::fs::write(app.join("slipway.toml"), Conf::demo("v1").render()).unwrap();
    let slipway = |args: &[&str]| {
        let mut cmd = std::process::Command::new(support::bin());
        cmd.args(args)
            .current_dir(&app)
            .env_remove("SLIPWAY_STATE_DIR")
            .env_remove("SLIPWAY_SERVER")
            .env_remove("SLIPWAY_CONFIG");
        run_command(cmd, Duration::from_secs(180))
    };
    slipway(&["deploy"]).ok();
    std::fs::write(app.join("slipway.toml"), Conf::demo("v2").render()).unwrap();
    slipway(&["deploy"]).ok();
    let r = get(daemon.proxy, "/", &[]).unwrap();
    assert_eq!(version_of(&r), "v2");
    // No artifact contains a copy of the state dir.
    let artifacts = app.join("state").join("artifacts");
    let nested: Vec<_> = walk(&artifacts)
        .into_iter()
        .filter(|p| p.ends_with("slipway.db") || p.ends_with("slipway.sock"))
        .collect();
    assert!(
        nested.is_empty(),
        "state files frozen into an artifact: {nested:?}"
    );
    drop(daemon);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() && !p.is_symlink() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn apps_deployed_at_the_same_time_all_keep_their_artifacts() {
    // A finished rollout prunes old artifacts; a deploy of another app freezing at that moment must
    // not lose its own (it once did, between freezing and recording the release).
    let world = World::new();
    let deploys: Vec<_> = (0..8)
        .map(|n| {
            let name = format!("app{n}");
            let toml = app_conf(&name, "v1", &format!("hosts = [\"{name}.test\"]"))
                .replace("replicas = 2", "replicas = 1");
            let dir = world.root().join(&name);
            std::fs::create_dir_all(&dir).unwrap();
            // Each app its own content, so each freeze makes a new artifact.
            std::fs::write(dir.join("content.txt"), &name).unwrap();
            let state = world.daemon.state.clone();
            let root = world.root().to_path_buf();
            std::thread::spawn(move || {
                std::fs::write(root.join(&name).join("slipway.toml"), toml).unwrap();
                let mut cmd = std::process::Command::new(support::bin());
                cmd.args(["deploy", "--state-dir"])
                    .arg(&state)
                    .current_dir(root.join(&name))
                    .env_remove("SLIPWAY_SERVER")
                    .env_remove("SLIPWAY_CONFIG");
                run_command(cmd, Duration::from_secs(180))
            })
        })
        .collect();
    for deploy in deploys {
        deploy.join().expect("deploy thread").ok();
    }
    for n in 0..8 {
        assert_eq!(
            answer(&world, &format!("app{n}.test"), "/"),
            (200, "v1".into())
        );
    }
}
