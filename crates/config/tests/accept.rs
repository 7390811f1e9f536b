//! Configs that must parse, and the spec they mean.

use slipway_config::{DEFAULT_EXCLUDE, parse, parse_with_warnings};
use slipway_core::spec::{Amount, Check, ProbeCheck, ProbeSpec, SecretSource, Strategy, Webhook};
use std::path::{Path, PathBuf};
use std::time::Duration;

const MINIMAL: &str = r#"app = "hello"

[processes.web]
cmd = "python3 -m http.server $PORT --bind 127.0.0.1 --directory www"
replicas = 2
readiness = { http = "/ready.txt" }

[deploy]
strategy = "blue-green"
"#;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn minimal_file_parses_with_defaults() {
    let spec = parse(MINIMAL, Path::new("/srv/hello/slipway.toml")).expect("minimal config");
    assert_eq!(spec.app, "hello");
    assert_eq!(spec.artifact.path, PathBuf::from("/srv/hello"));
    assert_eq!(spec.artifact.exclude, DEFAULT_EXCLUDE);
    assert!(spec.env.is_empty() && spec.secrets.is_empty());
    assert_eq!(spec.routing.hosts, Vec::<String>::new());
    assert_eq!(spec.routing.path_prefix, "/");
    assert_eq!(spec.retention.keep_releases, 10);

    let web = &spec.processes["web"];
    assert_eq!(spec.processes.len(), 1);
    assert_eq!(
        web.cmd,
        "python3 -m http.server $PORT --bind 127.0.0.1 --directory www"
    );
    assert_eq!(web.replicas, 2);
    assert_eq!(
        (web.grace, web.drain_timeout, web.stream_drain_timeout),
        (secs(30), secs(30), secs(300))
    );
    assert_eq!(
        web.readiness,
        Some(ProbeSpec {
            check: ProbeCheck::Http {
                path: "/ready.txt".into()
            },
            period: secs(10),
            timeout: secs(1),
            initial_delay: Duration::ZERO,
            success_threshold: 1,
            failure_threshold: 3,
        })
    );
    assert_eq!((&web.liveness, &web.startup), (&None, &None));

    assert_eq!(
        spec.deploy.strategy,
        Strategy::BlueGreen {
            auto_promote: true,
            scale_down_delay: secs(30)
        }
    );
    assert_eq!(spec.deploy.progress_deadline, secs(600));
}

