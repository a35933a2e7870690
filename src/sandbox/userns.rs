//! Rootless mode: a kiln started by an unprivileged user re-executes itself in a
//! new user and mount namespace where it is root, the way `podman unshare` works.
//! Everything the engine does (extracting layers with their owners, overlay
//! mounts, the sandbox) then works as it does for real root.
//!
//! The handshake is the one of [`super::channel`]: the child unshares and asks
//! for its maps; the parent writes them — with `newuidmap` and `newgidmap`
//! over the user's /etc/subuid and /etc/subgid ranges when both exist, else a
//! map of the user alone — and then lets the child go on. Meanwhile and
//! afterwards the parent forwards signals to the child (see
//! [`super::signals`]), so that `kill` reaches a `kiln run`'s command.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::unistd::{Gid, Pid, Uid, User};

use super::channel::{self, ChannelError};
use super::signals;

const CHILD_ENV: &str = "_KILN_USERNS_CHILD";

/// Why kiln could not enter its user namespace.
#[derive(Debug, thiserror::Error)]
pub enum UsernsError {
    #[error("finding kiln's own binary")]
    Exe(#[source] std::io::Error),
    #[error("re-executing kiln in a user namespace")]
    Spawn(#[source] std::io::Error),
    #[error("the user namespace handshake")]
    Channel(#[source] ChannelError),
    #[error("creating a user namespace (are unprivileged user namespaces enabled?)")]
    Unshare(#[source] Errno),
    #[error("the parent kiln could not map ids into the user namespace")]
    NotMapped(#[source] ChannelError),
    #[error("the child kiln did not enter its user namespace")]
    ChildGone(#[source] ChannelError),
    #[error("running {0}")]
    Tool(PathBuf, #[source] std::io::Error),
    #[error("{0} failed: {1}")]
    ToolFailed(PathBuf, String),
    #[error("writing {0}")]
    WriteMap(PathBuf, #[source] std::io::Error),
    #[error("forwarding signals to kiln in the user namespace")]
    Signals(#[source] Errno),
    #[error("waiting for kiln")]
    Wait(#[source] std::io::Error),
}

type Result<T> = std::result::Result<T, UsernsError>;

/// Whether this process is the re-executed child (and must finish the handshake).
pub fn is_child() -> bool {
    std::env::var_os(CHILD_ENV).is_some()
}

/// Child side: enter the new namespaces and wait until the parent mapped us.
/// Must run before any thread starts: unshare(CLONE_NEWUSER) refuses threaded callers.
pub fn enter_as_child() -> Result<()> {
    std::env::remove_var(CHILD_ENV);
    // SAFETY: the parent handed us the channel on fd 3, and nothing here has touched it.
    let mut channel = unsafe { channel::Child::inherited() };
    nix::sched::unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS).map_err(UsernsError::Unshare)?;
    channel.request_mapping().map_err(UsernsError::Channel)?;
    let mapped = channel.wait_for_mapping().map_err(UsernsError::NotMapped);
    // fd 3 is closed before kiln goes on.
    drop(channel);
    mapped
}

/// Parent side: run this same command again inside a user namespace and return its exit code.
pub fn run_in_userns() -> Result<i32> {
    let exe = std::env::current_exe().map_err(UsernsError::Exe)?;
    let (mut parent, child_end) = channel::pair().map_err(UsernsError::Channel)?;
    let child_fd = child_end.raw_fd();
    let mut cmd = Command::new(exe);
    cmd.args(std::env::args_os().skip(1)).env(CHILD_ENV, "1");
    // SAFETY: only fcntl, dup2 and close_range (async-signal-safe) between fork and exec.
    unsafe {
        cmd.pre_exec(move || super::inherit_channel(child_fd));
    }
    let mut child = cmd.spawn().map_err(UsernsError::Spawn)?;
    drop(child_end);
    // A terminal's signals reach the child directly (same process group):
    // only those sent to this process alone (kill) are passed on.
    let _forwarding = match signals::install(true) {
        Ok(forwarding) => forwarding,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(UsernsError::Signals(e));
        }
    };
    signals::forward_to(Pid::from_raw(child.id() as i32));
    let mapped = match parent.wait_for_mapping_request() {
        Ok(()) => map_ids(child.id()),
        Err(e) => Err(UsernsError::ChildGone(e)),
    };
    if mapped.is_ok() {
        // A failure here is the child's to report: it sees the channel closed.
        let _ = parent.mapping_written();
    } else {
        drop(parent);
    }
    let status = child.wait().map_err(UsernsError::Wait)?;
    mapped?;
    Ok(super::started::exit_code(status))
}

fn map_ids(pid: u32) -> Result<()> {
    let uid = Uid::current();
    let gid = Gid::current();
    let name = User::from_uid(uid).ok().flatten().map(|u| u.name);
    let sub = |file: &str, id: u32| -> Option<(u64, u64)> {
        let text = fs::read_to_string(file).ok()?;
        text.lines().find_map(|l| {
            let f: Vec<&str> = l.trim().split(':').collect();
            let who = f.first()?;
            let mine = Some(who.to_string()) == name || who.parse::<u32>().ok() == Some(id);
            (mine && f.len() == 3).then(|| Some((f[1].parse().ok()?, f[2].parse().ok()?))).flatten()
        })
    };
    let ranges = (sub("/etc/subuid", uid.as_raw()), sub("/etc/subgid", gid.as_raw()));
    let tools = which("newuidmap").zip(which("newgidmap"));
    if let ((Some(su), Some(sg)), Some((newuidmap, newgidmap))) = (ranges, tools) {
        let run = |tool: &Path, id: u32, (start, count): (u64, u64)| -> Result<()> {
            let out = Command::new(tool)
                .args([
                    pid.to_string(),
                    "0".into(),
                    id.to_string(),
                    "1".into(),
                    "1".into(),
                    start.to_string(),
                    count.to_string(),
                ])
                .output()
                .map_err(|e| UsernsError::Tool(tool.to_owned(), e))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(UsernsError::ToolFailed(tool.to_owned(), String::from_utf8_lossy(&out.stderr).trim().to_owned()))
            }
        };
        run(&newuidmap, uid.as_raw(), su)?;
        return run(&newgidmap, gid.as_raw(), sg);
    }
    // No subordinate ids: the user alone becomes root. Files owned by other ids
    // cannot be created then: extraction fails naming the file and the id, and
    // a failed step says why (see `IdMapping::more_ids_hint`).
    let write = |file: &str, text: String| {
        let path = PathBuf::from(format!("/proc/{pid}/{file}"));
        fs::write(&path, text).map_err(|e| UsernsError::WriteMap(path, e))
    };
    write("setgroups", "deny".into())?;
    write("uid_map", format!("0 {} 1\n", uid.as_raw()))?;
    write("gid_map", format!("0 {} 1\n", gid.as_raw()))
}

/// `tool` in PATH or the usual system folders.
pub fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join(tool)).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(["/usr/bin", "/usr/sbin", "/bin"].map(|d| Path::new(d).join(tool)))
        .find(|p| p.is_file())
}

/// How the ids of kiln's process map to the host's (`/proc/self/uid_map`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdMapping {
    /// No user namespace of kiln's: every id is the host's own.
    Host,
    /// The user as root plus subordinate ids: ids `0..=max` inside.
    Range { max_uid: u64, max_gid: u64, host_uid: u32 },
    /// The user alone, as root: no other id exists.
    Single { host_uid: u32, host_gid: u32 },
}

/// `(inside, outside, count)` of each line of an id map.
fn map_lines(text: &str) -> Vec<(u64, u64, u64)> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<u64> = l.split_whitespace().filter_map(|x| x.parse().ok()).collect();
            (f.len() == 3).then(|| (f[0], f[1], f[2]))
        })
        .collect()
}

impl IdMapping {
    /// This process's mapping.
    pub fn current() -> Self {
        let read = |f: &str| map_lines(&fs::read_to_string(f).unwrap_or_default());
        Self::from_maps(&read("/proc/self/uid_map"), &read("/proc/self/gid_map"))
    }

