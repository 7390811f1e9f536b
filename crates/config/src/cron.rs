//! `[cron.<name>]`: scheduled jobs (schedule, command, what to do when runs overlap, runs kept).

use crate::report::Report;
use crate::table::Section;
use slipway_core::schedule::Schedule;
use slipway_core::spec::{Concurrency, CronSpec};
use std::collections::BTreeMap;
use std::time::Duration;

const KEYS: &[&str] = &["schedule", "cmd", "concurrency", "history", "timeout"];
const DEFAULT_HISTORY: u32 = 10;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3600);
const EXAMPLE: &str = "[cron.cleanup]\nschedule = \"*/5 * * * *\"\ncmd = \"./cleanup\"";

pub(crate) fn read(r: &mut Report, root: &Section) -> BTreeMap<String, CronSpec> {
    let mut out = BTreeMap::new();
    let Some(jobs) = root.table(r, "cron", "cron") else {
        return out;
    };
    for (name, key_span, value) in jobs.entries() {
        if !crate::process::valid_name(name) {
            r.error(key_span.clone(), format!("invalid cron job name `{name}`"))
                .label("invalid name")
                .help("use lowercase letters, digits, `_` and `-`, starting with a letter, e.g. `cleanup`");
        }
        let toml::de::DeValue::Table(table) = value.get_ref() else {
            jobs.wrong_type(r, name, value, "a table")
                .help(format!("write the job as a table:\n{EXAMPLE}"));
            continue;
        };
        let path = format!("cron.{name}");
        let job = Section::new(&path, value.span(), table);
        job.check_keys(r, KEYS);
        let schedule = job.text(r, "schedule", "\"*/5 * * * *\"");
        if job.get("schedule").is_none() {
            job.missing(
                r,
                "schedule",
                "add when it runs (five cron fields, UTC), e.g. schedule = \"*/5 * * * *\"",
            );
        }
        if let Some(s) = &schedule
            && let Err(e) = Schedule::parse(s.get_ref())
        {
            r.error(s.span(), format!("[cron.{name}] schedule: {e}"))
                .label("invalid schedule")
                .help("five fields: minute hour day-of-month month day-of-week, e.g. \"0 3 * * *\" (03:00 UTC daily)");
        }
        let cmd = job.text(r, "cmd", "\"./cleanup\"");
        if job.get("cmd").is_none() {
            job.missing(
                r,
                "cmd",
                "add the command to run, with `sh -c`, e.g. cmd = \"./cleanup\"",
            );
        }
        let concurrency = match job.string(r, "concurrency") {
            None => Concurrency::Forbid,
            Some(c) => match c.get_ref().as_str() {
                "forbid" => Concurrency::Forbid,
                "allow" => Concurrency::Allow,
                "replace" => Concurrency::Replace,
                other => {
                    let help = match crate::suggest::closest(other, &["forbid", "allow", "replace"]) {
                        Some(near) => format!("did you mean \"{near}\"?"),
                        None => "use \"forbid\" (skip a run while one is going), \"allow\" or \"replace\"".into(),
                    };
                    r.error(
                        c.span(),
                        format!("[cron.{name}]: unknown concurrency \"{other}\""),
                    )
                    .label("unknown")
                    .help(help);
                    Concurrency::Forbid
                }
            },
        };
        let history = job
            .integer(r, "history", 1..=1000)
            .map_or(DEFAULT_HISTORY, |h| h.into_inner());
        let timeout = job
            .positive_duration(r, "timeout")
            .map_or(DEFAULT_TIMEOUT, |t| t.into_inner());
        if let (Some(schedule), Some(cmd)) = (schedule, cmd) {
            out.insert(
                name.to_string(),
                CronSpec {
                    schedule: schedule.into_inner(),
                    cmd: cmd.into_inner(),
                    concurrency,
                    history,
                    timeout,
                },
            );
        }
    }
    out
}
