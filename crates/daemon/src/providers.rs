//! Analysis checks that ask something outside slipway: a Prometheus query, an HTTP endpoint, a command.
//! Each answers with a verdict and a sentence saying why. A check that cannot get an answer (the server
//! is down, no data) is inconclusive — it holds the rollout, it never passes it.

use serde_json::Value;
use slipway_core::spec::Check;
use slipway_core::verdict::Verdict;
use std::collections::BTreeMap;
use std::time::Duration;

/// What a check may refer to: `{{app}}`, `{{release}}`, `{{stable}}` in queries and commands; on
/// Kubernetes also `{{service}}` and `{{stable_service}}`, the releases' Services a gateway routes to
/// (its metrics name backends by Service).
#[derive(Debug, Clone)]
pub struct CheckContext {
    pub app: String,
    pub canary: u64,
    pub stable: Option<u64>,
    /// The canary's and the stable release's Services (`serve --kubernetes`).
    pub canary_service: Option<String>,
    pub stable_service: Option<String>,
    /// One ready instance of the canary, for smoke tests (`$SLIPWAY_CANARY_URL`).
    pub canary_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    pub verdict: Verdict,
    pub detail: String,
}

fn result(verdict: Verdict, detail: impl Into<String>) -> CheckResult {
    CheckResult {
        verdict,
        detail: detail.into(),
    }
}

pub fn substitute(text: &str, ctx: &CheckContext) -> String {
    // The longer name first: `{{stable_service}}` is not `{{stable}}` followed by text.
    text.replace(
        "{{stable_service}}",
        ctx.stable_service.as_deref().unwrap_or_default(),
    )
    .replace(
        "{{service}}",
        ctx.canary_service.as_deref().unwrap_or_default(),
    )
    .replace("{{app}}", &ctx.app)
    .replace("{{release}}", &format!("v{}", ctx.canary))
    .replace(
        "{{stable}}",
        &ctx.stable.map(|v| format!("v{v}")).unwrap_or_default(),
    )
}

/// Whether `value` is within the optional bounds, as a verdict with a sentence.
fn bounded(what: &str, value: f64, min: Option<f64>, max: Option<f64>) -> CheckResult {
    if value.is_nan() {
        return result(Verdict::Inconclusive, format!("{what} is NaN"));
    }
    if let Some(lo) = min
        && value < lo
    {
        return result(
            Verdict::Fail,
            format!("{what} = {value} is below the minimum {lo}"),
        );
    }
    if let Some(hi) = max
        && value > hi
    {
        return result(
            Verdict::Fail,
            format!("{what} = {value} is above the maximum {hi}"),
        );
    }
    result(Verdict::Pass, format!("{what} = {value} is within bounds"))
}

/// Runs one external check. (The built-in error-rate and latency checks are judged from the proxy's
/// numbers elsewhere; they answer `None` here.)
pub async fn run(
    check: &Check,
    ctx: &CheckContext,
    client: &reqwest::Client,
) -> Option<CheckResult> {
    Some(match check {
        Check::ErrorRate { .. } | Check::Latency { .. } => return None,
        Check::Prometheus {
            address,
            query,
            min,
            max,
        } => prometheus(client, address, &substitute(query, ctx), *min, *max).await,
        Check::Http {
            url,
            json_path,
            min,
            max,
            timeout,
        } => {
            http(
                client,
                &substitute(url, ctx),
                json_path.as_deref(),
                *min,
                *max,
                *timeout,
            )
            .await
        }
        Check::Command { cmd, timeout } => command(cmd, ctx, *timeout).await,
    })
}

async fn prometheus(
    client: &reqwest::Client,
    address: &str,
    query: &str,
    min: Option<f64>,
    max: Option<f64>,
) -> CheckResult {
    let base = format!("{}/api/v1/query", address.trim_end_matches('/'));
    let url = match reqwest::Url::parse_with_params(&base, &[("query", query)]) {
        Ok(u) => u,
        Err(e) => {
            return result(
                Verdict::Fail,
                format!("bad Prometheus address {address}: {e}"),
            );
        }
    };
    let answer = client
        .get(url)
        .timeout(Duration::from_secs(10))
        .send()
        .await;
    let body: Value = match answer {
        Ok(r) if r.status().is_success() => match r.json().await {
            Ok(v) => v,
            Err(e) => {
                return result(
                    Verdict::Inconclusive,
                    format!("Prometheus answered something unreadable: {e}"),
                );
            }
        },
        Ok(r) => {
            return result(
                Verdict::Inconclusive,
                format!("Prometheus answered {} to `{query}`", r.status()),
            );
        }
        Err(e) => {
            return result(
                Verdict::Inconclusive,
                format!("cannot reach Prometheus at {address}: {e}"),
            );
        }
    };
    let series = body["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let scalar = match body["data"]["resultType"].as_str() {
        Some("scalar") => vec![body["data"]["result"].clone()],
        _ => series.iter().map(|s| s["value"].clone()).collect(),
    };
    if scalar.is_empty() {
        return result(Verdict::Inconclusive, format!("no data for `{query}`"));
    }
    // Every series must be within bounds.
    let mut last = result(Verdict::Inconclusive, "no data");
    for value in scalar {
        let Some(v) = value[1].as_str().and_then(|s| s.parse::<f64>().ok()) else {
            return result(
                Verdict::Inconclusive,
                format!("unreadable value {value} for `{query}`"),
            );
        };
        last = bounded(&format!("`{query}`"), v, min, max);
        if last.verdict != Verdict::Pass {
            return last;
        }
    }
    last
}

