//! What the machine offers kiln (`kiln info`): the cgroup layout, the network
//! helpers, seccomp, and how kiln's ids map to the host's.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::sandbox::userns::IdMapping;

/// statfs's type of a cgroup v2 filesystem.
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// Which cgroup hierarchies the machine mounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupVersion {
    /// The unified hierarchy alone, at /sys/fs/cgroup.
    V2,
    /// Per-controller v1 hierarchies, and no v2.
    V1,
    /// v1 controllers at /sys/fs/cgroup, plus a (controller-less) v2 hierarchy,
    /// usually at /sys/fs/cgroup/unified: systemd's hybrid layout.
    Hybrid,
    /// No cgroup hierarchy at all.
    None,
}

impl CgroupVersion {
    /// Of this machine: /sys/fs/cgroup's filesystem, and the hierarchies this
    /// process belongs to (/proc/self/cgroup).
    pub fn current() -> Self {
        // f_type is i64 on x86_64 but narrower elsewhere: the cast is needed there.
        #[allow(clippy::unnecessary_cast)]
        let root_is_v2 = nix::sys::statfs::statfs("/sys/fs/cgroup")
            .is_ok_and(|s| s.filesystem_type().0 as i64 == CGROUP2_SUPER_MAGIC);
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        Self::from(root_is_v2, &own)
    }

    /// From whether /sys/fs/cgroup is cgroup2 and the text of /proc/self/cgroup
    /// (`ID:CONTROLLERS:PATH` lines; v2's is `0::PATH`).
    fn from(root_is_v2: bool, proc_cgroup: &str) -> Self {
        if root_is_v2 {
            return CgroupVersion::V2;
        }
        let (mut v1, mut v2) = (false, false);
        for line in proc_cgroup.lines() {
            let mut f = line.splitn(3, ':');
            match (f.next(), f.next()) {
                (Some("0"), Some("")) => v2 = true,
                (Some(_), Some(c)) if !c.is_empty() && !c.starts_with("name=") => v1 = true,
                _ => {}
            }
        }
        match (v1, v2) {
            (true, true) => CgroupVersion::Hybrid,
            (true, false) => CgroupVersion::V1,
            (false, true) => CgroupVersion::V2,
            (false, false) => CgroupVersion::None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            CgroupVersion::V2 => "v2",
            CgroupVersion::V1 => "v1",
            CgroupVersion::Hybrid => "hybrid",
            CgroupVersion::None => "none",
        }
    }
}

/// The network helpers RUN's default network can use, where found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkTools {
    pub pasta: Option<PathBuf>,
    pub slirp4netns: Option<PathBuf>,
}

impl NetworkTools {
    pub fn current() -> Self {
        use crate::sandbox::userns::which;
        NetworkTools { pasta: which("pasta"), slirp4netns: which("slirp4netns") }
    }
}

/// Whether the kernel can filter system calls with seccomp (BPF filters).
pub fn seccomp_available() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().any(|l| l.starts_with("Seccomp:")) && Path::new("/proc/sys/kernel/seccomp/actions_avail").exists()
}

/// The id mapping as `kiln info` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdMappingInfo {
    /// `host`, `range` or `single`.
    pub kind: &'static str,
    pub description: String,
}

impl From<&IdMapping> for IdMappingInfo {
    fn from(m: &IdMapping) -> Self {
        let kind = match m {
            IdMapping::Host => "host",
            IdMapping::Range { .. } => "range",
            IdMapping::Single { .. } => "single",
        };
        IdMappingInfo { kind, description: m.describe() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_layouts_are_told_apart() {
        let hybrid = "9:name=systemd:/\n4:memory:/x\n1:cpu:/\n0::/\n";
        let v1 = "4:memory:/x\n1:cpu,cpuacct:/\n";
        let v2 = "0::/user.slice\n";
        for (root_is_v2, text, want) in [
            (true, v2, CgroupVersion::V2),
            (false, hybrid, CgroupVersion::Hybrid),
            (false, v1, CgroupVersion::V1),
            (false, v2, CgroupVersion::V2),
            (false, "1:name=systemd:/\n", CgroupVersion::None),
            (false, "", CgroupVersion::None),
        ] {
            assert_eq!(CgroupVersion::from(root_is_v2, text), want, "{text:?}");
        }
    }
}
