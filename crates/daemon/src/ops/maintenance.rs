//! `slipway maintenance on|off`: an app's requests held at the proxy (up to `hold`, then its maintenance
//! page with `Retry-After`) while someone works on it by hand — a database migrated, a restore — and
//! released, in the order they arrived, when it ends. Recorded in the store first, so a restarted
//! daemon keeps the app in maintenance; an event says who did it and why.

use crate::clock::now_ms;
use crate::control::controller::Command;
use crate::error::Error;
use crate::ops::deploy::Deployer;
use slipway_api::MaintenanceRequest;
use slipway_store::MaintenanceRecord;

const DEFAULT_HOLD_SECONDS: u64 = 30;
const MAX_HOLD_SECONDS: u64 = 3600;
const DEFAULT_RETRY_AFTER: u64 = 60;
const MAX_PAGE_BYTES: usize = 256 * 1024;

impl Deployer {
    pub async fn maintenance_on(&self, app: &str, req: MaintenanceRequest) -> Result<(), Error> {
        self.known_app(app)?;
        let hold = req.hold_seconds.unwrap_or(DEFAULT_HOLD_SECONDS);
        if hold > MAX_HOLD_SECONDS {
            return Err(Error::bad_request(format!(
                "a hold of {hold}s is longer than the {MAX_HOLD_SECONDS}s a request may wait; hold for less (the page answers after it)"
            )));
        }
        if let Some(page) = &req.page
            && page.len() > MAX_PAGE_BYTES
        {
            return Err(Error::bad_request(format!(
                "the maintenance page is {} bytes; at most {MAX_PAGE_BYTES} (link big assets instead of inlining them)",
                page.len()
            )));
        }
        let record = MaintenanceRecord {
            app: app.to_string(),
            since: now_ms() as i64,
            hold_ms: hold * 1000,
            retry_after: req.retry_after_seconds.unwrap_or(DEFAULT_RETRY_AFTER),
            page: req.page,
            reason: req.reason.filter(|r| !r.trim().is_empty()),
            set_by: req.who,
        };
        self.store
            .set_maintenance(&record)
            .map_err(|e| Error::internal(e.to_string()))?;
        let why = record
            .reason
            .as_ref()
            .map_or_else(String::new, |r| format!(": {r}"));
        let message = format!(
            "maintenance on by {} (requests held up to {hold}s, then the maintenance page){why}",
            record.set_by
        );
        self.tell(app, Some(record)).await?;
        self.event(app, None, "maintenance_on", &message);
        Ok(())
    }

    /// Ends the app's maintenance: the held requests go on, in order. Says whether it was in maintenance.
    pub async fn maintenance_off(&self, app: &str, who: &str) -> Result<bool, Error> {
        self.known_app(app)?;
        let was = self
            .store
            .clear_maintenance(app)
            .map_err(|e| Error::internal(e.to_string()))?;
        self.tell(app, None).await?;
        if was {
            self.event(
                app,
                None,
                "maintenance_off",
                &format!("maintenance off by {who}"),
            );
        }
        Ok(was)
    }

    async fn tell(&self, app: &str, record: Option<MaintenanceRecord>) -> Result<(), Error> {
        let app = app.to_string();
        self.controller
            .ask(|reply| Command::Maintenance { app, record, reply })
            .await
    }

    fn known_app(&self, app: &str) -> Result<(), Error> {
        match self.stable_release(app)? {
            Some(_) => Ok(()),
            None => Err(Error::not_found(format!(
                "no app {app} is deployed (`slipway apps` lists them)"
            ))),
        }
    }
}
