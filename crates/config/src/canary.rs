//! `strategy = "canary"` in `[deploy]`: the steps (Argo's vocabulary: `weight`, `pause`, `analysis`,
//! `route`, `mirror`), `sticky` sessions and `background_analysis`.
//!
//! Each step is one small inline table that does exactly one thing, so a list of steps reads as the
//! rollout's script. A step with two kinds is an error rather than "do both in some order": the order
//! is the point of the list.

use crate::analysis;
use crate::report::Report;
use crate::suggest;
use crate::table::Section;
use slipway_core::spec::{CanarySpec, CanaryStep, RouteMatch, Sticky};
use std::collections::BTreeMap;
use toml::Spanned;
use toml::de::DeValue;

const KINDS: &[&str] = &["weight", "pause", "analysis", "route", "mirror"];
const STEP_KEYS: &[&str] = &["weight", "pause", "analysis", "for", "route", "mirror"];
const STEP_EXAMPLES: &str = "{ weight = 10 }, { pause = \"5m\" }, { pause = {} }, { analysis = \"golden\", for = \"1m\" }, { route = { header = { \"x-canary\" = \"1\" } } } or { mirror = 20 }";
/// The cookie slipway sets when `sticky = "cookie"` names none.
pub(crate) const DEFAULT_STICKY_COOKIE: &str = "slipway_canary";
const STICKY_WORDS: &[&str] = &["cookie", "header", "client-address"];
const STICKY_FORMS: &str =
    "sticky = \"cookie\", { cookie = \"name\" }, { header = \"x-user-id\" } or \"client-address\"";
/// `pause` spelled as a word: wait for `slipway promote`.
const UNTIL_PROMOTED: &str = "until-promoted";

/// Reads the canary keys of `[deploy]`; `declared` are the analysis template names.
pub(crate) fn read(r: &mut Report, d: &Section, declared: &[String]) -> CanarySpec {
    let background_analysis = d
        .text(r, "background_analysis", "\"golden\"")
        .and_then(|name| {
            analysis::check_ref(r, declared, &name, "background_analysis");
            declared.contains(name.get_ref()).then(|| name.into_inner())
        });
    CanarySpec {
        steps: steps(r, d, declared),
        sticky: sticky(r, d),
        background_analysis,
    }
}

fn steps(r: &mut Report, d: &Section, declared: &[String]) -> Vec<CanaryStep> {
    let mut out = Vec::new();
    let Some(value) = d.get("steps") else {
        return out;
    };
    let DeValue::Array(items) = value.get_ref() else {
        d.wrong_type(r, "steps", value, "an array of steps")
            .help("write steps = [ { weight = 10 }, { pause = \"5m\" }, { weight = 50 } ]");
        return out;
    };
    for (i, item) in items.iter().enumerate() {
        let name = format!("[deploy] step {}", i + 1);
        let DeValue::Table(table) = item.get_ref() else {
            let found = crate::table::found(r, item);
            let help = match item.get_ref() {
                DeValue::Integer(_) => format!("write {{ weight = {} }}", r.text(item.span())),
                DeValue::String(_) => format!("write {{ pause = {} }}", r.text(item.span())),
                _ => format!("a step is one of {STEP_EXAMPLES}"),
            };
            r.error(
                item.span(),
                format!("{name}: expected a table like {{ weight = 10 }}, found {found}"),
            )
            .label("not a step")
            .help(help);
            continue;
        };
        let step = Section::named(&name, item.span(), table);
        if let Some(s) = read_step(r, &step, declared) {
            out.push(s);
        }
    }
    out
}

fn read_step(r: &mut Report, s: &Section, declared: &[String]) -> Option<CanaryStep> {
    let mut unknown = false;
    for (key, span, _) in s.entries() {
        if STEP_KEYS.contains(&key) {
            continue;
        }
        unknown = true;
        let help = match suggest::closest(key, STEP_KEYS) {
            Some(near) => format!("did you mean `{near}`?"),
            None => format!("a step is one of {STEP_EXAMPLES}"),
        };
        r.error(span, format!("unknown step kind `{key}` in {}", s.name()))
            .label("unknown step kind")
            .help(help);
    }
    let kinds: Vec<&str> = KINDS
        .iter()
        .copied()
        .filter(|k| s.get(k).is_some())
        .collect();
    let kind = match kinds.as_slice() {
        [] if unknown => return None,
        [] => {
            r.error(s.span.clone(), format!("{} does nothing", s.name()))
                .label("empty step")
                .help(format!("a step is one of {STEP_EXAMPLES}"));
            return None;
        }
        [kind] => *kind,
        [first, second, ..] => {
            let span = s.key_span(second).unwrap_or_else(|| s.span.clone());
            r.error(
                span,
                format!("{} has two kinds, `{first}` and `{second}`", s.name()),
            )
            .label("second kind")
            .help(format!(
                "a step does one thing: split it into two steps, {{ {first} = ... }} then {{ {second} = ... }}"
            ));
            return None;
        }
    };
    if kind != "analysis"
        && let Some(span) = s.key_span("for")
    {
        r.error(
            span,
            format!("{}: `for` only applies to an analysis step", s.name()),
        )
        .label("analysis only")
        .help(if kind == "pause" {
            "the pause's length is its value: write { pause = \"1m\" }".to_string()
        } else {
            format!("remove it; to hold the {kind} for a while, add a step {{ pause = \"1m\" }} after it")
        });
        return None;
    }
    if unknown {
        return None;
    }
    match kind {
        "weight" => percent_step(r, s, "weight").map(CanaryStep::Weight),
        "mirror" => percent_step(r, s, "mirror").map(CanaryStep::Mirror),
        "pause" => pause(r, s).map(CanaryStep::Pause),
        "analysis" => analysis_step(r, s, declared),
        _ => route(r, s).map(CanaryStep::Route),
    }
}

