//! Canary rollouts, analysis templates and webhooks: what they parse to, and each mistake at its line
//! with a help.

mod support;

use slipway_config::{parse, parse_with_warnings};
use slipway_core::spec::{
    AnalysisTemplate, CanarySpec, CanaryStep, Check, RouteMatch, Sticky, Strategy, TestKnobs,
    Webhook, WebhookUrl,
};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;
use support::{issues, rejects};

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A valid canary app; `deploy` goes under `[deploy]` from line 11 on, then `tail` sections.
fn app(deploy: &str, tail: &str) -> String {
    format!(
        "app = \"a\"\n\n[processes.web]\ncmd = \"./server\"\n\n[analysis.golden]\nerror_rate = {{ max = \"1%\" }}\n\n[deploy]\nstrategy = \"canary\"\n{deploy}\n{tail}"
    )
}

fn canary(text: &str) -> CanarySpec {
    match parse(text, Path::new("slipway.toml")) {
        Ok(spec) => match spec.deploy.strategy {
            Strategy::Canary(c) => c,
            other => panic!("not a canary: {other:?}"),
        },
        Err(e) => panic!("rejected:\n{text}\n{e}"),
    }
}

#[test]
fn the_canary_example_parses_to_its_spec() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/canary.toml");
    let parsed = slipway_config::load_with_warnings(&path).expect("examples/canary.toml");
    assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    let spec = parsed.spec;
    assert_eq!(spec.deploy.progress_deadline, secs(1800));
    let route = RouteMatch {
        headers: BTreeMap::from([("x-canary".into(), "1".into())]),
        cookies: BTreeMap::from([("beta".into(), "yes".into())]),
    };
    assert_eq!(
        spec.deploy.strategy,
        Strategy::Canary(CanarySpec {
            steps: vec![
                CanaryStep::Weight(10),
                CanaryStep::Pause(Some(secs(300))),
                CanaryStep::Analysis {
                    template: "golden".into(),
                    duration: secs(60)
                },
                CanaryStep::Route(route),
                CanaryStep::Mirror(20),
                CanaryStep::Weight(50),
                CanaryStep::Pause(None),
            ],
            sticky: Some(Sticky::Header("x-user-id".into())),
            background_analysis: Some("errors".into()),
        })
    );
    let golden = AnalysisTemplate {
        checks: vec![
            Check::ErrorRate {
                max: 0.01,
                compare_stable: true,
            },
            Check::Latency {
                percentile: 95.0,
                max: Duration::from_millis(300),
                compare_stable: true,
            },
            Check::Latency {
                percentile: 99.9,
                max: secs(1),
                compare_stable: false,
            },
            Check::Prometheus {
                address: "http://127.0.0.1:9090".into(),
                query: "sum(rate(http_requests_total{release=\"{{release}}\",code=~\"5..\"}[1m]))"
                    .into(),
                min: None,
                max: Some(0.05),
            },
            Check::Http {
                url: "http://127.0.0.1:9000/healthz".into(),
                json_path: Some("checks.db.ok".into()),
                min: Some(1.0),
                max: None,
                timeout: secs(5),
            },
            Check::Http {
                url: "http://127.0.0.1:9000/version".into(),
                json_path: None,
                min: None,
                max: None,
                timeout: secs(10),
            },
            Check::Command {
                cmd: "./smoke.sh".into(),
                timeout: secs(30),
            },
        ],
        test: TestKnobs {
            alpha: Some(0.05),
            beta: Some(0.05),
            stable_margin: Some(0.5),
        },
    };
    assert_eq!(spec.analysis["golden"], golden, "checks in file order");
    assert_eq!(
        spec.analysis["errors"].checks,
        [Check::ErrorRate {
            max: 0.05,
            compare_stable: false
        }]
    );
    assert_eq!(
        spec.notify,
        [Webhook {
            url: WebhookUrl::Secret(slipway_core::spec::SecretSource::Env(
                "SLACK_WEBHOOK_URL".into()
            ))
        }]
    );
}

