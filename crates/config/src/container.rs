//! `image = "..."` in `[processes.<name>]`: the process type runs as a container on Docker. The keys
//! that only mean something for a container (`port`, `memory`, `cap_add`, ...) are read here, and
//! refused on a process that runs a command on the host, where they would be silently ignored.
//!
//! `cmd` changes meaning with an image: it replaces the image's `CMD` as an argv list, because minimal
//! images have no shell to run a string with. A string is refused with the list to write instead.

use crate::limits;
use crate::report::Report;
use crate::table::{Section, found};
use slipway_core::spec::{ContainerSpec, ProbeCheck, ProbeSpec};
use toml::Spanned;
use toml::de::DeValue;

/// The keys of a container process besides the common ones (`replicas`, `grace`, probes, ...).
pub(crate) const KEYS: &[&str] = &[
    "image",
    "port",
    "cap_add",
    "cap_drop_all",
    "no_new_privileges",
    "read_only",
    "user",
    "memory",
    "cpus",
    "network",
    "secrets_as_env",
];
/// Where a web container listens when the config does not say: the common choice of app images.
pub(crate) const DEFAULT_PORT: u16 = 8080;

/// Reads the container settings of a process that has `image`. `cmd` is the argv override.
pub(crate) fn read(r: &mut Report, p: &Section, name: &str, is_web: bool) -> Option<ContainerSpec> {
    let image = image(r, p);
    let mut spec = ContainerSpec::new(String::new(), DEFAULT_PORT);
    spec.command = command(r, p);
    if let Some(port) = p.integer(r, "port", 1..=65535) {
        if is_web {
            spec.port = *port.get_ref() as u16;
        } else {
            r.error(
                port.span(),
                format!("[processes.{name}]: `port` is for web: only [processes.web] gets traffic"),
            )
            .label("no traffic comes here")
            .help("remove it; a process that takes no traffic needs no port");
        }
    }
    if let Some(caps) = p.string_list(r, "cap_add") {
        for cap in caps {
            match capability(cap.get_ref()) {
                Ok(name) => spec.cap_add.push(name),
                Err(help) => {
                    r.error(
                        cap.span(),
                        format!(
                            "[processes.{name}]: `{}` is not a capability",
                            cap.get_ref()
                        ),
                    )
                    .label("not a capability")
                    .help(help);
                }
            }
        }
    }
    let flag = |r: &mut Report, key: &str, default: bool| {
        p.boolean(r, key).map_or(default, Spanned::into_inner)
    };
    spec.cap_drop_all = flag(r, "cap_drop_all", true);
    spec.no_new_privileges = flag(r, "no_new_privileges", true);
    spec.read_only = flag(r, "read_only", false);
    spec.secrets_as_env = flag(r, "secrets_as_env", false);
    if !spec.cap_drop_all
        && let Some(span) = p.key_span("cap_add")
    {
        r.warning(
            span,
            format!("[processes.{name}]: cap_add has no effect with cap_drop_all = false"),
        )
        .help("the engine's default set is kept whole; drop cap_drop_all = false to add only what you list");
    }
    if let Some(user) = p.text(r, "user", "\"1000:1000\"") {
        if user.get_ref().chars().any(char::is_whitespace) {
            r.error(
                user.span(),
                format!("[processes.{name}]: user \"{}\" contains spaces", user.get_ref()),
            )
            .help("write a name or uid, optionally with a group: user = \"1000:1000\" or user = \"app\"");
        } else {
            spec.user = Some(user.into_inner());
        }
    }
    if let Some(memory) = p.string(r, "memory") {
        match limits::parse_memory(memory.get_ref()) {
            Ok(bytes) => spec.memory_bytes = Some(bytes),
            Err(problem) => {
                r.error(memory.span(), format!("[processes.{name}]: {problem}"))
                    .label("not a memory size")
                    .help("write a size with a unit, like Docker's --memory: memory = \"256m\"");
            }
        }
    }
    spec.nano_cpus = cpus(r, p, name);
    if let Some(network) = p.text(r, "network", "\"backend\"") {
        let n = network.get_ref().as_str();
        let valid = n
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !valid {
            r.error(
                network.span(),
                format!("[processes.{name}]: \"{n}\" is not a network name"),
            )
            .help("write the name of a user-defined network (`docker network ls`), e.g. network = \"backend\"");
        } else if matches!(n, "host" | "none") && is_web {
            r.error(
                network.span(),
                format!("[processes.{name}]: web cannot use network \"{n}\""),
            )
            .label("unreachable for the proxy")
            .help("remove `network` (the port is then published on 127.0.0.1), or name a user-defined network");
        } else {
            spec.network = Some(n.to_owned());
        }
    }
    spec.image = image?;
    Some(spec)
}

