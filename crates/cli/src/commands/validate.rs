//! `slipway validate`: parse and check the config, print every problem with file:line, deploy nothing.

use super::Context;
use std::process::ExitCode;

pub fn run(ctx: &Context) -> anyhow::Result<ExitCode> {
    match slipway_config::load(&ctx.config) {
        Ok(spec) => {
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
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{:?}", e.to_report());
            Ok(ExitCode::from(1))
        }
    }
}
