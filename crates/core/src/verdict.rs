//! The result of an analysis: the one word every gate, step and check answers with.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Enough evidence that the release is within bounds.
    Pass,
    /// Enough evidence that it is not: roll back.
    Fail,
    /// Not enough data to say either: hold (never pass, never promote blind).
    Inconclusive,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Inconclusive => "inconclusive",
        }
    }

    /// Several checks together: any fail fails, all pass passes, else inconclusive.
    pub fn all(verdicts: impl IntoIterator<Item = Verdict>) -> Verdict {
        let mut all_pass = true;
        for v in verdicts {
            match v {
                Verdict::Fail => return Verdict::Fail,
                Verdict::Inconclusive => all_pass = false,
                Verdict::Pass => {}
            }
        }
        if all_pass {
            Verdict::Pass
        } else {
            Verdict::Inconclusive
        }
    }
}
