//! Snapshots: every layer is extracted once into `snapshots/<diffID hex>/`, and a
//! filesystem made of layers is an overlayfs mount with those folders as lower
//! dirs — plus a fresh upper dir when it is writable, which then holds exactly
//! the changes made through the mount. Where the kernel refuses overlayfs (some
//! rootless set-ups) fuse-overlayfs mounts the same folders, and without it the
//! copy snapshotter copies the layers instead ([`probe`] chooses; [`copy`]).
//! All three give the same layers for the same steps.
//!
//! Mounts are made in kiln's private mount namespace (see `main`), so one that is
//! not unmounted (a crash, a kill) vanishes with the process instead of leaking
//! (fuse-overlayfs's daemon dies with kiln: see [`fuse`]).
//!
//! The mount options (`lowerdir=a:b:…`) must fit in one page (the kernel copies
//! the mount data into a single page and cuts it there), and a snapshot's own
//! path, `<root>/snapshots/<64 hex>`, is ~90 bytes: ~41 layers would fill it.
//! So, like docker's overlay2 (`l/<short id>`), every snapshot also gets a short
//! symlink `snapshots/l/<12 hex of its diffID>` → `../<diffID hex>`, and mounts
//! list those: ~40 bytes a layer with `/var/lib/kiln`, so ~100 layers (~70 for a
//! rootless `/home/<user>/.local/share/kiln`; docker allows 127). A stack that
//! still does not fit fails with an error saying so.

use std::fs;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use tempfile::TempDir;

use crate::layer::{diff, extract, Layer, LayerError};
use crate::sandbox::rootfs::MountPoints;
use crate::store::Store;

mod copy;
pub mod direct;
mod fuse;
pub mod probe;

pub use fuse::FuseError;
pub use probe::{Choice, Kind};