/// Container-only keys on a process without `image`: each is an error pointing at what to add.
pub(crate) fn refuse_without_image(r: &mut Report, p: &Section, name: &str) {
    for key in KEYS.iter().filter(|k| **k != "image") {
        if let Some(span) = p.key_span(key) {
            let help = if *key == "port" {
                "slipway picks $PORT for a command; `port` is where an image listens: add image = \"...\" or remove it".to_string()
            } else {
                format!(
                    "`{key}` applies to a container: add image = \"shop:v2\" to [processes.{name}], or remove it"
                )
            };
            r.error(span, format!("[processes.{name}]: `{key}` needs `image`"))
                .label("only for images")
                .help(help);
        }
    }
}

/// Probes run by slipway on the host: an `exec` probe would run on the host, not in the container.
pub(crate) fn refuse_exec_probes(
    r: &mut Report,
    p: &Section,
    name: &str,
    probes: [(&str, &Option<ProbeSpec>); 3],
) {
    for (key, probe) in probes {
        if let Some(ProbeSpec {
            check: ProbeCheck::Exec { .. },
            ..
        }) = probe
        {
            let span = p.key_span(key).unwrap_or_else(|| p.span.clone());
            r.error(
                span,
                format!("[processes.{name}]: an exec {key} probe cannot check a container"),
            )
            .label("runs on the host")
            .help(format!(
                "slipway probes containers from outside, on their port: write {key} = {{ http = \"/ready\" }} or {{ tcp = true }}"
            ));
        }
    }
}

/// `image = "shop:v2"`: a reference as Docker reads it (repository lowercase, no spaces), or an
/// image ID `sha256:…`.
fn image(r: &mut Report, p: &Section) -> Option<String> {
    let image = p.text(r, "image", "\"shop:v2\"")?;
    let text = image.get_ref().trim();
    let (repository, _) = split_tag(text);
    if let Some((_, digest)) = text.split_once('@')
        && let Err(problem) = slipway_core::image_ref::check_digest(digest)
    {
        r.error(image.span(), format!("image \"{text}\": {problem}"))
            .label("not a digest")
            .help("write image = \"registry.example.com/shop@sha256:<64 hex digits>\", or name a tag: image = \"registry.example.com/shop:2.1\"".to_string());
        return None;
    }
    let problem = if text.chars().any(char::is_whitespace) {
        Some("contains spaces")
    } else if repository.chars().any(|c| c.is_ascii_uppercase()) {
        Some("has uppercase letters in its repository")
    } else if repository.is_empty() || repository.ends_with('/') || repository.starts_with('/') {
        Some("has no repository name")
    } else {
        None
    };
    if let Some(problem) = problem {
        let fixed: String = text
            .split_whitespace()
            .collect::<String>()
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if i < repository.len() {
                    c.to_ascii_lowercase()
                } else {
                    c
                }
            })
            .collect();
        r.error(image.span(), format!("image \"{text}\" {problem}"))
            .label("not an image reference")
            .help(if fixed.is_empty() {
                "write a reference like image = \"shop:v2\" or \"registry.example.com/team/shop:2.1\"".to_string()
            } else {
                format!("write image = \"{fixed}\" (Docker repositories are lowercase, without spaces)")
            });
        return None;
    }
    Some(text.to_owned())
}

