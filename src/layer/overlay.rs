//! overlayfs's own xattrs: the one place their names are written down.
//!
//! overlayfs keeps state of its own in xattrs on the folders it is made of:
//! `user.overlay.*` with the `userxattr` mount option kiln uses (the one
//! format an unprivileged user namespace can write, so rootless and root
//! builds share snapshots), `trusted.overlay.*` for an overlay mounted
//! without it. They describe the overlay, not the image: never taken from a
//! layer, never put in one — except the opaque marker, which is how a layer's
//! `.wh..wh..opq` is stored in a snapshot and read back from an upper folder.

use std::path::Path;

/// The xattr kiln writes to mark a snapshot folder opaque (see the module docs
/// for why `user.`).
pub const OPAQUE_XATTR: &str = "user.overlay.opaque";

/// The opaque markers overlayfs may have written in an upper folder: either
/// namespace, as the mount was made, or fuse-overlayfs's own when it runs
/// unprivileged.
pub const OPAQUE_XATTRS: [&str; 3] = [OPAQUE_XATTR, "trusted.overlay.opaque", "user.fuseoverlayfs.opaque"];

/// The prefixes of overlayfs's (and fuse-overlayfs's) xattrs.
const PREFIXES: [&[u8]; 3] = [b"user.overlay.", b"trusted.overlay.", b"user.fuseoverlayfs."];

/// Whether the xattr `name` is overlayfs's own.
pub fn is_overlay_xattr(name: &[u8]) -> bool {
    PREFIXES.iter().any(|p| name.starts_with(p))
}

/// Whether overlayfs marked the folder `dir` opaque.
pub fn is_opaque(dir: &Path) -> bool {
    OPAQUE_XATTRS.iter().any(|name| matches!(xattr::get(dir, name), Ok(Some(v)) if v == b"y"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_xattrs_are_told_apart() {
        for (name, want) in [
            ("user.overlay.opaque", true),
            ("trusted.overlay.redirect", true),
            ("user.keep", false),
            ("security.capability", false),
            ("user.overlayx", false),
            ("user.fuseoverlayfs.origin", true),
        ] {
            assert_eq!(is_overlay_xattr(name.as_bytes()), want, "{name}");
        }
    }
}
