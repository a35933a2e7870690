//! The sandbox's side: runs as `kiln __sandbox SPEC`, single-threaded, already in
//! the new namespaces (see the module doc of `sandbox`).

use std::ffi::CString;
use std::fs;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{chdir, execvpe, fork, pivot_root, sethostname, ForkResult, Gid, Pid, Uid};

use super::{exit, workdir, Spec};

type Result<T> = std::result::Result<T, String>;

/// Entry point of `kiln __sandbox SPEC`. Never returns.
pub fn child_main(spec_path: &Path) -> ! {
    let code = match sandbox(spec_path) {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("kiln: sandbox: {msg}");
            exit::SETUP_FAILED
        }
    };
    std::process::exit(code)
}

fn sandbox(spec_path: &Path) -> Result<i32> {
    let spec: Spec = fs::read(spec_path)
        .map_err(|e| format!("reading {}: {e}", spec_path.display()))
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| format!("parsing {}: {e}", spec_path.display())))?;
    // The launcher closed everything above the handshake's fds 3 and 4; make
    // sure, then close those too once the handshake is over: from here on no
    // descriptor but stdio exists, so none can be reached via /proc/self/fd.
    super::close_from(5).map_err(|e| format!("closing inherited descriptors: {e}"))?;
    enter_namespaces()?;
    super::close_from(3).map_err(|e| format!("closing inherited descriptors: {e}"))?;
    // The first child forked after unshare(CLONE_NEWPID) is the namespace's PID 1.
    // SAFETY: this process is single-threaded (a fresh exec that started no threads).
    match unsafe { fork() }.map_err(|e| format!("fork: {e}"))? {
        ForkResult::Child => {
            let code = match pid1(&spec) {
                Ok(code) => code,
                Err(msg) => {
                    eprintln!("kiln: sandbox: {msg}");
                    exit::SETUP_FAILED
                }
            };
            std::process::exit(code)
        }
        ForkResult::Parent { child } => wait_exit_code(child),
    }
}

/// Unshare the namespaces, tell the launcher (fd 4) and wait (fd 3) until it has
/// written our uid/gid maps: only then are we root in the new user namespace.
fn enter_namespaces() -> Result<()> {
    use std::io::Write;
    use std::os::fd::FromRawFd;
    // SAFETY: the launcher dup2'ed the handshake pipes onto fds 3 and 4 for us alone.
    let (mut go, mut ready) = unsafe { (fs::File::from_raw_fd(3), fs::File::from_raw_fd(4)) };
    let flags = CloneFlags::CLONE_NEWUSER
        | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC;
    unshare(flags).map_err(|e| format!("creating namespaces (user, mount, pid, uts, ipc): {e}"))?;
    ready.write_all(b"1").map_err(|e| format!("sandbox handshake: {e}"))?;
    drop(ready);
    let mut byte = [0u8; 1];
    match go.read(&mut byte) {
        Ok(1) => Ok(()),
        _ => Err("kiln could not map ids into the sandbox's user namespace".into()),
    }
}

fn wait_exit_code(pid: Pid) -> Result<i32> {
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(128 + sig as i32),
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(format!("waiting for the container: {e}")),
        }
    }
}

/// PID 1 of the sandbox: set the filesystem up, run the command, reap, exit with its status.
fn pid1(spec: &Spec) -> Result<i32> {
    // SAFETY: prctl with constant arguments.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    setup_root(spec)?;
    sethostname(&spec.hostname).map_err(|e| format!("sethostname: {e}"))?;
    let user = resolve_user(&spec.user)?;
    let cwd = workdir::open(&spec.cwd, user.uid, user.gid)?;
    let args: Vec<CString> = spec.args.iter().map(|a| cstring(a)).collect::<Result<_>>()?;
    let env: Vec<CString> = spec.env.iter().map(|a| cstring(a)).collect::<Result<_>>()?;
    if args.is_empty() {
        return Err("no command to run".into());
    }
    // SAFETY: PID 1 is single-threaded.
    match unsafe { fork() }.map_err(|e| format!("fork: {e}"))? {
        ForkResult::Child => {
            let err = exec_command(spec, &user, &cwd, &args, &env);
            eprintln!("kiln: {}", err.0);
            std::process::exit(err.1)
        }
        ForkResult::Parent { child } => reap_until(child),
    }
}

