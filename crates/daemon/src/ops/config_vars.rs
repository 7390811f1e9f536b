//! `slipway config [set|unset]`: config vars kept beside `slipway.toml`, Heroku's semantics. A change
//! makes a new release (same artifact, new config) rolled out with the app's strategy; every later deploy
//! carries the vars along. Secrets are declared in `slipway.toml` as sources and only listed by name.

use crate::clock::now_ms;
use crate::error::Error;
use crate::ops::deploy::Deployer;
use slipway_api::{ConfigChange, ConfigEntry, ConfigView, DeployAccepted};
use slipway_core::spec::{AppSpec, SecretSource};
use slipway_store::StoreError;

/// Names that look like credentials: a `config set` of one is stored in the state database as text.
const SECRET_LOOKING: &[&str] = &[
    "PASSWORD",
    "SECRET",
    "TOKEN",
    "PRIVATE",
    "CREDENTIAL",
    "API_KEY",
];

impl Deployer {
    pub fn config_view(&self, app: &str) -> Result<ConfigView, Error> {
        let stable = self
            .stable_release(app)?
            .ok_or_else(|| Error::not_found(format!("{app} has no stable release yet")))?;
        let internal = |e: StoreError| Error::internal(e.to_string());
        let vars = self.store.config_vars(app).map_err(internal)?;
        let spec = &stable.spec;
        let mut env: Vec<ConfigEntry> = spec
            .environment()
            .into_iter()
            .map(|(key, value)| {
                let origin = if spec.config_vars.contains_key(&key) {
                    match vars.get(&key) {
                        Some(v) => format!("config set by {}", v.set_by),
                        None => "config set".to_string(),
                    }
                } else {
                    "slipway.toml".to_string()
                };
                ConfigEntry {
                    key,
                    value: Some(value),
                    origin,
                }
            })
            .collect();
        env.extend(spec.secrets.iter().map(|(key, source)| ConfigEntry {
            key: key.clone(),
            value: None,
            origin: match source {
                SecretSource::File(_) => "secret (from a file)".into(),
                SecretSource::Env(_) => "secret (from the daemon's environment)".into(),
            },
        }));
        env.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(ConfigView {
            app: app.to_string(),
            release: stable.version,
            vars: env,
        })
    }

    /// Sets and unsets config vars, then rolls out a release with them.
    pub async fn config_change(
        &self,
        app: &str,
        change: ConfigChange,
    ) -> Result<DeployAccepted, Error> {
        let stable = self.stable_release(app)?.ok_or_else(|| {
            Error::not_found(format!(
                "{app} has no stable release yet: `slipway deploy` first"
            ))
        })?;
        let mut warnings = Vec::new();
        for key in change.set.keys() {
            check_key(key, &stable.spec)?;
            if SECRET_LOOKING
                .iter()
                .any(|s| key.to_ascii_uppercase().contains(s))
            {
                warnings.push(format!(
                    "{key} looks like a secret: config vars are stored in the state database; \
                     for a secret, declare a source in [secrets] of slipway.toml instead"
                ));
            }
        }
        let mut spec = stable.spec.clone();
        for key in &change.unset {
            if spec.config_vars.remove(key).is_none() {
                return Err(Error::bad_request(if spec.env.contains_key(key) {
                    format!("{key} comes from [env] in slipway.toml: remove it there and deploy")
                } else {
                    format!("{key} is not set (see `slipway config`)")
                }));
            }
        }
        spec.config_vars.extend(change.set.clone());
        if spec == stable.spec {
            return Err(Error::bad_request(format!(
                "nothing changes: {app} v{} already has this config",
                stable.version
            )));
        }
        let summary = describe(&change);
        let holder = format!("config change by {} ({summary})", change.who);
        let accepted = self
            .under_lock(app, &holder, async {
                let now = now_ms() as i64;
                let release = self.record_derived(&stable, spec, &change.who, &summary, |tx| {
                    for (k, v) in &change.set {
                        tx.set_config_var(app, k, v, now, &change.who)?;
                    }
                    for k in &change.unset {
                        tx.unset_config_var(app, k)?;
                    }
                    Ok(())
                })?;
                self.roll_out(release, &change.who).await
            })
            .await;
        accepted.map(|mut a| {
            warnings.append(&mut a.warnings);
            a.warnings = warnings;
            a
        })
    }

    /// What every deploy adds to the file's spec: the config vars and the formation set from the CLI.
    pub(crate) fn apply_overrides(&self, spec: &mut AppSpec) -> Result<Vec<String>, Error> {
        let internal = |e: StoreError| Error::internal(e.to_string());
        let mut warnings = Vec::new();
        for (key, var) in self.store.config_vars(&spec.app).map_err(internal)? {
            if spec.secrets.contains_key(&key) {
                warnings.push(format!(
                    "{key} is a secret in slipway.toml and a config var (`slipway config unset {key}`); the secret wins"
                ));
                continue;
            }
            spec.config_vars.insert(key, var.value);
        }
        for (process, replicas) in self.store.formation(&spec.app).map_err(internal)? {
            if let Some(p) = spec.processes.get_mut(&process)
                && p.scaling.is_some()
            {
                // The file now asks for a range: the autoscaler decides, not an old `scale`.
                warnings.push(format!(
                    "{process}: `slipway scale` had set {replicas}; slipway.toml's replicas = {{ min, max }} now decides"
                ));
                continue;
            }
            if let Some(p) = spec.processes.get_mut(&process)
                && p.replicas != replicas
            {
                warnings.push(format!(
                    "{process}: slipway.toml says replicas = {}, `slipway scale` set {replicas}; keeping {replicas} \
                     (`slipway scale {process}=N` changes it)",
                    p.replicas
                ));
                p.replicas = replicas;
            }
        }
        Ok(warnings)
    }
}

fn check_key(key: &str, spec: &AppSpec) -> Result<(), Error> {
    let mut chars = key.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(Error::bad_request(format!(
            "`{key}` is not a variable name: use letters, digits and `_`, not starting with a digit"
        )));
    }
    if key == "PORT" || key.starts_with("SLIPWAY_") {
        return Err(Error::bad_request(format!(
            "{key} is set by slipway itself"
        )));
    }
    if spec.secrets.contains_key(key) {
        return Err(Error::bad_request(format!(
            "{key} is a secret of this app (declared in [secrets] of slipway.toml): change its source there"
        )));
    }
    Ok(())
}

fn describe(change: &ConfigChange) -> String {
    let mut parts: Vec<String> = change.set.keys().map(|k| format!("set {k}")).collect();
    parts.extend(change.unset.iter().map(|k| format!("unset {k}")));
    format!("config: {}", parts.join(", "))
}
