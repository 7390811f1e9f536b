//! A controller's own pod says whether it leads (`serve --lease --pod NAME`): the label
//! `slipway.dev/role` is `leader` or `standby`. `slipway kube install`'s Services select `leader`,
//! so its API and its proxy reach the controller that leads: a standby's pod is Ready too (it
//! listens, and its API answers 503 naming the leader), and selecting by readiness alone would send
//! every other connection to it.

use crate::names::ROLE;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{Patch, PatchParams};

/// What the label says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Leader,
    Standby,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Leader => "leader",
            Role::Standby => "standby",
        }
    }
}

/// The pod this controller runs in.
pub struct OwnPod {
    api: Api<Pod>,
    name: String,
}

impl OwnPod {
    pub async fn connect(namespace: Option<String>, name: &str) -> Result<OwnPod, String> {
        let (client, namespace) = crate::client(namespace).await?;
        Ok(OwnPod {
            api: Api::namespaced(client, &namespace),
            name: name.to_owned(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sets the label (a merge patch of that one label: nothing else of the pod is touched).
    pub async fn mark(&self, role: Role) -> Result<(), String> {
        let patch = serde_json::json!({ "metadata": { "labels": { ROLE: role.as_str() } } });
        self.api
            .patch(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map(|_| ())
            .map_err(|e| {
                format!(
                    "cannot label the pod {} {ROLE}={}: {e}",
                    self.name,
                    role.as_str()
                )
            })
    }
}
