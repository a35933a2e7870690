//! RUN --mount on the engine's side: each bind, cache and tmpfs mount of an
//! ExecOp turned into a host folder (or a tmpfs) the sandbox mounts, and the
//! guards that undo it. Everything a step does not keep — staged context
//! files, overlays of stages, private cache folders — lives in a guard of
//! [`Prepared`], so it is gone when the step ends, also when it fails or is
//! cancelled (the guards drop on every path out of `exec`).
//!
//! Cache mounts are folders of the store, `<root>/cache-mounts/<sha256 of
//! id>/`, kept between builds and never part of a layer (they are mounted,
//! so the step's writes there never reach its upper folder). Their sharing
//! is an flock on `<root>/cache-mounts/locks/<hex>`: `shared` steps hold it
//! shared, a `locked` step exclusively for the whole step (so two builds
//! really take turns), and a `private` step takes it exclusively only if it
//! can at once — then holds it shared like any user — and otherwise gets an
//! empty (or seeded) folder of its own for this step. `kiln prune
//! --cache-mounts` removes a folder only while it holds the lock exclusively.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kiln_frontend::{CopyFrom, CopyOp, ExecOp, MountFrom, RunMount, Sharing};
use kiln_solver::Digest;
use sha2::{Digest as _, Sha256};

use super::{Engine, EngineError, FsState};
use crate::copy::SourceRoot;
use crate::fsutil::{io_at, PathError};
use crate::sandbox::{SpecMount, SpecMountKind};
use crate::snapshot::Mount;

/// Why a RUN mount could not be prepared. Each names the mount's target.
#[derive(Debug, thiserror::Error)]
pub enum RunMountError {
    #[error("RUN --mount target={target}: source {source_path:?} is not in {from}")]
    NoSource { target: String, source_path: String, from: &'static str },
    #[error("RUN --mount target={target}: from= names no input of the step (internal error)")]
    NoInput { target: String },
    #[error("RUN --mount target={target}")]
    Copy {
        target: String,
        #[source]
        source: crate::copy::CopyError,
    },
    #[error(
        "RUN --mount: the build context changed while it was read: its files no longer match the \
         checksum of the step's cache key (build again once they stop changing)"
    )]
    ContextChanged,
    #[error(
        "RUN --mount type=cache,target={target}: waited {after} (--step-timeout) for the cache id {id:?}, \
         which another step holds (sharing=locked, or this step's is); raise --step-timeout or let the \
         other step finish"
    )]
    LockTimeout { target: String, id: String, after: String },
    #[error("RUN --mount target={target}")]
    Io {
        target: String,
        #[source]
        source: PathError,
    },
}

/// The mounts of one step, ready for the sandbox, and what undoes them.
#[derive(Default)]
pub(super) struct Prepared {
    pub(super) mounts: Vec<SpecMount>,
    /// Dropped after the step, in order: overlays unmounted, temporary
    /// folders removed, cache locks released.
    guards: Vec<Guard>,
}

