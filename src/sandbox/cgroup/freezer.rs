//! The freezer of a sandbox's own cgroup, for `kiln pause`: v1's
//! `freezer.state`, or v2's `cgroup.freeze`. Found from the outside, by
//! another kiln process, through /proc: the cgroup the sandbox process is
//! in, where its parent (the container's monitor) is not.

use std::fs;
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use super::layout::{Layout, Version};
use super::{io, CgroupError, Result};

/// How long freezing may take before kiln gives up: a process in an
/// uninterruptible sleep (a hung NFS read) delays it.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(10);

/// A cgroup that can be frozen and thawed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Freezer {
    version: Version,
    dir: PathBuf,
}

impl Freezer {
    /// The freezer of the cgroup process `pid` is in and its parent `parent`
    /// is not; `None` when it has no such cgroup (rootless kiln where the
    /// tree is not delegated: the container runs in its monitor's).
    pub(crate) fn of(pid: u32, parent: u32) -> Option<Freezer> {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").ok()?;
        let theirs = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
        let parents = fs::read_to_string(format!("/proc/{parent}/cgroup")).ok()?;
        let found = Freezer::find(&Layout::parse(&mountinfo, &theirs), &Layout::parse(&mountinfo, &parents))?;
        let file = found.dir.join(found.file());
        file.exists().then_some(found)
    }

    /// Where `theirs` has a freezer of its own, compared with `parents`.
    fn find(theirs: &Layout, parents: &Layout) -> Option<Freezer> {
        let v1 = |layout: &Layout| {
            layout.v1.iter().find(|(c, _)| c.iter().any(|c| c == "freezer")).map(|(_, dir)| dir.clone())
        };
        if let Some(dir) = v1(theirs).filter(|dir| v1(parents).as_ref() != Some(dir)) {
            return Some(Freezer { version: Version::V1, dir });
        }
        let v2 = |layout: &Layout| layout.v2.as_ref().map(|(dir, _)| dir.clone());
        let dir = v2(theirs).filter(|dir| v2(parents).as_ref() != Some(dir))?;
        Some(Freezer { version: Version::V2, dir })
    }

    fn file(&self) -> &'static str {
        match self.version {
            Version::V1 => "freezer.state",
            Version::V2 => "cgroup.freeze",
        }
    }

    /// Freeze (`true`) or thaw every process of the cgroup, and wait until
    /// the kernel says it is done.
    pub(crate) fn set(&self, frozen: bool) -> Result<()> {
        let file = self.dir.join(self.file());
        let value = match (self.version, frozen) {
            (Version::V1, true) => "FROZEN",
            (Version::V1, false) => "THAWED",
            (Version::V2, true) => "1",
            (Version::V2, false) => "0",
        };
        fs::write(&file, value).map_err(io("writing", &file))?;
        let deadline = Instant::now() + FREEZE_TIMEOUT;
        while self.frozen()? != frozen {
            if Instant::now() > deadline {
                // Half frozen is worse than not: undo it.
                if frozen {
                    let _ = self.set(false);
                }
                return Err(CgroupError::Io {
                    action: "waiting for the freezer at",
                    path: file,
                    source: std::io::Error::from(std::io::ErrorKind::TimedOut),
                });
            }
            thread::sleep(Duration::from_millis(2));
        }
        Ok(())
    }

    /// Whether the whole cgroup is frozen (v1 says FREEZING while on the way).
    pub(crate) fn frozen(&self) -> Result<bool> {
        match self.version {
            Version::V1 => {
                let file = self.dir.join("freezer.state");
                Ok(fs::read_to_string(&file).map_err(io("reading", &file))?.trim() == "FROZEN")
            }
            Version::V2 => {
                let file = self.dir.join("cgroup.events");
                let events = fs::read_to_string(&file).map_err(io("reading", &file))?;
                Ok(events.lines().any(|l| l.trim() == "frozen 1"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTS: &str = "\
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn a_sandbox_in_a_cgroup_of_its_own_is_found_and_one_in_its_parents_is_not() {
        let parent = Layout::parse(MOUNTS, "6:freezer:/user\n0::/user\n");
        let own = Layout::parse(MOUNTS, "6:freezer:/user/kiln-1-2-0\n0::/user\n");
        assert_eq!(
            Freezer::find(&own, &parent),
            Some(Freezer { version: Version::V1, dir: "/sys/fs/cgroup/freezer/user/kiln-1-2-0".into() })
        );
        // v2 only (pure v2, or the v1 freezer not made).
        let own = Layout::parse(MOUNTS, "6:freezer:/user\n0::/user/kiln-1-2-0\n");
        assert_eq!(
            Freezer::find(&own, &parent),
            Some(Freezer { version: Version::V2, dir: "/sys/fs/cgroup/unified/user/kiln-1-2-0".into() })
        );
        // In its monitor's cgroup: freezing it would freeze the monitor too.
        assert_eq!(Freezer::find(&parent, &parent), None);
    }

    #[test]
    fn freezing_writes_the_state_and_waits_for_the_kernels_word() {
        let tmp = tempfile::tempdir().unwrap();
        let v2 = Freezer { version: Version::V2, dir: tmp.path().to_owned() };
        fs::write(tmp.path().join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
        v2.set(true).unwrap();
        assert_eq!(fs::read_to_string(tmp.path().join("cgroup.freeze")).unwrap(), "1");
        // A plain file keeps what was written, so v1's state reads back at once.
        let v1 = Freezer { version: Version::V1, dir: tmp.path().to_owned() };
        v1.set(false).unwrap();
        assert!(!v1.frozen().unwrap());
        v1.set(true).unwrap();
        assert!(v1.frozen().unwrap());
    }
}
