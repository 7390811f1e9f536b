//! Lets go of the binary's code pages that only start-up and deploys touched.
//!
//! Most of an idle daemon's resident memory is not heap but its own executable: 10.8 of 15.6 MB at
//! start (`bench/footprint.sh`). The kernel maps code in 64 KB windows around every page a fault
//! touches, so start-up (argument parsing, migrations, adoption) and a deploy (config, artifacts,
//! the store) leave most of the text mapped, though the idle loops use a small part of it. After
//! start-up and after each rollout, `MADV_DONTNEED` on the binary's read-only mappings unmaps those
//! pages; they stay in the page cache, and whatever runs next maps its own pages back on first use.
//!
//! Only mappings that are exactly the file's content qualify: not writable, and without a single
//! page of their own (smaps' `Anonymous: 0 kB`) — the relocated RELRO segment is private memory and
//! is never touched.

/// One mapping of the running executable that may be unmapped and faulted back from the file.
#[derive(Debug, PartialEq, Eq)]
struct Mapping {
    start: usize,
    end: usize,
}

/// The executable's mappings in `/proc/self/smaps` text that hold only the file's own pages.
fn file_only_mappings(smaps: &str, exe: &str) -> Vec<Mapping> {
    let mut found = Vec::new();
    let mut current: Option<Mapping> = None;
    for line in smaps.lines() {
        if let Some(anonymous) = line.strip_prefix("Anonymous:") {
            let untouched = anonymous.trim() == "0 kB";
            if let Some(mapping) = current.take()
                && untouched
            {
                found.push(mapping);
            }
            continue;
        }
        let mut fields = line.split_whitespace();
        let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
            continue;
        };
        let Some((start, end)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (
            usize::from_str_radix(start, 16),
            usize::from_str_radix(end, 16),
        ) else {
            continue; // a "Key: value" line, not a mapping's header
        };
        // offset, device, inode, then the path (which may hold spaces, or end in " (deleted)" after
        // an upgrade replaced the file: the mapped inode is still the one this process runs).
        let path = fields.skip(3).collect::<Vec<_>>().join(" ");
        let path = path.strip_suffix(" (deleted)").unwrap_or(&path);
        let private_read_only = perms.as_bytes().get(1) == Some(&b'-') && perms.ends_with('p');
        current = (private_read_only && path == exe).then_some(Mapping { start, end });
    }
    found
}

/// Unmaps the executable's file-only pages; they fault back in from the page cache when used.
pub fn release_unused() {
    #[cfg(target_os = "linux")]
    {
        let Ok(exe) = std::fs::read_link("/proc/self/exe") else {
            return;
        };
        let exe = exe.to_string_lossy();
        let exe = exe.strip_suffix(" (deleted)").unwrap_or(&exe);
        let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
            return;
        };
        for mapping in file_only_mappings(&smaps, exe) {
            // SAFETY: the range is a whole mapping of the executable that is neither writable nor
            // holds a page of its own (checked above; a read-only mapping cannot gain one), so
            // every page dropped here reads back from the file with the same bytes.
            unsafe {
                libc::madvise(
                    mapping.start as *mut libc::c_void,
                    mapping.end - mapping.start,
                    libc::MADV_DONTNEED,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
55b06d659000-55b06d9fb000 r--p 00000000 fe:00 9978213                    /usr/bin/slipway
Rss:                1216 kB
Anonymous:             0 kB
55b06d9fb000-55b06ebaa000 r-xp 003a1000 fe:00 9978213                    /usr/bin/slipway
Rss:               10788 kB
Anonymous:             0 kB
55b06ebaa000-55b06ebf7000 r--p 0154f000 fe:00 9978213                    /usr/bin/slipway
Rss:                 308 kB
Anonymous:           308 kB
55b06ebf7000-55b06ebff000 rw-p 0159b000 fe:00 9978213                    /usr/bin/slipway
Anonymous:            32 kB
7f0000000000-7f0000010000 r-xp 00000000 fe:00 1234                       /usr/lib/libc.so.6
Anonymous:             0 kB
7f0000020000-7f0000030000 r--s 00000000 fe:00 99                         /usr/bin/slipway
Anonymous:             0 kB
";

    #[test]
    fn only_the_executables_unmodified_read_only_private_mappings_qualify() {
        assert_eq!(
            file_only_mappings(SMAPS, "/usr/bin/slipway"),
            vec![
                Mapping {
                    start: 0x55b06d659000,
                    end: 0x55b06d9fb000
                },
                Mapping {
                    start: 0x55b06d9fb000,
                    end: 0x55b06ebaa000
                },
            ]
        );
    }

    #[test]
    fn a_replaced_executable_is_still_the_one_mapped() {
        let smaps = "\
55b06d9fb000-55b06ebaa000 r-xp 003a1000 fe:00 9978213     /usr/bin/slipway (deleted)
Anonymous:             0 kB
";
        assert_eq!(file_only_mappings(smaps, "/usr/bin/slipway").len(), 1);
        assert!(file_only_mappings(smaps, "/usr/bin/other").is_empty());
    }

    #[test]
    fn paths_with_spaces_are_whole() {
        let smaps = "\
1000-2000 r-xp 00000000 fe:00 1     /opt/my apps/slipway
Anonymous:             0 kB
";
        assert_eq!(file_only_mappings(smaps, "/opt/my apps/slipway").len(), 1);
    }

    #[test]
    fn releasing_in_this_process_keeps_it_running() {
        release_unused();
        // The code that runs next (this test's, the harness's) faults back in from the file.
        assert_eq!(format!("{}", 6 * 7), "42");
    }
}