#[test]
fn canary_without_steps_is_a_plain_weighted_rollout() {
    assert_eq!(
        canary(&app("", "")),
        CanarySpec {
            steps: vec![],
            sticky: None,
            background_analysis: None
        }
    );
    assert!(canary(&app("steps = []", "")).steps.is_empty());
}

#[test]
fn pause_and_sticky_spellings() {
    let c = canary(&app(
        "steps = [{ pause = \"until-promoted\" }, { pause = {} }, { pause = \"1m30s\" }]\nsticky = \"cookie\"",
        "",
    ));
    assert_eq!(
        c.steps,
        [
            CanaryStep::Pause(None),
            CanaryStep::Pause(None),
            CanaryStep::Pause(Some(secs(90)))
        ]
    );
    assert_eq!(c.sticky, Some(Sticky::Cookie("slipway_canary".into())));
    for (sticky, want) in [
        ("\"client-address\"", Sticky::ClientAddr),
        ("{ cookie = \"cv\" }", Sticky::Cookie("cv".into())),
        (
            "{ header = \"X-User-Id\" }",
            Sticky::Header("x-user-id".into()),
        ),
    ] {
        let c = canary(&app(&format!("sticky = {sticky}"), ""));
        assert_eq!(c.sticky, Some(want), "{sticky}");
    }
}

#[test]
fn routes_match_lowercased_headers_and_exact_cookies() {
    let c = canary(&app(
        "steps = [{ route = { header = { \"X-Canary\" = \"On\" } } }, { route = { cookie = { Beta = \"1\" } } }]",
        "",
    ));
    assert_eq!(
        c.steps,
        [
            CanaryStep::Route(RouteMatch {
                headers: BTreeMap::from([("x-canary".into(), "On".into())]),
                cookies: BTreeMap::new(),
            }),
            CanaryStep::Route(RouteMatch {
                headers: BTreeMap::new(),
                cookies: BTreeMap::from([("Beta".into(), "1".into())]),
            }),
        ]
    );
}

#[test]
fn percentiles_arrays_and_defaults_of_checks() {
    let text = app(
        "",
        r#"[analysis.slow]
latency_p999 = { max = "2s" }
"latency_p99.9" = { max = "1s" }
latency_p50 = { max = "50ms", compare = "stable" }
error_rate = { max = "0.5%" }
prometheus = [
  { address = "https://prom.internal", query = "up", min = 1 },
  { address = "http://127.0.0.1:9090/prom", query = "x", min = -1, max = 1.5 },
]
http = { url = "http://127.0.0.1:9000/healthz" }
command = [{ cmd = "./a" }, { cmd = "./b", timeout = "5s" }]
"#,
    );
    let spec = parse(&text, Path::new("slipway.toml")).expect("valid");
    let latency = |percentile: f64, max: Duration, compare_stable: bool| Check::Latency {
        percentile,
        max,
        compare_stable,
    };
    assert_eq!(
        spec.analysis["slow"].checks,
        [
            latency(99.9, secs(2), false),
            latency(99.9, secs(1), false),
            latency(50.0, Duration::from_millis(50), true),
            Check::ErrorRate {
                max: 0.005,
                compare_stable: false
            },
            Check::Prometheus {
                address: "https://prom.internal".into(),
                query: "up".into(),
                min: Some(1.0),
                max: None
            },
            Check::Prometheus {
                address: "http://127.0.0.1:9090/prom".into(),
                query: "x".into(),
                min: Some(-1.0),
                max: Some(1.5)
            },
            Check::Http {
                url: "http://127.0.0.1:9000/healthz".into(),
                json_path: None,
                min: None,
                max: None,
                timeout: secs(10)
            },
            Check::Command {
                cmd: "./a".into(),
                timeout: secs(60)
            },
            Check::Command {
                cmd: "./b".into(),
                timeout: secs(5)
            },
        ]
    );
}

#[test]
fn templates_are_allowed_with_any_strategy() {
    let text = "app = \"a\"\n[processes.web]\ncmd = \"x\"\n[analysis.smoke]\ncommand = { cmd = \"./smoke\" }\n";
    let spec = parse(text, Path::new("slipway.toml")).expect("valid");
    assert_eq!(spec.analysis["smoke"].checks.len(), 1);
}

