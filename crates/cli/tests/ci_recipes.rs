//! The CI recipes in `docs/ci/` run as written: their `run:` (GitHub Actions) and `script:` (GitLab CI)
//! lines are read from the YAML files and run with bash, as a runner would, against a real daemon over its
//! TCP API with a deployer token. The exit codes a CI job would see decide what runs next, as on the CI
//! service: the first failing step fails the job and the on-failure step (GitHub `if: failure()`, GitLab
//! `when: on_failure`) runs. A good release passes both gates and is promoted; a bad one (30 % errors)
//! fails the first gate and is rolled back; a canary with no traffic is inconclusive (exit 3), which fails
//! the job too.
//!
//! Only the pipelines' parameters differ from the files: a shorter gate window and a larger first weight,
//! because a test's traffic is smaller than production's (a gate needs 500 canary requests to pass), and
//! a looser latency bound, because a loaded test machine's latency is not the app's.

mod support;

use std::path::Path;
use std::time::Duration;
use support::load::{Load, Outcome};
use support::*;

/// What the test changes in the pipelines' variables (each must be declared in the recipe). At 25 % of
/// the test's load (up to 400 requests a second) a healthy canary reaches the 500 requests a pass needs
/// in a few seconds; the window leaves room for a machine several times slower.
const OVERRIDES: &[(&str, &str)] = &[
    ("GATE_FOR", "30s"),
    ("CANARY_PERCENT", "25"),
    ("GATE_LATENCY_P95", "2s"),
];
/// Without traffic a gate is inconclusive however long it judges: no need to wait 30 s for that.
const IDLE: &[(&str, &str)] = &[("GATE_FOR", "5s")];

/// One step (GitHub) or job (GitLab): its shell lines, and whether it runs only after a failure.
#[derive(Debug)]
struct Step {
    name: String,
    on_failure: bool,
    lines: Vec<String>,
}

#[derive(Debug)]
struct Recipe {
    /// The variables the pipeline declares (job `env:` / top-level `variables:`), values unquoted.
    vars: Vec<(String, String)>,
    steps: Vec<Step>,
}

/// A YAML line that carries something: its indentation and text (blank and comment lines are dropped).
fn meaningful_lines(text: &str) -> Vec<(usize, &str)> {
    text.lines()
        .map(|l| (l.len() - l.trim_start().len(), l.trim()))
        .filter(|(_, t)| !t.is_empty() && !t.starts_with('#'))
        .collect()
}

/// The lines indented under the line at `at`.
fn children<'a>(lines: &[(usize, &'a str)], at: usize) -> Vec<(usize, &'a str)> {
    let indent = lines[at].0;
    lines[at + 1..]
        .iter()
        .take_while(|(i, _)| *i > indent)
        .copied()
        .collect()
}

fn unquote(value: &str) -> String {
    let v = value.trim();
    for q in ['"', '\''] {
        if let Some(inner) = v.strip_prefix(q).and_then(|v| v.strip_suffix(q)) {
            return inner.to_string();
        }
    }
    v.to_string()
}

/// A shell line as the YAML holds it: plain scalars only, so what the file shows is what runs.
fn shell_line(value: &str, file: &str) -> String {
    let v = value.trim();
    assert!(
        !v.starts_with(['"', '\'', '|', '>']),
        "{file}: keep every run:/script: line a plain one-line scalar (found `{v}`)"
    );
    v.to_string()
}

/// `KEY: value` lines under the line at `at`.
fn mapping(lines: &[(usize, &str)], at: usize) -> Vec<(String, String)> {
    children(lines, at)
        .iter()
        .filter_map(|(_, t)| t.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), unquote(v)))
        .collect()
}

