//! Applying a flagd file to an app: `slipway flags import FILE`, and the app folder's `flags.json` on
//! every `slipway deploy` (GitOps). One change, audited flag by flag.
//!
//! Two things an operator did survive an import of the same file: a kill (an emergency stop must not
//! be undone by the next deploy; `flags enable` revives), and a running ramp whose flag the file still
//! defines as it was when the ramp began (redeploying unchanged code must not stop a ramp).

use super::{Edit, Flags, stored};
use crate::error::Error;
use slipway_flags::{Flag, FlagSet};
use std::path::Path;

/// The file an app folder may hold next to `slipway.toml`.
pub const APP_FILE: &str = "flags.json";

/// Reads and checks a flagd file; the error names the file and the problem.
pub fn read(text: &str, origin: &str) -> Result<FlagSet, Error> {
    FlagSet::from_flagd_json(text).map_err(|e| Error::bad_request(format!("{origin}: {e}")))
}

/// The app folder's `flags.json`, checked, if there is one.
pub fn app_file(config: &Path) -> Result<Option<(String, FlagSet)>, Error> {
    let path = config
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join(APP_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::bad_request(format!(
                "cannot read {}: {e}",
                path.display()
            )));
        }
    };
    let set = read(&text, &path.display().to_string())?;
    Ok(Some((text, set)))
}

impl Flags {
    /// `slipway deploy` with a `flags.json` in the app folder: one audited import, noted in the app's
    /// events when it changed anything.
    pub fn apply_on_deploy(
        &self,
        accepted: &slipway_api::DeployAccepted,
        file: &FlagSet,
        who: &str,
    ) -> Result<(), Error> {
        let edit = Edit {
            who: who.to_string(),
            action: "deploy".into(),
            reason: Some(format!("{APP_FILE} of v{}", accepted.release)),
            origin: super::Origin::Operator,
        };
        let done = self.import(&accepted.app, file, false, &edit)?;
        if !done.changed.is_empty() {
            let names: Vec<&str> = done.changed.iter().map(|c| c.flag.as_str()).collect();
            let message = format!(
                "{APP_FILE}: {} flag(s) changed: {}",
                names.len(),
                names.join(", ")
            );
            self.store
                .add_event(
                    &accepted.app,
                    Some(accepted.release),
                    "flags",
                    &message,
                    crate::clock::now_ms() as i64,
                )
                .map_err(|e| Error::internal(e.to_string()))?;
        }
        Ok(())
    }

    /// Makes the app's flags what `file` says (or, with `merge`, adds and replaces only what it says).
    pub fn import(
        &self,
        app: &str,
        file: &FlagSet,
        merge: bool,
        edit: &Edit,
    ) -> Result<slipway_api::flags::FlagChanges, Error> {
        let ramps = self
            .store
            .active_flag_ramps()
            .map_err(|e| Error::internal(e.to_string()))?;
        self.change(
            app,
            edit,
            |current| {
                let mut next = if merge {
                    let mut next =
                        stored::with_parts_of(current, file).map_err(Error::bad_request)?;
                    for (key, flag) in file.flags() {
                        next.insert(key, flag.clone())
                            .map_err(|e| Error::bad_request(e.to_string()))?;
                    }
                    next
                } else {
                    file.clone()
                };
                let keys: Vec<String> = next.flags().map(|(k, _)| k.to_string()).collect();
                for key in keys {
                    let Some(now) = current.get(&key) else {
                        continue;
                    };
                    let ramping = ramps.iter().find(|r| r.app == app && r.flag == key);
                    let unchanged_since_ramp = ramping.is_some_and(|r| {
                        stored::flag_from_text(&r.before).ok().as_ref() == next.get(&key)
                    });
                    if unchanged_since_ramp {
                        next.insert(&key, now.clone())
                            .map_err(|e| Error::bad_request(e.to_string()))?;
                    } else if now.killed {
                        next.update(&key, Flag::kill)
                            .map_err(|e| Error::bad_request(e.to_string()))?;
                    }
                }
                Ok(next)
            },
            |_| Ok(()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flags::Origin;
    use slipway_store::Store;
    use std::sync::Arc;

    fn edit(action: &str) -> Edit {
        Edit {
            who: "alice".into(),
            action: action.into(),
            reason: None,
            origin: Origin::Operator,
        }
    }

    #[test]
    fn an_import_keeps_kills_and_running_ramps_and_removes_what_the_file_lacks() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("s.db")).unwrap());
        let flags = Flags::load(store.clone()).unwrap();
        let file = read(
            r#"{"flags": {
                "a": {"variants": {"on": true, "off": false}, "defaultVariant": "off"},
                "b": {"variants": {"on": true, "off": false}, "defaultVariant": "off"},
                "c": {"variants": {"x": "x"}, "defaultVariant": "x"}}}"#,
            "test",
        )
        .unwrap();
        flags.import("shop", &file, false, &edit("import")).unwrap();
        flags
            .change(
                "shop",
                &edit("kill"),
                |set| {
                    let mut next = set.clone();
                    next.update("a", Flag::kill).unwrap();
                    Ok(next)
                },
                |_| Ok(()),
            )
            .unwrap();
        // "b" is ramping: its flag now has a split, and the ramp remembers it as it was.
        let before = stored::flag_text(file.get("b").unwrap());
        let ramped = slipway_flags::ramp::ramped(file.get("b").unwrap(), "on", 5);
        flags
            .change(
                "shop",
                &edit("ramp"),
                |set| {
                    let mut next = set.clone();
                    next.insert("b", ramped.clone()).unwrap();
                    Ok(next)
                },
                |tx| {
                    tx.start_flag_ramp("shop", "b", "on", "{}", &before, 1, "alice")
                        .map(|_| ())
                },
            )
            .unwrap();
        let same_minus_c = read(
            r#"{"flags": {
                "a": {"variants": {"on": true, "off": false}, "defaultVariant": "off"},
                "b": {"variants": {"on": true, "off": false}, "defaultVariant": "off"}}}"#,
            "test",
        )
        .unwrap();
        let done = flags
            .import("shop", &same_minus_c, false, &edit("deploy"))
            .unwrap();
        assert_eq!(done.changed.len(), 1, "only c goes: {:?}", done.changed);
        let served = flags.app("shop");
        assert!(served.set.get("a").unwrap().killed);
        assert_eq!(served.set.get("b").unwrap(), &ramped);
        assert!(served.set.get("c").is_none());
        assert!(store.active_flag_ramp("shop", "b").unwrap().is_some());
        // A file that changes the ramping flag wins, and stops the ramp.
        let changed = read(
            r#"{"flags": {"b": {"variants": {"on": true, "off": false}, "defaultVariant": "on"}}}"#,
            "test",
        )
        .unwrap();
        flags
            .import("shop", &changed, true, &edit("import"))
            .unwrap();
        assert_eq!(
            flags.app("shop").set.get("b").unwrap().default_variant,
            Some("on".into())
        );
        assert!(store.active_flag_ramp("shop", "b").unwrap().is_none());
        assert!(read("{", "flags.json").is_err());
    }
}
