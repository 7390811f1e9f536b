//! `slipway init`: look at the app's folder and write a commented `slipway.toml` that validates — the
//! web command it found (Procfile, Dockerfile, package.json, Cargo.toml, go.mod, Python files), a
//! readiness probe it explains, and blue-green to start with. It never overwrites a file, and it checks
//! what it wrote with the same parser `deploy` uses.

use super::Context;
use std::path::Path;
use std::process::ExitCode;

pub fn run(ctx: &Context) -> anyhow::Result<ExitCode> {
    let path = &ctx.config;
    if path.exists() {
        eprintln!(
            "{} exists already: nothing was written (check it with `slipway validate`)",
            path.display()
        );
        return Ok(ExitCode::from(1));
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::env::current_dir()?,
    };
    let dir = std::fs::canonicalize(&dir)?;
    let found = detect(&dir);
    let text = render(&app_name(&dir), &found);
    // What init writes must be a config `deploy` accepts.
    if let Err(e) = slipway_config::parse(&text, path) {
        anyhow::bail!("slipway init made a config that does not validate (a bug): {e}");
    }
    std::fs::write(path, &text)?;
    if ctx.json() {
        crate::output::json(&serde_json::json!({
            "file": path,
            "found": found.what,
            "next": found.next,
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    println!("wrote {}: {}", path.display(), found.what);
    for next in &found.next {
        println!("  next: {next}");
    }
    println!("  then: slipway validate && slipway deploy");
    Ok(ExitCode::SUCCESS)
}

/// How the app runs, as far as its folder tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// What was recognised, for people: "a Node app (package.json, `npm start`)".
    pub what: String,
    pub web: Web,
    /// What the user still has to do (build a binary, make the app listen on $PORT).
    pub next: Vec<String>,
    /// An `[artifact]` table, when the default excludes (`.git`, `target`, `node_modules`, `state`)
    /// would leave out what the command runs.
    pub artifact: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Web {
    /// The Procfile's `web:` line is the command.
    Procfile,
    /// A shell command, with $PORT.
    Command(String),
    /// A Docker image built from the folder's Dockerfile, listening on this port inside.
    Image { port: u16 },
}

/// Recognises the folder, most specific first.
pub fn detect(dir: &Path) -> Found {
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).ok();
    let has = |name: &str| dir.join(name).is_file();
    let port_next = "make the app listen on 127.0.0.1:$PORT (slipway picks the port)".to_string();
    if let Some(procfile) = read("Procfile")
        && procfile.lines().any(|l| l.trim_start().starts_with("web:"))
    {
        return Found {
            what: "a Procfile with a web process".into(),
            web: Web::Procfile,
            next: vec!["the web: line must listen on $PORT".into()],
            artifact: None,
        };
    }
    if let Some(dockerfile) = read("Dockerfile") {
        let port = dockerfile
            .lines()
            .filter_map(|l| l.trim().strip_prefix("EXPOSE "))
            .filter_map(|p| p.split_whitespace().next()?.split('/').next()?.parse().ok())
            .next()
            .unwrap_or(8080);
        return Found {
            what: format!("a Dockerfile (the app listens on {port} inside the container)"),
            web: Web::Image { port },
            next: vec![
                "deploy with `slipway deploy --build` (builds ./Dockerfile on the engine)".into(),
            ],
            artifact: None,
        };
    }
    if let Some(package) = read("package.json") {
        let json: serde_json::Value = serde_json::from_str(&package).unwrap_or_default();
        let cmd = if json["scripts"]["start"].is_string() {
            "npm start".to_string()
        } else {
            let main = json["main"].as_str().unwrap_or("index.js");
            format!("node {main}")
        };
        return Found {
            what: format!("a Node app (package.json, `{cmd}`)"),
            web: Web::Command(cmd),
            next: vec!["install its dependencies first (npm ci)".into(), port_next],
            artifact: Some(
                "# node_modules is part of each release (slipway leaves it out by default): run `npm ci`\n\
                 # before `slipway deploy`, so the release runs exactly the dependencies you installed.\n\
                 exclude = [\".git\", \"state\", \"target\"]\n"
                    .into(),
            ),
        };
    }
    if let Some(cargo) = read("Cargo.toml") {
        let name = toml::from_str::<toml::Table>(&cargo)
            .ok()
            .and_then(|t| t.get("package")?.get("name")?.as_str().map(String::from))
            .unwrap_or_else(|| "app".into());
        return Found {
            what: format!("a Rust app (Cargo.toml, package {name})"),
            web: Web::Command(format!("./target/release/{name}")),
            next: vec!["build it first: cargo build --release".into(), port_next],
            artifact: Some(
                "# Of target/ (left out by default), a release keeps only the files directly in\n\
                 # target/release: the binary, not the debug build or the intermediate folders.\n\
                 exclude = [\".git\", \"state\", \"node_modules\", \"target/debug\", \"target/release/*/\"]\n"
                    .into(),
            ),
        };
    }
    if let Some(gomod) = read("go.mod") {
        let module = gomod
            .lines()
            .find_map(|l| l.trim().strip_prefix("module "))
            .map(|m| m.trim().rsplit('/').next().unwrap_or("app").to_string())
            .unwrap_or_else(|| "app".into());
        return Found {
            what: format!("a Go app (go.mod, module {module})"),
            web: Web::Command(format!("./{module}")),
            next: vec![format!("build it first: go build -o {module} ."), port_next],
            artifact: None,
        };
    }
    let python = has("requirements.txt") || has("pyproject.toml") || has("manage.py");
    if python || has("app.py") || has("main.py") {
        let cmd = if has("manage.py") {
            "python3 manage.py runserver 127.0.0.1:$PORT".to_string()
        } else if has("app.py") {
            "python3 app.py".to_string()
        } else if has("main.py") {
            "python3 main.py".to_string()
        } else {
            "python3 -m app".to_string()
        };
        let mut next = Vec::new();
        if has("requirements.txt") {
            next.push("install its dependencies first (pip install -r requirements.txt)".into());
        }
        if !has("manage.py") {
            next.push(port_next);
        }
        return Found {
            what: format!("a Python app (`{cmd}`)"),
            web: Web::Command(cmd),
            next,
            artifact: None,
        };
    }
    Found {
        what: "nothing it knows: static files served by Python's http.server".into(),
        web: Web::Command("python3 -m http.server $PORT --bind 127.0.0.1".into()),
        next: vec!["replace [processes.web] cmd with your server's command".into()],
        artifact: None,
    }
}

/// The folder's name as an app name (the rule `app = "..."` has), `app` when nothing is left of it.
pub fn app_name(dir: &Path) -> String {
    let folder = dir
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    slipway_config::app_name_like(&folder).unwrap_or_else(|| "app".into())
}

pub fn render(app: &str, found: &Found) -> String {
    let web = match &found.web {
        Web::Procfile => {
            "# The command is the Procfile's web: line; this table only refines it.\n".to_string()
        }
        Web::Command(cmd) => format!(
            "# How to start one instance. $PORT is a free port slipway picks; listen on 127.0.0.1:$PORT.\n\
             cmd = \"{}\"\n",
            cmd.replace('\\', "\\\\").replace('"', "\\\"")
        ),
        Web::Image { port } => format!(
            "# Runs as containers on Docker: `slipway deploy --build` builds ./Dockerfile and deploys that\n\
             # image ID (a moved tag never changes a release). The port is the one inside the container.\n\
             image = \"{app}:latest\"\n\
             port = {port}\n"
        ),
    };
    format!(
        "# slipway.toml for {app}, written by `slipway init` ({what}).\n\
         # Every key: docs/config.md. Check it: slipway validate. Deploy it: slipway deploy.\n\
         app = \"{app}\"\n\
         \n\
         [processes.web]\n\
         {web}\
         # Two instances: one can restart or drain while the other serves.\n\
         replicas = 2\n\
         # Traffic reaches an instance only once GET / answers 2xx or 3xx, and leaves it when it stops\n\
         # answering. A guess: point it at a cheap health endpoint (e.g. /healthz) if your app has one.\n\
         readiness = {{ http = \"/\" }}\n\
         {artifact}\
         \n\
         [deploy]\n\
         # Blue-green: the new release starts beside the old one, traffic switches at once when it is\n\
         # ready, and the old one stays warm for a quick rollback. With numbers to watch, try a canary:\n\
         # strategy = \"canary\"\n\
         # steps = [{{ weight = 10 }}, {{ analysis = \"errors\", for = \"1m\" }}, {{ weight = 50 }}]\n\
         # [analysis.errors]\n\
         # error_rate = {{ max = \"1%\", compare = \"stable\" }}\n\
         strategy = \"blue-green\"\n",
        what = found.what,
        artifact = found
            .artifact
            .as_ref()
            .map(|table| format!("\n[artifact]\n{table}"))
            .unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    fn parses(found: &Found) {
        let text = render("shop", found);
        slipway_config::parse(&text, Path::new("slipway.toml"))
            .unwrap_or_else(|e| panic!("{text}\n{e}"));
    }

    #[test]
    fn each_kind_of_folder_gets_its_command_and_a_config_that_parses() {
        let cases: &[(&[(&str, &str)], Web)] = &[
            (
                &[(
                    "package.json",
                    r#"{"scripts": {"start": "node server.js"}}"#,
                )],
                Web::Command("npm start".into()),
            ),
            (
                &[("package.json", r#"{"main": "srv.js"}"#)],
                Web::Command("node srv.js".into()),
            ),
            (
                &[(
                    "Cargo.toml",
                    "[package]\nname = \"shop-api\"\nversion = \"0.1.0\"\n",
                )],
                Web::Command("./target/release/shop-api".into()),
            ),
            (
                &[("go.mod", "module github.com/acme/shopd\n\ngo 1.22\n")],
                Web::Command("./shopd".into()),
            ),
            (
                &[("requirements.txt", "flask\n"), ("app.py", "")],
                Web::Command("python3 app.py".into()),
            ),
            (
                &[("manage.py", "")],
                Web::Command("python3 manage.py runserver 127.0.0.1:$PORT".into()),
            ),
            (
                &[("Dockerfile", "FROM scratch\nEXPOSE 3000/tcp\n")],
                Web::Image { port: 3000 },
            ),
            (
                &[("Procfile", "web: ./serve --port $PORT\n")],
                Web::Procfile,
            ),
            (
                &[("index.html", "hi")],
                Web::Command("python3 -m http.server $PORT --bind 127.0.0.1".into()),
            ),
        ];
        for (files, web) in cases {
            let dir = folder(files);
            let found = detect(dir.path());
            assert_eq!(&found.web, web, "{files:?}");
            if *web != Web::Procfile {
                parses(&found);
            }
        }
    }

    #[test]
    fn a_folder_name_becomes_an_app_name() {
        assert_eq!(app_name(Path::new("/srv/My_Shop.v2")), "my-shop-v2");
        assert_eq!(app_name(Path::new("/srv/__")), "app");
    }
}