enum Guard {
    Overlay(#[allow(dead_code)] Mount),
    Temp(#[allow(dead_code)] tempfile::TempDir),
    Lock(#[allow(dead_code)] fs::File),
}

/// What [`prune`] did.
#[derive(Debug, Default)]
pub struct Pruned {
    /// Each cache removed: its id and the bytes it held.
    pub removed: Vec<(String, u64)>,
    /// The ids in use by a build, left alone.
    pub busy: Vec<String>,
}

/// Remove every cache mount folder no build is using: one whose lock can be
/// taken exclusively at once. A build that starts meanwhile waits for the
/// lock, then makes the folder afresh.
pub fn prune(store: &crate::store::Store) -> Result<Pruned, RunMountError> {
    let io = |action, path: &Path| {
        let path = path.to_owned();
        move |e| RunMountError::Io { target: "-".into(), source: PathError { action, path, source: e } }
    };
    let base = cache_mounts_dir(store.root());
    let locks = base.join("locks");
    let mut pruned = Pruned::default();
    let names = match fs::read_dir(&base) {
        Ok(dir) => dir.filter_map(|e| e.ok().map(|e| e.file_name())).collect::<Vec<_>>(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(pruned),
        Err(e) => return Err(io("reading", &base)(e)),
    };
    // Only the cache folders: named by a sha256 (not `locks`, nor a folder being made).
    let is_cache =
        |n: &std::ffi::OsStr| n.len() == 64 && n.to_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_hexdigit()));
    fs::create_dir_all(&locks).map_err(io("creating", &locks))?;
    for name in names.into_iter().filter(|n| is_cache(n)) {
        let lock_path = locks.join(&name);
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io("opening", &lock_path))?;
        let id = fs::read_to_string(&lock_path)
            .ok()
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| name.to_string_lossy().into_owned());
        if fs2::FileExt::try_lock_exclusive(&lock).is_err() {
            pruned.busy.push(id);
            continue;
        }
        let dir = base.join(&name);
        if fs::symlink_metadata(&dir).is_err() {
            continue;
        }
        let bytes = walkdir::WalkDir::new(&dir)
            .into_iter()
            .filter_map(Result::ok)
            .filter_map(|e| e.metadata().ok())
            .filter(|m| m.is_file())
            .map(|m| m.len())
            .sum();
        // remove_dir_all never follows a symlink the cache holds.
        fs::remove_dir_all(&dir).map_err(io("removing", &dir))?;
        pruned.removed.push((id, bytes));
    }
    Ok(pruned)
}

/// Each cache mount folder (for `kiln system df`): its id and the bytes it
/// takes on disk.
pub fn usage(store: &crate::store::Store) -> Vec<(String, u64)> {
    let base = cache_mounts_dir(store.root());
    let Ok(dir) = fs::read_dir(&base) else { return Vec::new() };
    let mut out: Vec<(String, u64)> = dir
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(|name| {
            let id = fs::read_to_string(base.join("locks").join(&name)).ok().filter(|id| !id.is_empty());
            let bytes = crate::gc::du(&base.join(&name));
            (id.unwrap_or(name), bytes)
        })
        .collect();
    out.sort();
    out
}

/// Where cache mounts live in the store.
pub fn cache_mounts_dir(store_root: &Path) -> PathBuf {
    store_root.join("cache-mounts")
}

/// The folder name of a cache id: its sha256, so any id (with `/`, `..`) is one plain name.
pub fn cache_folder_name(id: &str) -> String {
    Digest::of(id.as_bytes()).hex().to_owned()
}