/// (repository, tag or digest): a `:` after the last `/` starts the tag.
fn split_tag(reference: &str) -> (&str, &str) {
    let reference = reference.split('@').next().unwrap_or_default();
    match reference.rfind(':') {
        Some(colon) if !reference[colon..].contains('/') => {
            (&reference[..colon], &reference[colon + 1..])
        }
        _ => (reference, ""),
    }
}

/// `cmd = ["serve", "--fast"]`: argv replacing the image's CMD.
fn command(r: &mut Report, p: &Section) -> Option<Vec<String>> {
    let value = p.get("cmd")?;
    if let DeValue::String(s) = value.get_ref() {
        let argv: Vec<String> = s.split_whitespace().map(|w| format!("\"{w}\"")).collect();
        let found = found(r, value);
        r.error(
            value.span(),
            format!("{}: with an image, expected a list of arguments, found {found}", p.key_ref("cmd")),
        )
        .label("no shell runs this")
        .help(format!(
            "images run their command without a shell: write cmd = [{}] (or [\"sh\", \"-c\", \"...\"] if the image has a shell), or remove cmd to run the image's own CMD",
            argv.join(", ")
        ));
        return None;
    }
    let argv = p.string_list(r, "cmd")?;
    if argv.is_empty() {
        r.error(value.span(), format!("{} is empty", p.key_ref("cmd")))
            .help(
                "remove cmd to run the image's own CMD, or list the arguments: cmd = [\"serve\"]",
            );
        return None;
    }
    Some(argv.into_iter().map(Spanned::into_inner).collect())
}

/// `cap_add = ["NET_BIND_SERVICE"]` (the `CAP_` prefix and lowercase are accepted and normalised).
fn capability(text: &str) -> Result<String, String> {
    let upper = text.trim().to_ascii_uppercase();
    let name = upper.strip_prefix("CAP_").unwrap_or(&upper);
    if name == "ALL" {
        return Err("to keep the engine's default set, write cap_drop_all = false; adding ALL back would undo the lock-down".into());
    }
    if !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
        Ok(name.to_owned())
    } else {
        Err("write a Linux capability name, e.g. cap_add = [\"NET_BIND_SERVICE\"]".into())
    }
}

/// `cpus = 0.5` or `cpus = "0.5"`.
fn cpus(r: &mut Report, p: &Section, name: &str) -> Option<i64> {
    let value = p.get("cpus")?;
    let text = match value.get_ref() {
        DeValue::String(s) => s.to_string(),
        DeValue::Integer(_) | DeValue::Float(_) => r.text(value.span()).to_string(),
        _ => {
            p.wrong_type(r, "cpus", value, "a number of CPUs")
                .help("write cpus = 0.5 (half a CPU) or cpus = 2");
            return None;
        }
    };
    match limits::parse_cpus(&text) {
        Ok(nano) => Some(nano),
        Err(problem) => {
            r.error(value.span(), format!("[processes.{name}]: {problem}"))
                .label("not a CPU count")
                .help("write a number of CPUs more than 0, like Docker's --cpus: cpus = 0.5");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_are_normalised() {
        assert_eq!(capability("net_bind_service").unwrap(), "NET_BIND_SERVICE");
        assert_eq!(capability("CAP_CHOWN").unwrap(), "CHOWN");
        assert!(capability("ALL").unwrap_err().contains("cap_drop_all"));
        assert!(capability("net bind").is_err());
    }

    #[test]
    fn tags_split_after_the_last_slash() {
        assert_eq!(split_tag("shop:v2"), ("shop", "v2"));
        assert_eq!(split_tag("reg:5000/team/shop"), ("reg:5000/team/shop", ""));
        assert_eq!(split_tag("shop@sha256:abc"), ("shop", ""));
    }
}
