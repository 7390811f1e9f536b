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
    /// Set once, by the first successful connection; read without waiting.
    engine: Arc<std::sync::OnceLock<Engine>>,
    /// Serialises connection attempts, so callers arriving together connect once.
    connecting: Arc<tokio::sync::Mutex<()>>,
}

impl Connector {
    pub fn new(config: EngineConfig) -> Connector {
        Connector {
            config,
            engine: Arc::default(),
            connecting: Arc::default(),
        }
    }

    /// The connected engine, connecting now if no earlier call did (within the connect timeout).
    pub async fn engine(&self) -> Result<Engine, DockerError> {
        if let Some(engine) = self.engine.get() {
            return Ok(engine.clone());
        }
        let _connecting = self.connecting.lock().await;
        if let Some(engine) = self.engine.get() {
            return Ok(engine.clone());
        }
        let connected = Engine::connect(self.config.clone()).await?;
        Ok(self.engine.get_or_init(|| connected).clone())
    }

    /// The engine if a call already connected it; never connects, never waits.
    pub fn connected(&self) -> Option<Engine> {
        self.engine.get().cloned()
    }

    pub fn owner(&self) -> &str {
        &self.config.owner
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }
}
