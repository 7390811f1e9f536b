//! Where an instance answers: its published port on 127.0.0.1, or its address on a named network.
//! Read back from the engine after start (the engine picked the port) and again at adoption.

use bollard::models::{ContainerSummary, NetworkSettings};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// From an inspected container: the 127.0.0.1 binding of `port/tcp`, else the container's address on
/// `network` (a named network) at `port`.
pub fn from_inspect(
    settings: Option<&NetworkSettings>,
    port: u16,
    network: Option<&str>,
) -> Option<SocketAddr> {
    let settings = settings?;
    if let Some(network) = network {
        let ip = settings
            .networks
            .as_ref()?
            .get(network)?
            .ip_address
            .as_deref()?;
        return ip
            .parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, port));
    }
    let bindings = settings
        .ports
        .as_ref()?
        .get(&format!("{port}/tcp"))?
        .as_ref()?;
    bindings.iter().find_map(|binding| {
        let ip: IpAddr = binding.host_ip.as_deref()?.parse().ok()?;
        let host_port: u16 = binding.host_port.as_deref()?.parse().ok()?;
        // We only ever publish on loopback; anything else was not made by us.
        (ip == IpAddr::V4(Ipv4Addr::LOCALHOST)).then(|| SocketAddr::new(ip, host_port))
    })
}

/// From a container listing: the 127.0.0.1 mapping of `port`, else its address on its only network
/// other than the default bridge.
pub fn from_summary(summary: &ContainerSummary, port: u16) -> Option<SocketAddr> {
    let published = summary.ports.iter().flatten().find_map(|mapping| {
        let ip: IpAddr = mapping.ip.as_deref()?.parse().ok()?;
        let public = mapping.public_port?;
        (mapping.private_port == port && ip == IpAddr::V4(Ipv4Addr::LOCALHOST))
            .then(|| SocketAddr::new(ip, public))
    });
    published.or_else(|| {
        let networks = summary.network_settings.as_ref()?.networks.as_ref()?;
        let mut named = networks
            .iter()
            .filter(|(name, _)| name.as_str() != "bridge");
        let (_, endpoint) = named.next()?;
        let ip: IpAddr = endpoint.ip_address.as_deref()?.parse().ok()?;
        Some(SocketAddr::new(ip, port))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{
        ContainerSummaryNetworkSettings, EndpointSettings, PortBinding, PortSummary,
    };
    use std::collections::HashMap;

    #[test]
    fn the_loopback_binding_is_the_address() {
        let settings = NetworkSettings {
            ports: Some(HashMap::from([(
                "8080/tcp".to_owned(),
                Some(vec![
                    PortBinding {
                        host_ip: Some("0.0.0.0".into()),
                        host_port: Some("1".into()),
                    },
                    PortBinding {
                        host_ip: Some("127.0.0.1".into()),
                        host_port: Some("32768".into()),
                    },
                ]),
            )])),
            ..NetworkSettings::default()
        };
        assert_eq!(
            from_inspect(Some(&settings), 8080, None),
            Some("127.0.0.1:32768".parse().unwrap())
        );
        assert_eq!(from_inspect(Some(&settings), 9090, None), None);
        assert_eq!(from_inspect(None, 8080, None), None);
    }

    fn on_network(name: &str, ip: &str) -> HashMap<String, EndpointSettings> {
        HashMap::from([(
            name.to_owned(),
            EndpointSettings {
                ip_address: Some(ip.into()),
                ..EndpointSettings::default()
            },
        )])
    }

    #[test]
    fn a_named_network_gives_the_container_address() {
        let settings = NetworkSettings {
            networks: Some(on_network("backend", "10.9.0.5")),
            ..NetworkSettings::default()
        };
        assert_eq!(
            from_inspect(Some(&settings), 8080, Some("backend")),
            Some("10.9.0.5:8080".parse().unwrap())
        );
        assert_eq!(from_inspect(Some(&settings), 8080, Some("other")), None);
    }

    #[test]
    fn listings_give_the_same_addresses() {
        let published = ContainerSummary {
            ports: Some(vec![PortSummary {
                ip: Some("127.0.0.1".into()),
                private_port: 8080,
                public_port: Some(40001),
                typ: None,
            }]),
            network_settings: Some(ContainerSummaryNetworkSettings {
                networks: Some(on_network("bridge", "172.17.0.2")),
            }),
            ..ContainerSummary::default()
        };
        assert_eq!(
            from_summary(&published, 8080),
            Some("127.0.0.1:40001".parse().unwrap())
        );
        let named = ContainerSummary {
            network_settings: Some(ContainerSummaryNetworkSettings {
                networks: Some(on_network("backend", "10.9.0.5")),
            }),
            ..ContainerSummary::default()
        };
        assert_eq!(
            from_summary(&named, 8080),
            Some("10.9.0.5:8080".parse().unwrap())
        );
    }
}