/// Errors of snapshots and mounts.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(transparent)]
    Io(#[from] crate::fsutil::PathError),
    #[error("extracting layer {0}")]
    Extract(String, #[source] LayerError),
    #[error(
        "cannot mount {layers} layers: their overlay mount options take {len} bytes, more than the \
         kernel's limit of {limit} (one page); with the store at {root} about {fit} layers fit \
         (use fewer layers, or a store root with a shorter path)"
    )]
    TooManyLayers { layers: usize, len: usize, limit: usize, fit: usize, root: PathBuf },
    #[error("the short link {link} of snapshot {snapshot} points to {target} instead")]
    LinkCollision { link: PathBuf, snapshot: String, target: PathBuf },
    #[error("mounting an overlay of {layers} layer(s) on {target} (KILN_SNAPSHOTTER=fuse-overlayfs or copy avoids the kernel's overlayfs)")]
    Mount {
        layers: usize,
        target: PathBuf,
        #[source]
        source: nix::errno::Errno,
    },
    #[error(transparent)]
    Fuse(#[from] FuseError),
    #[error("writing the changes as a layer")]
    Diff(#[source] LayerError),
    #[error(transparent)]
    Choice(#[from] probe::UnknownSnapshotter),
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> SnapshotError {
    crate::fsutil::io_at(action, path)
}

/// Extracts layers and mounts them.
#[derive(Clone)]
pub struct Snapshotter {
    store: Store,
}

/// A filesystem made of layers: always a real folder at `root`; unmounted and
/// removed on drop.
pub struct Mount {
    /// Where the filesystem is (mounted, or copied).
    pub root: PathBuf,
    /// The upper dir of a writable overlay: the changes. None for a copy.
    pub upper: Option<PathBuf>,
    backing: Backing,
    /// Removed, once unmounted, off the step's path (see [`crate::store::trash`]).
    dir: Option<TempDir>,
}

/// What makes a [`Mount`]'s folder, and so how its changes are found.
enum Backing {
    Kernel,
    /// The daemon, and the lower folders (for [`diff::write_fuse_upper`]).
    Fuse(fuse::Daemon, Vec<PathBuf>),
    /// A copy, with what it held before when it is writable.
    Copy(Option<copy::Baseline>),
}

impl Mount {
    /// Write what changed in this writable filesystem to `out`, as an OCI
    /// layer, leaving out the mount points `made` the sandbox had to create.
    /// A fuse-overlayfs mount is unmounted first, so its daemon has written
    /// everything. Times later than `epoch` (`SOURCE_DATE_EPOCH`) are written
    /// as `epoch`.
    pub fn write_diff<W: std::io::Write>(
        &mut self,
        made: &MountPoints,
        out: &mut tar::Builder<W>,
        epoch: Option<u64>,
    ) -> Result<(), SnapshotError> {
        match &mut self.backing {
            Backing::Kernel => {
                let upper = self.upper.as_ref().expect("a writable overlay has an upper dir");
                made.clean(upper);
                diff::write_upper(upper, out, epoch).map_err(SnapshotError::Diff)
            }
            Backing::Fuse(daemon, lowers) => {
                daemon.unmount();
                let upper = self.upper.as_ref().expect("a writable overlay has an upper dir");
                made.clean(upper);
                diff::write_fuse_upper(upper, lowers, out, epoch).map_err(SnapshotError::Diff)
            }
            Backing::Copy(baseline) => {
                let baseline = baseline.as_ref().expect("a writable copy has a baseline");
                made.clean_copy(&self.root);
                baseline.write_diff(&self.root, out, epoch).map_err(SnapshotError::Diff)
            }
        }
    }
}

impl Mount {
    /// Unmount a kernel overlay now rather than when dropped, so its upper
    /// folder can become a snapshot (see [`Snapshotter::upper_tee`]).
    pub fn unmount(&mut self) {
        if matches!(self.backing, Backing::Kernel) {
            let _ = umount2(&self.root, MntFlags::MNT_DETACH);
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        match &mut self.backing {
            Backing::Kernel => {
                let _ = umount2(&self.root, MntFlags::MNT_DETACH);
            }
            Backing::Fuse(daemon, _) => daemon.unmount(),
            Backing::Copy(_) => {}
        }
        if let Some(dir) = self.dir.take() {
            crate::store::trash::remove_later(dir.keep());
        }
    }
}

impl Snapshotter {
    pub fn new(store: &Store) -> Self {
        Self { store: store.clone() }
    }

    /// The folder holding `layer` extracted, extracting it the first time.
    pub fn ensure(&self, layer: &Layer) -> Result<PathBuf, SnapshotError> {
        let dir = self.store.snapshots_dir().join(layer.diff_id.hex());
        if dir.is_dir() {
            return Ok(dir);
        }
        // Extract beside it and rename, so a snapshot folder is always complete;
        // a concurrent extraction of the same layer loses the rename harmlessly.
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{}", crate::store::temp_prefix("extract")))
            .tempdir_in(self.store.snapshots_dir())
            .map_err(io("creating a folder in", &self.store.snapshots_dir()))?;
        let blob = self.store.blob_path(&layer.digest);
        extract::apply_blob(&blob, tmp.path(), layer.digest.as_str())
            .map_err(|e| SnapshotError::Extract(layer.digest.to_string(), e))?;
        match fs::rename(tmp.path(), &dir) {
            Ok(()) => {
                let _ = tmp.keep();
            }
            Err(_) if dir.is_dir() => {}
            Err(e) => return Err(io("renaming into", &dir)(e)),
        }
        Ok(dir)
    }

    /// A tee that makes the upper folder of `mount`, a writable kernel
    /// overlay, the snapshot of the layer written from it (see [`direct`]);
    /// the mount must be [unmounted](Mount::unmount) before the layer is
    /// finished. fuse-overlayfs and copies give `None`: their layers are
    /// extracted when first mounted (fuse-overlayfs's upper folder has its
    /// own markers, a copy has no upper folder).
    pub fn upper_tee(&self, mount: &Mount) -> Option<direct::Tee> {
        match (&mount.backing, &mount.upper) {
            (Backing::Kernel, Some(upper)) => Some(direct::Tee::upper(&self.store, upper)),
            _ => None,
        }
    }

    /// The short path of `layer`'s snapshot (see [`short_link`]), extracting it
    /// the first time. Snapshots extracted before links existed get theirs here,
    /// when first mounted.
    fn short_path(&self, layer: &Layer) -> Result<PathBuf, SnapshotError> {
        self.ensure(layer)?;
        short_link(&self.store.snapshots_dir(), layer.diff_id.hex())
    }

    /// The snapshotter this process uses (probed once; see [`probe`]).
    pub fn choice(&self) -> Result<Choice, SnapshotError> {
        Ok(probe::choose(&self.store.work_dir())?)
    }

    /// Mount `layers` (bottom first). Writable mounts get an upper dir (or,
    /// copied, a baseline to compare with).
    pub fn mount(&self, layers: &[Layer], writable: bool) -> Result<Mount, SnapshotError> {
        self.mount_at(layers, writable, None, true)
    }

    /// A writable filesystem of `layers` whose folders (the changes, the
    /// mount point) are in `dir`, made when missing and kept when it is
    /// unmounted: a container's, which `kiln start` mounts again with its
    /// changes. Never `volatile`: that upper folder is mounted again.
    pub fn mount_kept(&self, layers: &[Layer], dir: &Path) -> Result<Mount, SnapshotError> {
        self.mount_at(layers, true, Some(dir), false)
    }

    /// As [`Snapshotter::mount_kept`], for a container removed when it ends
    /// (`--rm`): its upper folder is never mounted again, so the mount is
    /// `volatile` (see [`VOLATILE`]) and its unmount does not sync the disk.
    pub fn mount_kept_once(&self, layers: &[Layer], dir: &Path) -> Result<Mount, SnapshotError> {
        self.mount_at(layers, true, Some(dir), true)
    }

    fn mount_at(
        &self,
        layers: &[Layer],
        writable: bool,
        kept: Option<&Path>,
        volatile: bool,
    ) -> Result<Mount, SnapshotError> {
        // Unsettled, the kernel's overlay is tried first (see `probe`).
        let settled = probe::settled()?;
        let kind = settled.as_ref().map_or(Kind::Overlay, |c| c.kind);
        if kind == Kind::Copy {
            return self.copy(layers, writable, kept);
        }
        // The short links, not the snapshot folders: the options must fit in a page.
        // overlayfs lists the top layer first, and refuses a folder listed twice
        // (ELOOP) — which a stack holds whenever two steps made the same layer,
        // e.g. two RUNs that changed nothing. Keeping only the topmost copy gives
        // the same view: everything the lower copy holds, the upper one holds too.
        let mut seen = std::collections::HashSet::new();
        let mut lowers = layers
            .iter()
            .rev()
            .filter(|l| seen.insert(&l.diff_id))
            .map(|l| self.short_path(l))
            .collect::<Result<Vec<_>, _>>()?;
        let (base, dir) = self.base(kept, "mnt")?;
        let root = base.join("merged");
        let empty = base.join("empty");
        for d in [&root, &empty] {
            create(d)?;
        }
        // An empty bottom layer: overlayfs needs two lower dirs when it has no upper
        // dir, and one when the stack is empty (FROM scratch).
        lowers.push(empty);
        let lower_dirs = lowers;
        let lowers: Vec<String> = lower_dirs.iter().map(|p| escape(p)).collect();
        let lowerdir = lowers.join(":");
        // userxattr: opaque-dir markers live in user.overlay.* xattrs, the only ones
        // an overlay mounted inside a user namespace (rootless) can use, so every
        // mount — and every extracted snapshot — agrees on one format.
        let mut data = format!("lowerdir={lowerdir},userxattr");
        let mut upper = None;
        if writable {
            let (u, w) = (base.join("upper"), base.join("work"));
            for d in [&u, &w] {
                create(d)?;
            }
            data.push_str(&format!(",upperdir={},workdir={}", escape(&u), escape(&w)));
            if volatile_works() && volatile {
                data.push_str(VOLATILE);
            }
            upper = Some(u);
        }
        // fuse-overlayfs takes its options from its command line: no page limit.
        if kind == Kind::FuseOverlayfs {
            let work = base.join("work");
            let daemon = fuse::Daemon::mount(&lowers, upper.as_deref().map(|u| (u, work.as_path())), &root)?;
            return Ok(Mount { root, upper, backing: Backing::Fuse(daemon, lower_dirs), dir });
        }
        // The kernel copies the options into one page and cuts them at its last
        // byte (it must hold the NUL), so longer options would reach overlayfs cut
        // short: a bare EINVAL, or a mount of fewer layers. Say what is wrong instead.
        let limit = page_size() - 1;
        if data.len() > limit {
            // Too long for the kernel's overlay, not for what a probe may choose instead.
            if settled.is_none() && self.choice()?.kind != Kind::Overlay {
                drop(dir);
                return self.mount_at(layers, writable, kept, volatile);
            }
            let stacked = &lowers[..lowers.len() - 1]; // all but the empty bottom
            let layer_bytes: usize = stacked.iter().map(|l| l.len() + 1).sum();
            let widest = stacked.iter().map(|l| l.len() + 1).max().unwrap_or(1);
            let fixed = data.len() - layer_bytes;
            return Err(SnapshotError::TooManyLayers {
                layers: layers.len(),
                len: data.len(),
                limit,
                fit: limit.saturating_sub(fixed) / widest,
                root: self.store.root().to_owned(),
            });
        }
        // nodev: a layer may hold device nodes (a block node 7:0 is the host's
        // /dev/loop0); they stay files to list and copy, never devices to open.
        // The sandbox's bind mount of this root keeps the flag, locked, since
        // it is made in a user namespace.
        let flags = if writable { MsFlags::MS_NODEV } else { MsFlags::MS_RDONLY | MsFlags::MS_NODEV };
        match mount_overlay(&root, flags, &data) {
            Ok(()) => {
                // Only a writable mount answers what the probe asks: a kernel
                // may stack read-only layers and still refuse an upper folder.
                if settled.is_none() && writable {
                    probe::overlay_mounted();
                }
                Ok(Mount { root, upper, backing: Backing::Kernel, dir })
            }
            // The kernel refused this first try: what the probe chooses
            // instead, unless it finds overlay mounts after all (then this
            // mount's own failure is the error).
            Err(_) if settled.is_none() && self.choice()?.kind != Kind::Overlay => {
                drop(dir);
                self.mount_at(layers, writable, kept, volatile)
            }
            Err(source) => Err(SnapshotError::Mount { layers: layers.len(), target: root.clone(), source }),
        }
    }

    /// The copy snapshotter's "mount": the layers applied one over the other
    /// into a folder of its own.
    fn copy(&self, layers: &[Layer], writable: bool, kept: Option<&Path>) -> Result<Mount, SnapshotError> {
        let (base, dir) = self.base(kept, "copy")?;
        let root = base.join("merged");
        // A kept copy is the container's filesystem itself: filled once.
        let filled = base.join("filled");
        if kept.is_some() && filled.exists() {
            return Ok(Mount { root, upper: None, backing: Backing::Copy(None), dir });
        }
        create(&root)?;
        copy::populate(&self.store, layers, &root)?;
        let baseline = if writable && kept.is_none() { Some(copy::Baseline::record(&root, &base)?) } else { None };
        if kept.is_some() {
            fs::write(&filled, b"").map_err(io("writing", &filled))?;
        }
        Ok(Mount { root, upper: None, backing: Backing::Copy(baseline), dir })
    }

    /// The folder a mount's folders go in: `kept`, or a temporary one under
    /// the store's work folder, removed with the mount.
    fn base(&self, kept: Option<&Path>, kind: &str) -> Result<(PathBuf, Option<TempDir>), SnapshotError> {
        if let Some(kept) = kept {
            create(kept)?;
            return Ok((kept.to_owned(), None));
        }
        let dir = tempfile::Builder::new()
            .prefix(&crate::store::temp_prefix(kind))
            .tempdir_in(self.store.work_dir())
            .map_err(io("creating a folder in", &self.store.work_dir()))?;
        Ok((dir.path().to_owned(), Some(dir)))
    }
}

/// Make the folder `dir`, which may be there already (a kept mount's).
fn create(dir: &Path) -> Result<(), SnapshotError> {
    match fs::create_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        r => r.map_err(io("creating", dir)),
    }
}

/// The overlay option that spares a writable mount the `syncfs` of the whole
/// upper filesystem at its unmount: without it every RUN step's unmount
/// waits for everything any process left dirty on that disk (50-450 ms on
/// a busy machine, against ~1 ms). Nothing is lost: what kiln keeps of a
/// step (its layer blob) is fsync'ed on its own, and a work folder is never
/// mounted again after a crash (which is what `volatile` forbids).
const VOLATILE: &str = ",volatile";

/// Whether the kernel took `volatile` (Linux 5.10+), until a mount shows
/// it does not.
static VOLATILE_WORKS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

fn volatile_works() -> bool {
    VOLATILE_WORKS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Mount an overlay with options `data`; a kernel that refuses `volatile`
/// (EINVAL) gets the same mount without it, and is not asked again.
pub(crate) fn mount_overlay(target: &Path, flags: MsFlags, data: &str) -> nix::Result<()> {
    let mount = |data: &str| mount(Some("overlay"), target, Some("overlay"), flags, Some(data));
    match (mount(data), data.strip_suffix(VOLATILE)) {
        (Err(nix::errno::Errno::EINVAL), Some(plain)) => {
            mount(plain)?;
            VOLATILE_WORKS.store(false, std::sync::atomic::Ordering::Relaxed);
            Ok(())
        }
        (result, _) => result,
    }
}

/// Lengths of the short ids a snapshot's link may have, tried in order: 12 hex
/// digits of its diffID (48 bits, as docker's short image ids), and the whole
/// diffID when another snapshot already holds that prefix — so a collision costs
/// a longer name, never a wrong layer.
const SHORT_ID_LENGTHS: [usize; 2] = [12, 64];

/// The link `<snapshots>/l/<short id>` → `../<hex>` of the snapshot `<hex>`,
/// made when missing. symlink(2) either creates the whole link or fails because
/// the name exists, so concurrent builds (and processes) need no lock: whoever
/// loses the race reads what the winner wrote. The target is relative, so a
/// store that is moved keeps working. Links are never removed while their
/// snapshot exists (whatever removes snapshots must remove their links too).
fn short_link(snapshots: &Path, hex: &str) -> Result<PathBuf, SnapshotError> {
    let dir = snapshots.join("l");
    let target = Path::new("..").join(hex);
    for len in SHORT_ID_LENGTHS {
        let link = dir.join(hex.get(..len).unwrap_or(hex));
        for attempt in 0..2 {
            match fs::read_link(&link) {
                Ok(t) if t == target => return Ok(link),
                Ok(_) => break, // another snapshot's: try a longer id
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && attempt == 0 => {}
                Err(e) => return Err(io("reading the link", &link)(e)),
            }
            fs::create_dir_all(&dir).map_err(io("creating", &dir))?;
            match std::os::unix::fs::symlink(&target, &link) {
                Ok(()) => return Ok(link),
                // Made meanwhile by someone else: read it again.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io("creating the link", &link)(e)),
            }
        }
    }
    let link = dir.join(hex);
    let target = fs::read_link(&link).unwrap_or_default();
    Err(SnapshotError::LinkCollision { link, snapshot: hex.to_owned(), target })
}

/// The size of a memory page: the most mount options the kernel takes, NUL included.
fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions; it only reads a system value.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
}

/// overlayfs separates options with `,` and lower dirs with `:`; escape both.
fn escape(p: &Path) -> String {
    p.to_string_lossy().replace('\\', "\\\\").replace(':', "\\:").replace(',', "\\,")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_links_point_at_their_snapshot_and_collisions_get_longer_names() {
        let dir = tempfile::tempdir().unwrap();
        let snapshots = dir.path();
        let a = "ab".repeat(32);
        let b = format!("{}{}", &a[..12], "cd".repeat(26)); // same first 12 digits
        for hex in [&a, &b] {
            fs::create_dir(snapshots.join(hex)).unwrap();
            fs::write(snapshots.join(hex).join("who"), hex).unwrap();
        }
        let la = short_link(snapshots, &a).unwrap();
        assert_eq!(la, snapshots.join("l").join(&a[..12]));
        assert_eq!(short_link(snapshots, &a).unwrap(), la, "made once, then found");
        let lb = short_link(snapshots, &b).unwrap();
        assert_eq!(lb, snapshots.join("l").join(&b), "the short name is taken: the whole diffID");
        assert_eq!(fs::read_to_string(la.join("who")).unwrap(), a);
        assert_eq!(fs::read_to_string(lb.join("who")).unwrap(), b);
        assert_eq!(fs::read_link(&lb).unwrap(), Path::new("..").join(&b), "relative, so the store can move");

        // A full-length name that points elsewhere is an error, not a wrong layer.
        let c = "ef".repeat(32);
        std::os::unix::fs::symlink(Path::new("..").join(&a), snapshots.join("l").join(&c[..12])).unwrap();
        std::os::unix::fs::symlink(Path::new("..").join(&b), snapshots.join("l").join(&c)).unwrap();
        let err = short_link(snapshots, &c).unwrap_err();
        assert!(matches!(err, SnapshotError::LinkCollision { .. }), "{err:?}");
    }
}