#[test]
fn notify_accepts_inline_arrays_and_a_single_table() {
    let base = "app = \"a\"\n[processes.web]\ncmd = \"x\"\n";
    let top = |notify: &str| format!("app = \"a\"\n{notify}\n[processes.web]\ncmd = \"x\"\n");
    for text in [
        top(
            "notify = [{ url = \"https://h.example/1\" }, { url = \"http://127.0.0.1:8080/hook\" }]",
        ),
        format!(
            "{base}[[notify]]\nurl = \"https://h.example/1\"\n[[notify]]\nurl = \"http://127.0.0.1:8080/hook\"\n"
        ),
    ] {
        let spec = parse(&text, Path::new("slipway.toml")).expect(&text);
        assert_eq!(spec.notify.len(), 2, "{text}");
        assert_eq!(
            spec.notify[1].url,
            WebhookUrl::Plain("http://127.0.0.1:8080/hook".into())
        );
    }
    let spec = parse(
        &format!("{base}[notify]\nurl = \"https://h.example/1\"\n"),
        Path::new("slipway.toml"),
    )
    .expect("single table");
    assert_eq!(spec.notify.len(), 1);
}

#[test]
fn weights_and_mirrors_are_percentages() {
    rejects(
        &app("steps = [{ weight = 101 }]", ""),
        11,
        "`weight` in [deploy] step 1 must be between 0 and 100",
        "from 0 to 100",
    );
    rejects(
        &app("steps = [\n  { weight = 10 },\n  { mirror = 150 },\n]", ""),
        13,
        "`mirror` in [deploy] step 2 must be between 0 and 100",
        "from 0 to 100",
    );
    rejects(
        &app("steps = [{ weight = \"10%\" }]", ""),
        11,
        "expected an integer",
        "weight = 10",
    );
}

#[test]
fn a_step_has_exactly_one_known_kind() {
    rejects(
        &app("steps = [\n  { wieght = 10 },\n]", ""),
        12,
        "unknown step kind `wieght` in [deploy] step 1",
        "did you mean `weight`?",
    );
    rejects(
        &app("steps = [{ scale = 3 }]", ""),
        11,
        "unknown step kind `scale`",
        "{ mirror = 20 }",
    );
    rejects(
        &app("steps = [\n  { weight = 10, pause = \"1m\" },\n]", ""),
        12,
        "[deploy] step 1 has two kinds, `weight` and `pause`",
        "split it into two steps",
    );
    rejects(
        &app("steps = [{}]", ""),
        11,
        "[deploy] step 1 does nothing",
        "{ weight = 10 }",
    );
    rejects(
        &app("steps = [10]", ""),
        11,
        "expected a table like { weight = 10 }",
        "{ weight = 10 }",
    );
}

#[test]
fn for_belongs_to_analysis_steps_and_they_need_it() {
    rejects(
        &app("steps = [{ weight = 10, for = \"1m\" }]", ""),
        11,
        "`for` only applies to an analysis step",
        "{ pause = \"1m\" }",
    );
    rejects(
        &app(
            "steps = [\n  { weight = 10 },\n  { analysis = \"golden\" },\n]",
            "",
        ),
        13,
        "an analysis step needs `for`",
        "{ analysis = \"golden\", for = \"1m\" }",
    );
    rejects(
        &app("steps = [{ analysis = \"golden\", for = \"soon\" }]", ""),
        11,
        "not a valid duration",
        "\"30s\"",
    );
}

#[test]
fn unknown_templates_suggest_the_closest() {
    rejects(
        &app(
            "steps = [\n  { analysis = \"goldn\", for = \"1m\" },\n]",
            "",
        ),
        12,
        "[deploy] step 1: unknown analysis template \"goldn\"",
        "did you mean \"golden\"?",
    );
    rejects(
        &app("background_analysis = \"gold\"", ""),
        11,
        "background_analysis: unknown analysis template \"gold\"",
        "did you mean \"golden\"?",
    );
    rejects(
        &app("background_analysis = \"latency\"", ""),
        11,
        "unknown analysis template",
        "defined templates: \"golden\"",
    );
}

