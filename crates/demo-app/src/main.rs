//! `slipway-demo-app`: the demo app as its own binary (the same server is `slipway demo-app`).

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    match slipway_demo_app::run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("slipway-demo-app: {message}");
            ExitCode::FAILURE
        }
    }
}
