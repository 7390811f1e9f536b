//! The containers this owner has on the engine, for adoption after a daemon restart: running ones of
//! known releases are taken back (routes restored, no restart), the rest reported and removed.

use crate::address;
use crate::engine::Engine;
use crate::image::ImageId;
use crate::labels::{self, InstanceLabels};
use bollard::query_parameters::ListContainersOptions;
use std::net::SocketAddr;

/// One container carrying this owner's label.
#[derive(Clone, Debug)]
pub struct OwnedContainer {
    pub id: String,
    pub name: String,
    /// `None`: the owner label is ours but the others are missing or malformed (remove it).
    pub labels: Option<InstanceLabels>,
    pub image: Option<ImageId>,
    /// The engine's word: created, running, exited, …
    pub state: String,
    pub running: bool,
    pub address: Option<SocketAddr>,
}

impl Engine {
    /// Every container (running or not) labelled with this owner, oldest first.
    pub async fn list_owned(&self) -> Result<Vec<OwnedContainer>, crate::DockerError> {
        let options = ListContainersOptions {
            all: true,
            filters: Some(labels::owner_filter(self.owner(), &[])),
            ..ListContainersOptions::default()
        };
        let mut listed = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(|err| self.error("list containers", err))?;
        listed.sort_by_key(|summary| summary.created.unwrap_or(0));
        Ok(listed.iter().map(read_summary).collect())
    }
}

/// Reads one listing entry (pure).
fn read_summary(summary: &bollard::models::ContainerSummary) -> OwnedContainer {
    let container_labels = summary.labels.clone().unwrap_or_default();
    let state = summary
        .state
        .map(|state| state.to_string())
        .unwrap_or_default();
    OwnedContainer {
        id: summary.id.clone().unwrap_or_default(),
        name: summary
            .names
            .iter()
            .flatten()
            .next()
            .map(|name| name.trim_start_matches('/').to_owned())
            .unwrap_or_default(),
        labels: InstanceLabels::from_map(&container_labels).ok(),
        image: summary
            .image_id
            .as_deref()
            .and_then(|id| ImageId::parse(id).ok()),
        running: state == "running",
        state,
        address: labels::port(&container_labels)
            .and_then(|port| address::from_summary(summary, port)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{ContainerSummary, ContainerSummaryStateEnum, PortSummary};

    #[test]
    fn a_listing_entry_reads_back_the_instance() {
        let instance = InstanceLabels {
            app: "shop".into(),
            release: 2,
            process: "web".into(),
            instance: "shop-v2-web-9".into(),
        };
        let summary = ContainerSummary {
            id: Some("abc".into()),
            names: Some(vec!["/slipway-shop-v2-web-9".into()]),
            image_id: Some(format!("sha256:{}", "e".repeat(64))),
            labels: Some(instance.to_map("d1", Some(8080))),
            state: Some(ContainerSummaryStateEnum::RUNNING),
            ports: Some(vec![PortSummary {
                ip: Some("127.0.0.1".into()),
                private_port: 8080,
                public_port: Some(40123),
                typ: None,
            }]),
            ..ContainerSummary::default()
        };
        let owned = read_summary(&summary);
        assert_eq!(owned.name, "slipway-shop-v2-web-9");
        assert_eq!(owned.labels, Some(instance));
        assert!(owned.running);
        assert_eq!(owned.address, Some("127.0.0.1:40123".parse().unwrap()));
        assert!(owned.image.is_some());

        let stranger = ContainerSummary {
            labels: Some([("slipway.owner".to_owned(), "d1".to_owned())].into()),
            state: Some(ContainerSummaryStateEnum::EXITED),
            ..ContainerSummary::default()
        };
        let stranger = read_summary(&stranger);
        assert_eq!(stranger.labels, None);
        assert!(!stranger.running);
        assert_eq!(stranger.state, "exited");
    }
}
