//! The image's own HEALTHCHECK, as the engine reports it. slipway's probes decide readiness; this is
//! shown beside them (`slipway status`), because an image author's check often knows something ours
//! does not.

use bollard::models::HealthStatusEnum;
use std::fmt;

/// Characters of the last check's output kept for display.
const OUTPUT_MAX: usize = 200;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    Starting,
    Healthy,
    Unhealthy {
        failing_streak: i64,
        /// The last check's output, trimmed.
        last_output: String,
    },
}

impl Health {
    /// `None` when the image has no HEALTHCHECK.
    pub fn from_engine(health: Option<&bollard::models::Health>) -> Option<Health> {
        let health = health?;
        match health.status? {
            HealthStatusEnum::STARTING => Some(Health::Starting),
            HealthStatusEnum::HEALTHY => Some(Health::Healthy),
            HealthStatusEnum::UNHEALTHY => {
                let last_output = health
                    .log
                    .as_ref()
                    .and_then(|log| log.last())
                    .and_then(|result| result.output.as_deref())
                    .map(|output| output.trim().chars().take(OUTPUT_MAX).collect())
                    .unwrap_or_default();
                Some(Health::Unhealthy {
                    failing_streak: health.failing_streak.unwrap_or(0),
                    last_output,
                })
            }
            HealthStatusEnum::NONE | HealthStatusEnum::EMPTY => None,
        }
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Health::Starting => f.write_str("starting"),
            Health::Healthy => f.write_str("healthy"),
            Health::Unhealthy {
                failing_streak,
                last_output,
            } if last_output.is_empty() => {
                write!(f, "unhealthy ({failing_streak} failures in a row)")
            }
            Health::Unhealthy {
                failing_streak,
                last_output,
            } => write!(
                f,
                "unhealthy ({failing_streak} failures in a row): {last_output}"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::HealthcheckResult;

    #[test]
    fn engine_health_is_mapped() {
        assert_eq!(Health::from_engine(None), None);
        let engine = |status| bollard::models::Health {
            status: Some(status),
            failing_streak: Some(4),
            log: Some(vec![HealthcheckResult {
                output: Some("curl: (7) refused\n".into()),
                ..HealthcheckResult::default()
            }]),
        };
        assert_eq!(
            Health::from_engine(Some(&engine(HealthStatusEnum::HEALTHY))),
            Some(Health::Healthy)
        );
        assert_eq!(
            Health::from_engine(Some(&engine(HealthStatusEnum::NONE))),
            None
        );
        let sick = Health::from_engine(Some(&engine(HealthStatusEnum::UNHEALTHY))).unwrap();
        assert_eq!(
            sick.to_string(),
            "unhealthy (4 failures in a row): curl: (7) refused"
        );
    }
}
