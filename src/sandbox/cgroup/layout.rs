//! Where the cgroup trees are mounted, and where a process is in each:
//! read from /proc/PID/mountinfo and /proc/PID/cgroup.

use std::fs;
use std::path::PathBuf;

use super::{io, Result};

/// Which kind of tree a controller lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Version {
    V1,
    V2,
}

/// Where kiln's own cgroups are, per tree.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Layout {
    /// kiln's own cgroup in the unified tree, and the controllers it offers.
    pub(super) v2: Option<(PathBuf, Vec<String>)>,
    /// Where the unified tree is mounted (its root, when the mount shows it all).
    pub(super) v2_mount: Option<PathBuf>,
    /// For each v1 tree: its controllers and kiln's own cgroup in it.
    pub(super) v1: Vec<(Vec<String>, PathBuf)>,
}

impl Layout {
    /// Read from this process's /proc/self/mountinfo and /proc/self/cgroup.
    pub(super) fn current() -> Result<Layout> {
        let mountinfo =
            fs::read_to_string("/proc/self/mountinfo").map_err(io("reading", "/proc/self/mountinfo".as_ref()))?;
        let cgroup = fs::read_to_string("/proc/self/cgroup").map_err(io("reading", "/proc/self/cgroup".as_ref()))?;
        let mut layout = Layout::parse(&mountinfo, &cgroup);
        if let Some((dir, controllers)) = &mut layout.v2 {
            *controllers = fs::read_to_string(dir.join("cgroup.controllers"))
                .map(|s| s.split_whitespace().map(str::to_owned).collect())
                .unwrap_or_default();
        }
        Ok(layout)
    }

    /// The trees mounted (`mountinfo`) and this process's place in each
    /// (`cgroup`, /proc/self/cgroup's `ID:CONTROLLERS:PATH` lines). The v2
    /// controllers are left empty: they are read from the tree itself.
    pub(super) fn parse(mountinfo: &str, cgroup: &str) -> Layout {
        let mut layout = Layout::default();
        let own = |controllers: &str| {
            cgroup.lines().find_map(|l| {
                let mut f = l.splitn(3, ':');
                let (_, c, path) = (f.next()?, f.next()?, f.next()?);
                (c == controllers).then(|| path.to_owned())
            })
        };
        for line in mountinfo.lines() {
            // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL…] - FSTYPE SOURCE SUPEROPTS
            let Some((left, right)) = line.split_once(" - ") else { continue };
            let left: Vec<&str> = left.split(' ').collect();
            let right: Vec<&str> = right.split(' ').collect();
            if left.len() < 5 || right.len() < 3 {
                continue;
            }
            let (root, mountpoint) = (unescape(left[3]), PathBuf::from(unescape(left[4])));
            let dir = |path: String| {
                // The mount shows the tree from `root` down; a path outside
                // it (a cgroup namespace's view) is the mount itself.
                let rel = path.strip_prefix(root.as_str()).unwrap_or("").trim_start_matches('/');
                if rel.is_empty() {
                    mountpoint.clone()
                } else {
                    mountpoint.join(rel)
                }
            };
            match right[0] {
                "cgroup2" if layout.v2.is_none() => {
                    if let Some(path) = own("") {
                        layout.v2 = Some((dir(path), Vec::new()));
                        layout.v2_mount = (root == "/").then(|| mountpoint.clone());
                    }
                }
                "cgroup" => {
                    let controllers: Vec<String> = right[2]
                        .split(',')
                        .filter(|o| !matches!(*o, "rw" | "ro") && !o.contains('=') && !o.starts_with("name"))
                        .map(str::to_owned)
                        .collect();
                    if controllers.is_empty() || layout.v1.iter().any(|(c, _)| *c == controllers) {
                        continue;
                    }
                    if let Some(path) = own(&controllers.join(",")) {
                        layout.v1.push((controllers, dir(path)));
                    }
                }
                _ => {}
            }
        }
        layout
    }

    /// Where `controller` lives: the unified tree when it offers it, else a v1 tree.
    pub(super) fn find(&self, controller: &str) -> Option<(Version, PathBuf)> {
        if let Some((dir, controllers)) = &self.v2 {
            if controllers.iter().any(|c| c == controller) {
                return Some((Version::V2, dir.clone()));
            }
        }
        self.v1.iter().find(|(c, _)| c.iter().any(|c| c == controller)).map(|(_, dir)| (Version::V1, dir.clone()))
    }
}

/// For each cgroup tree mounted (`mountinfo`), the folder of the process
/// whose /proc/PID/cgroup is `theirs` and the one of `ours`: `kiln exec`
/// joins a container's where they differ.
pub(crate) fn joined_dirs(mountinfo: &str, theirs: &str, ours: &str) -> Vec<(PathBuf, PathBuf)> {
    let (theirs, ours) = (Layout::parse(mountinfo, theirs), Layout::parse(mountinfo, ours));
    let mut out = Vec::new();
    if let (Some((t, _)), Some((o, _))) = (theirs.v2, ours.v2) {
        out.push((t, o));
    }
    for (controllers, dir) in theirs.v1 {
        if let Some((_, own)) = ours.v1.iter().find(|(c, _)| *c == controllers) {
            out.push((dir, own.clone()));
        }
    }
    out
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_MOUNTS: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    const HYBRID_CGROUP: &str = "\
9:name=systemd:/
8:pids:/
4:memory:/process_api/abc
1:cpu,cpuacct:/user.slice
0::/
";

    #[test]
    fn a_hybrid_machine_uses_its_v1_trees() {
        let layout = Layout::parse(HYBRID_MOUNTS, HYBRID_CGROUP);
        assert_eq!(layout.v2, Some(("/sys/fs/cgroup/unified".into(), vec![])));
        assert_eq!(layout.v2_mount, Some("/sys/fs/cgroup/unified".into()));
        let find = |c| layout.find(c);
        assert_eq!(find("memory"), Some((Version::V1, "/sys/fs/cgroup/memory/process_api/abc".into())));
        assert_eq!(find("pids"), Some((Version::V1, "/sys/fs/cgroup/pids".into())));
        assert_eq!(find("cpu"), Some((Version::V1, "/sys/fs/cgroup/cpu,cpuacct/user.slice".into())));
        assert_eq!(find("freezer"), None);
    }

    #[test]
    fn a_v2_controller_wins_over_nothing_and_a_namespaced_mount_is_its_own_root() {
        let mounts = "30 23 0:26 /kubepods/pod1 /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n";
        let mut layout = Layout::parse(mounts, "0::/kubepods/pod1/c1\n");
        layout.v2.as_mut().unwrap().1 = vec!["memory".into(), "pids".into()];
        assert_eq!(layout.find("memory"), Some((Version::V2, "/sys/fs/cgroup/c1".into())));
        assert_eq!(layout.find("cpu"), None);
        // Not the whole tree: there is no top to fall back to.
        assert_eq!(layout.v2_mount, None);
        // A cgroup namespace shows its own cgroup as `/`.
        let layout = Layout::parse("30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n", "0::/\n");
        assert_eq!(layout.v2.unwrap().0, PathBuf::from("/sys/fs/cgroup"));
    }

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape(r"/a\040b"), "/a b");
        assert_eq!(unescape(r"/a\\"), r"/a\\");
        assert_eq!(unescape("/plain"), "/plain");
    }
}