/// Reap every process until `main` exits; return its exit code. Orphans in the
/// pid namespace are re-parented to us, so we reap them too.
fn reap_until(main: Pid) -> Result<i32> {
    loop {
        match waitpid(Pid::from_raw(-1), None) {
            Ok(WaitStatus::Exited(pid, code)) if pid == main => return Ok(code),
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == main => return Ok(128 + sig as i32),
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(format!("waiting for the command: {e}")),
        }
    }
}

fn exec_command(spec: &Spec, user: &User, cwd: &OwnedFd, args: &[CString], env: &[CString]) -> (String, i32) {
    let setup = || -> std::result::Result<(), String> {
        // A session of its own, as the command's process group leader.
        let _ = nix::unistd::setsid();
        // A user namespace with setgroups denied (rootless without subordinate
        // ids) cannot change groups; the process keeps the one group it has.
        let groups_denied = fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "deny");
        if !groups_denied {
            nix::unistd::setgroups(&user.groups).map_err(|e| format!("setgroups: {e}"))?;
        }
        drop_capabilities()?;
        nix::unistd::setresgid(user.gid, user.gid, user.gid).map_err(|e| format!("setgid {}: {e}", user.gid))?;
        nix::unistd::setresuid(user.uid, user.uid, user.uid).map_err(|e| format!("setuid {}: {e}", user.uid))?;
        // As the user, so a folder it may not enter fails here, as in docker.
        nix::unistd::fchdir(cwd.as_raw_fd()).map_err(|e| format!("chdir {}: {e}", spec.cwd))?;
        workdir::check_inside_root(&spec.cwd)?;
        // Nothing kiln (or whoever started it) has open may reach the command.
        super::close_from(3).map_err(|e| format!("closing descriptors: {e}"))?;
        // Signals PID 1 would otherwise keep blocked or ignored start at their defaults.
        for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGPIPE] {
            // SAFETY: restoring the default disposition has no handler to race with.
            let _ = unsafe { nix::sys::signal::signal(sig, nix::sys::signal::SigHandler::SigDfl) };
        }
        Ok(())
    };
    if let Err(e) = setup() {
        return (e, exit::SETUP_FAILED);
    }
    // execvpe searches the PATH of the calling process, so set ours to the command's.
    let path = spec.env.iter().find_map(|e| e.strip_prefix("PATH=")).unwrap_or(crate::DEFAULT_PATH);
    std::env::set_var("PATH", path);
    let errno = match execvpe(&args[0], args, env) {
        Err(e) => e,
        Ok(never) => match never {},
    };
    let cmd = &spec.args[0];
    match errno {
        nix::errno::Errno::ENOENT => (format!("exec {cmd:?}: executable file not found in $PATH"), exit::NOT_FOUND),
        nix::errno::Errno::EACCES | nix::errno::Errno::ENOEXEC | nix::errno::Errno::EISDIR => {
            (format!("exec {cmd:?}: permission denied or not an executable ({errno})"), exit::CANNOT_EXECUTE)
        }
        e => (format!("exec {cmd:?}: {e}"), exit::CANNOT_EXECUTE),
    }
}

fn cstring(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| format!("{s:?} holds a NUL byte"))
}

fn mnt(src: Option<&str>, target: &Path, fstype: Option<&str>, flags: MsFlags, data: Option<&str>) -> Result<()> {
    mount(src, target, fstype, flags, data)
        .map_err(|e| format!("mounting {} on {}: {e}", src.or(fstype).unwrap_or("-"), target.display()))
}

