//! Configs that must be rejected: each problem at its line, with a help that says what to write.

mod support;

use slipway_config::parse;
use std::path::Path;
use support::{issues, rejects};

/// A valid app with `extra` appended to its web process, then `tail` sections.
fn web(extra: &str, tail: &str) -> String {
    format!("app = \"a\"\n\n[processes.web]\ncmd = \"./server\"\n{extra}\n{tail}")
}

#[test]
fn unknown_keys_suggest_the_closest() {
    let issue = rejects(
        &web("replica = 2", ""),
        5,
        "unknown key `replica` in [processes.web]",
        "did you mean `replicas`?",
    );
    assert_eq!(issue.column, 1);
    assert_eq!(
        issue.to_string(),
        "slipway.toml:5:1: unknown key `replica` in [processes.web]\n  help: did you mean `replicas`?"
    );
    rejects(
        "ap = \"a\"\n[processes.web]\ncmd = \"x\"\n",
        1,
        "unknown key `ap`",
        "did you mean `app`?",
    );
    rejects(
        &web("", "[deploy]\nstratgy = \"rolling\""),
        7,
        "unknown key `stratgy` in [deploy]",
        "`strategy`",
    );
    rejects(
        &web("readiness = { http = \"/\", timout = \"1s\" }", ""),
        5,
        "unknown key `timout`",
        "`timeout`",
    );
}

#[test]
fn misplaced_keys_say_where_they_belong() {
    rejects(
        &web("", "[deploy]\nreplicas = 3"),
        7,
        "unknown key `replicas` in [deploy]",
        "belongs in [processes.<name>]",
    );
}

#[test]
fn unrelated_keys_list_the_valid_ones() {
    rejects(
        &web("", "[releases]\ncolour = \"x\""),
        7,
        "unknown key `colour`",
        "valid keys here: `keep`",
    );
}

#[test]
fn wrong_types_show_what_to_write() {
    let issue = rejects(
        &web("grace = 30", ""),
        5,
        "expected a duration string like \"30s\", found integer 30",
        "write \"30s\"",
    );
    assert_eq!(issue.column, 9, "points at the value");
    rejects(
        &web("replicas = \"2\"", ""),
        5,
        "expected an integer, found string \"2\"",
        "remove the quotes",
    );
    rejects(&web("cmd2 = 1", ""), 5, "unknown key", "`cmd`");
    rejects(
        "app = 5\n[processes.web]\ncmd = \"x\"\n",
        1,
        "expected a string, found integer 5",
        "",
    );
    rejects(
        &web(
            "",
            "[deploy]\nstrategy = \"blue-green\"\nauto_promote = \"yes\"",
        ),
        8,
        "expected true or false",
        "auto_promote = false",
    );
}

#[test]
fn bad_durations_show_valid_examples() {
    rejects(
        &web("grace = \"30 sec\"", ""),
        5,
        "not a valid duration",
        "write \"30s\"",
    );
    rejects(
        &web("grace = \"fast\"", ""),
        5,
        "not a valid duration",
        "\"500ms\", \"30s\", \"5m\"",
    );
    rejects(
        &web("grace = \"-5s\"", ""),
        5,
        "cannot be negative",
        "\"30s\"",
    );
    rejects(
        &web("grace = -5", ""),
        5,
        "found integer -5",
        "cannot be negative",
    );
    rejects(
        &web("", "[deploy]\nprogress_deadline = \"0s\""),
        7,
        "must be more than zero",
        "",
    );
}

#[test]
fn bad_percentages_are_rejected() {
    rejects(
        &web("", "[deploy]\nmax_surge = \"150%\""),
        7,
        "between 0% and 100%",
        "\"25%\"",
    );
    rejects(
        &web("", "[deploy]\nmax_unavailable = \"abc\""),
        7,
        "not an integer or a percentage",
        "\"25%\"",
    );
    rejects(
        &web("", "[deploy]\nmax_surge = -1"),
        7,
        "cannot be negative",
        "\"25%\"",
    );
}

#[test]
fn env_values_must_be_strings() {
    let text = "app = \"a\"\n[env]\nPORT_HINT = 8080\nDEBUG = true\n[processes.web]\ncmd = \"x\"\n";
    let all = issues(text);
    assert_eq!(all.len(), 2, "{all:#?}");
    assert_eq!(
        (all[0].line, all[0].help.as_deref()),
        (3, Some("quote it: \"8080\""))
    );
    assert_eq!(
        (all[1].line, all[1].help.as_deref()),
        (4, Some("quote it: \"true\""))
    );
}

