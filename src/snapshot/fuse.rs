//! fuse-overlayfs: the overlay in user space, for kernels that refuse
//! overlayfs in a user namespace.
//!
//! The daemon runs in the foreground as kiln's child, in kiln's private mount
//! namespace, so its mount is seen by kiln (and the sandboxes it starts) only.
//! A FUSE daemon keeps that namespace alive for as long as it runs, and it
//! runs for as long as its mount exists — so nothing would ever end it if kiln
//! died. It therefore gets `PR_SET_PDEATHSIG`: killed with its parent. The
//! kernel ties that signal to the parent *thread*, and the solver's worker
//! threads come and go, so every daemon is started from one thread that lives
//! as long as kiln ([`spawn`]).

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use nix::mount::{umount2, MntFlags};

/// statfs's type of a FUSE filesystem.
const FUSE_SUPER_MAGIC: i64 = 0x6573_5546;

/// How long the daemon may take to mount.
const MOUNT_TIMEOUT: Duration = Duration::from_secs(20);

/// Why fuse-overlayfs did not mount.
#[derive(Debug, thiserror::Error)]
pub enum FuseError {
    #[error("fuse-overlayfs is not usable: {0}")]
    Unavailable(String),
    #[error("starting {0}")]
    Spawn(PathBuf, #[source] std::io::Error),
    #[error("fuse-overlayfs failed to mount {target}: {stderr}")]
    Failed { target: PathBuf, stderr: String },
    #[error("fuse-overlayfs did not mount {0} within {MOUNT_TIMEOUT:?}")]
    Timeout(PathBuf),
}

/// A running fuse-overlayfs and its mount.
pub(super) struct Daemon {
    child: Child,
    target: PathBuf,
    unmounted: bool,
}

impl Daemon {
    /// Mount an overlay of `lowers` (top first) at `target`, with `upper` and
    /// `work` when writable.
    pub(super) fn mount(lowers: &[String], upper: Option<(&Path, &Path)>, target: &Path) -> Result<Self, FuseError> {
        let exe = super::probe::fuse_overlayfs().map_err(FuseError::Unavailable)?;
        // allow_other: the step's processes run as other users than kiln;
        // default_permissions: the kernel checks file modes, as on any filesystem.
        let mut options = format!("lowerdir={},allow_other,default_permissions,nodev", lowers.join(":"));
        if let Some((upper, work)) = upper {
            options.push_str(&format!(",upperdir={},workdir={}", super::escape(upper), super::escape(work)));
        }
        let mut cmd = Command::new(&exe);
        cmd.arg("-f").arg("-o").arg(options).arg(target);
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        // SAFETY: prctl only, between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = spawn(cmd).map_err(|e| FuseError::Spawn(exe, e))?;
        let mut daemon = Daemon { child, target: target.to_owned(), unmounted: false };
        daemon.wait_mounted()?;
        Ok(daemon)
    }

    fn wait_mounted(&mut self) -> Result<(), FuseError> {
        let start = Instant::now();
        loop {
            if is_fuse(&self.target) {
                return Ok(());
            }
            if let Ok(Some(_)) = self.child.try_wait() {
                let mut stderr = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    let _ = e.read_to_string(&mut stderr);
                }
                self.unmounted = true;
                return Err(FuseError::Failed { target: self.target.clone(), stderr: stderr.trim().to_owned() });
            }
            if start.elapsed() > MOUNT_TIMEOUT {
                return Err(FuseError::Timeout(self.target.clone()));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Unmount and wait for the daemon to end, so everything written through
    /// the mount is in the upper folder.
    pub(super) fn unmount(&mut self) {
        if self.unmounted {
            return;
        }
        self.unmounted = true;
        let _ = umount2(&self.target, MntFlags::MNT_DETACH);
        // The daemon ends when its filesystem is gone; a stuck one is killed.
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.unmount();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// f_type is i64 on x86_64 but narrower elsewhere: the cast is needed there.
#[allow(clippy::unnecessary_cast)]
fn is_fuse(path: &Path) -> bool {
    nix::sys::statfs::statfs(path).is_ok_and(|s| s.filesystem_type().0 as i64 == FUSE_SUPER_MAGIC)
}

type Request = (Command, mpsc::Sender<std::io::Result<Child>>);

/// Spawn `cmd` from kiln's one long-lived spawner thread (see the module docs).
fn spawn(cmd: Command) -> std::io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Request>>> = OnceLock::new();
    let sender = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Request>();
        std::thread::Builder::new()
            .name("kiln-fuse-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("starting a thread");
        Mutex::new(tx)
    });
    let (tx, rx) = mpsc::channel();
    let sent = sender.lock().unwrap_or_else(|e| e.into_inner()).send((cmd, tx));
    sent.map_err(|_| std::io::Error::other("the spawner thread is gone"))?;
    rx.recv().map_err(|_| std::io::Error::other("the spawner thread is gone"))?
}
