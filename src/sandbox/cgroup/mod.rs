//! A cgroup of its own for each sandbox: the limits of [`Limits`], the OOM
//! killer's verdict, and a way to kill every process of the step.
//!
//! Machines come in three layouts, and kiln takes each controller where it
//! is: pure v2 (one unified tree), pure v1 (a tree per controller), and the
//! hybrid (v1 trees for the controllers, a unified tree holding none). A
//! controller the unified tree lists in its `cgroup.controllers` is used
//! there; any other is looked up among the v1 mounts.
//!
//! The sandbox's cgroup is a child of kiln's own (per tree on v1), named
//! `kiln-<pid>-<pid namespace>-<n>`. The sandbox's first process is in it
//! before it forks anything, so every process of the step is born inside:
//! it enters its v1 directories itself before exec ([`enter_v1`]), and the
//! launcher moves it into its v2 ones while it waits for its id maps. When the
//! step ends (or fails, or is cancelled, or times out) [`Cgroup`]'s `Drop`
//! kills whatever is left in it (v2 `cgroup.kill`; v1 the freezer, then
//! SIGKILL to each process) and removes the directories. A kiln killed
//! outright leaves its directories behind; the next kiln removes them.
//!
//! Rootless kiln can use cgroups only where the tree is delegated to the
//! user (a writable v2 subtree). Where it is not, an explicit limit is an
//! error; the default pids limit alone falls back to RLIMIT_NPROC, which
//! the sandbox sets (see `init`).

use std::ffi::CString;
use std::fs;
use std::io::ErrorKind;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;

use super::Limits;

mod freezer;
mod layout;

pub(crate) use freezer::Freezer;
pub(crate) use layout::joined_dirs;
use layout::{Layout, Version};

/// The pids limit a RUN gets when the build sets none. It counts threads
/// too. Real builds stay far below it (`make -j`, a JVM with a few hundred
/// threads, a test suite's workers; podman's default is 2048), while a fork
/// bomb stops at it long before the machine's pid space (32768 by default)
/// or memory runs out.
pub const DEFAULT_PIDS_LIMIT: u64 = 4096;

/// The CFS period kiln writes with a CPU quota (docker's).
const CPU_PERIOD_US: u64 = 100_000;

/// Why a sandbox's cgroup could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error(
        "{limit} needs the {controller} cgroup controller, which this machine does not offer to kiln \
         (no v1 hierarchy and not in the unified tree's cgroup.controllers)"
    )]
    NoController { limit: &'static str, controller: &'static str },
    #[error(
        "{limit} needs a cgroup, and kiln may not create one under {dir} (the cgroup tree is not delegated \
         to this user); run kiln in a delegated cgroup (e.g. `systemd-run --user --scope -p Delegate=yes kiln …`) \
         or as root, or leave the limit out"
    )]
    NotDelegated { limit: &'static str, dir: PathBuf, source: std::io::Error },
    #[error(
        "{limit} needs a cgroup, and kiln cannot enable controllers in {file}: its cgroup holds other \
         processes (cgroup v2 allows controllers only below a cgroup without processes); run kiln in a \
         cgroup of its own (e.g. `systemd-run --scope -p Delegate=yes kiln …`)"
    )]
    Busy { limit: &'static str, file: PathBuf, source: std::io::Error },
    #[error(
        "kiln cannot limit the processes of RUN steps here ({0}); as root, RLIMIT_NPROC does not bound \
         them: give kiln a cgroup with the pids cgroup controller (e.g. `systemd-run --scope -p Delegate=yes \
         kiln …`, or a writable cgroup mount in its container), or pass --pids-limit 0 to build without a limit"
    )]
    NoDefaultPids(Box<CgroupError>),
    #[error("the memory limit {0} bytes is not accepted by the kernel (at least 6 MiB is needed)")]
    MemoryTooLow(u64),
    #[error("{action} {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

type Result<T> = std::result::Result<T, CgroupError>;

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> CgroupError + 'a {
    move |source| CgroupError::Io { action, path: path.to_owned(), source }
}

/// One directory of a sandbox's cgroup (one per tree on v1).
#[derive(Debug)]
struct Dir {
    version: Version,
    path: PathBuf,
    controllers: Vec<&'static str>,
}

/// A sandbox's cgroup: created with its limits, joined by the sandbox's
/// first process, emptied and removed when dropped.
#[derive(Debug)]
pub(crate) struct Cgroup {
    dirs: Vec<Dir>,
}

