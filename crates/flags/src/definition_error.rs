//! What can be wrong with a flag definition, said so that the user can fix it.

use thiserror::Error;

use crate::value::VariantType;

/// A flag set that cannot be loaded, naming the flag (or the part of the file) and the problem.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum DefinitionError {
    #[error("the flag definition is not valid JSON: {0}")]
    Json(String),
    #[error("{0}")]
    Document(String),
    #[error("flag \"{flag}\": {problem}")]
    Flag { flag: String, problem: FlagProblem },
    #[error(
        "evaluator \"{name}\" in \"$evaluators\" must be a JSONLogic rule (a JSON object), not {found}"
    )]
    Evaluator { name: String, found: &'static str },
    #[error("flag set metadata \"{key}\" must be a string, number or boolean, not {found}")]
    SetMetadata { key: String, found: &'static str },
    #[error("there is no flag \"{0}\"")]
    UnknownFlag(String),
}

/// What is wrong with one flag.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum FlagProblem {
    #[error("flag keys must not be empty")]
    EmptyKey,
    #[error("a flag must be a JSON object, not {0}")]
    NotAnObject(&'static str),
    #[error("\"state\" must be \"ENABLED\" or \"DISABLED\", not {0}")]
    InvalidState(String),
    #[error("\"variants\" must be a JSON object of variant names to values, not {0}")]
    VariantsNotAnObject(&'static str),
    #[error("\"variants\" is empty; a flag needs at least one variant")]
    NoVariants,
    #[error("variant names must not be empty")]
    EmptyVariantName,
    #[error(
        "variant \"{variant}\" is {found}; variants are booleans, strings, numbers or objects (integers within ±(2^53-1))"
    )]
    UnsupportedValue {
        variant: String,
        found: &'static str,
    },
    #[error(
        "variant \"{variant}\" is a {found} but variant \"{first}\" is a {expected}; all variants of a flag have one type"
    )]
    MixedTypes {
        first: String,
        expected: VariantType,
        variant: String,
        found: VariantType,
    },
    #[error("\"defaultVariant\" must be a variant name or null, not {0}")]
    InvalidDefaultVariant(&'static str),
    #[error("\"defaultVariant\" is \"{name}\", which is not one of the variants ({known})")]
    UnknownDefaultVariant { name: String, known: String },
    #[error("\"targeting\" must be a JSONLogic rule (a JSON object), not {0}")]
    TargetingNotAnObject(&'static str),
    #[error("\"metadata\" must be a JSON object, not {0}")]
    MetadataNotAnObject(&'static str),
    #[error("metadata \"{key}\" must be a string, number or boolean, not {found}")]
    InvalidMetadata { key: String, found: &'static str },
}