#[test]
fn env_names_are_checked() {
    rejects(
        "app = \"a\"\n[env]\nPORT = \"1\"\n[processes.web]\ncmd = \"x\"\n",
        3,
        "slipway sets it",
        "$PORT",
    );
    rejects(
        "app = \"a\"\n[env]\n\"my-var\" = \"1\"\n[processes.web]\ncmd = \"x\"\n",
        3,
        "invalid variable name",
        "MY_VAR",
    );
}

#[test]
fn secrets_need_exactly_one_source() {
    let base = "app = \"a\"\n[processes.web]\ncmd = \"x\"\n[secrets]\n";
    rejects(
        &format!("{base}DB = {{ file = \"/f\", env = \"DB\" }}"),
        5,
        "has both `file` and `env`",
        "exactly one source",
    );
    rejects(
        &format!("{base}DB = {{ }}"),
        5,
        "missing `file or env`",
        "{ file = ",
    );
    let issue = rejects(
        &format!("{base}DB = \"hunter2\""),
        5,
        "expected { file = ... } or { env = ... }",
        "{ env = \"DB\" }",
    );
    assert!(
        !issue.to_string().contains("hunter2"),
        "a pasted secret value is never echoed: {issue}"
    );
    rejects(
        "app = \"a\"\n[env]\nDB = \"x\"\n[secrets]\nDB = { env = \"DB\" }\n[processes.web]\ncmd = \"x\"\n",
        5,
        "in both [env] and [secrets]",
        "remove it from one",
    );
}

#[test]
fn probes_have_exactly_one_check() {
    rejects(
        &web("readiness = { http = \"/\", tcp = true }", ""),
        5,
        "has two checks, `http` and `tcp`",
        "keep `http` or `tcp`",
    );
    rejects(
        &web("readiness = { period = \"1s\" }", ""),
        5,
        "missing `http, tcp or exec`",
        "{ http = \"/health\" }",
    );
    rejects(
        &web("readiness = \"/ready\"", ""),
        5,
        "expected a table",
        "{ http = \"/ready\" }",
    );
    rejects(
        &web("readiness = { http = \"ready\" }", ""),
        5,
        "must be a path starting with `/`",
        "\"/ready\"",
    );
    rejects(
        &web("liveness = { tcp = false }", ""),
        5,
        "tcp = false is not a check",
        "tcp = true",
    );
}

#[test]
fn probe_timing_rules() {
    rejects(
        &web(
            "readiness = { http = \"/\", period = \"1s\", timeout = \"5s\" }",
            "",
        ),
        5,
        "timeout (5s) is longer than period (1s)",
        "timeout = \"1s\"",
    );
    rejects(
        &web("liveness = { tcp = true, success_threshold = 2 }", ""),
        5,
        "success_threshold must be 1",
        "remove it",
    );
    rejects(
        &web("readiness = { http = \"/\", failure_threshold = 0 }", ""),
        5,
        "must be between 1 and 1000",
        "",
    );
}

#[test]
fn port_probes_are_for_web_only() {
    let text = "app = \"a\"\n[processes.worker]\ncmd = \"x\"\nreadiness = { http = \"/ready\" }\n";
    rejects(text, 4, "only `web` gets $PORT", "exec");
}

#[test]
fn process_rules() {
    rejects(
        &web("replicas = 0", ""),
        5,
        "at least 1 replica",
        "replicas = 1",
    );
    rejects(&web("replicas = 65", ""), 5, "between 0 and 64", "");
    rejects(
        "app = \"a\"\n\n[processes.web]\nreplicas = 2\n",
        3,
        "missing `cmd` in [processes.web]",
        "cmd = ",
    );
    rejects(&web("cmd2 = \"\"", ""), 5, "unknown key", "");
    rejects(
        "app = \"a\"\n[processes.Web]\ncmd = \"x\"\n",
        2,
        "invalid process name `Web`",
        "lowercase",
    );
    rejects(
        &web("drain_timeout = \"1m\"\nstream_drain_timeout = \"30s\"", ""),
        6,
        "shorter than drain_timeout",
        "\"1m\"",
    );
}

#[test]
fn missing_required_parts() {
    rejects(
        "[processes.web]\ncmd = \"x\"\n",
        1,
        "missing `app`",
        "app = \"hello\"",
    );
    rejects("app = \"a\"\n", 1, "missing `processes`", "[processes.web]");
    rejects(
        "app = \"Hello World\"\n[processes.web]\ncmd = \"x\"\n",
        1,
        "not a valid app name",
        "app = \"hello-world\"",
    );
}

