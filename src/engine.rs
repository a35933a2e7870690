//! The engine: kiln's implementation of the solver's `Executor` — what FROM, COPY
//! and RUN actually do, over the store, snapshots and the sandbox.

use std::collections::VecDeque;
use std::fs;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;

use kiln_frontend::{CopyFrom, ExecOp, Op};
use kiln_solver::{CacheKey, Digest, ExecContext, Executor};
use oci_spec::image::ImageManifest;
use serde::{Deserialize, Serialize};

use crate::copy::{self, CopyError, SourceRoot};
use crate::layer::{diff, Layer, LayerError, LayerWriter};
use crate::sandbox::{Sandbox, SandboxError, Spec, Stdio};
use crate::snapshot::{SnapshotError, Snapshotter};
use crate::store::{Store, StoreError};

/// How many lines of a failed RUN's output the error shows.
const TAIL_LINES: usize = 12;

/// The result of a vertex: a filesystem as a stack of layers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FsState {
    /// Bottom first.
    pub layers: Vec<Layer>,
    /// When the newest layer was made (RFC 3339). Kept in the cache, so an image
    /// rebuilt from cache gets the same config, and the same digest.
    pub created: Option<String>,
}

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("process {command:?} did not complete successfully: exit code: {code}{}", tail_text(.tail))]
    RunFailed { command: String, code: i32, tail: Vec<String> },
    #[error("the step was cancelled because another step failed")]
    Cancelled,
    #[error(transparent)]
    Copy(#[from] CopyError),
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("image {0}: {1}")]
    BadImage(String, String),
    #[error("COPY from the build context, but this build has no context")]
    NoContext,
}

fn tail_text(tail: &[String]) -> String {
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

/// What the engine needs to run a build's steps.
pub struct Engine {
    store: Store,
    snapshots: Snapshotter,
    sandbox: Sandbox,
    context: Option<SourceRoot>,
}

impl Engine {
    pub fn new(store: &Store, context: Option<SourceRoot>) -> Result<Self, EngineError> {
        let exe = std::env::current_exe().map_err(SandboxError::Spawn)?;
        Ok(Self {
            store: store.clone(),
            snapshots: Snapshotter::new(store),
            sandbox: Sandbox::new(&exe, &store.work_dir()),
            context,
        })
    }

    /// Re-execute `exe` as the sandbox (`kiln __sandbox`) instead of this
    /// process's own executable, which is not kiln when kiln is a library.
    pub fn with_sandbox_exe(mut self, exe: &Path) -> Self {
        self.sandbox = Sandbox::new(exe, &self.store.work_dir());
        self
    }

    fn cache_path(&self, key: &CacheKey) -> PathBuf {
        self.store.cache_dir().join(format!("{}.json", key.0.hex()))
    }

    fn context(&self) -> Result<&SourceRoot, EngineError> {
        self.context.as_ref().ok_or(EngineError::NoContext)
    }

    fn image(&self, name: &str, digest: &str) -> Result<FsState, EngineError> {
        image_state(&self.store, name, digest)
    }

    fn copy(&self, op: &kiln_frontend::CopyOp, inputs: &[FsState]) -> Result<FsState, EngineError> {
        let base = &inputs[0];
        let base_mount = (!base.layers.is_empty()).then(|| self.snapshots.mount(&base.layers, false)).transpose()?;
        let source_mount;
        let from = match op.from {
            CopyFrom::Context => self.context()?.clone(),
            CopyFrom::Input => {
                let src = inputs.get(1).cloned().unwrap_or_default();
                source_mount = self.snapshots.mount(&src.layers, false)?;
                SourceRoot::Fs { root: source_mount.root.clone() }
            }
        };
        let mut writer = LayerWriter::new(&self.store)?;
        copy::write_layer(op, base_mount.as_ref().map(|m| m.root.as_path()), &from, writer.tar())?;
        let layer = writer.finish()?;
        Ok(stack(base, layer))
    }

    fn exec(&self, ctx: &ExecContext, op: &ExecOp, inputs: &[FsState]) -> Result<FsState, EngineError> {
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
            return Err(EngineError::RunFailed { command: op.args.join(" "), code, tail: tail.into() });
        }
        let upper = mount.upper.clone().expect("a writable mount has an upper dir");
        made.clean(&upper);
        let mut writer = LayerWriter::new(&self.store)?;
        diff::write_upper(&upper, writer.tar())?;
        let layer = writer.finish()?;
        drop(mount);
        Ok(stack(base, layer))
    }
}

