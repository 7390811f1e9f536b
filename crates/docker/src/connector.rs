//! The engine, connected on first use. A daemon whose apps run no image never needs an engine, and
//! one that is down when the daemon starts may be up by the time a deploy asks for it: so nothing
//! connects at start-up, a failed connection is not remembered, and each caller gets the prompt
//! [`DockerError::EngineUnreachable`] instead of a hang.

use crate::engine::{Engine, EngineConfig};
use crate::error::DockerError;
use std::sync::Arc;

#[derive(Clone)]
pub struct Connector {
    config: EngineConfig,
    engine: Arc<tokio::sync::Mutex<Option<Engine>>>,
}

impl Connector {
    pub fn new(config: EngineConfig) -> Connector {
        Connector {
            config,
            engine: Arc::new(tokio::sync::Mutex::new(None)),
        }
    }

    /// The connected engine, connecting now if no earlier call did (within the connect timeout).
    pub async fn engine(&self) -> Result<Engine, DockerError> {
        let mut engine = self.engine.lock().await;
        if let Some(engine) = engine.as_ref() {
            return Ok(engine.clone());
        }
        let connected = Engine::connect(self.config.clone()).await?;
        *engine = Some(connected.clone());
        Ok(connected)
    }

    /// The engine if a call already connected it; never connects.
    pub fn connected(&self) -> Option<Engine> {
        self.engine
            .try_lock()
            .ok()
            .and_then(|engine| engine.clone())
    }

    pub fn owner(&self) -> &str {
        &self.config.owner
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }
}