#[test]
fn strategy_knobs_belong_to_their_strategy() {
    let t = web("", "[deploy]\nstrategy = \"blue-green\"\nmax_surge = 2");
    rejects(
        &t,
        8,
        "`max_surge` only applies to strategy = \"rolling\"",
        "set strategy = \"rolling\"",
    );
    let t = web(
        "",
        "[deploy]\nstrategy = \"recreate\"\nauto_promote = false",
    );
    rejects(
        &t,
        8,
        "`auto_promote` only applies to strategy = \"blue-green\"",
        "remove it",
    );
    let t = web("", "[deploy]\nmax_surge = 0\nmax_unavailable = 0");
    rejects(
        &t,
        7,
        "max_surge = 0 and max_unavailable = 0",
        "set max_surge = 1 to add an instance before removing one",
    );
}

#[test]
fn unknown_strategies_list_the_valid_ones() {
    rejects(
        &web("", "[deploy]\nstrategy = \"progressive\""),
        7,
        "unknown strategy \"progressive\"",
        "\"rolling\", \"blue-green\", \"recreate\" or \"canary\"",
    );
    rejects(
        &web("", "[deploy]\nstrategy = \"blue_green\""),
        7,
        "unknown strategy",
        "did you mean \"blue-green\"?",
    );
}

#[test]
fn releases_keep_at_least_two() {
    rejects(
        &web("", "[releases]\nkeep = 1"),
        7,
        "keep must be at least 2",
        "keep = 2",
    );
}

#[test]
fn routing_rules() {
    rejects(
        &web("", "[routing]\nhosts = [\"https://shop.example.com\"]"),
        7,
        "invalid host",
        "\"shop.example.com\"",
    );
    rejects(
        &web("", "[routing]\npath = \"api\""),
        7,
        "must start with `/`",
        "path = \"/api\"",
    );
    rejects(
        &web("", "[routing]\nmax_body_size = \"ten megs\""),
        7,
        "use a size like 512k, 10m",
        "max_body_size = \"10m\"",
    );
}

#[test]
fn artifact_rules() {
    rejects(
        &web("", "[artifact]\nexclude = [\"[abc\"]"),
        7,
        "invalid glob pattern",
        "\"*.log\"",
    );
    rejects(
        &web("", "[artifact]\nexclude = \"target\""),
        7,
        "expected an array of strings",
        "exclude = [\"target\"]",
    );
}

#[test]
fn syntax_errors_point_at_line_and_column() {
    let all = issues("app = \"a\"\ncmd = python3\n");
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!((all[0].line, all[0].column), (2, 7));
    assert!(
        all[0].message.starts_with("TOML syntax error"),
        "{}",
        all[0].message
    );
    assert!(all[0].help.as_deref().unwrap_or("").contains("quotes"));

    let all = issues("app = \"a\"\n[processes.web]\ncmd = \"x\"\ncmd = \"y\"\n");
    assert_eq!((all.len(), all[0].line), (1, 4), "{all:#?}");
}

#[test]
fn every_problem_is_reported_at_once_in_file_order() {
    let text = r#"app = "a"
[processes.web]
cmd = "./server"
replica = 2
grace = 30
readiness = { http = "/", tcp = true }

[deploy]
strategy = "blue-green"
max_surge = 1
"#;
    let all = issues(text);
    let lines: Vec<usize> = all.iter().map(|i| i.line).collect();
    assert_eq!(lines, [4, 5, 6, 10], "{all:#?}");
    assert!(all.iter().all(|i| i.help.is_some()), "{all:#?}");
}

#[test]
fn fancy_report_renders_snippets_for_every_problem() {
    let text = web("replica = 2\ngrace = 30", "");
    let err = parse(&text, Path::new("slipway.toml")).expect_err("two problems");
    let mut out = String::new();
    miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
        .render_report(&mut out, err.to_report().as_ref())
        .expect("render");
    assert!(out.contains("slipway.toml has 2 problems"), "{out}");
    assert!(
        out.contains("replica = 2") && out.contains("did you mean `replicas`?"),
        "{out}"
    );
    assert!(
        out.contains("grace = 30") && out.contains("write \"30s\""),
        "{out}"
    );
}

#[test]
fn unreadable_files_are_reported_without_position() {
    let err = slipway_config::load(Path::new("/nonexistent/slipway.toml")).expect_err("no file");
    assert_eq!(err.issues()[0].line, 0);
    assert!(
        err.to_string()
            .starts_with("/nonexistent/slipway.toml: cannot read the config"),
        "{err}"
    );
}

