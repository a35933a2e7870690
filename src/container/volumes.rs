//! Volumes: folders in the store that outlive containers. A volume is
//! `<root>/volumes/<name>/` holding `_data/` (what containers see) and
//! `meta.json`; named ones are made by `kiln volume create` or on first use
//! (`-v NAME:/path`), anonymous ones (64 hex digits) for `-v /path` and the
//! image's VOLUME entries. A volume mounted empty is first filled with what
//! the image holds at that path, as docker does.
//!
//! `-v` and `--mount` are read here into [`Mount`]s, which the container's
//! record keeps and its monitor turns into sandbox mounts at each start.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::state::{io, now_ns, valid_name};
use super::ContainerError;
use crate::store::Store;

/// One of a container's mounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    pub source: Source,
    /// Absolute path in the container.
    pub target: String,
    pub readonly: bool,
}

/// What a [`Mount`] mounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A host path, which must exist.
    Bind(PathBuf),
    /// A volume by name (anonymous ones by their id).
    Volume { name: String, anonymous: bool },
    /// A fresh tmpfs, `size` bytes at most.
    Tmpfs { size: Option<u64> },
}

impl Mount {
    /// docker's `-v`: `/host/path:/ctr[:ro|rw]`, `NAME:/ctr[:ro|rw]`, or `/ctr` (anonymous).
    pub fn from_volume_flag(text: &str) -> Result<Mount, ContainerError> {
        let bad = |why: &str| ContainerError::BadMount(format!("-v {text}"), why.to_owned());
        let parts: Vec<&str> = text.split(':').collect();
        let (source, target, mode) = match parts[..] {
            [target] => (None, target, None),
            [source, target] => (Some(source), target, None),
            [source, target, mode] => (Some(source), target, Some(mode)),
            _ => return Err(bad("give SOURCE:TARGET[:ro], or TARGET alone")),
        };
        let readonly = match mode {
            None | Some("rw") => false,
            Some("ro") => true,
            Some(_) => return Err(bad("the mode is ro or rw")),
        };
        let source = match source {
            None => Source::Volume { name: super::state::new_id()?, anonymous: true },
            Some(s) if s.starts_with('/') => Source::Bind(PathBuf::from(s)),
            Some(s) if valid_name(s) => Source::Volume { name: s.to_owned(), anonymous: false },
            Some(_) => {
                return Err(bad("the source is an absolute host path or a volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]+)"))
            }
        };
        Mount::checked(source, target, readonly).map_err(|why| bad(&why))
    }

    /// docker's `--mount type=bind|volume|tmpfs,source=…,target=…[,readonly][,tmpfs-size=…]`.
    pub fn from_mount_flag(text: &str) -> Result<Mount, ContainerError> {
        let bad = |why: &str| ContainerError::BadMount(format!("--mount {text}"), why.to_owned());
        let (mut kind, mut source, mut target, mut readonly, mut size) = ("volume", None, None, false, None);
        for field in text.split(',') {
            let (key, value) = field.split_once('=').unwrap_or((field, ""));
            match key {
                "type" => kind = value,
                "source" | "src" => source = Some(value),
                "target" | "destination" | "dst" => target = Some(value),
                "readonly" | "ro" => readonly = matches!(value, "" | "true" | "1"),
                "tmpfs-size" => {
                    size = Some(
                        kiln_frontend::ram_in_bytes(value).ok_or_else(|| bad("tmpfs-size is a size such as 64m"))?,
                    )
                }
                "volume-driver" if value == "local" => {}
                "volume-driver" => return Err(ContainerError::UnknownDriver(value.to_owned())),
                _ => return Err(bad(&format!("unknown field {key:?}"))),
            }
        }
        let target = target.ok_or_else(|| bad("give target=PATH"))?;
        let source = match (kind, source) {
            ("bind", Some(s)) if s.starts_with('/') => Source::Bind(PathBuf::from(s)),
            ("bind", _) => return Err(bad("a bind mount takes source=/absolute/host/path")),
            ("volume", None | Some("")) => Source::Volume { name: super::state::new_id()?, anonymous: true },
            ("volume", Some(s)) if valid_name(s) => Source::Volume { name: s.to_owned(), anonymous: false },
            ("volume", Some(_)) => return Err(bad("a volume name is [a-zA-Z0-9][a-zA-Z0-9_.-]+")),
            ("tmpfs", None) => Source::Tmpfs { size },
            ("tmpfs", Some(_)) => return Err(bad("a tmpfs takes no source")),
            _ => return Err(bad("type is bind, volume or tmpfs")),
        };
        Mount::checked(source, target, readonly).map_err(|why| bad(&why))
    }

