//! How a container ended, from the engine's state: exit code, OOM kill, the engine's own error (e.g.
//! the command does not exist in the image). The sentence goes into instance events, so it says what
//! the user can do.

use bollard::models::ContainerState;
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerExit {
    pub code: i64,
    /// The kernel killed it for exceeding its memory limit.
    pub oom_killed: bool,
    /// The engine could not run it at all (e.g. `exec: "x": executable file not found`).
    pub error: Option<String>,
}

impl ContainerExit {
    /// The exit recorded in an inspected state, if the container has ended.
    pub fn from_state(state: &ContainerState) -> ContainerExit {
        ContainerExit {
            code: state.exit_code.unwrap_or(-1),
            oom_killed: state.oom_killed.unwrap_or(false),
            error: state.error.clone().filter(|error| !error.trim().is_empty()),
        }
    }

    pub fn success(&self) -> bool {
        self.code == 0 && !self.oom_killed && self.error.is_none()
    }
}

impl fmt::Display for ContainerExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.oom_killed {
            return write!(
                f,
                "was killed for running out of memory (OOM, exit {}): raise its `memory` limit or fix the leak",
                self.code
            );
        }
        if let Some(error) = &self.error {
            return write!(f, "could not run: {error}");
        }
        match self.code {
            // 128 + n: killed by signal n (the shell and runc convention).
            129..=192 => write!(
                f,
                "was killed by signal {} (exit {})",
                signal_name(self.code - 128),
                self.code
            ),
            code => write!(f, "exited with status {code}"),
        }
    }
}

fn signal_name(signal: i64) -> String {
    match signal {
        2 => "SIGINT".into(),
        6 => "SIGABRT".into(),
        9 => "SIGKILL".into(),
        11 => "SIGSEGV".into(),
        15 => "SIGTERM".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(code: i64, oom: bool, error: &str) -> ContainerState {
        ContainerState {
            exit_code: Some(code),
            oom_killed: Some(oom),
            error: Some(error.into()),
            ..ContainerState::default()
        }
    }

    #[test]
    fn exits_are_described_for_humans() {
        let plain = ContainerExit::from_state(&state(3, false, ""));
        assert_eq!(plain.to_string(), "exited with status 3");
        assert!(!plain.success());
        assert!(ContainerExit::from_state(&state(0, false, "")).success());
        assert_eq!(
            ContainerExit::from_state(&state(137, false, "")).to_string(),
            "was killed by signal SIGKILL (exit 137)"
        );
        let oom = ContainerExit::from_state(&state(137, true, ""));
        assert!(oom.to_string().contains("out of memory"), "{oom}");
        assert!(!oom.success());
        let missing = ContainerExit::from_state(&state(127, false, "exec: \"x\": not found"));
        assert_eq!(missing.to_string(), "could not run: exec: \"x\": not found");
    }
}