/// Mount /proc, /dev, /sys and the host's resolv.conf and hosts into the rootfs and pivot into it.
fn setup_root(spec: &Spec) -> Result<()> {
    let root = &spec.rootfs;
    mnt(None, Path::new("/"), None, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None)?;
    // pivot_root wants the new root to be a mount point of this namespace.
    mnt(Some(&root.to_string_lossy()), root, None, MsFlags::MS_BIND | MsFlags::MS_REC, None)?;

    let proc_dir = ensure_dir(root, "proc")?;
    let nosuid = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mnt(Some("proc"), &proc_dir, Some("proc"), nosuid, None)?;

    let dev = ensure_dir(root, "dev")?;
    // nodev, like every other filesystem the command can write to: a node it
    // makes with mknod (CAP_MKNOD is docker's default) cannot be opened. The
    // host nodes bound below are mounts of their own, from the host's /dev,
    // and so stay usable: this is the sandbox's device allow-list.
    mnt(Some("tmpfs"), &dev, Some("tmpfs"), nosuid, Some("mode=755,size=65536k"))?;
    // mknod is not allowed in a user namespace: bind the host's device nodes instead.
    for node in ["null", "zero", "full", "random", "urandom", "tty"] {
        let target = dev.join(node);
        fs::write(&target, b"").map_err(|e| format!("creating {}: {e}", target.display()))?;
        mnt(Some(&format!("/dev/{node}")), &target, None, MsFlags::MS_BIND, None)?;
    }
    let pts = ensure_dir(root, "dev/pts")?;
    if mnt(
        Some("devpts"),
        &pts,
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    )
    .is_ok()
    {
        let _ = symlink("pts/ptmx", dev.join("ptmx"));
    }
    let shm = ensure_dir(root, "dev/shm")?;
    mnt(Some("shm"), &shm, Some("tmpfs"), nosuid, Some("mode=1777,size=65536k"))?;
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        let _ = symlink(target, dev.join(name));
    }
    // sysfs cannot be mounted without owning the network namespace, and a user
    // namespace may only bind it with its submounts (cgroups …): so a recursive
    // bind, made read-only all the way down. Where that fails, no /sys at all.
    if let Ok(sys) = ensure_dir(root, "sys") {
        if mnt(Some("/sys"), &sys, None, MsFlags::MS_BIND | MsFlags::MS_REC, None).is_ok() && !read_only_tree(&sys) {
            let _ = umount2(&sys, MntFlags::MNT_DETACH);
        }
    }
    for file in ["resolv.conf", "hosts"] {
        let host = Path::new("/etc").join(file);
        if host.exists() {
            bind_host_file(root, &host)?;
        }
    }
    protect_proc_and_sys(root);

    // pivot_root(".", ".") stacks the old root under the new one; detaching it leaves only the new.
    chdir(root).map_err(|e| format!("chdir {}: {e}", root.display()))?;
    pivot_root(".", ".").map_err(|e| format!("pivot_root into {}: {e}", root.display()))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| format!("detaching the old root: {e}"))?;
    chdir("/").map_err(|e| format!("chdir /: {e}"))?;
    Ok(())
}

/// Make the mount at `path` and every mount below it read-only, nosuid, nodev and
/// noexec (mount_setattr with AT_RECURSIVE, Linux 5.12).
fn read_only_tree(path: &Path) -> bool {
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    const MOUNT_ATTR_RDONLY: u64 = 0x1;
    const MOUNT_ATTR_NOSUID: u64 = 0x2;
    const MOUNT_ATTR_NODEV: u64 = 0x4;
    const MOUNT_ATTR_NOEXEC: u64 = 0x8;
    const AT_RECURSIVE: libc::c_uint = 0x8000;
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let Ok(c_path) = cstring(&path.to_string_lossy()) else { return false };
    // SAFETY: a valid C string and a properly sized, initialised mount_attr.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            c_path.as_ptr(),
            AT_RECURSIVE,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    rc == 0
}

/// Bind the host's `file` read-only over the same path in the image. The path is
/// resolved inside the image (its /etc may be a symlink), so nothing is ever
/// created or mounted outside the root; an image whose path is not a regular
/// file, or cannot have one, simply goes without.
fn bind_host_file(root: &Path, file: &Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let Ok(target) = crate::fsutil::resolve_in_root(root, file) else { return Ok(()) };
    if target.symlink_metadata().is_err() {
        let Some(parent) = target.parent() else { return Ok(()) };
        if fs::create_dir_all(parent).is_err() {
            return Ok(());
        }
        // O_NOFOLLOW | O_EXCL: create exactly this file, never through a link.
        let created = fs::OpenOptions::new().write(true).create_new(true).custom_flags(libc::O_NOFOLLOW).open(&target);
        if created.is_err() {
            return Ok(());
        }
    }
    if target.symlink_metadata().is_ok_and(|m| m.is_file()) {
        mnt(Some(&file.to_string_lossy()), &target, None, MsFlags::MS_BIND, None)?;
        mnt(None, &target, None, MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY, None)?;
    }
    Ok(())
}