/// `weight` / `mirror`: a whole percentage 0..=100, written without `%`.
fn percent_step(r: &mut Report, s: &Section, key: &str) -> Option<u32> {
    if let Some(value) = s.get(key)
        && let DeValue::String(text) = value.get_ref()
        && let Some(n) = text.trim().strip_suffix('%')
        && n.trim().parse::<u32>().is_ok()
    {
        s.wrong_type(r, key, value, "an integer").help(format!(
            "write {key} = {} (a percentage, without quotes or `%`)",
            n.trim()
        ));
        return None;
    }
    s.integer(r, key, 0..=100).map(Spanned::into_inner)
}

/// `pause = "5m"` waits that long; `pause = {}` or `"until-promoted"` waits for `slipway promote`.
fn pause(r: &mut Report, s: &Section) -> Option<Option<std::time::Duration>> {
    let value = s.get("pause")?;
    let help =
        "write pause = \"5m\" for a timed pause, or pause = {} to wait for `slipway promote`";
    match value.get_ref() {
        DeValue::Table(t) => match t.iter().next() {
            None => Some(None),
            Some((key, inner)) => {
                let help = match (key.get_ref().as_ref(), inner.get_ref()) {
                    ("duration", DeValue::String(d)) => format!("write pause = \"{d}\""),
                    _ => help.to_string(),
                };
                r.error(
                    key.span(),
                    format!("{}: pause = {{}} takes no keys", s.name()),
                )
                .label("unexpected key")
                .help(help);
                None
            }
        },
        DeValue::String(text) if text.trim() == UNTIL_PROMOTED => Some(None),
        DeValue::String(text) if text.trim().starts_with(|c: char| c.is_ascii_alphabetic()) => {
            let help = match suggest::closest(text.trim(), &[UNTIL_PROMOTED]) {
                Some(near) => format!("did you mean \"{near}\"? ({help})"),
                None => help.to_string(),
            };
            r.error(
                value.span(),
                format!(
                    "{} is neither a duration nor \"{UNTIL_PROMOTED}\": \"{text}\"",
                    s.key_ref("pause")
                ),
            )
            .label("not a pause")
            .help(help);
            None
        }
        _ => s
            .positive_duration(r, "pause")
            .map(|d| Some(d.into_inner())),
    }
}

/// `{ analysis = "golden", for = "1m" }`: the template must exist, and `for` says how long it runs.
fn analysis_step(r: &mut Report, s: &Section, declared: &[String]) -> Option<CanaryStep> {
    let template = s.text(r, "analysis", "\"golden\"");
    if let Some(t) = &template {
        analysis::check_ref(r, declared, t, &s.name());
    }
    let duration = s.positive_duration(r, "for");
    if s.get("for").is_none() {
        let name = template.as_ref().map_or("golden", |t| t.get_ref().as_str());
        r.error(
            s.span.clone(),
            format!("{}: an analysis step needs `for`", s.name()),
        )
        .label("how long?")
        .help(format!(
            "say how long the analysis runs: {{ analysis = \"{name}\", for = \"1m\" }}"
        ));
    }
    let template = template.filter(|t| declared.contains(t.get_ref()))?;
    Some(CanaryStep::Analysis {
        template: template.into_inner(),
        duration: duration?.into_inner(),
    })
}

/// `route = { header = { "x-canary" = "1" }, cookie = { beta = "yes" } }`: at least one match.
fn route(r: &mut Report, s: &Section) -> Option<RouteMatch> {
    let path = format!("{} route", s.name());
    let value = s.get("route")?;
    let DeValue::Table(table) = value.get_ref() else {
        s.wrong_type(r, "route", value, "a table")
            .help("write route = { header = { \"x-canary\" = \"1\" } } or route = { cookie = { beta = \"yes\" } }");
        return None;
    };
    let route = Section::named(&path, value.span(), table);
    route.check_keys(r, &["header", "cookie"]);
    let headers = matches(r, &route, "header", true);
    let cookies = matches(r, &route, "cookie", false);
    let (headers, cookies) = (headers?, cookies?);
    if headers.is_empty() && cookies.is_empty() {
        if route
            .entries()
            .all(|(k, _, _)| k == "header" || k == "cookie")
        {
            r.error(value.span(), format!("{path} matches nothing"))
                .label("empty route")
                .help("add a header and/or a cookie to match, e.g. route = { header = { \"x-canary\" = \"1\" } }");
        }
        return None;
    }
    Some(RouteMatch { headers, cookies })
}

