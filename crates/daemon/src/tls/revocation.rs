//! Why a certificate is revoked: the RFC 5280 reasons ACME CAs accept (Let's Encrypt takes these five),
//! by the names `slipway certs revoke --reason` and the API use.

use crate::error::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Unspecified,
    KeyCompromise,
    AffiliationChanged,
    Superseded,
    CessationOfOperation,
}

const NAMES: [(&str, Reason); 5] = [
    ("unspecified", Reason::Unspecified),
    ("key-compromise", Reason::KeyCompromise),
    ("affiliation-changed", Reason::AffiliationChanged),
    ("superseded", Reason::Superseded),
    ("cessation-of-operation", Reason::CessationOfOperation),
];

impl Reason {
    /// `None` (no reason given) is `unspecified`.
    pub fn parse(name: Option<&str>) -> Result<Reason, Error> {
        let Some(name) = name else {
            return Ok(Reason::Unspecified);
        };
        NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, r)| *r)
            .ok_or_else(|| {
                let known: Vec<&str> = NAMES.iter().map(|(n, _)| *n).collect();
                Error::bad_request(format!(
                    "unknown revocation reason {name:?}: use one of {}",
                    known.join(", ")
                ))
            })
    }

    pub fn name(self) -> &'static str {
        NAMES
            .iter()
            .find(|(_, r)| *r == self)
            .map_or("unspecified", |(n, _)| n)
    }

    pub fn acme(self) -> instant_acme::RevocationReason {
        use instant_acme::RevocationReason as R;
        match self {
            Reason::Unspecified => R::Unspecified,
            Reason::KeyCompromise => R::KeyCompromise,
            Reason::AffiliationChanged => R::AffiliationChanged,
            Reason::Superseded => R::Superseded,
            Reason::CessationOfOperation => R::CessationOfOperation,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_ones_are_refused_with_the_list() {
        for (name, reason) in NAMES {
            assert_eq!(Reason::parse(Some(name)).unwrap(), reason);
            assert_eq!(reason.name(), name);
        }
        assert_eq!(Reason::parse(None).unwrap(), Reason::Unspecified);
        let refused = Reason::parse(Some("ca-compromise")).unwrap_err();
        assert!(refused.message.contains("key-compromise"), "{refused:?}");
    }
}