    fn checked(source: Source, target: &str, readonly: bool) -> Result<Mount, String> {
        if !target.starts_with('/') || crate::fsutil::lexical(Path::new(target)).names.is_empty() {
            return Err("the target is an absolute path in the container, not /".to_owned());
        }
        if let Source::Bind(path) = &source {
            if fs::symlink_metadata(path).is_err() {
                return Err(format!("the host path {} does not exist: create it first", path.display()));
            }
        }
        Ok(Mount { source, target: target.to_owned(), readonly })
    }
}

/// A volume's record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VolumeMeta {
    pub name: String,
    /// Nanoseconds since the epoch.
    pub created: u64,
    pub anonymous: bool,
}

/// The store's volumes.
pub struct Volumes {
    dir: PathBuf,
}

impl Volumes {
    pub fn new(store: &Store) -> Self {
        Self { dir: store.root().join("volumes") }
    }

    /// Where volume `name`'s content is.
    pub fn data(&self, name: &str) -> PathBuf {
        self.dir.join(name).join("_data")
    }

    /// Make volume `name` unless it is there; whether it was made now.
    pub fn create(&self, name: &str, anonymous: bool) -> Result<bool, ContainerError> {
        if !valid_name(name) {
            return Err(ContainerError::BadName(name.to_owned()));
        }
        fs::create_dir_all(&self.dir).map_err(io("creating", &self.dir))?;
        let dir = self.dir.join(name);
        if dir.join("meta.json").exists() {
            return Ok(false);
        }
        // Made aside and renamed in, so two makers of one name agree.
        let tmp = tempfile::Builder::new().prefix(".new-").tempdir_in(&self.dir).map_err(io("creating", &self.dir))?;
        fs::create_dir(tmp.path().join("_data")).map_err(io("creating", tmp.path()))?;
        fs::set_permissions(tmp.path().join("_data"), fs::Permissions::from_mode(0o755))
            .map_err(io("creating", tmp.path()))?;
        let meta = VolumeMeta { name: name.to_owned(), created: now_ns(), anonymous };
        let json = serde_json::to_vec_pretty(&meta).expect("a volume record serialises");
        fs::write(tmp.path().join("meta.json"), json).map_err(io("writing", tmp.path()))?;
        match fs::rename(tmp.path(), &dir) {
            Ok(()) => {
                let _ = tmp.keep();
                Ok(true)
            }
            Err(_) if dir.join("meta.json").exists() => Ok(false),
            Err(e) => Err(io("creating", &dir)(e)),
        }
    }

    /// Every volume's record, by name.
    pub fn list(&self) -> Result<Vec<VolumeMeta>, ContainerError> {
        let mut out = Vec::new();
        let Ok(entries) = fs::read_dir(&self.dir) else { return Ok(out) };
        for entry in entries.flatten() {
            let Ok(bytes) = fs::read(entry.path().join("meta.json")) else { continue };
            if let Ok(meta) = serde_json::from_slice(&bytes) {
                out.push(meta);
            }
        }
        out.sort_by(|a: &VolumeMeta, b| a.name.cmp(&b.name));
        Ok(out)
    }

    pub fn get(&self, name: &str) -> Result<VolumeMeta, ContainerError> {
        let path = self.dir.join(name).join("meta.json");
        if !valid_name(name) || !path.exists() {
            return Err(ContainerError::NoSuchVolume(name.to_owned()));
        }
        let bytes = fs::read(&path).map_err(io("reading", &path))?;
        serde_json::from_slice(&bytes).map_err(|e| ContainerError::Damaged(path, e))
    }

    /// Remove volume `name` and its content (the caller checked no container uses it).
    pub fn remove(&self, name: &str) -> Result<(), ContainerError> {
        self.get(name)?;
        let dir = self.dir.join(name);
        let gone = self.dir.join(format!(".rm-{name}"));
        fs::rename(&dir, &gone).map_err(io("removing", &dir))?;
        fs::remove_dir_all(&gone).map_err(io("removing", &gone))
    }

    /// The volumes the containers of `store` use, by name.
    pub fn in_use(store: &Store) -> Result<Vec<(String, String)>, ContainerError> {
        let containers = super::Containers::new(store);
        let mut out = Vec::new();
        for id in containers.ids()? {
            let Ok(config) = containers.config(&id) else { continue };
            for m in &config.mounts {
                if let Source::Volume { name, .. } = &m.source {
                    out.push((name.clone(), config.name.clone()));
                }
            }
        }
        Ok(out)
    }
}

/// Remove the anonymous volumes of the removed container `config` that no
/// other container uses (`rm -v`, `--rm`).
pub(crate) fn drop_anonymous(store: &Store, config: &super::Config) -> Result<(), ContainerError> {
    let volumes = Volumes::new(store);
    let used = Volumes::in_use(store)?;
    for m in &config.mounts {
        if let Source::Volume { name, anonymous: true } = &m.source {
            if !used.iter().any(|(n, _)| n == name) && volumes.get(name).is_ok() {
                volumes.remove(name)?;
            }
        }
    }
    Ok(())
}

