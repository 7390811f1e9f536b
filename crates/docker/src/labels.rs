//! The labels that make a container slipway's: which app, release, process and instance it is, and
//! which daemon owns it. They are the only state a restarted daemon needs to adopt its containers.

use std::collections::HashMap;

pub const APP: &str = "slipway.app";
pub const RELEASE: &str = "slipway.release";
pub const PROCESS: &str = "slipway.process";
pub const INSTANCE: &str = "slipway.instance";
/// Which daemon (engine handle) created it: see [`crate::EngineConfig::owner`].
pub const OWNER: &str = "slipway.owner";
/// The port the process listens on inside the container, to find its published address again.
pub const PORT: &str = "slipway.port";

/// Who a container is, in slipway's words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceLabels {
    pub app: String,
    pub release: u64,
    pub process: String,
    /// Unique per daemon, e.g. `hello-v3-web-1a2b`; also names the container (`slipway-<instance>`).
    pub instance: String,
}

impl InstanceLabels {
    /// All labels of an instance's container.
    pub fn to_map(&self, owner: &str, port: Option<u16>) -> HashMap<String, String> {
        let mut labels = HashMap::from([
            (APP.to_owned(), self.app.clone()),
            (RELEASE.to_owned(), format!("v{}", self.release)),
            (PROCESS.to_owned(), self.process.clone()),
            (INSTANCE.to_owned(), self.instance.clone()),
            (OWNER.to_owned(), owner.to_owned()),
        ]);
        if let Some(port) = port {
            labels.insert(PORT.to_owned(), port.to_string());
        }
        labels
    }

    /// Reads the labels back; `Err` names what is missing or malformed.
    pub fn from_map(labels: &HashMap<String, String>) -> Result<InstanceLabels, String> {
        let get = |key: &str| {
            labels
                .get(key)
                .filter(|value| !value.is_empty())
                .ok_or_else(|| format!("label {key} is missing"))
        };
        let release = get(RELEASE)?;
        let number = release.strip_prefix('v').unwrap_or(release);
        let release = number
            .parse()
            .map_err(|_| format!("label {RELEASE}={release:?} is not a release like v3"))?;
        Ok(InstanceLabels {
            app: get(APP)?.clone(),
            release,
            process: get(PROCESS)?.clone(),
            instance: get(INSTANCE)?.clone(),
        })
    }

    /// The container's name: `slipway-<instance>`.
    pub fn container_name(&self) -> String {
        container_name(&self.instance)
    }
}

pub fn container_name(instance: &str) -> String {
    format!("slipway-{instance}")
}

/// The container port recorded in the labels, if any.
pub(crate) fn port(labels: &HashMap<String, String>) -> Option<u16> {
    labels.get(PORT).and_then(|port| port.parse().ok())
}

/// The engine-side filter for "everything this owner created" (containers and images).
pub(crate) fn owner_filter(owner: &str, extra: &[(&str, &str)]) -> HashMap<String, Vec<String>> {
    let mut wanted = vec![format!("{OWNER}={owner}")];
    wanted.extend(extra.iter().map(|(key, value)| format!("{key}={value}")));
    HashMap::from([("label".to_owned(), wanted)])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> InstanceLabels {
        InstanceLabels {
            app: "shop".into(),
            release: 7,
            process: "web".into(),
            instance: "shop-v7-web-1f".into(),
        }
    }

    #[test]
    fn labels_round_trip() {
        let map = labels().to_map("daemon-a", Some(8080));
        assert_eq!(map[RELEASE], "v7");
        assert_eq!(map[OWNER], "daemon-a");
        assert_eq!(port(&map), Some(8080));
        assert_eq!(InstanceLabels::from_map(&map), Ok(labels()));
        assert_eq!(labels().container_name(), "slipway-shop-v7-web-1f");
    }

    #[test]
    fn broken_labels_are_named() {
        let mut map = labels().to_map("d", None);
        assert_eq!(port(&map), None);
        map.insert(RELEASE.into(), "seven".into());
        let err = InstanceLabels::from_map(&map).unwrap_err();
        assert!(err.contains("slipway.release"), "{err}");
        map.remove(RELEASE);
        assert!(InstanceLabels::from_map(&map).is_err());
        // A bare number is accepted too.
        map.insert(RELEASE.into(), "7".into());
        assert_eq!(InstanceLabels::from_map(&map).unwrap().release, 7);
    }

    #[test]
    fn the_owner_filter_selects_by_label() {
        let filter = owner_filter("d1", &[(APP, "shop")]);
        assert_eq!(
            filter["label"],
            vec!["slipway.owner=d1".to_owned(), "slipway.app=shop".to_owned()]
        );
    }
}