#[test]
fn full_example_parses() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/slipway.toml");
    let parsed = slipway_config::load_with_warnings(&path).expect("examples/slipway.toml");
    assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    let spec = parsed.spec;
    assert_eq!(spec.app, "shop");
    let drill = spec.drill.as_ref().expect("[drill]");
    assert_eq!(
        (drill.schedule.as_str(), drill.weight, drill.error_rate),
        ("0 10 * * 2", 5, 0.5)
    );
    assert_eq!(
        spec.artifact.path,
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
    );
    assert!(spec.artifact.exclude.contains(&"*.log".to_string()));
    assert_eq!(spec.env["WORKERS"], "4");
    assert_eq!(
        spec.secrets["DATABASE_URL"],
        SecretSource::File("/run/secrets/db-url".into())
    );
    assert_eq!(
        spec.secrets["API_KEY"],
        SecretSource::Env("SHOP_API_KEY".into())
    );
    assert_eq!(
        spec.routing.hosts,
        ["shop.example.com", "www.shop.example.com"]
    );
    assert_eq!(spec.routing.max_body_size, Some(10 << 20));
    assert_eq!(spec.processes.len(), 3);
    let thumbnails = spec.processes["thumbnails"]
        .container
        .as_ref()
        .expect("an image process");
    assert_eq!(thumbnails.image, "shop-thumbnails:1.4");
    assert_eq!(
        thumbnails.image_id, None,
        "resolved at deploy, not by the config"
    );
    assert_eq!(thumbnails.memory_bytes, Some(256 << 20));
    assert_eq!(thumbnails.nano_cpus, Some(500_000_000));
    assert_eq!(thumbnails.cap_add, ["CHOWN"]);
    assert!(thumbnails.read_only && thumbnails.cap_drop_all && thumbnails.no_new_privileges);
    assert_eq!(
        thumbnails.command.as_deref(),
        Some(
            &[
                "resize-worker".to_string(),
                "--queue".into(),
                "thumbnails".into()
            ][..]
        )
    );
    let web = &spec.processes["web"];
    assert_eq!(
        web.liveness.as_ref().map(|p| (&p.check, p.period)),
        Some((&ProbeCheck::Tcp, secs(10)))
    );
    let startup = web.startup.as_ref().expect("startup probe");
    assert_eq!(
        startup.check,
        ProbeCheck::Exec {
            cmd: "test -f started".into()
        }
    );
    assert_eq!(startup.failure_threshold, 30);
    let worker = &spec.processes["worker"];
    assert_eq!(worker.grace, secs(60));
    assert_eq!(worker.liveness.as_ref().map(|p| p.timeout), Some(secs(2)));
    assert_eq!(
        spec.deploy.strategy,
        Strategy::Rolling {
            max_surge: Amount::Count(1),
            max_unavailable: Amount::Count(0)
        }
    );
    assert_eq!(
        spec.analysis["golden"].checks[0],
        Check::ErrorRate {
            max: 0.01,
            compare_stable: true
        }
    );
    let slo = spec.slo.as_ref().expect("[slo]");
    assert_eq!(
        (
            slo.window,
            slo.alerts.clone(),
            slo.canary_gate,
            slo.hold_deploys
        ),
        (
            secs(30 * 86_400),
            slipway_core::slo::default_alerts(),
            true,
            true
        ),
        "the example spells out the defaults"
    );
    assert_eq!(
        slo.latency.map(|l| (l.percentile, l.max)),
        Some((99.0, Duration::from_millis(300)))
    );
    assert_eq!(
        spec.notify,
        [Webhook {
            url: slipway_core::spec::WebhookUrl::Secret(slipway_core::spec::SecretSource::Env(
                "SLACK_WEBHOOK_URL".into()
            ))
        }]
    );
}

#[test]
fn relative_paths_resolve_against_the_config_folder() {
    let text = r#"
app = "a"
[artifact]
path = "site/../build"
[secrets]
TOKEN = { file = "secrets/token" }
[processes.web]
cmd = "x"
"#;
    let spec = parse(text, Path::new("/srv/a/slipway.toml")).expect("valid");
    assert_eq!(spec.artifact.path, PathBuf::from("/srv/a/site/../build"));
    assert_eq!(
        spec.secrets["TOKEN"],
        SecretSource::File("/srv/a/secrets/token".into())
    );

    let cwd = std::env::current_dir().expect("cwd");
    let spec = parse(text, Path::new("slipway.toml")).expect("valid");
    assert!(spec.artifact.path.is_absolute());
    assert_eq!(spec.artifact.path, cwd.join("site/../build"));
}

#[test]
fn rolling_amounts_and_other_strategies() {
    let with_deploy = |deploy: &str| {
        let text = format!(
            "app = \"a\"\n[processes.web]\ncmd = \"x\"\nreplicas = 4\n[deploy]\n{deploy}\n"
        );
        parse(&text, Path::new("/a/slipway.toml")).map(|s| s.deploy.strategy)
    };
    assert_eq!(
        with_deploy("max_surge = \"25%\"\nmax_unavailable = 1").expect("valid"),
        Strategy::Rolling {
            max_surge: Amount::Percent(25),
            max_unavailable: Amount::Count(1)
        }
    );
    assert_eq!(
        with_deploy("max_surge = 0\nmax_unavailable = \"50%\"").expect("valid"),
        Strategy::Rolling {
            max_surge: Amount::Count(0),
            max_unavailable: Amount::Percent(50)
        }
    );
    assert_eq!(
        with_deploy("strategy = \"recreate\"").expect("valid"),
        Strategy::Recreate
    );
    assert_eq!(
        with_deploy("strategy = \"blue-green\"\nauto_promote = false\nscale_down_delay = \"2m\"")
            .expect("valid"),
        Strategy::BlueGreen {
            auto_promote: false,
            scale_down_delay: secs(120)
        }
    );
}