/// docker's read-only and masked paths. The command runs without CAP_SYS_ADMIN
/// (see [`drop_capabilities`]), so it cannot undo any of this.
fn protect_proc_and_sys(root: &Path) {
    let ro = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    for p in ["proc/sys", "proc/sysrq-trigger", "proc/irq", "proc/bus", "proc/fs"] {
        let path = root.join(p);
        if path.exists()
            && mnt(Some(&path.to_string_lossy()), &path, None, MsFlags::MS_BIND | MsFlags::MS_REC, None).is_ok()
        {
            let _ = mnt(None, &path, None, ro, None);
        }
    }
    for p in
        ["proc/kcore", "proc/keys", "proc/latency_stats", "proc/timer_list", "proc/timer_stats", "proc/sched_debug"]
    {
        let path = root.join(p);
        if path.is_file() {
            let _ = mnt(Some("/dev/null"), &path, None, MsFlags::MS_BIND, None);
        }
    }
    for p in ["proc/acpi", "proc/scsi", "sys/firmware"] {
        let path = root.join(p);
        if path.is_dir() {
            let _ = mnt(Some("tmpfs"), &path, Some("tmpfs"), MsFlags::MS_RDONLY, Some("size=0"));
        }
    }
}

/// Capabilities a RUN step or container keeps: docker's default set (numbers
/// from linux/capability.h: CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID,
/// SETUID, SETPCAP, NET_BIND_SERVICE, NET_RAW, SYS_CHROOT, MKNOD, AUDIT_WRITE,
/// SETFCAP).
const KEPT_CAPABILITIES: [i32; 14] = [0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31];

/// Drop every other capability from the bounding set, so the command (even as
/// uid 0, which as real root is the host's uid 0) can never mount, remount, load
/// modules or reach the host kernel's knobs.
fn drop_capabilities() -> std::result::Result<(), String> {
    for cap in 0..64 {
        if KEPT_CAPABILITIES.contains(&cap) {
            continue;
        }
        // SAFETY: prctl with plain integer arguments.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) } != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EINVAL) {
                break; // past the kernel's last capability
            }
            return Err(format!("dropping capability {cap}: {err}"));
        }
    }
    Ok(())
}

fn ensure_dir(root: &Path, rel: &str) -> Result<PathBuf> {
    let p = root.join(rel);
    match p.symlink_metadata() {
        Ok(m) if m.is_dir() => Ok(p),
        Ok(_) => Err(format!("/{rel} in the image is not a directory")),
        Err(_) => fs::create_dir_all(&p).map(|_| p.clone()).map_err(|e| format!("creating /{rel}: {e}")),
    }
}

/// A resolved USER.
pub(crate) struct User {
    uid: Uid,
    gid: Gid,
    groups: Vec<Gid>,
}

/// Resolve `user[:group]` against the (already pivoted) root's /etc/passwd and /etc/group.
fn resolve_user(spec: &str) -> Result<User> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user = if user.is_empty() { "0" } else { user };
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    let groups = fs::read_to_string("/etc/group").unwrap_or_default();
    let entry = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 4 && (f[0] == user || f[2] == user));
    let (uid, mut gid, name) = match (entry, user.parse::<u32>()) {
        (Some(f), _) => (
            f[2].parse().map_err(|_| format!("bad uid in /etc/passwd for {user}"))?,
            f[3].parse().unwrap_or(0),
            Some(f[0].to_owned()),
        ),
        (None, Ok(uid)) => (uid, 0, None),
        (None, Err(_)) => return Err(format!("unable to find user {user}: no matching entries in passwd file")),
    };
    if let Some(group) = group {
        let entry = groups
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.len() >= 3 && (f[0] == group || f[2] == group));
        gid = match (entry, group.parse::<u32>()) {
            (Some(f), _) => f[2].parse().map_err(|_| format!("bad gid in /etc/group for {group}"))?,
            (None, Ok(gid)) => gid,
            (None, Err(_)) => return Err(format!("unable to find group {group}: no matching entries in group file")),
        };
    }
    // Supplementary groups: those listing the user by name, as docker does.
    let mut extra: Vec<Gid> = vec![Gid::from_raw(gid)];
    if let (Some(name), None) = (&name, group) {
        for f in groups.lines().map(|l| l.split(':').collect::<Vec<_>>()) {
            if f.len() >= 4 && f[3].split(',').any(|m| m == name) {
                if let Ok(g) = f[2].parse::<u32>() {
                    extra.push(Gid::from_raw(g));
                }
            }
        }
    }
    extra.dedup();
    // 4294967295 is (uid_t)-1, which setresuid and friends take as "leave
    // unchanged": the command would go on running as root.
    if uid == u32::MAX || gid == u32::MAX {
        return Err(format!("user {spec:?}: id 4294967295 is out of range: ids go from 0 to 4294967294"));
    }
    Ok(User { uid: Uid::from_raw(uid), gid: Gid::from_raw(gid), groups: extra })
}