#[test]
fn a_broken_template_is_not_also_unknown() {
    let text = app(
        "steps = [{ analysis = \"slow\", for = \"1m\" }]",
        "[analysis.slow]\nlatency_p95 = { max = 300 }\n",
    );
    let all = issues(&text);
    assert_eq!(all.len(), 1, "{all:#?}");
    assert!(all[0].message.contains("expected a duration"), "{}", all[0]);
}

#[test]
fn pauses_are_a_duration_or_until_promoted() {
    rejects(
        &app("steps = [{ pause = { duration = \"5m\" } }]", ""),
        11,
        "pause = {} takes no keys",
        "write pause = \"5m\"",
    );
    rejects(
        &app("steps = [{ pause = \"forever\" }]", ""),
        11,
        "neither a duration nor \"until-promoted\"",
        "pause = {}",
    );
    rejects(
        &app("steps = [{ pause = \"until-promote\" }]", ""),
        11,
        "neither a duration",
        "did you mean \"until-promoted\"?",
    );
    rejects(
        &app("steps = [{ pause = 300 }]", ""),
        11,
        "expected a duration string",
        "write \"300s\"",
    );
}

#[test]
fn routes_must_match_something() {
    rejects(
        &app("steps = [{ route = {} }]", ""),
        11,
        "[deploy] step 1 route matches nothing",
        "header = { \"x-canary\" = \"1\" }",
    );
    rejects(
        &app("steps = [{ route = { header = {} } }]", ""),
        11,
        "matches nothing",
        "",
    );
    rejects(
        &app("steps = [{ route = { headers = { a = \"1\" } } }]", ""),
        11,
        "unknown key `headers`",
        "did you mean `header`?",
    );
    rejects(
        &app(
            "steps = [{ route = { header = { \"x canary\" = \"1\" } } }]",
            "",
        ),
        11,
        "invalid header name",
        "HTTP token",
    );
    rejects(
        &app("steps = [{ route = { cookie = { beta = 1 } } }]", ""),
        11,
        "expected a string",
        "quote it",
    );
}

#[test]
fn sticky_kinds() {
    rejects(
        &app("sticky = \"header\"", ""),
        11,
        "a sticky header needs a name",
        "sticky = { header = \"x-user-id\" }",
    );
    rejects(
        &app("sticky = \"cookies\"", ""),
        11,
        "unknown kind \"cookies\"",
        "did you mean \"cookie\"?",
    );
    rejects(
        &app("sticky = { cookie = \"a\", header = \"b\" }", ""),
        11,
        "has both `cookie` and `header`",
        "keep `cookie` or `header`",
    );
    rejects(
        &app("sticky = true", ""),
        11,
        "expected a string or a table",
        "\"client-address\"",
    );
}

#[test]
fn canary_keys_belong_to_the_canary_strategy() {
    let text = "app = \"a\"\n[processes.web]\ncmd = \"x\"\n[deploy]\nstrategy = \"blue-green\"\nsteps = [{ weight = 10 }]\n";
    rejects(
        text,
        6,
        "`steps` only applies to strategy = \"canary\", not \"blue-green\"",
        "set strategy = \"canary\"",
    );
    let text = "app = \"a\"\n[processes.web]\ncmd = \"x\"\n[deploy]\nsticky = \"cookie\"\n";
    rejects(
        text,
        5,
        "`sticky` only applies to strategy = \"canary\", not \"rolling\"",
        "remove it",
    );
    rejects(
        &app("max_surge = 2", ""),
        11,
        "`max_surge` only applies to strategy = \"rolling\", not \"canary\"",
        "set strategy = \"rolling\"",
    );
    rejects(
        &app("scale_down_delay = \"1m\"", ""),
        11,
        "`scale_down_delay` only applies to strategy = \"blue-green\"",
        "",
    );
}

/// `[analysis.t]` on line 12, `body` from line 13 on, after a valid canary app.
fn template(body: &str) -> String {
    app("", &format!("[analysis.t]\n{body}\n"))
}

