//! Parses `slipway.toml` into the app spec ([`slipway_core::spec::AppSpec`]).
//!
//! Why a hand walk instead of `#[derive(Deserialize)]`: a config is written by a person who wants to
//! deploy, not debug. Every problem in the file is reported at once, each at its `file:line:column`,
//! with a `help` that says what to write instead (the closest valid key, the strict spelling of a
//! duration, the strategy a knob belongs to). serde's errors stop at the first problem and carry no
//! suggestion, so the file is parsed into spanned TOML values ([`toml::de::DeTable`]) and walked here.
//!
//! Defaults, limits and cross-field rules (e.g. `timeout` <= `period`, rolling-only knobs) live in the
//! module of the section they belong to. `examples/slipway.toml` documents every key and
//! `examples/canary.toml` every canary step and analysis check; both are tested, and embedded in
//! `docs/config.md`.
//!
//! ```
//! let spec = slipway_config::parse(
//!     "app = \"hello\"\n[processes.web]\ncmd = \"./server\"\n",
//!     std::path::Path::new("/srv/hello/slipway.toml"),
//! ).unwrap();
//! assert_eq!(spec.processes["web"].replicas, 1);
//! ```

mod amount;
mod analysis;
mod app;
mod artifact;
mod canary;
mod check;
mod container;
mod cron;
mod deploy;
mod drill;
mod duration;
mod env;
mod error;
mod kubernetes;
mod limits;
mod notify;
mod percent;
mod probe;
mod process;
mod procfile;
mod release_phase;
mod report;
mod routing;
mod scaling;
mod slo;
mod suggest;
mod table;
mod url;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;

pub use app::app_name_like;
pub use artifact::DEFAULT_EXCLUDE;
pub use error::{ConfigError, ConfigIssue};

use miette::NamedSource;
use report::Report;
use slipway_core::spec::AppSpec;
use std::path::Path;

/// A valid config and what in it looked unintended.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub spec: AppSpec,
    /// Not errors, but probably not what was meant (e.g. a host listed twice).
    pub warnings: Vec<ConfigIssue>,
}

/// Reads and parses the config at `path`.
pub fn load(path: &Path) -> Result<AppSpec, ConfigError> {
    load_with_warnings(path).map(|p| p.spec)
}

/// A config file is a few KB: anything else at that path (a device, a FIFO, a huge file) is refused
/// before it is read, so a deploy pointed at `/dev/zero` fails at once instead of reading forever.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

fn read_bounded(path: &Path) -> std::io::Result<String> {
    use std::io::{Error, ErrorKind, Read};
    let file = std::fs::File::open(path)?;
    if !file.metadata()?.is_file() {
        return Err(Error::new(ErrorKind::InvalidInput, "not a regular file"));
    }
    let mut text = String::new();
    file.take(MAX_CONFIG_BYTES + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(Error::new(
            ErrorKind::InvalidData,
            "larger than 1 MiB, which no slipway.toml is",
        ));
    }
    Ok(text)
}

/// [`load`], keeping the warnings.
pub fn load_with_warnings(path: &Path) -> Result<Parsed, ConfigError> {
    let text = read_bounded(path).map_err(|e| {
        let issue = ConfigIssue {
            file: path.to_path_buf(),
            line: 0,
            column: 0,
            message: format!("cannot read the config: {e}"),
            help: (e.kind() == std::io::ErrorKind::NotFound)
                .then(|| "create it, or point at it with the config path argument".to_string()),
            span: 0..0,
            label: None,
        };
        ConfigError::new(vec![issue], None)
    })?;
    parse_with_warnings(&text, path)
}

/// Parses config `text`. `path` names the file in messages, and relative paths in the config
/// (artifact, secret files) are resolved against its folder, then made absolute.
pub fn parse(text: &str, path: &Path) -> Result<AppSpec, ConfigError> {
    parse_with_warnings(text, path).map(|p| p.spec)
}

/// [`parse`], keeping the warnings.
pub fn parse_with_warnings(text: &str, path: &Path) -> Result<Parsed, ConfigError> {
    let mut report = Report::new(text, path);
    let base_dir = path.parent().unwrap_or(Path::new(""));
    // A Procfile's mistakes are reported first, against the Procfile itself.
    let procfile = procfile::load(base_dir)?;
    let spec = match toml::de::DeTable::parse(text) {
        Ok(doc) => app::read(&mut report, doc.get_ref(), base_dir, procfile.as_ref()),
        Err(_) => {
            syntax_error(&mut report, text);
            None
        }
    };
    let done = report.finish();
    match spec {
        Some(spec) if done.errors.is_empty() => Ok(Parsed {
            spec,
            warnings: done.warnings,
        }),
        _ => {
            let source = NamedSource::new(path.display().to_string(), done.snippet_text)
                .with_language("TOML");
            Err(ConfigError::new(done.errors, Some(source)))
        }
    }
}

/// Reports the first TOML syntax error. Later ones are mostly echoes of the first, so they are left out.
fn syntax_error(report: &mut Report, text: &str) {
    let (_, errors) = toml::de::DeTable::parse_recoverable(text);
    let first = errors
        .iter()
        .min_by_key(|e| e.span().map_or(usize::MAX, |s| s.start));
    let (span, message) = match first {
        Some(e) => (e.span().unwrap_or(0..0), e.message().to_string()),
        None => (0..0, "invalid TOML".to_string()),
    };
    let help = if message.contains("quoted") {
        Some("put text in double quotes, e.g. cmd = \"./server\"")
    } else if message.contains("duplicate") {
        Some("each key and each [table] is written once")
    } else {
        None
    };
    let issue = report.error(span, format!("TOML syntax error: {message}"));
    issue.label("here");
    if let Some(help) = help {
        issue.help(help);
    }
}