/// Numbers the cgroups of one kiln process.
static NEXT: AtomicU64 = AtomicU64::new(0);

impl Cgroup {
    /// The cgroup for `limits`, or `None` when there is nothing to limit, or
    /// when the only limit is the default pids limit, no cgroup can be made
    /// for it and kiln is rootless (the sandbox then bounds its processes
    /// with RLIMIT_NPROC).
    pub(crate) fn for_limits(limits: &Limits) -> Result<Option<Cgroup>> {
        let made = without_cgroup(Cgroup::create(limits), limits, real_root(), || {
            Cgroup::create(&Limits { pids: None, pids_default: false, ..*limits })
        });
        let only_freezer = limits.memory.is_none() && limits.pids.is_none() && limits.millicpus.is_none();
        match made {
            // Nothing the user asked for is lost: `pause` then stops each
            // process with SIGSTOP instead.
            Err(CgroupError::NotDelegated { .. } | CgroupError::NoController { .. } | CgroupError::Busy { .. })
                if only_freezer =>
            {
                Ok(None)
            }
            made => made,
        }
    }

    /// Make, then remove, the cgroup `limits` need: a build checks its
    /// limits this way before any step runs.
    pub(crate) fn check(limits: &Limits) -> Result<()> {
        Cgroup::for_limits(limits).map(drop)
    }

    fn create(limits: &Limits) -> Result<Option<Cgroup>> {
        let mut wanted: Vec<(&'static str, &'static str)> = Vec::new();
        if limits.memory.is_some() {
            wanted.push(("memory", "--memory"));
        }
        if limits.pids.is_some() {
            wanted.push(("pids", if limits.pids_default { "the default pids limit" } else { "--pids-limit" }));
        }
        if limits.millicpus.is_some() {
            wanted.push(("cpu", "--cpus"));
        }
        if wanted.is_empty() && !limits.freezable {
            return Ok(None);
        }
        let layout = Layout::current()?;
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("kiln-{}-{}-{n}", std::process::id(), pid_namespace());
        // Dropped on any error below: what was made so far is removed.
        let mut cgroup = Cgroup { dirs: Vec::new() };
        for (controller, limit) in &wanted {
            let (version, own) = layout.find(controller).ok_or(CgroupError::NoController { limit, controller })?;
            if let Some(dir) = cgroup.dirs.iter_mut().find(|d| d.path.parent() == Some(&own)) {
                dir.controllers.push(controller);
                continue;
            }
            let own = match version {
                Version::V2 => v2_parent(own, &wanted, &layout, limit)?,
                Version::V1 => own,
            };
            sweep(&own, version);
            let path = own.join(&name);
            fs::create_dir(&path).map_err(|source| denied(limit, &own, source))?;
            cgroup.dirs.push(Dir { version, path, controllers: vec![controller] });
        }
        // v1 only: the freezer stops a tree of processes so none can fork
        // while they are being killed (v2 has cgroup.kill for that).
        if cgroup.dirs.iter().all(|d| d.version == Version::V1) {
            if let Some((Version::V1, own)) = layout.find("freezer") {
                if cgroup.dirs.iter().all(|d| d.path.parent() != Some(&own)) {
                    sweep(&own, Version::V1);
                    let path = own.join(&name);
                    if fs::create_dir(&path).is_ok() {
                        cgroup.dirs.push(Dir { version: Version::V1, path, controllers: vec!["freezer"] });
                    }
                }
            }
        }
        // Freezable without a v1 freezer: a v2 directory has cgroup.freeze.
        if limits.freezable
            && !cgroup.dirs.iter().any(|d| d.version == Version::V2 || d.controllers.contains(&"freezer"))
        {
            let limit = "a container's cgroup";
            // Alone, its absence is an error (which `for_limits` forgives);
            // beside the limits' directories, it is only left out.
            let alone = cgroup.dirs.is_empty();
            match layout.v2.clone() {
                Some((own, _)) => {
                    sweep(&own, Version::V2);
                    let path = own.join(&name);
                    match fs::create_dir(&path) {
                        Ok(()) => cgroup.dirs.push(Dir { version: Version::V2, path, controllers: Vec::new() }),
                        Err(source) if alone => return Err(denied(limit, &own, source)),
                        Err(_) => {}
                    }
                }
                None if alone => return Err(CgroupError::NoController { limit, controller: "freezer" }),
                None => {}
            }
        }
        cgroup.write_limits(limits)?;
        Ok(Some(cgroup))
    }

