//! The demo app's knobs, read from the environment so the supervisor (and tests) can set them per
//! release without flags: each knob simulates one way a real release can be good or bad.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

/// Error rates are kept in parts per million so "3 %" means exactly 3 of every 100 requests.
const PPM: u64 = 1_000_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Knobs {
    /// `PORT`: listen on `$DEMO_BIND:$PORT` (0 picks a free port; the start line says which).
    pub port: u16,
    /// `DEMO_BIND`: the address to listen on, `127.0.0.1` unless set. In a container it must be
    /// `0.0.0.0`: published ports reach the container's own interface, not its loopback.
    pub bind: IpAddr,
    /// `DEMO_VERSION`, else the content of `version.txt` in the working folder, else `v1`.
    pub version: String,
    /// `DEMO_ERROR_RATE` (0.0–1.0) in parts per million: that fraction of `/` requests answer 500.
    pub error_rate_ppm: u64,
    /// `DEMO_LATENCY_MS`: added to each `/` response.
    pub latency: Duration,
    /// `DEMO_STARTUP_DELAY_MS`: slept before binding, like a slow-booting app.
    pub startup_delay: Duration,
    /// `DEMO_READY`: `false` (or `0`) makes `/ready` answer 503 forever.
    pub ready: bool,
    /// `DEMO_CRASH_AFTER`: serve this many `/` requests, then exit(1) on the next one.
    pub crash_after: Option<u64>,
    /// `DEMO_ERRORS_AFTER_MS`: `DEMO_ERROR_RATE` applies only from this long after the app started
    /// (before, no injected errors): a release that goes bad once it serves, e.g. after its promotion.
    pub errors_after: Duration,
    /// `DEMO_FLAG` and its companions: a feature flag the app evaluates for each `/` request.
    pub flag: Option<FlagKnobs>,
    /// `DEMO_BROKEN_BY`: while this file exists, `/` answers 500 — a release whose database schema a
    /// later release's migration changed under it (the file stands for the migrated schema).
    pub broken_by: Option<std::path::PathBuf>,
}

/// A flag the app evaluates over OFREP for each `/` request, as an app using OpenFeature would, naming
/// the variant it served in `Slipway-Flags`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagKnobs {
    /// `DEMO_FLAG`: the flag's key.
    pub key: String,
    /// `DEMO_OFREP_URL`: where OFREP answers (slipway's API address), e.g. `http://127.0.0.1:7070`.
    pub ofrep_url: String,
    /// `DEMO_OFREP_KEY_FILE`: a file holding the evaluation key (a secret: never in the environment).
    pub key_file: Option<std::path::PathBuf>,
    /// `DEMO_FLAG_ERROR_RATE` (0.0–1.0): that fraction of the requests served the variant `on` answer
    /// 500 — a feature that is broken for its users only.
    pub on_error_rate_ppm: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnobError(String);

impl fmt::Display for KnobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for KnobError {}

impl Knobs {
    /// Reads the process environment and `./version.txt`.
    pub fn from_env() -> Result<Knobs, KnobError> {
        let version_file = std::fs::read_to_string("version.txt").ok();
        Knobs::parse(|name| std::env::var(name).ok(), version_file.as_deref())
    }