impl Engine {
    /// Turn each bind, cache and tmpfs mount of `op` into what the sandbox
    /// mounts. Secret and ssh mounts are not this module's.
    pub(super) fn prepare_mounts(
        &self,
        op: &ExecOp,
        inputs: &[FsState],
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Prepared, EngineError> {
        let mut prepared = Prepared::default();
        let caches = self.cache_folders(&mut prepared, op, inputs, cancelled)?;
        for m in &op.mounts {
            match m {
                RunMount::Bind { target, from, source, rw } => {
                    let host = self.bind_source(&mut prepared, target, from, source, *rw, inputs)?;
                    let kind = SpecMountKind::Bind { source: host, readonly: !rw };
                    prepared.mounts.push(SpecMount { target: target.clone(), kind });
                }
                RunMount::Cache { target, readonly, id, .. } => {
                    let host = caches[id.as_str()].clone();
                    let kind = SpecMountKind::Bind { source: host, readonly: *readonly };
                    prepared.mounts.push(SpecMount { target: target.clone(), kind });
                }
                RunMount::Tmpfs { target, size } => {
                    prepared
                        .mounts
                        .push(SpecMount { target: target.clone(), kind: SpecMountKind::Tmpfs { size: *size } });
                }
                RunMount::Secret { .. } | RunMount::Ssh { .. } => {}
            }
        }
        Ok(prepared)
    }

    /// The checksum of the context files the step's binds read, for its
    /// cache key: a change to a mounted file re-runs the step.
    pub(super) fn mounts_checksum(&self, op: &ExecOp) -> Result<Option<Digest>, EngineError> {
        let mut h = Sha256::new();
        let mut any = false;
        for m in &op.mounts {
            let RunMount::Bind { target, from, source, .. } = m else { continue };
            let Some(root) = self.host_source(&copy_from(from))? else { continue };
            let sum =
                self.host_checksum(root, &context_copy(from, source)).map_err(|e| copy_error(target, source, e))?;
            // Length-prefixed, so two mounts cannot read as one.
            for part in [target.as_bytes(), sum.as_str().as_bytes()] {
                h.update((part.len() as u64).to_le_bytes());
                h.update(part);
            }
            any = true;
        }
        Ok(any.then(|| Digest::from_hasher(h)))
    }

    fn bind_source(
        &self,
        prepared: &mut Prepared,
        target: &str,
        from: &MountFrom,
        source: &str,
        rw: bool,
        inputs: &[FsState],
    ) -> Result<PathBuf, EngineError> {
        if let MountFrom::Input(n) = from {
            let input = inputs.get(*n).ok_or_else(|| RunMountError::NoInput { target: target.into() })?;
            // Writable: an overlay with an upper folder of its own, thrown away with it.
            let mount = self.snapshots.mount(&input.layers, rw)?;
            let host = resolved_in(&mount.root, source, target, "the stage or image")?;
            prepared.guards.push(Guard::Overlay(mount));
            return Ok(host);
        }
        let root = self.host_source(&copy_from(from))?.expect("a host source");
        // Staged, so .dockerignore holds, nothing outside the context is
        // reachable, and writes of an `rw` bind touch only this copy.
        let stage = self.temp_dir("bind", target)?;
        let dest = stage.path().join("src");
        stage_context(root, from, source, &dest, target)?;
        prepared.guards.push(Guard::Temp(stage));
        Ok(dest)
    }

    fn temp_dir(&self, kind: &str, target: &str) -> Result<tempfile::TempDir, RunMountError> {
        let work = self.store.work_dir();
        tempfile::Builder::new()
            .prefix(&crate::store::temp_prefix(kind))
            .tempdir_in(&work)
            .map_err(|e| RunMountError::Io { target: target.into(), source: io_at("creating a folder in", &work)(e) })
    }

    /// The folder of each cache id the step mounts. One lock per id, taken
    /// in id order: a step mounting an id twice would otherwise wait on its
    /// own lock, and two steps locking X then Y and Y then X on each other.
    /// An id's mounts share its folder; the strongest `sharing` among them
    /// holds, and the first of them seeds it. The wait ends with the step's
    /// timeout (it comes before the sandbox, which has its own) or when the
    /// build is cancelled.
    fn cache_folders<'a>(
        &self,
        prepared: &mut Prepared,
        op: &'a ExecOp,
        inputs: &[FsState],
        cancelled: &dyn Fn() -> bool,
    ) -> Result<BTreeMap<&'a str, PathBuf>, EngineError> {
        let mut by_id: BTreeMap<&str, (&RunMount, Sharing)> = BTreeMap::new();
        for m in &op.mounts {
            let RunMount::Cache { id, sharing, .. } = m else { continue };
            let rank = |s: Sharing| match s {
                Sharing::Private => 0,
                Sharing::Shared => 1,
                Sharing::Locked => 2,
            };
            let entry = by_id.entry(id).or_insert((m, *sharing));
            if rank(*sharing) > rank(entry.1) {
                entry.1 = *sharing;
            }
        }
        let timeout = self.run.limits.timeout_ms;
        let deadline = timeout.map(|ms| Instant::now() + Duration::from_millis(ms));
        let mut folders = BTreeMap::new();
        for (id, (m, sharing)) in by_id {
            let wait = Wait { cancelled, deadline, timeout_ms: timeout.unwrap_or_default() };
            folders.insert(id, self.cache_folder(prepared, m, sharing, inputs, &wait)?);
        }
        Ok(folders)
    }

    /// The cache folder of `m`'s id, made (and seeded) the first time,
    /// locked as `sharing` says until the step ends.
    fn cache_folder(
        &self,
        prepared: &mut Prepared,
        m: &RunMount,
        sharing: Sharing,
        inputs: &[FsState],
        wait: &Wait<'_>,
    ) -> Result<PathBuf, EngineError> {
        let RunMount::Cache { target, id, from, source, mode, uid, gid, .. } = m else { unreachable!() };
        let io = |action, path: &Path| {
            let target = target.clone();
            let path = path.to_owned();
            move |e| RunMountError::Io { target, source: PathError { action, path, source: e } }
        };
        let base = cache_mounts_dir(self.store.root());
        let locks = base.join("locks");
        fs::create_dir_all(&locks).map_err(io("creating", &locks))?;
        let name = cache_folder_name(id);
        let lock_path = locks.join(&name);
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io("opening", &lock_path))?;
        let own = match sharing {
            Sharing::Shared => wait_for_lock(&lock, false, wait).map(|()| false),
            Sharing::Locked => wait_for_lock(&lock, true, wait).map(|()| false),
            // A busy id (anyone holding it) gives this step a folder of its own.
            Sharing::Private => match fs2::FileExt::try_lock_exclusive(&lock) {
                Ok(()) => fs2::FileExt::lock_shared(&lock).map(|()| false),
                Err(_) => wait_for_lock(&lock, false, wait).map(|()| true),
            },
        }
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::Interrupted => EngineError::Cancelled,
            std::io::ErrorKind::TimedOut => RunMountError::LockTimeout {
                target: target.clone(),
                id: id.clone(),
                after: super::exec::format_duration(wait.timeout_ms),
            }
            .into(),
            _ => io("locking", &lock_path)(e).into(),
        })?;
        // The id, for `kiln prune`'s report (folder names are its hash).
        // Written at offset 0, so two steps writing at once write the same bytes.
        if lock.metadata().is_ok_and(|m| m.len() == 0) {
            use std::os::unix::fs::FileExt as _;
            let _ = lock.write_all_at(id.as_bytes(), 0);
        }
        prepared.guards.push(Guard::Lock(lock));
        let seed = |dest: &Path| -> Result<(), EngineError> {
            fs::create_dir(dest).map_err(io("creating", dest))?;
            if let Some(from) = from {
                self.seed_cache(from, source, dest, target, inputs)?;
            }
            fs::set_permissions(dest, fs::Permissions::from_mode(*mode & 0o7777))
                .map_err(io("setting the mode of", dest))?;
            if fs::metadata(dest).is_ok_and(|md| (md.uid(), md.gid()) != (*uid, *gid)) {
                std::os::unix::fs::lchown(dest, Some(*uid), Some(*gid)).map_err(io("changing the owner of", dest))?;
            }
            Ok(())
        };
        if own {
            let tmp = self.temp_dir("cache", target)?;
            let dir = tmp.path().join("cache");
            seed(&dir)?;
            prepared.guards.push(Guard::Temp(tmp));
            return Ok(dir);
        }
        let dir = base.join(&name);
        if fs::symlink_metadata(&dir).is_err() {
            // Made aside, then renamed without replacing: two steps making it
            // at once end up with the same folder, the loser's thrown away.
            let tmp = tempfile::Builder::new()
                .prefix(&crate::store::temp_prefix("new"))
                .tempdir_in(&base)
                .map_err(io("creating a folder in", &base))?;
            let made = tmp.path().join("cache");
            seed(&made)?;
            match nix::fcntl::renameat2(None, &made, None, &dir, nix::fcntl::RenameFlags::RENAME_NOREPLACE) {
                Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
                Err(e) => return Err(io("renaming into", &dir)(std::io::Error::from(e)).into()),
            }
        }
        Ok(dir)
    }

    /// A new cache folder's first content: `source` of `from`.
    fn seed_cache(
        &self,
        from: &MountFrom,
        source: &str,
        dest: &Path,
        target: &str,
        inputs: &[FsState],
    ) -> Result<(), EngineError> {
        if let MountFrom::Input(n) = from {
            let input = inputs.get(*n).ok_or_else(|| RunMountError::NoInput { target: target.into() })?;
            let mount = self.snapshots.mount(&input.layers, false)?;
            let host = resolved_in(&mount.root, source, target, "the stage or image")?;
            return Ok(copy_tree(&host, dest, source, target)?);
        }
        let root = self.host_source(&copy_from(from))?.expect("a host source");
        let staged = dest.with_extension("seed");
        stage_context(root, from, source, &staged, target)?;
        let moved = copy_tree(&staged, dest, source, target);
        let _ = fs::remove_dir_all(&staged);
        Ok(moved?)
    }
}

