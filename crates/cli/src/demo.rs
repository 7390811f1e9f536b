//! `slipway demo`: the whole story in one command, with nothing to set up. Starts a daemon in a temp
//! dir, deploys the bundled demo app (v1), puts light load on it, blue-greens to v2, rolls back, then
//! deploys a bad canary (3 % errors) that its analysis catches and rolls back by itself, and prints what
//! happened: how long the bad canary lasted, how many of its errors users saw, and how many requests
//! failed otherwise (the answer should be 0).

use crate::client::Client;
use crate::commands::{Context, progress, who};
use crate::load::Load;
use anyhow::{Context as _, bail};
use slipway_api::{DeployAccepted, DeployRequest, RollbackRequest};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Stops the demo's daemon (SIGTERM: it drains) and removes the temp dir, also on error.
struct DemoDaemon {
    child: std::process::Child,
    dir: PathBuf,
}

impl Drop for DemoDaemon {
    fn drop(&mut self) {
        // SAFETY-free: kill(2) on our own child's pid.
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The blue-green app of the first steps.
const BLUE_GREEN: &str = r#"[deploy]
strategy = "blue-green"
scale_down_delay = "30s"
"#;

/// The bad canary: 3 % of its answers are errors; 10 % of the traffic goes to it while the analysis
/// compares its error rate with the stable release's.
const BAD_CANARY: &str = r#"[deploy]
strategy = "canary"
progress_deadline = "2m"
steps = [ { weight = 10 }, { analysis = "golden", for = "2m" }, { weight = 100 } ]

[analysis.golden]
error_rate = { max = "1%", compare = "stable" }
"#;

fn write_app(
    dir: &Path,
    exe: &Path,
    version: &str,
    error_rate: &str,
    deploy: &str,
) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let config = dir.join("slipway.toml");
    std::fs::write(
        &config,
        format!(
            r#"app = "demo"

[env]
DEMO_VERSION = "{version}"
DEMO_ERROR_RATE = "{error_rate}"

[processes.web]
cmd = "'{}' demo-app"
replicas = 2
readiness = {{ http = "/ready", period = "200ms" }}
grace = "5s"

{deploy}"#,
            exe.display()
        ),
    )?;
    Ok(config)
}

pub async fn run() -> anyhow::Result<ExitCode> {
    let exe = std::env::current_exe().context("cannot find the slipway binary")?;
    let dir = std::env::temp_dir().join(format!("slipway-demo-{}", std::process::id()));
    let state = dir.join("state");
    std::fs::create_dir_all(&state)?;
    println!("== starting a daemon in {}", dir.display());
    let log = std::fs::File::create(dir.join("daemon.log"))?;
    let child = std::process::Command::new(&exe)
        .args(["serve", "--listen", "127.0.0.1:0", "--state-dir"])
        .arg(&state)
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("cannot start `slipway serve`")?;
    let _daemon = DemoDaemon {
        child,
        dir: dir.clone(),
    };
    let addr = wait_for_daemon(&state).await?;
    println!("   proxy on http://{addr}");

    let app_dir = dir.join("app");
    let config = write_app(&app_dir, &exe, "v1", "0", BLUE_GREEN)?;
    let ctx = Context {
        client: Client::from_state_dir(state.clone()),
        config: config.clone(),
        app: Some("demo".into()),
        format: crate::output::Format::Text,
    };
    println!("\n== slipway deploy   (v1)");
    deploy(&ctx, &config, "first deploy").await?;

    println!("\n== light load: 4 clients on http://{addr}/");
    let load = Load::start(addr, 4, Duration::from_millis(5));
    wait_for_requests(&load, 200).await;

    println!("\n== slipway deploy   (v2, blue-green, under load)");
    write_app(&app_dir, &exe, "v2", "0", BLUE_GREEN)?;
    deploy(&ctx, &config, "v2 says hello differently").await?;
    wait_for_requests(&load, load.snapshot().total() + 200).await;

    println!("\n== slipway rollback (back to v1's bits and config, under load)");
    let accepted: DeployAccepted = ctx
        .client
        .post(
            "/v1/apps/demo/rollback",
            &RollbackRequest {
                to: None,
                who: who(),
                message: Some("demo rollback".into()),
            },
        )
        .await?;
    if progress::follow(&ctx, &accepted).await? != ExitCode::SUCCESS {
        bail!(
            "the rollback did not succeed; see {}",
            dir.join("daemon.log").display()
        );
    }
    wait_for_requests(&load, load.snapshot().total() + 200).await;

    println!("\n== slipway deploy   (v4: a bad canary, 3 % errors, 10 % of the traffic)");
    write_app(&app_dir, &exe, "v4", "0.03", BAD_CANARY)?;
    let started = Instant::now();
    let request = deploy_request(&config, "a canary that went bad");
    let accepted: DeployAccepted = ctx.client.post("/v1/deploy", &request).await?;
    if progress::follow(&ctx, &accepted).await? == ExitCode::SUCCESS {
        bail!("the bad canary v{} was promoted", accepted.release);
    }
    let caught = started.elapsed();
    let status: slipway_api::AppStatus = ctx.client.get("/v1/apps/demo").await?;
    wait_for_requests(&load, load.snapshot().total() + 200).await;
    let tally = load.finish().await;

    println!("\n== slipway history");
    crate::commands::history::run(&ctx).await?;
    println!("== what the clients saw");
    for (version, n) in &tally.ok_by_version {
        println!("   {n:>6} answers from {version}");
    }
    println!(
        "   {:>6} errors injected by the bad canary v{}, which was rolled back {:.1} s after `deploy`",
        tally.injected,
        accepted.release,
        caught.as_secs_f64()
    );
    if let Some(why) = &status.last_failure {
        println!("          why: {why}");
    }
    println!(
        "   {:>6} requests in all, failed requests (besides the canary's own errors): {}",
        tally.total(),
        tally.failed
    );
    if let Some(why) = &tally.first_failure {
        println!("   first failure: {why}");
    }
    Ok(if tally.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn deploy_request(config: &Path, message: &str) -> DeployRequest {
    DeployRequest {
        upload: None,
        config: config.display().to_string(),
        label: None,
        message: Some(message.into()),
        who: who(),
        canary: None,
        strict: false,
        image: None,
        build: false,
        override_slo: None,
    }
}

async fn deploy(ctx: &Context, config: &Path, message: &str) -> anyhow::Result<()> {
    let request = deploy_request(config, message);
    let accepted: DeployAccepted = ctx.client.post("/v1/deploy", &request).await?;
    println!("   release v{} recorded", accepted.release);
    if progress::follow(ctx, &accepted).await? != ExitCode::SUCCESS {
        bail!("the deploy of v{} did not succeed", accepted.release);
    }
    Ok(())
}

async fn wait_for_daemon(state: &Path) -> anyhow::Result<std::net::SocketAddr> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(text) = std::fs::read_to_string(state.join("proxy.addr"))
            && state.join("slipway.sock").exists()
            && let Ok(addr) = text.trim().parse()
        {
            return Ok(addr);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!(
        "the daemon did not start within 30 s; see {}",
        state.parent().unwrap_or(state).join("daemon.log").display()
    )
}

async fn wait_for_requests(load: &Load, at_least: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while load.snapshot().total() < at_least && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