/// The filesystem of the image whose manifest is `digest`.
pub fn image_state(store: &Store, name: &str, digest: &str) -> Result<FsState, EngineError> {
    let bad = |why: String| EngineError::BadImage(name.to_owned(), why);
    let digest: Digest = digest.parse().map_err(|e: kiln_solver::DigestError| bad(e.to_string()))?;
    let manifest: ImageManifest = store.read_json("manifest", &digest)?;
    let config_digest: Digest =
        manifest.config().digest().to_string().parse().map_err(|e: kiln_solver::DigestError| bad(e.to_string()))?;
    let config = store.read_image_config(&config_digest)?;
    let diff_ids = config.rootfs().diff_ids();
    if diff_ids.len() != manifest.layers().len() {
        return Err(bad(format!("{} layers but {} diff_ids", manifest.layers().len(), diff_ids.len())));
    }
    let layers = manifest
        .layers()
        .iter()
        .zip(diff_ids)
        .map(|(l, diff_id)| {
            Ok(Layer {
                digest: l.digest().to_string().parse().map_err(|e: kiln_solver::DigestError| bad(e.to_string()))?,
                diff_id: diff_id.parse().map_err(|e: kiln_solver::DigestError| bad(e.to_string()))?,
                size: l.size(),
            })
        })
        .collect::<Result<_, EngineError>>()?;
    Ok(FsState { layers, created: config.created().clone() })
}

fn stack(base: &FsState, layer: Layer) -> FsState {
    let mut layers = base.layers.clone();
    layers.push(layer);
    FsState { layers, created: Some(crate::image::now_rfc3339()) }
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
            let opaque = ["user.overlay.opaque", "trusted.overlay.opaque"]
                .iter()
                .any(|a| dir.get_xattr(a).ok().flatten().is_some());
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

impl Executor for Engine {
    type Op = Op;
    type Output = FsState;
    type Error = EngineError;

    fn content_checksum(&self, op: &Op) -> Result<Option<Digest>, EngineError> {
        match op {
            Op::Copy(c) if c.from == CopyFrom::Context => Ok(Some(copy::checksum(self.context()?, &c.sources)?)),
            _ => Ok(None),
        }
    }

    fn load(&self, key: &CacheKey, _op: &Op) -> Result<Option<FsState>, EngineError> {
        let Ok(bytes) = fs::read(self.cache_path(key)) else { return Ok(None) };
        // An unreadable entry or one whose blobs are gone is a miss, not an error.
        let Ok(state) = serde_json::from_slice::<FsState>(&bytes) else { return Ok(None) };
        Ok(state.layers.iter().all(|l| self.store.has_blob(&l.digest)).then_some(state))
    }

    fn execute(&self, ctx: &ExecContext, op: &Op, inputs: &[FsState]) -> Result<FsState, EngineError> {
        match op {
            Op::Scratch => Ok(FsState::default()),
            Op::Image { name, digest } => self.image(name, digest),
            Op::Copy(c) => self.copy(c, inputs),
            Op::Exec(e) => self.exec(ctx, e, inputs),
        }
    }

    fn save(&self, key: &CacheKey, output: &FsState) -> Result<(), EngineError> {
        let bytes = serde_json::to_vec(output).expect("a state serialises");
        crate::store::write_atomic(&self.cache_path(key), &bytes)?;
        Ok(())
    }
}