/// GitHub Actions: the first job's `env:` and its `steps:` (`uses:` steps are the checkout: skipped).
fn parse_github(text: &str) -> Recipe {
    let file = "github-actions.yml";
    let lines = meaningful_lines(text);
    let env_at = lines
        .iter()
        .position(|(_, t)| *t == "env:")
        .unwrap_or_else(|| panic!("{file}: no job env:"));
    let steps_at = lines
        .iter()
        .position(|(_, t)| *t == "steps:")
        .unwrap_or_else(|| panic!("{file}: no steps:"));
    let body = children(&lines, steps_at);
    let item_indent = body.first().expect("steps: is empty").0;
    let mut steps = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for (indent, text) in body {
        if indent == item_indent {
            let item = text
                .strip_prefix("- ")
                .unwrap_or_else(|| panic!("{file}: a step must start with `- `: {text}"));
            steps.extend(current.replace(vec![item]));
        } else {
            current
                .as_mut()
                .expect("a step's key before any step")
                .push(text);
        }
    }
    steps.extend(current);
    let steps = steps
        .into_iter()
        .filter_map(|keys| {
            let value = |key: &str| {
                keys.iter()
                    .find_map(|k| k.strip_prefix(key)?.strip_prefix(':'))
                    .map(str::trim)
            };
            let run = value("run")?;
            Some(Step {
                name: unquote(value("name").unwrap_or(run)),
                on_failure: value("if").is_some_and(|c| c.contains("failure()")),
                lines: vec![shell_line(run, file)],
            })
        })
        .collect();
    Recipe {
        vars: mapping(&lines, env_at),
        steps,
    }
}

/// GitLab CI: top-level `variables:`, and each job's `script:` lines in the order of `stages:`; a job
/// with `when: on_failure` runs only after a failure.
fn parse_gitlab(text: &str) -> Recipe {
    let file = "gitlab-ci.yml";
    let lines = meaningful_lines(text);
    let top = |key: &str| lines.iter().position(|(i, t)| *i == 0 && *t == key);
    let stages: Vec<String> = children(&lines, top("stages:").expect("no stages:"))
        .iter()
        .map(|(_, t)| unquote(t.trim_start_matches("- ")))
        .collect();
    let vars = mapping(&lines, top("variables:").expect("no variables:"));
    let mut jobs = Vec::new();
    for (at, (indent, text)) in lines.iter().enumerate() {
        let Some(name) = text.strip_suffix(':') else {
            continue;
        };
        if *indent != 0 || ["stages", "variables", "default", "workflow", "include"].contains(&name)
        {
            continue;
        }
        let body = children(&lines, at);
        let stage = body
            .iter()
            .find_map(|(_, t)| t.strip_prefix("stage:"))
            .map(unquote)
            .unwrap_or_else(|| panic!("{file}: job {name} has no stage"));
        let script_at = body
            .iter()
            .position(|(_, t)| *t == "script:")
            .unwrap_or_else(|| panic!("{file}: job {name} has no script:"));
        let script_indent = body[script_at].0;
        let script = body[script_at + 1..]
            .iter()
            .take_while(|(i, _)| *i > script_indent)
            .map(|(_, t)| {
                let line = t
                    .strip_prefix("- ")
                    .unwrap_or_else(|| panic!("{file}: job {name}: script lines are `- ...`: {t}"));
                shell_line(line, file)
            })
            .collect();
        let rank = stages
            .iter()
            .position(|s| *s == stage)
            .unwrap_or_else(|| panic!("{file}: job {name}'s stage {stage} is not in stages:"));
        jobs.push((
            rank,
            Step {
                name: name.to_string(),
                on_failure: body.iter().any(|(_, t)| *t == "when: on_failure"),
                lines: script,
            },
        ));
    }
    jobs.sort_by_key(|(rank, _)| *rank);
    Recipe {
        vars,
        steps: jobs.into_iter().map(|(_, s)| s).collect(),
    }
}

