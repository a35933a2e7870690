//! Which snapshotter this process uses, decided once.
//!
//! In order of preference, as podman and BuildKit choose theirs:
//!
//! - `overlay`: the kernel's overlayfs, mounted in kiln's own (user and)
//!   mount namespace. Real root always has it; an unprivileged user namespace
//!   has it since Linux 5.11, unless the distribution or the filesystem under
//!   the store refuses it.
//! - `fuse-overlayfs`: the same overlay in user space, when the kernel's is
//!   refused and the program is installed and /dev/fuse can be opened.
//! - `copy`: no mount at all, a full copy of the layers for every writable
//!   filesystem, the changes found by comparing against that copy (docker's
//!   vfs driver). Slow and big, but works everywhere.
//!
//! `KILN_SNAPSHOTTER` (or the `snapshotter` setting) forces one. Otherwise
//! the first writable kernel overlay a build mounts is the probe: when it
//! mounts, overlay it is ([`overlay_mounted`]); when it does not, [`choose`]
//! probes with a mount of empty folders under the store's work folder (the
//! filesystem the real mounts use) and falls back. A separate probe on every
//! build cost about 6 ms of a 60 ms one (its folders' removal, mostly).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use nix::mount::{umount2, MntFlags, MsFlags};

/// The environment variable that forces a snapshotter.
pub const ENV: &str = "KILN_SNAPSHOTTER";

/// A way to make a writable filesystem out of layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Overlay,
    FuseOverlayfs,
    Copy,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Overlay, Kind::FuseOverlayfs, Kind::Copy];

    /// The name `KILN_SNAPSHOTTER` and `kiln info` use.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Overlay => "overlay",
            Kind::FuseOverlayfs => "fuse-overlayfs",
            Kind::Copy => "copy",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Kind {
    type Err = UnknownSnapshotter;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kind::ALL.into_iter().find(|k| k.name() == s).ok_or_else(|| UnknownSnapshotter(s.to_owned()))
    }
}

/// A snapshotter name that is not one of [`Kind::ALL`].
#[derive(Debug, thiserror::Error)]
#[error("unknown snapshotter {0:?} (expected overlay, fuse-overlayfs or copy)")]
pub struct UnknownSnapshotter(pub String);

/// The snapshotter chosen, and why (`kiln info` shows both).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub kind: Kind,
    pub why: String,
}

static FORCED: OnceLock<Kind> = OnceLock::new();
static CHOSEN: OnceLock<Choice> = OnceLock::new();

/// Force `kind` for this process (the `snapshotter` setting); `KILN_SNAPSHOTTER`
/// still wins, as an environment variable wins over a config file. Only the
/// first call counts, and only before the first mount.
pub fn force(kind: Kind) {
    let _ = FORCED.set(kind);
}

/// The snapshotter of this process, probed in `work` (a folder on the store's
/// filesystem) the first time. An unknown `KILN_SNAPSHOTTER` is an error.
pub fn choose(work: &Path) -> Result<Choice, UnknownSnapshotter> {
    match settled()? {
        Some(choice) => Ok(choice),
        None => Ok(CHOSEN.get_or_init(|| probe(work)).clone()),
    }
}

/// The snapshotter of this process when nothing needs probing: chosen
/// already, or forced. `None`: a probe would decide; a mount may try the
/// kernel's overlay first and be the probe itself (see the module docs).
pub fn settled() -> Result<Option<Choice>, UnknownSnapshotter> {
    if let Some(choice) = CHOSEN.get() {
        return Ok(Some(choice.clone()));
    }
    let forced = match std::env::var(ENV) {
        Ok(v) if !v.is_empty() => Choice { kind: v.parse()?, why: format!("{ENV}={v}") },
        _ => match FORCED.get() {
            Some(&kind) => Choice { kind, why: "the snapshotter setting of the config file".into() },
            None => return Ok(None),
        },
    };
    Ok(Some(CHOSEN.get_or_init(|| forced).clone()))
}

/// A writable kernel overlay mounted on the store's filesystem, as the probe
/// would have: overlay it is, unless something was chosen first.
pub fn overlay_mounted() {
    let _ = CHOSEN.set(Choice { kind: Kind::Overlay, why: OVERLAY_WORKS.into() });
}

const OVERLAY_WORKS: &str = "the kernel's overlayfs mounts here";

/// What this machine allows, without looking at any setting.
fn probe(work: &Path) -> Choice {
    let overlay = match try_overlay(work) {
        Ok(()) => return Choice { kind: Kind::Overlay, why: OVERLAY_WORKS.into() },
        Err(e) => e,
    };
    match fuse_overlayfs() {
        Ok(exe) => Choice {
            kind: Kind::FuseOverlayfs,
            why: format!("the kernel refused overlayfs ({overlay}); {} is installed", exe.display()),
        },
        Err(fuse) => Choice { kind: Kind::Copy, why: format!("the kernel refused overlayfs ({overlay}) and {fuse}") },
    }
}

/// Mount an overlay of empty folders the way real mounts are made, and
/// unmount it. Any failure is the reason overlay cannot be used.
fn try_overlay(work: &Path) -> Result<(), String> {
    std::fs::create_dir_all(work).map_err(|e| format!("creating {}: {e}", work.display()))?;
    let dir = tempfile::Builder::new()
        .prefix(&crate::store::temp_prefix("probe"))
        .tempdir_in(work)
        .map_err(|e| format!("creating a folder in {}: {e}", work.display()))?;
    let p = |n: &str| dir.path().join(n);
    for d in ["lower", "upper", "work", "merged"] {
        std::fs::create_dir(p(d)).map_err(|e| format!("creating {}: {e}", p(d).display()))?;
    }
    // volatile (when the kernel takes it) as real mounts: also spares this
    // unmount a syncfs of the whole disk.
    let data = format!(
        "lowerdir={},upperdir={},workdir={},userxattr{}",
        super::escape(&p("lower")),
        super::escape(&p("upper")),
        super::escape(&p("work")),
        super::VOLATILE
    );
    super::mount_overlay(&p("merged"), MsFlags::MS_NODEV, &data).map_err(|e| format!("mount: {e}"))?;
    let _ = umount2(&p("merged"), MntFlags::MNT_DETACH);
    Ok(())
}

/// The fuse-overlayfs program, when it is installed and /dev/fuse opens;
/// else why not.
pub fn fuse_overlayfs() -> Result<PathBuf, String> {
    let exe = crate::sandbox::userns::which("fuse-overlayfs").ok_or("fuse-overlayfs is not installed")?;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
        .map_err(|e| format!("fuse-overlayfs cannot open /dev/fuse ({e})"))?;
    Ok(exe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshotter_names_round_trip_and_unknown_ones_are_named() {
        for kind in Kind::ALL {
            assert_eq!(kind.name().parse::<Kind>().unwrap(), kind);
        }
        let err = "vfs".parse::<Kind>().unwrap_err().to_string();
        assert!(err.contains("\"vfs\"") && err.contains("fuse-overlayfs"), "{err}");
    }
}