#[test]
fn defaults_bend_to_explicit_values() {
    let text = r#"
app = "a"
[processes.web]
cmd = "x"
drain_timeout = "10m"
readiness = { exec = "true", period = "500ms" }
"#;
    let spec = parse(text, Path::new("/a/slipway.toml")).expect("valid");
    let web = &spec.processes["web"];
    assert_eq!(
        web.stream_drain_timeout,
        secs(600),
        "unset stream drain follows a longer drain"
    );
    let readiness = web.readiness.as_ref().expect("readiness");
    assert_eq!(
        readiness.timeout,
        Duration::from_millis(500),
        "unset timeout shrinks to the period"
    );
}

#[test]
fn worker_only_apps_and_zero_replica_workers_are_fine() {
    let text = "app = \"jobs\"\n[processes.worker]\ncmd = \"./work\"\nreplicas = 0\n";
    let spec = parse(text, Path::new("/a/slipway.toml")).expect("valid");
    assert_eq!(spec.processes["worker"].replicas, 0);
}

#[test]
fn duplicate_hosts_warn_but_parse() {
    let text = "app = \"a\"\n[routing]\nhosts = [\"A.example.com\", \"a.example.com\"]\n[processes.web]\ncmd = \"x\"\n";
    let parsed = parse_with_warnings(text, Path::new("/a/slipway.toml")).expect("valid");
    assert_eq!(parsed.spec.routing.hosts, ["a.example.com"]);
    assert_eq!(parsed.warnings.len(), 1);
    assert_eq!(parsed.warnings[0].line, 3);
}

#[test]
fn the_docs_embed_the_examples_verbatim() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("../../docs/config.md")).expect("docs/config.md");
    for example in ["examples/slipway.toml", "examples/canary.toml"] {
        let text = std::fs::read_to_string(root.join(example)).expect(example);
        assert!(
            doc.contains(&format!("```toml\n{text}```")),
            "docs/config.md does not embed {example} as it is"
        );
    }
}

#[test]
fn an_image_process_gets_the_secure_defaults() {
    let text = "app = \"a\"\n[processes.web]\nimage = \"registry:5000/team/shop:2.1\"\n";
    let spec = parse(text, Path::new("/a/slipway.toml")).expect("valid");
    let web = &spec.processes["web"];
    let container = web.container.as_ref().expect("an image process");
    assert_eq!(
        *container,
        slipway_core::spec::ContainerSpec::new("registry:5000/team/shop:2.1", 8080)
    );
    assert!(container.cap_drop_all && container.no_new_privileges && !container.secrets_as_env);
    assert!(spec.uses_containers());
}

#[test]
fn tls_auto_or_files_with_redirect_and_hsts() {
    use slipway_core::spec::TlsSpec;
    let parse = |routing: &str| {
        let text = format!("app = \"a\"\n[processes.web]\ncmd = \"./s\"\n[routing]\n{routing}");
        slipway_config::parse(&text, std::path::Path::new("slipway.toml")).expect("valid")
    };
    let auto = parse("hosts = [\"shop.test\"]\ntls = \"auto\"\nredirect_https = true\nhsts = true");
    assert_eq!(auto.routing.tls, Some(TlsSpec::Auto));
    assert!(auto.routing.redirect_https);
    assert_eq!(auto.routing.hsts_max_age, Some(31_536_000));
    let files = parse("tls = { cert = \"/etc/ssl/a.pem\", key = \"/etc/ssl/a.key\" }");
    assert_eq!(
        files.routing.tls,
        Some(TlsSpec::Files {
            cert: "/etc/ssl/a.pem".into(),
            key: "/etc/ssl/a.key".into()
        })
    );
    assert!(!files.routing.redirect_https);
    assert_eq!(files.routing.hsts_max_age, None);
}
