//! `[routing]`: which requests the proxy sends to this app (host names and a path prefix), and the largest
//! request body it forwards.

use crate::limits::parse_size;
use crate::report::Report;
use crate::table::Section;
use slipway_core::spec::RoutingSpec;
use std::collections::BTreeSet;

const KEYS: &[&str] = &["hosts", "path", "max_body_size"];

pub(crate) fn read(r: &mut Report, root: &Section) -> RoutingSpec {
    let mut spec = RoutingSpec {
        hosts: Vec::new(),
        path_prefix: "/".into(),
        max_body_size: None,
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
    spec
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