/// How long a step waits for a cache lock.
struct Wait<'a> {
    cancelled: &'a dyn Fn() -> bool,
    deadline: Option<Instant>,
    /// The step timeout the deadline comes from, for the error.
    timeout_ms: u64,
}

/// Take `lock` (exclusively or shared), waiting as long as another build
/// holds it — unless the step is cancelled meanwhile (an `Interrupted`
/// error) or its timeout passes (`TimedOut`).
fn wait_for_lock(lock: &fs::File, exclusive: bool, wait: &Wait<'_>) -> std::io::Result<()> {
    loop {
        let taken =
            if exclusive { fs2::FileExt::try_lock_exclusive(lock) } else { fs2::FileExt::try_lock_shared(lock) };
        match taken {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() != fs2::lock_contended_error().kind() => return Err(e),
            Err(_) if (wait.cancelled)() => return Err(std::io::ErrorKind::Interrupted.into()),
            Err(_) if wait.deadline.is_some_and(|d| Instant::now() >= d) => {
                return Err(std::io::ErrorKind::TimedOut.into())
            }
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(50)),
        }
    }
}

fn copy_from(from: &MountFrom) -> CopyFrom {
    match from {
        MountFrom::Context => CopyFrom::Context,
        MountFrom::NamedContext(name) => CopyFrom::NamedContext(name.clone()),
        MountFrom::Input(_) => CopyFrom::Input,
    }
}

