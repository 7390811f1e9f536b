//! Old release vs new schema: a release phase (migrations) runs while the stable release still serves,
//! and a migration that is not backwards compatible breaks it before any traffic has moved. So after the
//! phase the daemon watches the stable release for a short while (`[release] stable_watch`) and judges
//! its answers since the phase against its answers in the minute before the phase, with the same
//! sequential test as canary analysis: a clear rise of its error rate stops the rollout (and runs the new
//! release's `rollback_cmd`) before the new release gets a single request.

use crate::analysis::{Judgement, Settings, Window, judge_error_rate_with};

/// How much worse (absolute: 0.01 = one percentage point) the stable release's error rate may get.
pub const MAX_ERROR_RATE_INCREASE: f64 = 0.01;

/// The stable release's answers since the release phase, against its answers before it. Too little
/// traffic before the phase leaves the bound absolute (at most 1 % errors since).
pub fn judge(before: &Window, since_phase: &Window) -> Judgement {
    let settings = Settings::default();
    let baseline = (before.requests >= settings.min_requests).then_some(before);
    let judged = judge_error_rate_with(
        &settings,
        since_phase,
        baseline,
        MAX_ERROR_RATE_INCREASE,
        true,
    );
    Judgement {
        verdict: judged.verdict,
        detail: judged
            .detail
            .replace("canary", "since the release phase")
            .replace("stable", "before it"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::Verdict;

    fn window(requests: u64, errors: u64) -> Window {
        Window::uniform(requests, errors, 2_000)
    }

    #[test]
    fn a_schema_that_breaks_the_serving_release_fails_it() {
        let judged = judge(&window(600, 1), &window(100, 60));
        assert_eq!(judged.verdict, Verdict::Fail, "{}", judged.detail);
        assert!(
            judged.detail.contains("since the release phase"),
            "{}",
            judged.detail
        );
    }

    #[test]
    fn a_harmless_phase_passes_and_little_traffic_decides_nothing() {
        assert_eq!(
            judge(&window(600, 1), &window(2_000, 2)).verdict,
            Verdict::Pass
        );
        assert_eq!(
            judge(&window(600, 1), &window(5, 0)).verdict,
            Verdict::Inconclusive
        );
        // An app that was idle before: the bound is absolute.
        assert_eq!(
            judge(&Window::default(), &window(50, 40)).verdict,
            Verdict::Fail
        );
    }
}
