//! Checks a config and prints what slipway would say: `cargo run -p slipway-config --example check -- slipway.toml`.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let path = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "slipway.toml".into()),
    );
    let plain = std::env::args().any(|a| a == "--plain");
    match slipway_config::load_with_warnings(&path) {
        Ok(parsed) => {
            for warning in &parsed.warnings {
                eprintln!("warning: {warning}");
            }
            println!("{:#?}", parsed.spec);
            ExitCode::SUCCESS
        }
        Err(e) if plain => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("{:?}", e.to_report());
            ExitCode::FAILURE
        }
    }
}
