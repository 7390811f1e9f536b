//! `[routing]`: which requests the proxy sends to this app (host names and a path prefix), and the largest
//! request body it forwards.

use crate::limits::parse_size;
use crate::report::Report;
use crate::table::Section;
use slipway_core::spec::{RoutingSpec, TlsSpec};
use std::collections::BTreeSet;
use toml::de::DeValue;

const KEYS: &[&str] = &[
    "hosts",
    "path",
    "max_body_size",
    "tls",
    "redirect_https",
    "hsts",
];

/// `hsts = true`: a year, the usual max-age.
const HSTS_YEAR: u64 = 365 * 24 * 3600;

pub(crate) fn read(r: &mut Report, root: &Section) -> RoutingSpec {
    let mut spec = RoutingSpec {
        hosts: Vec::new(),
        path_prefix: "/".into(),
        max_body_size: None,
        tls: None,
        redirect_https: false,
        hsts_max_age: None,
    };
    let Some(routing) = root.table(r, "routing", "routing") else {
        return spec;
    };
    routing.check_keys(r, KEYS);
    let mut seen = BTreeSet::new();
    for host in routing.string_list(r, "hosts").unwrap_or_default() {
        let lower = host.get_ref().trim().to_ascii_lowercase();
        if let Some(help) = host_problem(&lower) {
            r.error(
                host.span(),
                format!("[routing]: invalid host \"{}\"", host.get_ref()),
            )
            .label("invalid host")
            .help(help);
        } else if !seen.insert(lower.clone()) {
            r.warning(
                host.span(),
                format!("[routing]: host \"{lower}\" is listed twice"),
            )
            .help("remove the duplicate");
        } else {
            spec.hosts.push(lower);
        }
    }
    if let Some(path) = routing.string(r, "path") {
        let p = path.get_ref();
        if !p.starts_with('/') {
            r.error(path.span(), "[routing]: path must start with `/`")
                .help(format!("write path = \"/{}\"", p.trim_start_matches('/')));
        } else if p.contains(|c: char| c.is_whitespace() || c == '?' || c == '#') {
            r.error(
                path.span(),
                "[routing]: path is a URL path prefix: no spaces, `?` or `#`",
            )
            .help("e.g. path = \"/api\"");
        } else {
            spec.path_prefix = p.clone();
        }
    }
    if let Some(size) = routing.string(r, "max_body_size") {
        match parse_size("max_body_size", size.get_ref()) {
            Ok(bytes) => spec.max_body_size = Some(bytes),
            Err(message) => {
                r.error(size.span(), format!("[routing]: {message}"))
                    .label("not a size")
                    .help("e.g. max_body_size = \"10m\" (larger request bodies get 413)");
            }
        }
    }
    spec.tls = read_tls(r, &routing);
    if let Some(redirect) = routing.boolean(r, "redirect_https") {
        spec.redirect_https = *redirect.get_ref();
    }
    if let Some(hsts) = routing.boolean(r, "hsts")
        && *hsts.get_ref()
    {
        spec.hsts_max_age = Some(HSTS_YEAR);
    }
    spec
}

/// `tls = "auto"` or `tls = { cert = "/path.pem", key = "/path.key" }`.
fn read_tls(r: &mut Report, routing: &Section) -> Option<TlsSpec> {
    let value = routing.get("tls")?;
    let help = "write tls = \"auto\" (ACME) or tls = { cert = \"/etc/ssl/app.pem\", key = \"/etc/ssl/app.key\" }";
    match value.get_ref() {
        DeValue::String(s) if s.as_ref() == "auto" => Some(TlsSpec::Auto),
        DeValue::Table(_) => {
            let files = routing.as_table(r, "tls", value, "routing.tls")?;
            files.check_keys(r, &["cert", "key"]);
            let mut path = |key: &str| {
                if files.get(key).is_none() {
                    files.missing(r, key, help);
                    return None;
                }
                let p = files.text(r, key, "\"/etc/ssl/app.pem\"")?;
                // The daemon reads these, maybe on another machine than the one deploying.
                if !p.get_ref().starts_with('/') {
                    r.error(
                        p.span(),
                        format!("[routing] tls.{key}: the path must be absolute"),
                    )
                    .label("relative path")
                    .help(
                        "the daemon reads the file: give its absolute path on the daemon's machine",
                    );
                    return None;
                }
                Some(p.into_inner())
            };
            let cert = path("cert");
            let key = path("key");
            Some(TlsSpec::Files {
                cert: cert?,
                key: key?,
            })
        }
        _ => {
            routing
                .wrong_type(r, "tls", value, "\"auto\" or { cert, key }")
                .help(help);
            None
        }
    }
}

/// Why `host` (lowercased) is not a bare host name, as a help line; `None` when it is fine.
fn host_problem(host: &str) -> Option<String> {
    if let Some((scheme, rest)) = host.split_once("://") {
        return Some(format!(
            "write the host alone, without \"{scheme}://\": \"{}\"",
            rest.trim_end_matches('/')
        ));
    }
    if let Some((name, _)) = host.split_once('/') {
        return Some(format!(
            "write the host alone, without a path: \"{name}\" (use [routing] path for prefixes)"
        ));
    }
    if let Some((name, _)) = host.rsplit_once(':') {
        return Some(format!("write the host without a port: \"{name}\""));
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if host.is_empty() || host.len() > 253 || !host.split('.').all(label_ok) {
        return Some(
            "write a host name like \"shop.example.com\" (letters, digits, `-` and `.`)".into(),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_host_names_pass() {
        for ok in ["shop.example.com", "localhost", "a-b.c1.io"] {
            assert_eq!(host_problem(ok), None, "{ok}");
        }
    }

    #[test]
    fn urls_and_ports_get_the_bare_name_as_help() {
        assert!(
            host_problem("https://shop.example.com/")
                .unwrap()
                .contains("\"shop.example.com\"")
        );
        assert!(
            host_problem("shop.example.com:8080")
                .unwrap()
                .contains("\"shop.example.com\"")
        );
        assert!(host_problem("shop.example.com/api").is_some());
        for bad in ["", "a..b", "-a.com", "sp ace.com", "*.example.com"] {
            assert!(host_problem(bad).is_some(), "{bad}");
        }
    }
}