    fn from_maps(uid: &[(u64, u64, u64)], gid: &[(u64, u64, u64)]) -> Self {
        let full = |m: &[(u64, u64, u64)]| m.iter().any(|&(i, o, c)| i == 0 && o == 0 && c >= u64::from(u32::MAX));
        if full(uid) || uid.is_empty() {
            return IdMapping::Host;
        }
        let count = |m: &[(u64, u64, u64)]| m.iter().map(|l| l.2).sum::<u64>();
        let host = |m: &[(u64, u64, u64)]| m.iter().find(|l| l.0 == 0).map_or(0, |l| l.1 as u32);
        if count(uid) <= 1 || count(gid) <= 1 {
            return IdMapping::Single { host_uid: host(uid), host_gid: host(gid) };
        }
        let max = |m: &[(u64, u64, u64)]| m.iter().map(|&(i, _, c)| i + c - 1).max().unwrap_or(0);
        IdMapping::Range { max_uid: max(uid), max_gid: max(gid), host_uid: host(uid) }
    }

    /// One line for `kiln info`.
    pub fn describe(&self) -> String {
        match self {
            IdMapping::Host => "the host's ids (no user namespace)".into(),
            IdMapping::Range { max_uid, max_gid, host_uid } => {
                format!("uids 0-{max_uid}, gids 0-{max_gid} (0 is host uid {host_uid}; the rest from /etc/subuid and /etc/subgid)")
            }
            IdMapping::Single { host_uid, host_gid } => {
                format!("a single id: 0 is host uid {host_uid}, gid {host_gid} (no /etc/subuid and /etc/subgid range)")
            }
        }
    }