/// `header = { name = "value" }` or `cookie = { ... }`; header names are case-insensitive, so lowered.
fn matches(
    r: &mut Report,
    route: &Section,
    key: &str,
    lowercase: bool,
) -> Option<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let Some(value) = route.get(key) else {
        return Some(out);
    };
    let DeValue::Table(table) = value.get_ref() else {
        route
            .wrong_type(r, key, value, "a table of names and values")
            .help(format!("write {key} = {{ \"x-canary\" = \"1\" }}"));
        return None;
    };
    let path = format!("{} {key}", route.name());
    let section = Section::named(&path, value.span(), table);
    let mut ok = true;
    for (name, span, v) in section.entries() {
        if !is_token(name) {
            r.error(span, format!("{path}: invalid {key} name `{name}`"))
                .label("invalid name")
                .help("use letters, digits and `-`/`_` (an HTTP token), e.g. \"x-canary\"");
            ok = false;
            continue;
        }
        match v.get_ref() {
            DeValue::String(text) => {
                let name = if lowercase {
                    name.to_ascii_lowercase()
                } else {
                    name.to_string()
                };
                out.insert(name, text.to_string());
            }
            _ => {
                let raw = r.text(v.span()).to_string();
                section
                    .wrong_type(r, name, v, "a string")
                    .help(format!("quote it: \"{name}\" = \"{raw}\""));
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

/// `sticky`: how a user who got the canary keeps getting it.
fn sticky(r: &mut Report, d: &Section) -> Option<Sticky> {
    let value = d.get("sticky")?;
    match value.get_ref() {
        DeValue::String(word) => match word.trim() {
            "cookie" => Some(Sticky::Cookie(DEFAULT_STICKY_COOKIE.into())),
            "client-address" => Some(Sticky::ClientAddr),
            "header" => {
                r.error(value.span(), "`sticky` in [deploy]: a sticky header needs a name")
                    .label("which header?")
                    .help("name the header whose value picks the release: sticky = { header = \"x-user-id\" }");
                None
            }
            other => {
                let help = match suggest::closest(other, STICKY_WORDS) {
                    Some(near) => format!("did you mean \"{near}\"? ({STICKY_FORMS})"),
                    None => format!("write {STICKY_FORMS}"),
                };
                r.error(
                    value.span(),
                    format!("`sticky` in [deploy]: unknown kind \"{other}\""),
                )
                .label("unknown sticky kind")
                .help(help);
                None
            }
        },
        DeValue::Table(table) => {
            let s = Section::new("deploy.sticky", value.span(), table);
            s.check_keys(r, &["cookie", "header"]);
            let present: Vec<&str> = ["cookie", "header"]
                .into_iter()
                .filter(|k| s.get(k).is_some())
                .collect();
            let key = match present.as_slice() {
                [key] => *key,
                [] => {
                    if s.is_empty() {
                        r.error(
                            value.span(),
                            "`sticky` in [deploy] names no cookie or header",
                        )
                        .help(format!("write {STICKY_FORMS}"));
                    }
                    return None;
                }
                _ => {
                    let span = s.key_span("header").unwrap_or_else(|| value.span());
                    r.error(span, "`sticky` in [deploy] has both `cookie` and `header`")
                        .label("second kind")
                        .help("one thing picks the release: keep `cookie` or `header`");
                    return None;
                }
            };
            let name = s.text(r, key, "\"x-user-id\"")?;
            if !is_token(name.get_ref()) {
                r.error(
                    name.span(),
                    format!("{}: invalid {key} name \"{}\"", s.name(), name.get_ref()),
                )
                .label("invalid name")
                .help("use letters, digits and `-`/`_` (an HTTP token), e.g. \"x-user-id\"");
                return None;
            }
            Some(match key {
                "cookie" => Sticky::Cookie(name.into_inner()),
                _ => Sticky::Header(name.into_inner().to_ascii_lowercase()),
            })
        }
        _ => {
            d.wrong_type(r, "sticky", value, "a string or a table")
                .help(format!("write {STICKY_FORMS}"));
            None
        }
    }
}

/// An HTTP token (RFC 9110): what header and cookie names are made of.
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_cookie_names_are_tokens() {
        for ok in ["x-canary", "X-User-Id", "beta", "slipway_canary"] {
            assert!(is_token(ok), "{ok}");
        }
        for bad in ["", "x canary", "a:b", "é", "a=b", "a;b"] {
            assert!(!is_token(bad), "{bad}");
        }
    }
}
