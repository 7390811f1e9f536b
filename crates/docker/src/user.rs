//! Which uid/gid a container runs as, so its secret files can be given to it (mode 0400 means only
//! their owner reads them). Docker's rules: `USER` is `user[:group]`, each a number or a name looked up
//! in the image's `/etc/passwd` and `/etc/group`; no group means the user's primary group, or 0.

/// Uid and gid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ids {
    pub uid: u32,
    pub gid: u32,
}

/// Whether resolving `user` needs the image's `/etc/passwd` (a name is used, or a numeric user
/// without a group, whose primary group lives there).
pub fn needs_passwd(user: &str) -> bool {
    let (name, group) = split(user);
    name.parse::<u32>().is_err() || group.is_none_or(|g| g.parse::<u32>().is_err())
}

/// Resolves an image or spec user. `passwd`/`group` are the image's files, if it has them.
pub fn resolve(user: &str, passwd: Option<&str>, group: Option<&str>) -> Result<Ids, String> {
    let (name, group_name) = split(user);
    if (name.is_empty() || name == "root") && group_name.is_none() {
        return Ok(Ids { uid: 0, gid: 0 });
    }
    let entry = passwd.and_then(|text| find_user(text, name));
    let uid = match name.parse::<u32>() {
        Ok(uid) => uid,
        Err(_) if name.is_empty() => 0,
        Err(_) => match entry {
            Some((uid, _)) => uid,
            None => {
                return Err(format!(
                    "user {name:?} is not in the image's /etc/passwd; use a numeric uid"
                ));
            }
        },
    };
    let gid = match group_name {
        None => entry.map_or(0, |(_, gid)| gid),
        Some(group_name) => match group_name.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => group
                .and_then(|text| find_group(text, group_name))
                .ok_or_else(|| {
                    format!(
                        "group {group_name:?} is not in the image's /etc/group; use a numeric gid"
                    )
                })?,
        },
    };
    Ok(Ids { uid, gid })
}

fn split(user: &str) -> (&str, Option<&str>) {
    match user.trim().split_once(':') {
        Some((name, group)) => (name, Some(group)),
        None => (user.trim(), None),
    }
}

/// `name:x:uid:gid:...` lines; a numeric `name` matches the uid column.
fn find_user(passwd: &str, name: &str) -> Option<(u32, u32)> {
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        let uid: u32 = fields.get(2)?.parse().ok()?;
        let gid: u32 = fields.get(3)?.parse().ok()?;
        (fields[0] == name || name.parse::<u32>() == Ok(uid)).then_some((uid, gid))
    })
}

fn find_group(group: &str, name: &str) -> Option<u32> {
    group.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        let gid: u32 = fields.get(2)?.parse().ok()?;
        (fields[0] == name).then_some(gid)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str =
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/sbin/nologin\n";
    const GROUP: &str = "root:x:0:\nstaff:x:50:\napp:x:1001:\n";

    #[test]
    fn numbers_need_no_files() {
        assert_eq!(
            resolve("1000:1000", None, None),
            Ok(Ids {
                uid: 1000,
                gid: 1000
            })
        );
        assert!(!needs_passwd("1000:1000"));
        assert_eq!(resolve("", None, None), Ok(Ids { uid: 0, gid: 0 }));
        assert_eq!(resolve("root", None, None), Ok(Ids { uid: 0, gid: 0 }));
        // A uid alone: primary group from passwd when the image has one, else 0.
        assert!(needs_passwd("1000"));
        assert_eq!(resolve("1000", None, None), Ok(Ids { uid: 1000, gid: 0 }));
        assert_eq!(
            resolve("1000", Some(PASSWD), None),
            Ok(Ids {
                uid: 1000,
                gid: 1001
            })
        );
    }

    #[test]
    fn names_are_looked_up_in_the_image() {
        assert!(needs_passwd("app"));
        assert_eq!(
            resolve("app", Some(PASSWD), Some(GROUP)),
            Ok(Ids {
                uid: 1000,
                gid: 1001
            })
        );
        assert_eq!(
            resolve("app:staff", Some(PASSWD), Some(GROUP)),
            Ok(Ids { uid: 1000, gid: 50 })
        );
        let err = resolve("nobody2", Some(PASSWD), None).unwrap_err();
        assert!(err.contains("numeric uid"), "{err}");
        assert!(resolve("app:wheel", Some(PASSWD), Some(GROUP)).is_err());
        assert!(
            resolve("app", None, None).is_err(),
            "no passwd in the image"
        );
    }
}
