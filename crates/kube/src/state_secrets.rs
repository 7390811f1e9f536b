//! The IO of the controller's state in the cluster: writes a snapshot as `state_chunks.rs` lays it
//! out (the free slot's chunk Secrets, then the manifest, conditionally), and reads the last one back.
//! Nothing here logs or returns a Secret's bytes.

use crate::state_chunks::{self, CHUNK_KEY, Manifest, Slot};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::PostParams;
use std::collections::BTreeMap;

/// The state Secrets of one controller (named after its Lease).
pub struct StateSecrets {
    api: Api<Secret>,
    base: String,
    /// The manifest as last read or written: its slot, and the resourceVersion the next write needs.
    last: Option<(Slot, String)>,
}

impl StateSecrets {
    pub async fn connect(namespace: Option<String>, base: &str) -> Result<StateSecrets, String> {
        let (client, namespace) = crate::client(namespace).await?;
        Ok(StateSecrets {
            api: Api::namespaced(client, &namespace),
            base: base.to_owned(),
            last: None,
        })
    }

    /// The last complete snapshot written, if any. Also what the next `write` is conditional on.
    pub async fn read(&mut self) -> Result<Option<Vec<u8>>, String> {
        let Some(manifest) = self.follow().await? else {
            return Ok(None);
        };
        let mut chunks = Vec::with_capacity(manifest.chunks);
        for index in 0..manifest.chunks {
            let chunk = state_chunks::chunk_name(&self.base, manifest.slot, index);
            let secret = self
                .get(&chunk)
                .await?
                .ok_or_else(|| format!("the state Secret {chunk} is missing"))?;
            chunks.push(data_of(&secret).remove(CHUNK_KEY).unwrap_or_default());
        }
        Ok(Some(manifest.join(&chunks)?))
    }

    /// Reads only the manifest (`None`: no state yet), and takes it as what the next `write` is
    /// conditional on: alone, for a controller whose state dir already holds the state (an
    /// upgrade's, after the old daemon's last copy).
    pub async fn follow(&mut self) -> Result<Option<Manifest>, String> {
        let name = state_chunks::manifest_name(&self.base);
        let Some(secret) = self.get(&name).await? else {
            self.last = None;
            return Ok(None);
        };
        let manifest = Manifest::from_data(&data_of(&secret))?;
        self.last = Some((manifest.slot, resource_version(&secret)));
        Ok(Some(manifest))
    }

    /// Writes `snapshot` to the slot the manifest does not name, then points the manifest at it —
    /// refused (409) if another controller wrote the manifest since this one last did.
    pub async fn write(&mut self, snapshot: &[u8]) -> Result<(), String> {
        let slot = self.last.as_ref().map_or(Slot::A, |(slot, _)| slot.other());
        let (manifest, stored) = Manifest::pack(snapshot, slot)?;
        for (index, chunk) in state_chunks::split(&stored).into_iter().enumerate() {
            let name = state_chunks::chunk_name(&self.base, slot, index);
            let data = BTreeMap::from([(CHUNK_KEY.to_owned(), chunk.to_vec())]);
            self.put(&name, data, None).await?;
        }
        let name = state_chunks::manifest_name(&self.base);
        let version = self.last.as_ref().map(|(_, version)| version.clone());
        let written = self.put(&name, manifest.to_data(), Some(version)).await?;
        self.last = Some((slot, resource_version(&written)));
        Ok(())
    }

    async fn get(&self, name: &str) -> Result<Option<Secret>, String> {
        self.api
            .get_opt(name)
            .await
            .map_err(|e| format!("cannot read the state Secret {name}: {e}"))
    }

    /// Creates or replaces `name`. `expect`: `Some(None)` = it must not exist yet, `Some(Some(v))`
    /// = it must still be at version `v`; `None` = whatever is there (a chunk: one unconditional
    /// replace, and a create only the first time a slot has that many chunks).
    async fn put(
        &self,
        name: &str,
        data: BTreeMap<String, Vec<u8>>,
        expect: Option<Option<String>>,
    ) -> Result<Secret, String> {
        let mut secret = Secret {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                labels: Some(BTreeMap::from([(
                    "app.kubernetes.io/managed-by".to_owned(),
                    "slipway".to_owned(),
                )])),
                ..ObjectMeta::default()
            },
            data: Some(data.into_iter().map(|(k, v)| (k, ByteString(v))).collect()),
            type_: Some("Opaque".to_owned()),
            ..Secret::default()
        };
        let version = match expect {
            Some(version) => version,
            None => match self
                .api
                .replace(name, &PostParams::default(), &secret)
                .await
            {
                Err(kube::Error::Api(status)) if status.is_not_found() => None,
                written => return written.map_err(|e| write_error(name, e)),
            },
        };
        let written = match version {
            Some(version) => {
                secret.metadata.resource_version = Some(version);
                self.api
                    .replace(name, &PostParams::default(), &secret)
                    .await
            }
            None => self.api.create(&PostParams::default(), &secret).await,
        };
        written.map_err(|e| write_error(name, e))
    }
}

fn write_error(name: &str, e: kube::Error) -> String {
    match e {
        kube::Error::Api(status) if status.is_conflict() || status.is_already_exists() => {
            format!("another controller wrote the state Secret {name}: this one no longer leads")
        }
        kube::Error::Api(status) => {
            format!("cannot write the state Secret {name}: {}", status.message)
        }
        _ => format!("cannot write the state Secret {name}: {e}"),
    }
}

fn data_of(secret: &Secret) -> BTreeMap<String, Vec<u8>> {
    secret
        .data
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect()
}

fn resource_version(secret: &Secret) -> String {
    secret.metadata.resource_version.clone().unwrap_or_default()
}