#[test]
fn error_rates_are_percentages_compared_with_stable_only() {
    rejects(
        &template("error_rate = { max = \"150%\" }"),
        13,
        "must be more than 0% and at most 100%",
        "e.g. max = \"1%\"",
    );
    rejects(
        &template("error_rate = { max = \"0%\" }"),
        13,
        "must be more than 0%",
        "",
    );
    rejects(
        &template("error_rate = { max = \"1\" }"),
        13,
        "needs a `%`",
        "write max = \"1%\"",
    );
    rejects(
        &template("error_rate = { max = 0.01 }"),
        13,
        "expected a percentage like \"1%\", found float 0.01",
        "not a fraction",
    );
    rejects(
        &template("error_rate = { max = \"1%\", compare = \"baseline\" }"),
        13,
        "must be \"stable\", not \"baseline\"",
        "compare = \"stable\"",
    );
    rejects(
        &template("error_rate = { compare = \"stable\" }"),
        13,
        "missing `max`",
        "max = \"1%\"",
    );
    rejects(
        &template("error_rate = \"1%\""),
        13,
        "expected a table",
        "error_rate = { max = \"1%\", compare = \"stable\" }",
    );
}

#[test]
fn latency_percentiles_are_between_zero_and_a_hundred() {
    rejects(
        &template("latency_p100 = { max = \"1s\" }"),
        13,
        "percentile 100 is out of range",
        "more than 0 and less than 100",
    );
    rejects(
        &template("latency_p0 = { max = \"1s\" }"),
        13,
        "out of range",
        "latency_p95",
    );
    rejects(
        &template("latency_pxx = { max = \"1s\" }"),
        13,
        "expected a percentile after `latency_p`",
        "\"latency_p99.9\"",
    );
    rejects(
        &template("latency = { max = \"1s\" }"),
        13,
        "unknown check `latency` in [analysis.t]",
        "did you mean `latency_p",
    );
    rejects(
        &template("errors = { max = \"1%\" }"),
        13,
        "unknown check `errors`",
        "`error_rate`",
    );
}

#[test]
fn bounds_must_be_possible() {
    rejects(
        &template("prometheus = { address = \"http://p:9090\", query = \"x\", min = 2, max = 1 }"),
        13,
        "min (2) is greater than max (1)",
        "swap them",
    );
    rejects(
        &template("prometheus = { address = \"http://p:9090\", query = \"x\" }"),
        13,
        "has no `min` or `max`",
        "min = .., max = ..",
    );
    rejects(
        &template(
            "prometheus = [\n  { address = \"http://p:9090\", query = \"x\", max = \"0.5\" },\n]",
        ),
        14,
        "expected a number",
        "remove the quotes: max = 0.5",
    );
    rejects(
        &template("http = { url = \"http://h/x\", min = 1 }"),
        13,
        "`min` needs a `json_path`",
        "add json_path",
    );
    rejects(
        &template("http = { url = \"http://h/x\", json_path = \"a..b\", min = 1 }"),
        13,
        "has an empty part",
        "\"checks.db.ok\"",
    );
}

#[test]
fn check_urls_are_absolute_http() {
    rejects(
        &template("http = { url = \"/healthz\" }"),
        13,
        "`url` in [analysis.t.http] is not an absolute URL",
        "url = \"http://127.0.0.1:9000/healthz\"",
    );
    rejects(
        &template("prometheus = { address = \"localhost:9090\", query = \"up\", max = 1 }"),
        13,
        "not an absolute URL",
        "address = \"http://localhost:9090\"",
    );
    rejects(
        &template("http = { url = \"ftp://h/x\" }"),
        13,
        "only http and https",
        "",
    );
    rejects(
        &template("http = { json_path = \"a\" }"),
        13,
        "missing `url`",
        "url = \"http://",
    );
    rejects(
        &template("command = { timeout = \"5s\" }"),
        13,
        "missing `cmd`",
        "cmd = \"./smoke.sh\"",
    );
}