fn read_recipe(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/ci")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// What a CI run did: every step that ran with its exit code, and the job's result.
#[derive(Debug)]
struct Job {
    ran: Vec<(String, i32, String)>,
    /// The first failing step and its exit code: the job fails with it.
    failed: Option<(String, i32)>,
}

impl Job {
    fn codes(&self) -> Vec<(&str, i32)> {
        self.ran.iter().map(|(n, c, _)| (n.as_str(), *c)).collect()
    }

    fn output(&self) -> String {
        self.ran
            .iter()
            .map(|(n, c, out)| format!("=== {n}: exit {c}\n{out}"))
            .collect()
    }
}

/// Runs the recipe's steps as its CI service would: in order until one exits non-zero, then only the
/// on-failure steps. Each step is `bash -eo pipefail` in the app folder (the checkout), with the
/// pipeline's variables, the test's overrides (then `extra`), the daemon's API address and a deployer
/// token.
fn run_pipeline(
    world: &World,
    recipe: &Recipe,
    server: &str,
    token: &str,
    extra: &[(&str, &str)],
) -> Job {
    let bin_dir = Path::new(bin()).parent().expect("the binary's folder");
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut job = Job {
        ran: Vec::new(),
        failed: None,
    };
    for step in &recipe.steps {
        if step.on_failure != job.failed.is_some() {
            continue;
        }
        let mut cmd = std::process::Command::new("bash");
        cmd.args(["--noprofile", "--norc", "-eo", "pipefail", "-c"])
            .arg(step.lines.join("\n"))
            .current_dir(&world.app_dir);
        for var in [
            "SLIPWAY_STATE_DIR",
            "SLIPWAY_CONFIG",
            "SLIPWAY_APP",
            "SLIPWAY_SERVER",
            "SLIPWAY_TOKEN",
        ] {
            cmd.env_remove(var);
        }
        cmd.envs(recipe.vars.iter().map(|(k, v)| (k, v)))
            .envs(OVERRIDES.iter().chain(extra).copied())
            .env("SLIPWAY_SERVER", server)
            .env("SLIPWAY_TOKEN", token)
            .env("GITHUB_RUN_ID", "4242")
            .env("CI_PIPELINE_ID", "4242")
            .env("SLIPWAY_LOG", "warn")
            .env("PATH", &path);
        let run = run_command(cmd, Duration::from_secs(300));
        let code = run.code.expect("a step killed by a signal");
        job.ran.push((
            step.name.clone(),
            code,
            format!("{}{}", run.stdout, run.stderr),
        ));
        if code != 0 && !step.on_failure && job.failed.is_none() {
            job.failed = Some((step.name.clone(), code));
        }
    }
    job
}

/// The recipe's commands, checked against what the test relies on.
fn checked(recipe: Recipe, file: &str) -> Recipe {
    for (var, _) in OVERRIDES.iter().chain(IDLE) {
        assert!(
            recipe.vars.iter().any(|(k, _)| k == var),
            "{file} no longer declares {var}, which the test overrides: {recipe:?}"
        );
    }
    let all: Vec<&str> = recipe
        .steps
        .iter()
        .flat_map(|s| s.lines.iter().map(String::as_str))
        .collect();
    for needed in [
        "slipway deploy --canary",
        "slipway gate",
        "slipway ramp",
        "slipway promote --full",
        "slipway abort",
    ] {
        assert!(
            all.iter().any(|l| l.contains(needed)),
            "{file}: no `{needed}` line in {all:?}"
        );
    }
    assert!(
        recipe.steps.iter().any(|s| s.on_failure),
        "{file}: no on-failure step"
    );
    recipe
}

/// The names of the recipe's steps that run `command`, in order.
fn steps_with<'a>(recipe: &'a Recipe, command: &str) -> Vec<&'a str> {
    recipe
        .steps
        .iter()
        .filter(|s| s.lines.iter().any(|l| l.contains(command)))
        .map(|s| s.name.as_str())
        .collect()
}

