//! Parses slipway.toml into the app spec, with file:line errors and suggestions.
