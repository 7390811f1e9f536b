//! `[release]`: the release phase (migrations and other once-per-release work), its down command for
//! rollbacks, its timeout, and where migration files are for the expand/contract guard.

use crate::procfile::Procfile;
use crate::report::Report;
use crate::table::Section;
use slipway_core::spec::ReleasePhaseSpec;
use toml::Spanned;

const KEYS: &[&str] = &[
    "cmd",
    "rollback_cmd",
    "timeout",
    "migrations",
    "stable_watch",
];

pub(crate) fn read(
    r: &mut Report,
    root: &Section,
    procfile: Option<&Procfile>,
) -> ReleasePhaseSpec {
    let mut spec = ReleasePhaseSpec {
        cmd: procfile
            .and_then(|p| p.get("release"))
            .map(|e| e.cmd.clone()),
        ..ReleasePhaseSpec::default()
    };
    let Some(section) = root.table(r, "release", "release") else {
        return spec;
    };
    section.check_keys(r, KEYS);
    if let Some(cmd) = section.text(r, "cmd", "\"./manage.py migrate\"") {
        if spec.cmd.is_some() {
            r.warning(
                cmd.span(),
                "[release] cmd replaces the Procfile's `release:` line",
            )
            .help("keep the release command in one place: remove one of the two");
        }
        spec.cmd = Some(cmd.into_inner());
    }
    if let Some(cmd) = section.text(r, "rollback_cmd", "\"./manage.py migrate app 0041\"") {
        spec.rollback_cmd = Some(cmd.into_inner());
    }
    if let Some(timeout) = section.positive_duration(r, "timeout") {
        spec.timeout = timeout.into_inner();
    }
    if let Some(watch) = section.duration(r, "stable_watch") {
        spec.stable_watch = watch.into_inner();
    }
    if let Some(value) = section.get("migrations") {
        let globs = if matches!(value.get_ref(), toml::de::DeValue::String(_)) {
            section.string(r, "migrations").map(|s| vec![s])
        } else {
            section.string_list(r, "migrations")
        };
        if let Some(globs) = globs {
            for g in &globs {
                if let Err(e) = globset::Glob::new(g.get_ref()) {
                    r.error(g.span(), format!("[release] migrations: invalid glob: {e}"))
                        .help("e.g. migrations = \"db/migrate/*.sql\"");
                }
            }
            spec.migrations = globs.into_iter().map(Spanned::into_inner).collect();
        }
    }
    if spec.rollback_cmd.is_some()
        && spec.cmd.is_none()
        && let Some(span) = section.key_span("rollback_cmd")
    {
        r.warning(span, "[release] has a rollback_cmd but no cmd")
            .help("rollback_cmd undoes what cmd did; without cmd it still runs on rollback");
    }
    spec
}