    fn write_limits(&self, limits: &Limits) -> Result<()> {
        for dir in &self.dirs {
            for controller in &dir.controllers {
                match (*controller, dir.version) {
                    ("memory", version) => {
                        let Some(bytes) = limits.memory else { continue };
                        let (limit, swap) = match version {
                            Version::V2 => ("memory.max", "memory.swap.max"),
                            Version::V1 => ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes"),
                        };
                        write(&dir.path.join(limit), &bytes.to_string()).map_err(|e| match e {
                            CgroupError::Io { source, .. } if source.raw_os_error() == Some(libc::EINVAL) => {
                                CgroupError::MemoryTooLow(bytes)
                            }
                            e => e,
                        })?;
                        // No swap beyond the limit: memory+swap equal to memory on
                        // v1, no swap at all on v2. Absent without swap accounting.
                        let swap_value = if version == Version::V2 { "0".to_owned() } else { bytes.to_string() };
                        if dir.path.join(swap).exists() {
                            write(&dir.path.join(swap), &swap_value)?;
                        }
                    }
                    ("pids", _) => {
                        if let Some(n) = limits.pids {
                            write(&dir.path.join("pids.max"), &n.to_string())?;
                        }
                    }
                    ("cpu", version) => {
                        let Some(milli) = limits.millicpus else { continue };
                        let quota = milli * CPU_PERIOD_US / 1000;
                        match version {
                            Version::V2 => write(&dir.path.join("cpu.max"), &format!("{quota} {CPU_PERIOD_US}"))?,
                            Version::V1 => {
                                write(&dir.path.join("cpu.cfs_period_us"), &CPU_PERIOD_US.to_string())?;
                                write(&dir.path.join("cpu.cfs_quota_us"), &quota.to_string())?;
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// The `tasks` files of its v1 directories, for the sandbox's process to
    /// move itself in with [`enter_v1`] between fork and exec.
    pub(crate) fn v1_tasks(&self) -> Vec<CString> {
        self.dirs
            .iter()
            .filter(|d| d.version == Version::V1)
            // Never dropped: a directory left out would be a limit silently not applied.
            .map(|d| {
                CString::new(d.path.join("tasks").into_os_string().into_vec())
                    .expect("a cgroup path, from /proc/self/mountinfo, holds no NUL byte")
            })
            .collect()
    }

    /// Move process `pid` (and its threads) into every v2 directory of the
    /// cgroup (the v1 ones it enters itself, see [`enter_v1`]), before it
    /// forks anything: its children are born inside. On a thread of its
    /// own: a move waits out an RCU grace period (7-15 ms here), which the
    /// caller spends on the rest of the sandbox's start. None without a v2
    /// directory.
    pub(crate) fn join_in_background(&self, pid: u32) -> Option<std::thread::JoinHandle<Result<()>>> {
        let files: Vec<PathBuf> =
            self.dirs.iter().filter(|d| d.version == Version::V2).map(|d| d.path.join("cgroup.procs")).collect();
        if files.is_empty() {
            return None;
        }
        Some(std::thread::spawn(move || files.iter().try_for_each(|f| write(f, &pid.to_string()))))
    }

    /// Whether the kernel's OOM killer killed a process of the cgroup.
    pub(crate) fn oom_killed(&self) -> bool {
        let Some(dir) = self.dirs.iter().find(|d| d.controllers.contains(&"memory")) else { return false };
        let field = |file: &str, name: &str| {
            fs::read_to_string(dir.path.join(file))
                .ok()
                .and_then(|s| s.lines().find_map(|l| l.strip_prefix(name)?.trim().parse::<u64>().ok()))
        };
        match dir.version {
            Version::V2 => field("memory.events", "oom_kill ").is_some_and(|n| n > 0),
            // `oom_kill` since Linux 4.13; before it, hitting the limit at all.
            Version::V1 => match field("memory.oom_control", "oom_kill ") {
                Some(n) => n > 0,
                None => field("memory.failcnt", "").is_some_and(|n| n > 0),
            },
        }
    }

    /// SIGKILL every process in the cgroup, and wait until none is left
    /// (a killed process leaves its cgroup when it exits, before it is reaped).
    pub(crate) fn kill_all(&self) {
        let Some(first) = self.dirs.first() else { return };
        let kill_file = first.path.join("cgroup.kill");
        let freezer = self.dirs.iter().find(|d| d.controllers.contains(&"freezer"));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let pids = procs(&first.path);
            if pids.is_empty() || Instant::now() > deadline {
                return;
            }
            if first.version == Version::V2 && kill_file.exists() {
                let _ = fs::write(&kill_file, "1");
            } else {
                // Frozen, nothing forks between reading the list and the kills.
                let frozen = freezer.is_some_and(|f| fs::write(f.path.join("freezer.state"), "FROZEN").is_ok());
                for pid in procs(&first.path) {
                    // SAFETY: kill only sends a signal.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
                if frozen {
                    // A frozen process cannot die; thawed, the pending SIGKILL takes it.
                    let _ = fs::write(freezer.expect("frozen").path.join("freezer.state"), "THAWED");
                }
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Whether any directory of the cgroup still holds a process (for tests
    /// and the drop).
    fn populated(&self) -> bool {
        self.dirs.iter().any(|d| !procs(&d.path).is_empty())
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        self.kill_all();
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.populated() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        for dir in &self.dirs {
            // rmdir can fail with EBUSY for a moment after the last process left.
            let deadline = Instant::now() + Duration::from_secs(2);
            while let Err(e) = fs::remove_dir(&dir.path) {
                if e.kind() == ErrorKind::NotFound || Instant::now() > deadline {
                    break;
                }
                thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// Remove the cgroups a kiln left under `own` when it died without its
/// `Drop` running (SIGKILL, or a signal kiln does not handle): their
/// processes died with it (parent-death signals), but the directories stay
/// until someone removes them. A name whose pid is alive is left alone.
fn sweep(own: &Path, version: Version) {
    let Ok(entries) = fs::read_dir(own) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some((pid, ns)) = name.to_str().and_then(|n| {
            let mut f = n.strip_prefix("kiln-")?.split('-');
            Some((f.next()?.parse::<i32>().ok()?, f.next()?.parse::<u64>().ok()?))
        }) else {
            continue;
        };
        // A pid means something only in the pid namespace that made it: a
        // kiln elsewhere (another container sharing the tree) is left alone.
        if ns != pid_namespace() {
            continue;
        }
        // SAFETY: signal 0 only checks that the process exists.
        if pid <= 0 || unsafe { libc::kill(pid, 0) } == 0 || Errno::last() != Errno::ESRCH {
            continue;
        }
        // A kiln killed while it froze its step leaves it frozen, and a
        // frozen process cannot die.
        let _ = fs::write(entry.path().join("freezer.state"), "THAWED");
        // Dropped at once: killed whatever is left, removed.
        drop(Cgroup { dirs: vec![Dir { version, path: entry.path(), controllers: Vec::new() }] });
    }
}

/// In a forked child before exec: move this process into each cgroup
/// whose v1 `tasks` file is given ([`Cgroup::v1_tasks`]). Writing `0` moves
/// the calling thread alone, which the kernel does without its global
/// threadgroup lock, whose taking waits out an RCU grace period (7-15 ms on
/// this 2-core VM, on the first RUN's path): the child has one thread, so
/// the whole process moves, before it forks anything. Async-signal-safe,
/// allocates nothing.
pub(crate) fn enter_v1(tasks: &[CString]) -> std::io::Result<()> {
    for file in tasks {
        // SAFETY: open, write and close on a path and a buffer valid for the calls.
        unsafe {
            let fd = libc::open(file.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let written = libc::write(fd, b"0".as_ptr().cast(), 1);
            let err = std::io::Error::last_os_error();
            libc::close(fd);
            if written != 1 {
                return Err(err);
            }
        }
    }
    Ok(())
}

/// This process's pid namespace, by inode number (0 when unknown), part of
/// the name of each cgroup kiln makes.
fn pid_namespace() -> u64 {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self/ns/pid").map(|m| m.ino()).unwrap_or(0)
}

/// The processes in the cgroup at `dir`.
fn procs(dir: &Path) -> Vec<i32> {
    fs::read_to_string(dir.join("cgroup.procs"))
        .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

fn write(path: &Path, value: &str) -> Result<()> {
    fs::write(path, value).map_err(io("writing", path))
}

/// The error for a directory kiln may not create under `own`.
fn denied(limit: &'static str, own: &Path, source: std::io::Error) -> CgroupError {
    match source.kind() {
        ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem => {
            CgroupError::NotDelegated { limit, dir: own.to_owned(), source }
        }
        _ if source.raw_os_error() == Some(libc::EPERM) => {
            CgroupError::NotDelegated { limit, dir: own.to_owned(), source }
        }
        _ => CgroupError::Io { action: "creating a cgroup under", path: own.to_owned(), source },
    }
}

/// The v2 cgroup to make the sandbox's under: kiln's own, once it lets its
/// children have the controllers. Where it cannot, because it holds
/// processes (a root shell's session, a container's sole cgroup), real root
/// uses `kiln/` at the top of the tree instead, as docker's cgroupfs driver
/// uses `docker/`: the root cgroup is exempt from the rule.
fn v2_parent(own: PathBuf, wanted: &[(&str, &str)], layout: &Layout, limit: &'static str) -> Result<PathBuf> {
    match enable(&own, wanted, layout, limit) {
        Err(CgroupError::Busy { .. }) if real_root() && layout.v2_mount.is_some() => {
            let top = layout.v2_mount.clone().expect("checked");
            enable(&top, wanted, layout, limit)?;
            let base = top.join("kiln");
            match fs::create_dir(&base) {
                Err(e) if e.kind() != ErrorKind::AlreadyExists => return Err(denied(limit, &top, e)),
                _ => {}
            }
            enable(&base, wanted, layout, limit)?;
            Ok(base)
        }
        Err(e) => Err(e),
        Ok(()) => Ok(own),
    }
}

/// What a build gets when `made` (the cgroup for `limits`) failed: the
/// default pids limit gives way to RLIMIT_NPROC (`retry`, the cgroup
/// without it) only rootless. The kernel does not apply RLIMIT_NPROC to
/// kuid 0, and with real root's identity map a `USER root` step is kuid 0:
/// there a fork bomb would be unbounded, so the build stops instead. An
/// explicit limit the cgroup cannot take is an error either way.
fn without_cgroup(
    made: Result<Option<Cgroup>>,
    limits: &Limits,
    real_root: bool,
    retry: impl FnOnce() -> Result<Option<Cgroup>>,
) -> Result<Option<Cgroup>> {
    match made {
        Err(e @ (CgroupError::NotDelegated { .. } | CgroupError::NoController { .. } | CgroupError::Busy { .. }))
            if limits.pids_default =>
        {
            if real_root {
                return Err(CgroupError::NoDefaultPids(Box::new(e)));
            }
            retry()
        }
        made => made,
    }
}

/// Root of the host, not of a user namespace (rootless kiln's root is not).
fn real_root() -> bool {
    nix::unistd::geteuid().is_root()
        && fs::read_to_string("/proc/self/uid_map").is_ok_and(|m| {
            let f: Vec<&str> = m.split_whitespace().collect();
            f == ["0", "0", "4294967295"]
        })
}

/// On v2, a cgroup's children get a controller only when the cgroup lists
/// it in `cgroup.subtree_control`. Enabling it fails (EBUSY) while the
/// cgroup itself holds processes (v2's "no internal processes" rule), as
/// kiln's own usually does; kiln then leaves it as it is and reports how
/// to give kiln a cgroup of its own.
fn enable(own: &Path, wanted: &[(&str, &str)], layout: &Layout, limit: &'static str) -> Result<()> {
    let file = own.join("cgroup.subtree_control");
    let enabled = fs::read_to_string(&file).unwrap_or_default();
    for (controller, _) in wanted {
        let on_v2 = layout.find(controller).is_some_and(|(v, _)| v == Version::V2);
        if !on_v2 || enabled.split_whitespace().any(|c| c == *controller) {
            continue;
        }
        match fs::write(&file, format!("+{controller}")) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                return Err(CgroupError::Busy { limit, file, source: e })
            }
            Err(e) => return Err(denied(limit, own, e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cgroup over plain folders holding the files a kernel would show.
    fn fake(version: Version, controllers: &[&'static str], files: &[&str]) -> (tempfile::TempDir, Cgroup) {
        let tmp = tempfile::tempdir().unwrap();
        for f in files {
            fs::write(tmp.path().join(f), "").unwrap();
        }
        let dir = Dir { version, path: tmp.path().to_owned(), controllers: controllers.to_vec() };
        (tmp, Cgroup { dirs: vec![dir] })
    }

    fn read(tmp: &tempfile::TempDir, file: &str) -> String {
        fs::read_to_string(tmp.path().join(file)).unwrap()
    }

    const LIMITS: Limits = Limits {
        memory: Some(64 << 20),
        pids: Some(300),
        millicpus: Some(1500),
        timeout_ms: None,
        pids_default: false,
        freezable: false,
    };

    #[test]
    fn v2_limits_go_to_v2_files_and_swap_is_off() {
        let (tmp, cgroup) = fake(Version::V2, &["memory", "pids", "cpu"], &["memory.swap.max", "memory.events"]);
        cgroup.write_limits(&LIMITS).unwrap();
        assert_eq!(read(&tmp, "memory.max"), "67108864");
        assert_eq!(read(&tmp, "memory.swap.max"), "0");
        assert_eq!(read(&tmp, "pids.max"), "300");
        assert_eq!(read(&tmp, "cpu.max"), "150000 100000");
        assert!(!cgroup.oom_killed());
        fs::write(tmp.path().join("memory.events"), "low 0\nhigh 0\nmax 7\noom 1\noom_kill 1\n").unwrap();
        assert!(cgroup.oom_killed());
        std::mem::forget(cgroup);
    }

    #[test]
    fn a_sandbox_enters_its_v1_trees_itself_and_is_moved_into_v2_ones() {
        let (v1, cgroup) = fake(Version::V1, &["pids"], &["tasks"]);
        let tasks = cgroup.v1_tasks();
        assert_eq!(tasks, [CString::new(v1.path().join("tasks").into_os_string().into_vec()).unwrap()]);
        assert!(cgroup.join_in_background(1).is_none(), "no v2 directory to move it into");
        enter_v1(&tasks).unwrap();
        assert_eq!(read(&v1, "tasks"), "0", "the calling thread, by itself");
        std::mem::forget(cgroup);

        let (v2, cgroup) = fake(Version::V2, &["pids"], &["cgroup.procs"]);
        assert!(cgroup.v1_tasks().is_empty());
        cgroup.join_in_background(4242).expect("a v2 directory").join().unwrap().unwrap();
        assert_eq!(read(&v2, "cgroup.procs"), "4242");
        std::mem::forget(cgroup);
        assert!(enter_v1(&[CString::new("/nonexistent/tasks").unwrap()]).is_err());
    }

    #[test]
    fn v1_limits_go_to_v1_files_and_memsw_equals_memory() {
        let (tmp, cgroup) = fake(Version::V1, &["memory", "cpu"], &["memory.memsw.limit_in_bytes"]);
        cgroup.write_limits(&LIMITS).unwrap();
        assert_eq!(read(&tmp, "memory.limit_in_bytes"), "67108864");
        assert_eq!(read(&tmp, "memory.memsw.limit_in_bytes"), "67108864");
        assert_eq!(read(&tmp, "cpu.cfs_period_us"), "100000");
        assert_eq!(read(&tmp, "cpu.cfs_quota_us"), "150000");
        assert!(!tmp.path().join("pids.max").exists(), "pids is not this tree's");
        fs::write(tmp.path().join("memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n").unwrap();
        assert!(!cgroup.oom_killed());
        fs::write(tmp.path().join("memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n").unwrap();
        assert!(cgroup.oom_killed());
        std::mem::forget(cgroup);
    }

    #[test]
    fn the_default_pids_limit_gives_way_only_rootless() {
        let default = Limits { pids: Some(100), pids_default: true, ..Limits::default() };
        let explicit = Limits { pids: Some(100), ..Limits::default() };
        let failed = || Err(CgroupError::NoController { limit: "the default pids limit", controller: "pids" });
        // Rootless: RLIMIT_NPROC stands in (the retry, without a pids limit).
        let (_tmp, cgroup) = fake(Version::V2, &["memory"], &[]);
        let made = without_cgroup(failed(), &default, false, || Ok(Some(cgroup))).unwrap();
        assert!(made.is_some());
        assert!(without_cgroup(failed(), &default, false, || Ok(None)).unwrap().is_none());
        // Real root: kuid 0 ignores RLIMIT_NPROC, so the build stops, saying how to go on.
        let err = without_cgroup(failed(), &default, true, || panic!("no retry as root")).unwrap_err();
        assert!(matches!(err, CgroupError::NoDefaultPids(_)), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("--pids-limit 0") && msg.contains("pids cgroup controller"), "{msg}");
        // An explicit limit is never dropped.
        for root in [false, true] {
            let err = without_cgroup(failed(), &explicit, root, || panic!("no retry")).unwrap_err();
            assert!(matches!(err, CgroupError::NoController { .. }), "{err:?}");
        }
        // A cgroup that was made is used as it is.
        let (_tmp, cgroup) = fake(Version::V2, &["pids"], &[]);
        assert!(without_cgroup(Ok(Some(cgroup)), &default, true, || panic!("no retry")).unwrap().is_some());
    }
}