/// The COPY that reads what a bind of the context mounts.
fn context_copy(from: &MountFrom, source: &str) -> CopyOp {
    let source = if source.is_empty() { ".".to_owned() } else { source.to_owned() };
    CopyOp { from: copy_from(from), sources: vec![source], dest: "/".into(), ..Default::default() }
}

/// `source` inside the filesystem mounted at `root`, resolved as the
/// container sees it (its symlinks followed, never out of it); it must exist.
fn resolved_in(root: &Path, source: &str, target: &str, from: &'static str) -> Result<PathBuf, RunMountError> {
    let missing = || RunMountError::NoSource { target: target.into(), source_path: source.into(), from };
    let host = crate::fsutil::resolve_in_root(root, Path::new(source)).map_err(|_| missing())?;
    host.symlink_metadata().map_err(|_| missing())?;
    Ok(host)
}

/// Copy what a context bind selects (after .dockerignore) to `dest`: a
/// folder's content into the folder `dest`, a file to the file `dest`.
fn stage_context(
    root: &SourceRoot,
    from: &MountFrom,
    source: &str,
    dest: &Path,
    target: &str,
) -> Result<(), RunMountError> {
    let op = context_copy(from, source);
    let copy_err = |e| copy_error(target, source, e);
    let selected = crate::copy::select(root, &op.sources, &[]).map_err(copy_err)?;
    let Some(sel) = selected.first() else {
        return Err(RunMountError::NoSource { target: target.into(), source_path: source.into(), from: "the context" });
    };
    if !sel.is_dir {
        return copy_entry(&sel.host, dest, target);
    }
    copy_entry(&sel.host, dest, target)?;
    for (host, rel) in sel.walk().map_err(copy_err)? {
        copy_entry(&host, &dest.join(rel), target)?;
    }
    Ok(())
}

/// A COPY error in a mount's words: a missing source is the mount's, not a COPY's.
fn copy_error(target: &str, source: &str, e: crate::copy::CopyError) -> RunMountError {
    match e {
        crate::copy::CopyError::NotInContext(_) => RunMountError::NoSource {
            target: target.into(),
            source_path: source.into(),
            from: "the build context (or .dockerignore excludes it)",
        },
        e => RunMountError::Copy { target: target.into(), source: e },
    }
}

