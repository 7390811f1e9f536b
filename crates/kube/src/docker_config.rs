//! The login an image pull secret holds for a registry: a `kubernetes.io/dockerconfigjson` Secret's
//! `.dockerconfigjson` (`{"auths": {"<registry>": {"auth": base64("user:password")}}}`, what
//! `kubectl create secret docker-registry` writes) or an old `.dockercfg` (the same map at the top).
//! Pure, so the registry's many spellings (`https://index.docker.io/v1/`, `ghcr.io`) are matched
//! the same way the kubelet does for a pull.

use base64::Engine;

/// A registry login. Its Debug output hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryLogin {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for RegistryLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryLogin")
            .field("username", &self.username)
            .field("password", &"<hidden>")
            .finish()
    }
}

/// The login `config` (a Docker config's JSON) holds for `registry` (a host, `host:port`).
pub fn login(config: &[u8], registry: &str) -> Option<RegistryLogin> {
    let config: serde_json::Value = serde_json::from_slice(config).ok()?;
    let auths = config.get("auths").unwrap_or(&config).as_object()?;
    let wanted = host(registry);
    let entry = auths
        .iter()
        .find(|(key, _)| host(key) == wanted)
        .map(|(_, entry)| entry)?;
    if let (Some(username), Some(password)) = (
        entry.get("username").and_then(|v| v.as_str()),
        entry.get("password").and_then(|v| v.as_str()),
    ) {
        return Some(RegistryLogin {
            username: username.to_owned(),
            password: password.to_owned(),
        });
    }
    let auth = entry.get("auth")?.as_str()?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .ok()?;
    let (username, password) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    Some(RegistryLogin {
        username: username.to_owned(),
        password: password.to_owned(),
    })
}

/// A registry key as a bare host: no scheme, no path; Docker Hub's names are one.
fn host(key: &str) -> String {
    let key = key
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = key
        .split('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".to_owned()
        }
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    #[test]
    fn the_login_for_the_registry_is_found_however_its_key_is_spelled() {
        let config = format!(
            r#"{{"auths": {{
                "https://index.docker.io/v1/": {{"auth": "{}"}},
                "ghcr.io": {{"username": "bot", "password": "p:w"}},
                "http://127.0.0.1:5000": {{"auth": "{}"}}
            }}}}"#,
            b64("hub:secret"),
            b64("local:pa:ss")
        );
        let login = |registry| login(config.as_bytes(), registry);
        assert_eq!(login("docker.io").unwrap().username, "hub");
        assert_eq!(login("ghcr.io").unwrap().password, "p:w");
        let local = login("127.0.0.1:5000").unwrap();
        assert_eq!(
            (local.username.as_str(), local.password.as_str()),
            ("local", "pa:ss")
        );
        assert_eq!(login("quay.io"), None);
        assert!(!format!("{local:?}").contains("pa:ss"));
    }

    #[test]
    fn an_old_dockercfg_or_a_broken_one() {
        let old = format!(r#"{{"quay.io": {{"auth": "{}"}}}}"#, b64("q:w"));
        assert_eq!(login(old.as_bytes(), "quay.io").unwrap().username, "q");
        assert_eq!(login(b"not json", "quay.io"), None);
        let no_colon = format!(
            r#"{{"auths": {{"quay.io": {{"auth": "{}"}}}}}}"#,
            b64("nocolon")
        );
        assert_eq!(login(no_colon.as_bytes(), "quay.io"), None);
    }
}