#[test]
fn pasted_secret_values_stay_out_of_snippets() {
    let text =
        "app = \"a\"\n[processes.web]\ncmd = \"x\"\n[secrets]\nDB = \"postgres://u:hunter2@db\"\n";
    let err = parse(text, Path::new("slipway.toml")).expect_err("a secret value in the file");
    let mut out = String::new();
    miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
        .render_report(&mut out, err.to_report().as_ref())
        .expect("render");
    assert!(out.contains("DB = ****"), "{out}");
    assert!(
        !out.contains("hunter2") && !err.to_string().contains("hunter2"),
        "{out}"
    );
}

#[test]
fn a_process_written_as_a_string_shows_the_table_form() {
    let text = "app = \"a\"\n[processes]\nweb = \"./server\"\n";
    rejects(
        text,
        3,
        "expected a table",
        "[processes.web]\ncmd = \"./server\"",
    );
}

/// A web process on Docker with `extra` lines.
fn image_web(extra: &str) -> String {
    format!("app = \"a\"\n\n[processes.web]\nimage = \"shop:v2\"\n{extra}\n")
}

#[test]
fn container_keys_need_an_image() {
    rejects(
        &web("memory = \"256m\"", ""),
        5,
        "`memory` needs `image`",
        "add image = ",
    );
    rejects(
        &web("port = 8080", ""),
        5,
        "`port` needs `image`",
        "slipway picks $PORT",
    );
}

#[test]
fn image_commands_are_argv_lists() {
    rejects(
        &image_web("cmd = \"serve --fast\""),
        5,
        "with an image, expected a list of arguments",
        "cmd = [\"serve\", \"--fast\"]",
    );
}

#[test]
fn impossible_container_settings_are_refused() {
    rejects(
        &image_web("memory = \"1m\""),
        5,
        "minimum of 6m",
        "memory = \"256m\"",
    );
    rejects(&image_web("cpus = 0"), 5, "more than 0", "cpus = 0.5");
    rejects(
        &image_web("cap_add = [\"ALL\"]"),
        5,
        "not a capability",
        "cap_drop_all = false",
    );
    rejects(
        &image_web("network = \"host\""),
        5,
        "web cannot use network",
        "user-defined network",
    );
    rejects(
        &image_web("readiness = { exec = \"curl localhost\" }"),
        5,
        "exec readiness probe cannot check a container",
        "http = \"/ready\"",
    );
    rejects(
        "app = \"a\"\n[processes.web]\nimage = \"Shop:V2\"\n",
        3,
        "uppercase letters in its repository",
        "image = \"shop:V2\"",
    );
    rejects(
        "app = \"a\"\n[processes.web]\nimage = \"ghcr.io/team/shop@sha256:abc\"\n",
        3,
        "64 lowercase hex digits",
        "shop@sha256:<64 hex digits>",
    );
    rejects(
        "app = \"a\"\n[processes.web]\nimage = \"shop\"\n[processes.worker]\nimage = \"shop\"\nport = 9000\n",
        6,
        "`port` is for web",
        "needs no port",
    );
}

/// A config path that names a device or a huge file is refused before it is read (a deploy pointed at
/// `/dev/zero` would otherwise read forever).
#[test]
fn a_config_path_that_is_not_a_small_regular_file_is_refused() {
    let err = slipway_config::load(std::path::Path::new("/dev/zero")).unwrap_err();
    assert!(err.to_string().contains("not a regular file"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("slipway.toml");
    std::fs::write(&big, format!("app = \"a\"\n#{}\n", "x".repeat(2 << 20))).unwrap();
    let err = slipway_config::load(&big).unwrap_err();
    assert!(err.to_string().contains("larger than 1 MiB"), "{err}");
}

#[test]
fn tls_settings() {
    rejects(
        &web("", "[routing]\ntls = \"yes\""),
        7,
        "expected \"auto\" or { cert, key }",
        "tls = \"auto\"",
    );
    rejects(
        &web(
            "",
            "[routing]\ntls = { cert = \"certs/shop.pem\", key = \"/k.pem\" }",
        ),
        7,
        "the path must be absolute",
        "absolute path on the daemon's machine",
    );
    rejects(
        &web("", "[routing]\ntls = { cert = \"/c.pem\" }"),
        7,
        "missing `key` in [routing.tls]",
        "tls = \"auto\"",
    );
    rejects(
        &web("", "[routing]\nhsts = \"1y\""),
        7,
        "expected true or false",
        "hsts = true",
    );
}