fn pipeline_against_a_real_daemon(recipe: Recipe) {
    let world = World::with_daemon_args(&["--api", "127.0.0.1:0"]);
    // The recipes start from an app that serves: its first deploy is a plain one, by hand.
    world.deploy_ok(&Conf::demo("v1"));
    let server = format!("http://{}", world.api_addr());
    let token = world.create_token("ci", "deployer");
    let load = Load::paced(world.daemon.proxy, 4, "/", 100);
    load.wait_for_more(200);

    // A good release: both gates pass, it is promoted, the job succeeds and nothing is rolled back.
    world.write(&Conf::demo("v2"));
    let started = load.total();
    let good = run_pipeline(&world, &recipe, &server, &token, &[]);
    eprintln!(
        "good release: {:?}; {} requests meanwhile",
        good.codes(),
        load.total() - started
    );
    assert!(
        good.failed.is_none(),
        "the good release's job failed: {good:?}\n{}",
        good.output()
    );
    assert!(
        good.ran.len() == recipe.steps.iter().filter(|s| !s.on_failure).count(),
        "every step ran, no rollback: {:?}",
        good.codes()
    );
    let status = world.settled();
    assert_eq!(status["stable"]["version"], 2, "v2 promoted: {status}");
    assert_eq!(world.answer(), "v2");
    let by = status["stable"]["created_by"].as_str().unwrap_or_default();
    assert!(
        by.starts_with("ci "),
        "deployed over TCP under the token's name: {by:?}"
    );

    // A bad release: the first gate fails (exit 1), the job fails with it, the rollback step runs and
    // v2 keeps serving.
    world.write(&Conf::demo("v3").env("DEMO_ERROR_RATE", "0.3"));
    let bad = run_pipeline(&world, &recipe, &server, &token, &[]);
    eprintln!("bad release: {:?}", bad.codes());
    let first_gate = steps_with(&recipe, "slipway gate")[0];
    assert_eq!(
        bad.failed,
        Some((first_gate.to_string(), 1)),
        "the bad release fails its first gate with exit 1: {}",
        bad.output()
    );
    let rollback = steps_with(&recipe, "slipway abort");
    let (last, code, _) = bad.ran.last().expect("steps ran");
    assert!(
        rollback.contains(&last.as_str()) && *code == 0,
        "the rollback step ran last and succeeded: {}",
        bad.output()
    );
    let status = world.settled();
    assert_eq!(status["stable"]["version"], 2, "v2 still stable: {status}");
    assert_eq!(release(&world.history(), 3)["status"], "failed");
    assert_eq!(world.answer(), "v2");
    let tally = load.finish();
    for r in tally.failures() {
        assert!(
            matches!(&r.result, Err(Outcome::Status(500, body)) if body.contains("injected error from v3")),
            "only the bad release's own errors reached users, not {:?}; {}",
            r.result,
            tally.summary()
        );
    }

    // No traffic: the gate cannot decide (exit 3), and that fails the job too.
    world.write(&Conf::demo("v4"));
    let idle = run_pipeline(&world, &recipe, &server, &token, IDLE);
    eprintln!("release without traffic: {:?}", idle.codes());
    assert_eq!(
        idle.failed,
        Some((first_gate.to_string(), 3)),
        "an inconclusive gate fails the job with exit 3: {}",
        idle.output()
    );
    let status = world.settled();
    assert_eq!(status["stable"]["version"], 2, "v2 still stable: {status}");
    assert_eq!(world.answer(), "v2");
}

#[test]
fn github_actions_recipe_promotes_a_good_release_and_rolls_back_a_bad_one() {
    let file = "github-actions.yml";
    let recipe = checked(parse_github(&read_recipe(file)), file);
    for var in ["SLIPWAY_SERVER", "SLIPWAY_TOKEN"] {
        assert!(
            recipe
                .vars
                .iter()
                .any(|(k, v)| k == var && v.contains("${{")),
            "{file}: the job's env takes {var} from the repository's settings"
        );
    }
    pipeline_against_a_real_daemon(recipe);
}

#[test]
fn gitlab_ci_recipe_promotes_a_good_release_and_rolls_back_a_bad_one() {
    let file = "gitlab-ci.yml";
    pipeline_against_a_real_daemon(checked(parse_gitlab(&read_recipe(file)), file));
}
