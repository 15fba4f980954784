//! System users and groups by name and id, from /etc/passwd and /etc/group:
//! who owns the config, who the daemon runs as, and whether the package's
//! group exists. The package's user and group are local (adduser
//! --system), so the files are enough and no NSS library is linked.

use std::path::Path;

/// The user and group the Debian package creates for the daemon.
pub const DAEMON_USER: &str = "piwigo-s3upload";

/// A name to id (or id to name) look-up in a colon-separated database.
fn lookup(file: &str, by: impl Fn(&[&str]) -> bool) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 3 && by(f))
        .map(|f| f.iter().map(|s| (*s).to_owned()).collect())
}

/// The id of a group.
pub fn group_id(name: &str) -> Option<u32> {
    lookup("/etc/group", |f| f[0] == name)?.get(2)?.parse().ok()
}

/// Whether `user` is in group `gid`, as its primary group or a member.
pub fn in_group(user: &str, gid: u32) -> bool {
    let primary = lookup("/etc/passwd", |f| f[0] == user)
        .and_then(|f| f.get(3).and_then(|g| g.parse::<u32>().ok()));
    primary == Some(gid)
        || lookup("/etc/group", |f| f[2] == gid.to_string())
            .and_then(|f| f.get(3).cloned())
            .is_some_and(|members| members.split(',').any(|m| m == user))
}

/// Whether a user of this name exists.
pub fn user_exists(name: &str) -> bool {
    lookup("/etc/passwd", |f| f[0] == name).is_some()
}

/// A user id's name, or the number when it has none.
pub fn user_name(uid: u32) -> String {
    lookup("/etc/passwd", |f| f[2] == uid.to_string())
        .map(|f| f[0].clone())
        .unwrap_or_else(|| uid.to_string())
}

/// A group id's name, or the number when it has none.
pub fn group_name(gid: u32) -> String {
    lookup("/etc/group", |f| f[2] == gid.to_string())
        .map(|f| f[0].clone())
        .unwrap_or_else(|| gid.to_string())
}

/// The user this process runs as.
pub fn current_user() -> String {
    user_name(rustix::process::geteuid().as_raw())
}

/// `mode 0640, owner root:piwigo-s3upload` for a file, or nothing when
/// it cannot even be looked at.
pub fn describe_file(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some(format!(
        "mode {:04o}, owner {}:{}",
        m.mode() & 0o7777,
        user_name(m.uid()),
        group_name(m.gid())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_found_both_ways() {
        assert_eq!(user_name(0), "root");
        assert_eq!(group_name(0), "root");
        assert_eq!(group_id("root"), Some(0));
        assert_eq!(group_id("no-such-group-here"), None);
        assert_eq!(user_name(4_000_000_000), "4000000000");
    }
}