    /// Parses knobs from a variable lookup and the optional content of `version.txt`.
    pub fn parse(
        var: impl Fn(&str) -> Option<String>,
        version_file: Option<&str>,
    ) -> Result<Knobs, KnobError> {
        let var = |name: &str| {
            var(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let port = var("PORT")
            .ok_or_else(|| KnobError("PORT is required: set it to the port to listen on".into()))?;
        let port = port.parse().map_err(|_| {
            KnobError(format!(
                "PORT must be a port number (0-65535), got {port:?}"
            ))
        })?;
        let bind = match var("DEMO_BIND") {
            None => IpAddr::from([127, 0, 0, 1]),
            Some(raw) => raw.parse().map_err(|_| {
                KnobError(format!(
                    "DEMO_BIND must be an IP address such as 0.0.0.0, got {raw:?}"
                ))
            })?,
        };
        let version = var("DEMO_VERSION")
            .or_else(|| {
                version_file
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(String::from)
            })
            .unwrap_or_else(|| "v1".to_string());
        let rate = |name: &str| match var(name) {
            None => Ok(0),
            Some(raw) => match raw.parse::<f64>() {
                Ok(rate) if (0.0..=1.0).contains(&rate) => Ok((rate * PPM as f64).round() as u64),
                _ => Err(KnobError(format!(
                    "{name} must be a number from 0.0 to 1.0, got {raw:?}"
                ))),
            },
        };
        let error_rate_ppm = rate("DEMO_ERROR_RATE")?;
        let flag = match var("DEMO_FLAG") {
            None => None,
            Some(key) => Some(FlagKnobs {
                key,
                ofrep_url: var("DEMO_OFREP_URL").ok_or_else(|| {
                    KnobError(
                        "DEMO_FLAG needs DEMO_OFREP_URL: the address OFREP answers on, e.g. http://127.0.0.1:7070"
                            .into(),
                    )
                })?,
                key_file: var("DEMO_OFREP_KEY_FILE").map(Into::into),
                on_error_rate_ppm: rate("DEMO_FLAG_ERROR_RATE")?,
            }),
        };
        let millis = |name: &str| -> Result<Duration, KnobError> {
            match var(name) {
                None => Ok(Duration::ZERO),
                Some(raw) => raw.parse().map(Duration::from_millis).map_err(|_| {
                    KnobError(format!(
                        "{name} must be a whole number of milliseconds, got {raw:?}"
                    ))
                }),
            }
        };
        let ready = !matches!(
            var("DEMO_READY").map(|v| v.to_ascii_lowercase()).as_deref(),
            Some("false" | "0" | "no")
        );
        let crash_after = match var("DEMO_CRASH_AFTER") {
            None => None,
            Some(raw) => Some(raw.parse().map_err(|_| {
                KnobError(format!(
                    "DEMO_CRASH_AFTER must be a whole number of requests, got {raw:?}"
                ))
            })?),
        };
        Ok(Knobs {
            port,
            bind,
            version,
            error_rate_ppm,
            latency: millis("DEMO_LATENCY_MS")?,
            startup_delay: millis("DEMO_STARTUP_DELAY_MS")?,
            ready,
            crash_after,
            errors_after: millis("DEMO_ERRORS_AFTER_MS")?,
            flag,
            broken_by: var("DEMO_BROKEN_BY").map(Into::into),
        })
    }

    /// Whether `/` request number `n` (counting from 1) gets an injected 500. Failures are spread
    /// evenly: a request fails when it pushes the running total of owed failures up by one, so any
    /// 100 consecutive requests at 3 % contain exactly 3 failures.
    pub fn fails_request(&self, n: u64) -> bool {
        fails(n, self.error_rate_ppm)
    }
}

/// Whether the `n`th request (from 1) at `ppm` fails, spread evenly (see `fails_request`).
pub fn fails(n: u64, ppm: u64) -> bool {
    n > 0 && owed(n, ppm) > owed(n - 1, ppm)
}

fn owed(requests: u64, ppm: u64) -> u128 {
    requests as u128 * ppm as u128 / PPM as u128
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(vars: &[(&str, &str)], file: Option<&str>) -> Result<Knobs, KnobError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Knobs::parse(|name| vars.get(name).cloned(), file)
    }

    #[test]
    fn defaults() {
        let k = parse(&[("PORT", "8080")], None).unwrap();
        assert_eq!(k.port, 8080);
        assert_eq!(k.bind, IpAddr::from([127, 0, 0, 1]));
        assert_eq!(k.version, "v1");
        assert_eq!(k.error_rate_ppm, 0);
        assert_eq!(k.latency, Duration::ZERO);
        assert_eq!(k.startup_delay, Duration::ZERO);
        assert!(k.ready);
        assert_eq!(k.crash_after, None);
        assert_eq!(k.errors_after, Duration::ZERO);
    }

    #[test]
    fn all_knobs() {
        let k = parse(
            &[
                ("PORT", "0"),
                ("DEMO_BIND", "0.0.0.0"),
                ("DEMO_VERSION", "v2"),
                ("DEMO_ERROR_RATE", "0.25"),
                ("DEMO_LATENCY_MS", "15"),
                ("DEMO_STARTUP_DELAY_MS", "500"),
                ("DEMO_READY", "false"),
                ("DEMO_CRASH_AFTER", "7"),
                ("DEMO_ERRORS_AFTER_MS", "30000"),
            ],
            None,
        )
        .unwrap();
        assert_eq!(k.bind, IpAddr::from([0, 0, 0, 0]));
        assert_eq!(k.version, "v2");
        assert_eq!(k.error_rate_ppm, 250_000);
        assert_eq!(k.latency, Duration::from_millis(15));
        assert_eq!(k.startup_delay, Duration::from_millis(500));
        assert!(!k.ready);
        assert_eq!(k.crash_after, Some(7));
        assert_eq!(k.errors_after, Duration::from_secs(30));
        assert_eq!(k.flag, None);
        assert_eq!(k.broken_by, None);
        let k = parse(
            &[
                ("PORT", "0"),
                ("DEMO_FLAG", "new-search"),
                ("DEMO_OFREP_URL", "http://127.0.0.1:7070"),
                ("DEMO_OFREP_KEY_FILE", "/run/key"),
                ("DEMO_FLAG_ERROR_RATE", "0.5"),
            ],
            None,
        )
        .unwrap();
        assert_eq!(
            k.flag,
            Some(FlagKnobs {
                key: "new-search".into(),
                ofrep_url: "http://127.0.0.1:7070".into(),
                key_file: Some("/run/key".into()),
                on_error_rate_ppm: 500_000,
            })
        );
        let err = parse(&[("PORT", "0"), ("DEMO_FLAG", "x")], None).unwrap_err();
        assert!(err.to_string().contains("DEMO_OFREP_URL"), "{err}");
    }

    #[test]
    fn version_file_is_used_unless_the_env_says_otherwise() {
        assert_eq!(parse(&[("PORT", "1")], Some("v9\n")).unwrap().version, "v9");
        assert_eq!(
            parse(&[("PORT", "1"), ("DEMO_VERSION", "v3")], Some("v9\n"))
                .unwrap()
                .version,
            "v3"
        );
        assert_eq!(parse(&[("PORT", "1")], Some("  \n")).unwrap().version, "v1");
    }

    #[test]
    fn bad_values_are_explained() {
        assert!(
            parse(&[], None)
                .unwrap_err()
                .to_string()
                .contains("PORT is required")
        );
        assert!(
            parse(&[("PORT", "http")], None)
                .unwrap_err()
                .to_string()
                .contains("\"http\"")
        );
        for rate in ["1.5", "-0.1", "lots"] {
            let err = parse(&[("PORT", "1"), ("DEMO_ERROR_RATE", rate)], None).unwrap_err();
            assert!(err.to_string().contains("DEMO_ERROR_RATE"), "{err}");
        }
        assert!(parse(&[("PORT", "1"), ("DEMO_LATENCY_MS", "1.5")], None).is_err());
        assert!(parse(&[("PORT", "1"), ("DEMO_CRASH_AFTER", "x")], None).is_err());
        assert!(parse(&[("PORT", "1"), ("DEMO_BIND", "everywhere")], None).is_err());
    }

    #[test]
    fn error_rate_is_exact_per_hundred() {
        let failures = |rate: &str, from: u64, to: u64| {
            let k = parse(&[("PORT", "1"), ("DEMO_ERROR_RATE", rate)], None).unwrap();
            (from..=to).filter(|n| k.fails_request(*n)).count()
        };
        assert_eq!(failures("0.03", 1, 100), 3);
        assert_eq!(failures("0.03", 101, 200), 3);
        assert_eq!(failures("0.29", 1, 100), 29, "no float drift");
        assert_eq!(failures("0", 1, 1000), 0);
        assert_eq!(failures("1", 1, 1000), 1000);
        assert_eq!(failures("0.5", 1, 10), 5);
    }
}