    /// What to do when something needs an id this mapping lacks; None when
    /// every id is mapped.
    pub fn more_ids_hint(&self) -> Option<String> {
        let name = |uid: u32| User::from_uid(Uid::from_raw(uid)).ok().flatten().map_or(uid.to_string(), |u| u.name);
        match self {
            IdMapping::Host => None,
            IdMapping::Single { host_uid, .. } => {
                let user = name(*host_uid);
                Some(format!(
                    "kiln runs rootless with a single id: only root (your uid {host_uid}) exists in its user \
                     namespace, because {user} has no range in /etc/subuid and /etc/subgid (or newuidmap and \
                     newgidmap are missing). Add one with `sudo usermod --add-subuids 100000-165535 \
                     --add-subgids 100000-165535 {user}` (package uidmap provides newuidmap)"
                ))
            }
            IdMapping::Range { max_uid, max_gid, host_uid } => {
                let user = name(*host_uid);
                Some(format!(
                    "kiln runs rootless with uids 0-{max_uid} and gids 0-{max_gid} only (the ranges of {user} in \
                     /etc/subuid and /etc/subgid); give {user} a larger range with `sudo usermod --add-subuids \
                     START-END --add-subgids START-END {user}`"
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_maps_are_told_apart() {
        let host = map_lines("         0          0 4294967295\n");
        assert_eq!(IdMapping::from_maps(&host, &host), IdMapping::Host);
        let single = map_lines("0 1000 1\n");
        assert_eq!(IdMapping::from_maps(&single, &single), IdMapping::Single { host_uid: 1000, host_gid: 1000 });
        let range = map_lines("0 1000 1\n1 100000 65536\n");
        assert_eq!(
            IdMapping::from_maps(&range, &range),
            IdMapping::Range { max_uid: 65536, max_gid: 65536, host_uid: 1000 }
        );
        assert!(IdMapping::Host.more_ids_hint().is_none());
        let hint = IdMapping::from_maps(&single, &single).more_ids_hint().unwrap();
        assert!(hint.contains("usermod --add-subuids 100000-165535"), "{hint}");
    }
}