#[test]
fn templates_need_checks_and_a_valid_name() {
    rejects(
        &template(""),
        12,
        "[analysis.t] has no checks",
        "error_rate",
    );
    rejects(&template("command = []"), 12, "has no checks", "error_rate");
    rejects(
        &app("", "[analysis.Smoke]\ncommand = { cmd = \"x\" }\n"),
        12,
        "invalid analysis template name `Smoke`",
        "lowercase",
    );
}

const SECRET_HOOK: &str = "https://hooks.slack.com/services/T000/B000/s3cr3t";

#[test]
fn webhook_urls_are_never_echoed() {
    let base = "app = \"a\"\n[processes.web]\ncmd = \"x\"\n[[notify]]\n";
    for (url, message) in [
        ("/services/T000/B000/s3cr3t", "is not an absolute URL"),
        (
            "hooks.slack.com/services/T000/B000/s3cr3t",
            "is not an absolute URL",
        ),
        (
            "ftp://hooks.slack.com/services/T000/B000/s3cr3t",
            "only http and https",
        ),
        (
            "https://hooks.slack.com/services/T000/B000/s3 cr3t",
            "is not a valid URL",
        ),
    ] {
        let text = format!("{base}url = \"{url}\"\n");
        let issue = rejects(&text, 5, message, "https://");
        let err = parse(&text, Path::new("slipway.toml")).expect_err(url);
        let mut fancy = String::new();
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
            .render_report(&mut fancy, err.to_report().as_ref())
            .expect("render");
        assert!(
            !issue.to_string().contains("s3") && !fancy.contains("s3"),
            "{issue}\n{fancy}"
        );
    }
    rejects(
        &format!("{base}uri = \"{SECRET_HOOK}\""),
        5,
        "unknown key `uri`",
        "did you mean `url`?",
    );
    rejects(
        "app = \"a\"\nnotify = \"https://h\"\n[processes.web]\ncmd = \"x\"\n",
        2,
        "expected a table",
        "[[notify]]",
    );
}

#[test]
fn a_webhook_listed_twice_warns_with_its_host_only() {
    let text = format!(
        "app = \"a\"\nnotify = [{{ url = \"{SECRET_HOOK}\" }}, {{ url = \"{SECRET_HOOK}\" }}]\n[processes.web]\ncmd = \"x\"\n"
    );
    let parsed = parse_with_warnings(&text, Path::new("slipway.toml")).expect("valid");
    assert_eq!(parsed.spec.notify.len(), 1);
    // One "stored with every release" warning for the kept URL, one for the duplicate.
    assert_eq!(parsed.warnings.len(), 2, "{:?}", parsed.warnings);
    let warning = parsed.warnings[1].to_string();
    assert!(
        warning.contains("https://hooks.slack.com") && !warning.contains("s3cr3t"),
        "{warning}"
    );
    assert!(
        parsed
            .warnings
            .iter()
            .all(|w| !w.to_string().contains("s3cr3t"))
    );
}

#[test]
fn every_canary_problem_is_reported_at_once() {
    let text = app(
        "steps = [\n  { weight = 120 },\n  { analysis = \"nope\" },\n  { pause = \"5 min\" },\n]\nsticky = \"ip\"",
        "[analysis.t]\nlatency_p100 = { max = \"1s\" }\n",
    );
    let lines: Vec<usize> = issues(&text).iter().map(|i| i.line).collect();
    assert_eq!(lines, [12, 13, 13, 14, 16, 18]);
}

#[test]
fn a_webhook_url_from_a_file_or_env_is_a_secret_source() {
    let text = "app = \"a\"\nnotify = [{ url = { file = \"hook.txt\" } }, { url = { env = \"HOOK\" } }]\n[processes.web]\ncmd = \"x\"\n";
    let parsed = parse_with_warnings(text, Path::new("/srv/shop/slipway.toml")).expect("valid");
    assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    assert_eq!(
        parsed.spec.notify[0].url,
        WebhookUrl::Secret(slipway_core::spec::SecretSource::File(
            "/srv/shop/hook.txt".into()
        ))
    );
    assert_eq!(
        parsed.spec.notify[1].url,
        WebhookUrl::Secret(slipway_core::spec::SecretSource::Env("HOOK".into()))
    );
}