async fn http(
    client: &reqwest::Client,
    url: &str,
    json_path: Option<&str>,
    min: Option<f64>,
    max: Option<f64>,
    timeout: Duration,
) -> CheckResult {
    let answer = match client.get(url).timeout(timeout).send().await {
        Ok(a) => a,
        Err(e) => return result(Verdict::Inconclusive, format!("GET {url}: {e}")),
    };
    let status = answer.status();
    if !status.is_success() {
        return result(Verdict::Fail, format!("GET {url} answered {status}"));
    }
    let Some(path) = json_path else {
        return result(Verdict::Pass, format!("GET {url} answered {status}"));
    };
    let body: Value = match answer.json().await {
        Ok(v) => v,
        Err(e) => {
            return result(
                Verdict::Fail,
                format!("GET {url}: the answer is not JSON: {e}"),
            );
        }
    };
    let mut field = &body;
    for part in path.split('.') {
        field = match field {
            Value::Array(items) => part
                .parse::<usize>()
                .ok()
                .and_then(|i| items.get(i))
                .unwrap_or(&Value::Null),
            other => other.get(part).unwrap_or(&Value::Null),
        };
    }
    let value = match field {
        Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::String(s) => s.parse().unwrap_or(f64::NAN),
        _ => return result(Verdict::Fail, format!("GET {url}: no number at `{path}`")),
    };
    bounded(&format!("{url} `{path}`"), value, min, max)
}

async fn command(cmd: &str, ctx: &CheckContext, timeout: Duration) -> CheckResult {
    let mut env = BTreeMap::new();
    env.insert("SLIPWAY_APP", ctx.app.clone());
    env.insert("SLIPWAY_CANARY_RELEASE", format!("v{}", ctx.canary));
    if let Some(url) = &ctx.canary_url {
        env.insert("SLIPWAY_CANARY_URL", url.clone());
    }
    if let Some(v) = ctx.stable {
        env.insert("SLIPWAY_STABLE_RELEASE", format!("v{v}"));
    }
    let child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(substitute(cmd, ctx))
        .envs(env)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(timeout, child).await {
        Err(_) => result(
            Verdict::Fail,
            format!("`{cmd}` did not finish within {}s", timeout.as_secs()),
        ),
        Ok(Err(e)) => result(Verdict::Fail, format!("cannot run `{cmd}`: {e}")),
        Ok(Ok(out)) if out.status.success() => result(Verdict::Pass, format!("`{cmd}` exited 0")),
        Ok(Ok(out)) => {
            let text = String::from_utf8_lossy(if out.stderr.is_empty() {
                &out.stdout
            } else {
                &out.stderr
            });
            let last = text.lines().last().unwrap_or("").trim();
            result(
                Verdict::Fail,
                format!("`{cmd}` failed ({}): {last}", out.status),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> CheckContext {
        CheckContext {
            app: "shop".into(),
            canary: 7,
            stable: Some(6),
            canary_url: None,
            canary_service: Some("shop-v7-web-1a2b3c4d".into()),
            stable_service: Some("shop-v6-web-5e6f7a8b".into()),
        }
    }

    #[test]
    fn placeholders_name_the_releases() {
        let q = substitute(
            "rate(x{app=\"{{app}}\",release=\"{{release}}\"}) / rate(x{release=\"{{stable}}\"})",
            &ctx(),
        );
        assert_eq!(
            q,
            "rate(x{app=\"shop\",release=\"v7\"}) / rate(x{release=\"v6\"})"
        );
        let q = substitute(
            "x{svc=\"{{service}}\"} / x{svc=\"{{stable_service}}\"}",
            &ctx(),
        );
        assert_eq!(
            q,
            "x{svc=\"shop-v7-web-1a2b3c4d\"} / x{svc=\"shop-v6-web-5e6f7a8b\"}"
        );
    }

    #[test]
    fn bounds_and_nan() {
        assert_eq!(bounded("x", 0.5, None, Some(1.0)).verdict, Verdict::Pass);
        assert_eq!(bounded("x", 1.5, None, Some(1.0)).verdict, Verdict::Fail);
        assert_eq!(bounded("x", 0.5, Some(1.0), None).verdict, Verdict::Fail);
        assert_eq!(
            bounded("x", f64::NAN, None, Some(1.0)).verdict,
            Verdict::Inconclusive
        );
    }

    #[tokio::test]
    async fn a_command_decides_by_its_exit_code() {
        let pass = command(
            "test \"$SLIPWAY_CANARY_RELEASE\" = v7",
            &ctx(),
            Duration::from_secs(10),
        )
        .await;
        assert_eq!(pass.verdict, Verdict::Pass, "{}", pass.detail);
        let fail = command("echo broken >&2; exit 3", &ctx(), Duration::from_secs(10)).await;
        assert_eq!(fail.verdict, Verdict::Fail);
        assert!(fail.detail.contains("broken"), "{}", fail.detail);
    }
}
