//! `slipway validate`: parse and check the config, print every problem with file:line, and what looks
//! unintended (warnings: valid, but probably not what was meant); deploy nothing.

use super::Context;
use std::process::ExitCode;

pub fn run(ctx: &Context) -> anyhow::Result<ExitCode> {
    match slipway_config::load_with_warnings(&ctx.config) {
        Ok(slipway_config::Parsed { spec, warnings }) if ctx.json() => {
            let processes: std::collections::BTreeMap<&String, u32> = spec
                .processes
                .iter()
                .map(|(n, p)| (n, p.replicas))
                .collect();
            crate::output::json(&serde_json::json!({
                "file": ctx.config,
                "valid": true,
                "app": spec.app,
                "processes": processes,
                "strategy": spec.deploy.strategy.name(),
                "warnings": warnings.iter().map(|w| w.to_string()).collect::<Vec<_>>(),
            }))?;
            Ok(ExitCode::SUCCESS)
        }
        Ok(slipway_config::Parsed { spec, warnings }) => {
            let processes: Vec<String> = spec
                .processes
                .iter()
                .map(|(name, p)| format!("{name}×{}", p.replicas))
                .collect();
            println!(
                "{}: ok — app {}, processes {}, strategy {}",
                ctx.config.display(),
                spec.app,
                processes.join(", "),
                spec.deploy.strategy.name()
            );
            for warning in &warnings {
                eprintln!("warning: {warning}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) if ctx.json() => {
            let problems: Vec<serde_json::Value> = e
                .issues()
                .iter()
                .map(|i| {
                    serde_json::json!({
                        "file": i.file,
                        "line": i.line,
                        "column": i.column,
                        "message": i.message,
                        "help": i.help,
                    })
                })
                .collect();
            crate::output::json(&serde_json::json!({
                "file": ctx.config,
                "valid": false,
                "problems": problems,
            }))?;
            Ok(ExitCode::from(1))
        }
        Err(e) => {
            eprintln!("{:?}", e.to_report());
            Ok(ExitCode::from(1))
        }
    }
}
