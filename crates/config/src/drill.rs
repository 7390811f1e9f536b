//! `[drill]`: rehearse a rollback on a schedule — the daemon runs `slipway drill` by itself (the stable
//! release again as a small canary failed on purpose, which the canary analysis must roll back).

use crate::percent::parse_rate;
use crate::report::Report;
use crate::table::Section;
use slipway_core::schedule::Schedule;
use slipway_core::spec::DrillSchedule;

const KEYS: &[&str] = &["schedule", "weight", "error_rate"];
/// As `slipway drill`'s defaults.
const DEFAULT_WEIGHT: u32 = 5;
const DEFAULT_ERROR_RATE: f64 = 0.5;

/// Reads `[drill]`; absent means no scheduled drill (`slipway drill` still works by hand).
pub(crate) fn read(r: &mut Report, root: &Section, has_web: bool) -> Option<DrillSchedule> {
    let s = root.table(r, "drill", "drill")?;
    s.check_keys(r, KEYS);
    let schedule = s.text(r, "schedule", "\"0 10 * * 2\"");
    if s.get("schedule").is_none() {
        s.missing(
            r,
            "schedule",
            "add when the drill runs (five cron fields, UTC), e.g. schedule = \"0 10 * * 2\" (Tuesdays 10:00)",
        );
    }
    if let Some(text) = &schedule
        && let Err(e) = Schedule::parse(text.get_ref())
    {
        r.error(text.span(), format!("[drill] schedule: {e}"))
            .label("invalid schedule")
            .help("five fields: minute hour day-of-month month day-of-week, e.g. \"0 10 * * 2\" (Tuesdays 10:00 UTC)");
    }
    if !has_web {
        r.error(s.span.clone(), "[drill] needs a process named `web`")
            .label("nothing to fail")
            .help(
                "a drill fails some of a canary's requests: only [processes.web] serves requests",
            );
    }
    let weight = s
        .integer(r, "weight", 1..=50)
        .map_or(DEFAULT_WEIGHT, |w| w.into_inner());
    let error_rate = match s.string(r, "error_rate") {
        None => DEFAULT_ERROR_RATE,
        Some(text) => match parse_rate(text.get_ref()) {
            Ok(rate) => rate,
            Err(problem) => {
                r.error(
                    text.span(),
                    format!("`error_rate` in [drill] {problem}: \"{}\"", text.get_ref()),
                )
                .label("not a percentage")
                .help("write the share of the drill canary's requests to fail, e.g. error_rate = \"50%\"");
                DEFAULT_ERROR_RATE
            }
        },
    };
    Some(DrillSchedule {
        schedule: schedule?.into_inner(),
        weight,
        error_rate,
    })
}