/// Fill the empty folder `to` with a copy of `from` (the image's content at
/// a volume's path): files, folders, symlinks, with their modes and owners.
/// Special files are left out. Nothing is followed out of `from`.
pub(crate) fn seed(from: &Path, to: &Path) -> Result<(), ContainerError> {
    let Ok(meta) = fs::symlink_metadata(from) else { return Ok(()) };
    if !meta.is_dir() {
        return Ok(());
    }
    let own = |path: &Path, m: &fs::Metadata| {
        std::os::unix::fs::lchown(path, Some(m.uid()), Some(m.gid())).map_err(io("copying the owner of", path))
    };
    own(to, &meta)?;
    fs::set_permissions(to, fs::Permissions::from_mode(meta.mode() & 0o7777)).map_err(io("copying", to))?;
    for entry in walkdir::WalkDir::new(from).min_depth(1).follow_links(false) {
        let entry = entry.map_err(|e| io("reading", from)(e.into()))?;
        let rel = entry.path().strip_prefix(from).expect("walkdir stays below its root");
        let dest = to.join(rel);
        let m = entry.metadata().map_err(|e| io("reading", entry.path())(e.into()))?;
        let ft = m.file_type();
        if ft.is_dir() {
            fs::create_dir(&dest).map_err(io("creating", &dest))?;
        } else if ft.is_symlink() {
            let link = fs::read_link(entry.path()).map_err(io("reading", entry.path()))?;
            std::os::unix::fs::symlink(link, &dest).map_err(io("creating", &dest))?;
        } else if ft.is_file() {
            fs::copy(entry.path(), &dest).map_err(io("copying", entry.path()))?;
        } else {
            continue;
        }
        own(&dest, &m)?;
        if !ft.is_symlink() {
            fs::set_permissions(&dest, fs::Permissions::from_mode(m.mode() & 0o7777)).map_err(io("copying", &dest))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_flags_read_as_dockers() {
        let v = |t: &str| Mount::from_volume_flag(t);
        let m = v("data:/var/lib/app").unwrap();
        assert_eq!(m.source, Source::Volume { name: "data".into(), anonymous: false });
        assert_eq!((m.target.as_str(), m.readonly), ("/var/lib/app", false));
        assert_eq!(v("/tmp:/host:ro").unwrap().source, Source::Bind("/tmp".into()));
        assert!(v("/tmp:/host:ro").unwrap().readonly);
        assert!(matches!(v("/cache").unwrap().source, Source::Volume { anonymous: true, .. }));
        for bad in ["/no/such/host/path:/x", "data:relative", "data:/", "data:/x:rx", "a:b:c:d", "-bad:/x"] {
            assert!(v(bad).is_err(), "{bad}");
        }
        let e = v("/no/such/host/path:/x").unwrap_err().to_string();
        assert!(e.contains("/no/such/host/path") && e.contains("does not exist"), "{e}");
        let m = |t: &str| Mount::from_mount_flag(t);
        assert_eq!(m("type=tmpfs,target=/run,tmpfs-size=64m").unwrap().source, Source::Tmpfs { size: Some(64 << 20) });
        assert!(m("type=bind,source=/tmp,target=/t,readonly").unwrap().readonly);
        assert_eq!(m("source=v1,target=/v").unwrap().source, Source::Volume { name: "v1".into(), anonymous: false });
        let e = m("type=volume,source=v,target=/v,volume-driver=nfs").unwrap_err();
        assert!(matches!(e, ContainerError::UnknownDriver(ref d) if d == "nfs"), "{e}");
        for bad in [
            "type=bind,target=/x",
            "type=nfs,target=/x",
            "type=tmpfs,source=a,target=/x",
            "source=v",
            "type=volume,target=/v,bogus=1",
        ] {
            assert!(m(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn seeding_copies_the_images_content_with_modes_and_links() {
        let dir = tempfile::tempdir().unwrap();
        let (from, to) = (dir.path().join("from"), dir.path().join("to"));
        fs::create_dir_all(from.join("sub")).unwrap();
        fs::write(from.join("sub/f"), "x").unwrap();
        fs::set_permissions(from.join("sub/f"), fs::Permissions::from_mode(0o640)).unwrap();
        std::os::unix::fs::symlink("../../etc/passwd", from.join("link")).unwrap();
        fs::create_dir(&to).unwrap();
        seed(&from, &to).unwrap();
        assert_eq!(fs::read_to_string(to.join("sub/f")).unwrap(), "x");
        assert_eq!(fs::metadata(to.join("sub/f")).unwrap().mode() & 0o777, 0o640);
        assert_eq!(fs::read_link(to.join("link")).unwrap(), Path::new("../../etc/passwd"));
    }
}
