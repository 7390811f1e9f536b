//! Start-up check: nobody but the daemon's own user may be able to change its state. Whoever can write
//! the state dir or its database decides what runs (releases, tokens, the socket), so `serve` refuses a
//! state dir or database that is world-writable, or group-writable while owned by another user, and
//! says which `chmod` fixes it. (A group-writable dir the daemon's user owns is narrowed to 0700 at
//! start, as every state dir is.) The judgement is pure; [`check`] reads the files.

use crate::paths::Paths;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
}

/// Why `path` (with this mode and owner) must not be used by a daemon running as `me`, and the fix.
pub fn judge(path: &Path, kind: Kind, mode: u32, owner: u32, me: u32) -> Option<String> {
    let (what, fix) = match kind {
        Kind::Dir => ("the state dir", "chmod 700"),
        Kind::File => ("the state database", "chmod 600"),
    };
    let shown = shell_quote(&path.display().to_string());
    let perms = mode & 0o7777;
    let problem = if mode & 0o002 != 0 {
        "is world-writable".to_string()
    } else if mode & 0o020 != 0 && owner != me {
        format!("is group-writable and owned by uid {owner}, not by uid {me} that runs slipway")
    } else {
        return None;
    };
    Some(format!(
        "refusing to start: {what} {shown} {problem} (mode {perms:04o}), so another user could change \
         what slipway runs; fix it with `{fix} {shown}`{}",
        if owner != me {
            format!(" (and `chown {me} {shown}`)")
        } else {
            String::new()
        }
    ))
}

/// The state dir (if it exists yet) and its database files, as they are on disk.
pub fn check(paths: &Paths) -> anyhow::Result<()> {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    let me = unsafe { libc::geteuid() };
    let db = paths.db();
    let wal = db.with_extension("db-wal");
    let shm = db.with_extension("db-shm");
    let files = [
        (paths.root.as_path(), Kind::Dir),
        (db.as_path(), Kind::File),
        (wal.as_path(), Kind::File),
        (shm.as_path(), Kind::File),
    ];
    for (path, kind) in files {
        let Ok(meta) = std::fs::metadata(path) else {
            continue;
        };
        if let Some(refusal) = judge(path, kind, meta.mode(), meta.uid(), me) {
            anyhow::bail!(refusal);
        }
    }
    Ok(())
}

/// `path` as it can be pasted into a shell.
fn shell_quote(text: &str) -> String {
    let plain = text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-+:@%,".contains(&b));
    if plain && !text.is_empty() {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: u32 = 1000;

    fn judged(kind: Kind, mode: u32, owner: u32) -> Option<String> {
        judge(Path::new("/srv/slipway"), kind, mode, owner, ME)
    }

    #[test]
    fn world_writable_is_refused_whoever_owns_it() {
        for owner in [ME, 0, 4242] {
            let why = judged(Kind::Dir, 0o40777, owner).unwrap();
            assert!(why.contains("/srv/slipway is world-writable"), "{why}");
            assert!(why.contains("chmod 700 /srv/slipway"), "{why}");
        }
        let why = judged(Kind::File, 0o100666, ME).unwrap();
        assert!(
            why.contains("state database") && why.contains("chmod 600 /srv/slipway"),
            "{why}"
        );
        assert!(!why.contains("chown"), "{why}");
        // The sticky bit does not make a world-writable dir safe for the daemon's own files.
        assert!(judged(Kind::Dir, 0o41777, ME).is_some());
    }

    #[test]
    fn group_writable_is_refused_only_when_another_user_owns_it() {
        let why = judged(Kind::Dir, 0o40770, 4242).unwrap();
        assert!(
            why.contains("group-writable and owned by uid 4242, not by uid 1000"),
            "{why}"
        );
        assert!(why.contains("chown 1000 /srv/slipway"), "{why}");
        assert_eq!(judged(Kind::Dir, 0o40770, ME), None);
        assert_eq!(judged(Kind::File, 0o100660, ME), None);
    }

    #[test]
    fn private_and_read_only_modes_pass() {
        for mode in [0o40700, 0o40755, 0o40750, 0o40500] {
            assert_eq!(judged(Kind::Dir, mode, ME), None, "{mode:o}");
        }
        assert_eq!(judged(Kind::File, 0o100644, ME), None);
    }

    #[test]
    fn paths_are_quoted_for_the_shell() {
        assert_eq!(shell_quote("/srv/slip-way_1.0"), "/srv/slip-way_1.0");
        assert_eq!(shell_quote("/tmp/my state"), "'/tmp/my state'");
        assert_eq!(shell_quote("/tmp/it's"), r"'/tmp/it'\''s'");
    }
}
