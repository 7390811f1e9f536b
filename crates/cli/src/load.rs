//! A small, bounded HTTP load loop for `slipway demo`: a few keep-alive clients asking `/` over and
//! over, counting answers by the version that served them, the demo app's own injected errors, and
//! every other failure (a connection error or any other non-2xx).

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default, Debug, Clone)]
pub struct Tally {
    pub ok_by_version: BTreeMap<String, u64>,
    /// 500s the demo app answered on purpose (`DEMO_ERROR_RATE`): what a bad release does to users.
    pub injected: u64,
    pub failed: u64,
    pub first_failure: Option<String>,
}

impl Tally {
    pub fn total(&self) -> u64 {
        self.ok_by_version.values().sum::<u64>() + self.injected + self.failed
    }
}

pub struct Load {
    stop: Arc<AtomicBool>,
    tally: Arc<Mutex<Tally>>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    pub fn start(addr: SocketAddr, clients: usize, pause: Duration) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let tally = Arc::new(Mutex::new(Tally::default()));
        let workers = (0..clients)
            .map(|_| tokio::spawn(worker(addr, pause, stop.clone(), tally.clone())))
            .collect();
        Load {
            stop,
            tally,
            workers,
        }
    }

    pub fn snapshot(&self) -> Tally {
        self.tally.lock().map(|t| t.clone()).unwrap_or_default()
    }

    pub async fn finish(self) -> Tally {
        self.stop.store(true, Ordering::Relaxed);
        let tally = self.tally.clone();
        for w in self.workers {
            let _ = w.await;
        }
        tally.lock().map(|t| t.clone()).unwrap_or_default()
    }
}

async fn worker(
    addr: SocketAddr,
    pause: Duration,
    stop: Arc<AtomicBool>,
    tally: Arc<Mutex<Tally>>,
) {
    let mut sender = None;
    while !stop.load(Ordering::Relaxed) {
        if sender.is_none() {
            sender = connect(addr).await;
        }
        let result = match sender.as_mut() {
            Some(s) => get(s, addr).await,
            None => Err("cannot connect".to_string()),
        };
        if result.is_err() {
            sender = None;
        }
        if let Ok(mut t) = tally.lock() {
            match result {
                Ok(version) => *t.ok_by_version.entry(version).or_default() += 1,
                Err(e) if e.contains(slipway_demo_app::INJECTED_ERROR) => t.injected += 1,
                Err(e) => {
                    t.failed += 1;
                    t.first_failure.get_or_insert(e);
                }
            }
        }
        tokio::time::sleep(pause).await;
    }
}

type Sender = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;

async fn connect(addr: SocketAddr) -> Option<Sender> {
    let stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Some(sender)
}

async fn get(sender: &mut Sender, addr: SocketAddr) -> Result<String, String> {
    sender.ready().await.map_err(|e| e.to_string())?;
    let req = hyper::Request::get("/")
        .header("host", addr.to_string())
        .body(Empty::new())
        .map_err(|e| e.to_string())?;
    let res = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = res.status();
    let body = res
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    let text = String::from_utf8_lossy(&body);
    if !status.is_success() {
        return Err(format!("{status}: {}", text.trim()));
    }
    Ok(text.trim().rsplit(' ').next().unwrap_or("?").to_string())
}
