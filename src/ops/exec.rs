//! RUN: the command in the sandbox, on a writable overlay of the base's
//! layers; what it changed (the overlay's upper folder) becomes the new layer.

use std::collections::VecDeque;
use std::fs;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use kiln_frontend::{ExecOp, Shortened};
use kiln_solver::ExecContext;
use nix::fcntl::OFlag;

use super::{Engine, EngineError, FsState};
use crate::layer::{diff, LayerWriter};
use crate::sandbox::{Spec, Stdio};

/// How many lines of a failed RUN's output the error shows.
const TAIL_LINES: usize = 12;

/// The last lines of a failed RUN's output, as the error shows them.
pub(super) fn tail_text(tail: &[String]) -> String {
    if tail.is_empty() {
        return String::new();
    }
    let mut s = String::from("\n  last lines of its output:");
    for l in tail {
        s.push_str("\n  | ");
        s.push_str(l);
    }
    s
}

impl Engine {
    pub(super) fn exec(&self, ctx: &ExecContext, op: &ExecOp, inputs: &[FsState]) -> Result<FsState, EngineError> {
        let base = &inputs[0];
        let mount = self.snapshots.mount(&base.layers, true)?;
        let made = MountPoints::before(&mount.root);
        let mut env = op.env.clone();
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.insert(0, format!("PATH={}", crate::DEFAULT_PATH));
        }
        let spec = Spec {
            rootfs: mount.root.clone(),
            args: op.args.clone(),
            env,
            cwd: if op.cwd.is_empty() { "/".into() } else { op.cwd.clone() },
            user: op.user.clone(),
            hostname: ctx.key().0.hex()[..12].to_owned(),
        };
        let mut tail: VecDeque<String> = VecDeque::with_capacity(TAIL_LINES);
        let mut sink = |line: &str| {
            if tail.len() == TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(line.to_owned());
            ctx.log(line);
        };
        let code = self.sandbox.run(&spec, Stdio::Capture(&mut sink), &|| ctx.is_cancelled())?;
        if ctx.is_cancelled() {
            return Err(EngineError::Cancelled);
        }
        if code != 0 {
            let command = Shortened::new(&op.args.join(" ")).quoted();
            return Err(EngineError::RunFailed { command, code, tail: tail.into() });
        }
        let upper = mount.upper.clone().expect("a writable mount has an upper dir");
        made.clean(&upper);
        let mut writer = LayerWriter::new(&self.store)?;
        diff::write_upper(&upper, writer.tar())?;
        let layer = writer.finish()?;
        drop(mount);
        Ok(base.with(layer))
    }
}

/// The files the sandbox bind-mounts over, and had to create when the image
/// lacks them. Created only so something could be mounted there, they must not
/// end up in the layer — nor the folders their creation copied up.
struct MountPoints(Vec<PathBuf>);

impl MountPoints {
    const FILES: [&'static str; 2] = ["/etc/resolv.conf", "/etc/hosts"];
    const DIRS: [&'static str; 4] = ["etc", "proc", "dev", "sys"];

    fn before(root: &Path) -> Self {
        // Resolved the way the sandbox resolves them (the image's /etc may be a link).
        let missing = Self::FILES
            .into_iter()
            .filter_map(|p| crate::fsutil::resolve_in_root(root, Path::new(p)).ok())
            .filter(|p| p.symlink_metadata().is_err())
            .filter_map(|p| p.strip_prefix(root).ok().map(Path::to_owned))
            .collect();
        Self(missing)
    }

    /// Remove the mount points the sandbox made, and the folders made only to
    /// hold them, from `upper`. The step could have replaced any of these
    /// paths with a symlink to a host folder, so every lookup goes from a
    /// descriptor of `upper` and follows no symlink: such a path is left alone.
    fn clean(&self, upper: &Path) {
        use nix::sys::stat::{fstatat, SFlag};
        use nix::unistd::{unlinkat, UnlinkatFlags};
        use std::os::fd::AsFd;
        use xattr::FileExt;
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY;
        let Ok(root) = open_beneath_path(upper, flags) else { return };
        for p in &self.0 {
            let (Some(parent), Some(name)) = (p.parent(), p.file_name()) else { continue };
            let Ok(dir) = crate::fsutil::open_beneath(root.as_fd(), parent, flags) else { continue };
            let st = fstatat(Some(dir.as_raw_fd()), name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW);
            if st.is_ok_and(|st| {
                SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG && st.st_size == 0
            }) {
                let _ = unlinkat(Some(dir.as_raw_fd()), name, UnlinkatFlags::NoRemoveDir);
            }
        }
        for d in Self::DIRS {
            let Ok(dir) = crate::fsutil::open_beneath(root.as_fd(), Path::new(d), OFlag::O_RDONLY | OFlag::O_DIRECTORY)
            else {
                continue;
            };
            let dir = fs::File::from(dir);
            let opaque = crate::layer::overlay::OPAQUE_XATTRS.iter().any(|a| dir.get_xattr(a).ok().flatten().is_some());
            if !opaque {
                // Fails, as it should, unless empty.
                let _ = unlinkat(Some(root.as_raw_fd()), d, UnlinkatFlags::RemoveDir);
            }
        }
    }
}

/// Open the folder `path` itself, refusing a symlink.
fn open_beneath_path(path: &Path, flags: OFlag) -> nix::Result<std::os::fd::OwnedFd> {
    let fd = nix::fcntl::open(path, flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())?;
    // SAFETY: open returned a new descriptor that nothing else owns.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) })
}