/// Seed the cache folder `dest` with `from` as COPY would: a folder's
/// content, or a file (`source` names it) into the folder; symlinks as
/// symlinks (never followed), each entry with its owner and mode.
fn copy_tree(from: &Path, dest: &Path, source: &str, target: &str) -> Result<(), RunMountError> {
    if fs::symlink_metadata(from).is_ok_and(|m| !m.is_dir()) {
        let name = Path::new(source).file_name().or(from.file_name()).unwrap_or("source".as_ref());
        return copy_entry_as(from, &dest.join(name), target, true);
    }
    for entry in walkdir::WalkDir::new(from).sort_by_file_name() {
        let entry = entry.map_err(|e| RunMountError::Io {
            target: target.into(),
            source: PathError { action: "reading", path: from.to_owned(), source: e.into() },
        })?;
        let rel = entry.path().strip_prefix(from).unwrap_or(Path::new(""));
        let to = if rel.as_os_str().is_empty() { dest.to_owned() } else { dest.join(rel) };
        if to == dest && dest.is_dir() {
            continue;
        }
        copy_entry_as(entry.path(), &to, target, true)?;
    }
    Ok(())
}

/// One file, folder or symlink, with its permission bits.
fn copy_entry(host: &Path, to: &Path, target: &str) -> Result<(), RunMountError> {
    copy_entry_as(host, to, target, false)
}

/// [`copy_entry`], also with its owner when `owner` says so.
fn copy_entry_as(host: &Path, to: &Path, target: &str, owner: bool) -> Result<(), RunMountError> {
    let io = |action, path: &Path| {
        let path = path.to_owned();
        move |e| RunMountError::Io { target: target.into(), source: PathError { action, path, source: e } }
    };
    let meta = fs::symlink_metadata(host).map_err(io("reading", host))?;
    let ft = meta.file_type();
    if ft.is_dir() {
        fs::create_dir(to).map_err(io("creating", to))?;
    } else if ft.is_symlink() {
        let link = fs::read_link(host).map_err(io("reading", host))?;
        std::os::unix::fs::symlink(link, to).map_err(io("creating", to))?;
        if owner {
            std::os::unix::fs::lchown(to, Some(meta.uid()), Some(meta.gid()))
                .map_err(io("changing the owner of", to))?;
        }
        return Ok(());
    } else if ft.is_file() {
        fs::copy(host, to).map_err(io("copying to", to))?;
    } else {
        // Sockets, fifos and devices are not part of what a context sends.
        return Ok(());
    }
    // Before the mode: a chown clears setuid and setgid bits.
    if owner {
        std::os::unix::fs::lchown(to, Some(meta.uid()), Some(meta.gid())).map_err(io("changing the owner of", to))?;
    }
    fs::set_permissions(to, fs::Permissions::from_mode(meta.mode() & 0o7777)).map_err(io("setting the mode of", to))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_ids_become_one_plain_name() {
        for id in ["/root/.cache", "../../etc", "a", ""] {
            let name = cache_folder_name(id);
            assert_eq!(name.len(), 64, "{id}");
            assert!(name.chars().all(|c| c.is_ascii_hexdigit()), "{id}");
        }
        assert_ne!(cache_folder_name("a"), cache_folder_name("b"));
    }

    #[test]
    fn a_tree_is_copied_with_its_symlinks_unfollowed() {
        let dir = tempfile::tempdir().unwrap();
        let (from, to) = (dir.path().join("from"), dir.path().join("to"));
        fs::create_dir_all(from.join("d")).unwrap();
        fs::write(from.join("d/f"), "x").unwrap();
        fs::set_permissions(from.join("d/f"), fs::Permissions::from_mode(0o751)).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", from.join("l")).unwrap();
        fs::create_dir(&to).unwrap();
        copy_tree(&from, &to, "src", "/t").unwrap();
        assert_eq!(fs::read_to_string(to.join("d/f")).unwrap(), "x");
        assert_eq!(fs::metadata(to.join("d/f")).unwrap().mode() & 0o7777, 0o751);
        assert_eq!(fs::read_link(to.join("l")).unwrap(), Path::new("/etc/passwd"));
    }
}
