//! A `docker save` archive read back as what a container would see: the
//! image config, and the layers applied in order into one filesystem.
//!
//! Both kiln's and docker's results go through this same reader, so a
//! difference found later is a difference in the images, not in two exports.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use flate2::read::GzDecoder;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Files up to this size are shown whole when they differ.
const SHOWN: usize = 300;

/// What one path of the final filesystem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// `text` holds a small UTF-8 file's content, to show when it differs.
    File {
        sha256: String,
        size: u64,
        text: Option<String>,
    },
    Dir,
    Symlink(String),
    /// Character or block device, fifo: only its kind and numbers matter.
    Special(String),
}

/// One path of the final filesystem; mtime is kept for the cases that ask.
#[derive(Debug, Clone)]
pub struct Node {
    pub kind: Kind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
}

pub struct Image {
    pub config: Value,
    /// Absolute paths ("/" excluded) to what is there.
    pub fs: BTreeMap<String, Node>,
}

pub fn read(path: &Path) -> io::Result<Image> {
    let mut files = BTreeMap::new();
    let mut archive = tar::Archive::new(BufReader::new(File::open(path)?));
    for entry in archive.entries()? {
        let mut entry = entry?;
        if entry.header().entry_type().is_file() {
            let name = entry.path()?.to_string_lossy().into_owned();
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes)?;
            files.insert(name, bytes);
        }
    }
    let get = |name: &str| files.get(name).ok_or_else(|| bad(format!("{}: no {name}", path.display())));
    let manifest: Value = serde_json::from_slice(get("manifest.json")?)?;
    let first = &manifest[0];
    let config_name = first["Config"].as_str().ok_or_else(|| bad("manifest.json: no Config".into()))?;
    let config = serde_json::from_slice(get(config_name)?)?;
    let mut fs = BTreeMap::new();
    for layer in first["Layers"].as_array().into_iter().flatten() {
        let layer = layer.as_str().ok_or_else(|| bad("manifest.json: a layer is not a string".into()))?;
        apply(&mut fs, get(layer)?).map_err(|e| bad(format!("{}: layer {layer}: {e}", path.display())))?;
    }
    Ok(Image { config, fs })
}

fn bad(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Applies one layer (plain or gzip tar) with the OCI whiteout rules.
fn apply(fs: &mut BTreeMap<String, Node>, layer: &[u8]) -> io::Result<()> {
    let reader: Box<dyn Read> =
        if layer.starts_with(&[0x1f, 0x8b]) { Box::new(GzDecoder::new(layer)) } else { Box::new(layer) };
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = normal(&entry.path()?.to_string_lossy());
        if path.is_empty() {
            continue;
        }
        let (parent, base) = path.rsplit_once('/').unwrap_or(("", &path));
        if base == ".wh..wh..opq" {
            remove_below(fs, &format!("/{parent}"));
            continue;
        }
        if let Some(hidden) = base.strip_prefix(".wh.") {
            let gone = if parent.is_empty() { format!("/{hidden}") } else { format!("/{parent}/{hidden}") };
            fs.remove(&gone);
            remove_below(fs, &gone);
            continue;
        }
        let header = entry.header();
        let mode = header.mode()? & 0o7777;
        let (uid, gid, mtime) = (header.uid()?, header.gid()?, header.mtime()?);
        let kind = match header.entry_type() {
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Symlink => {
                Kind::Symlink(entry.link_name()?.map(|l| l.to_string_lossy().into_owned()).unwrap_or_default())
            }
            tar::EntryType::Link => {
                // A hard link is compared as the file it names: whether a
                // writer emits links is not what a container sees.
                let target = normal(&entry.link_name()?.map(|l| l.to_string_lossy().into_owned()).unwrap_or_default());
                match fs.get(&format!("/{target}")) {
                    Some(node) => node.kind.clone(),
                    None => return Err(bad(format!("hard link /{path} to missing /{target}"))),
                }
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let mut bytes = Vec::new();
                entry.read_to_end(&mut bytes)?;
                let text = if bytes.len() <= SHOWN { String::from_utf8(bytes.clone()).ok() } else { None };
                Kind::File { sha256: hex::encode(Sha256::digest(&bytes)), size: bytes.len() as u64, text }
            }
            other => Kind::Special(format!(
                "{other:?} {}:{}",
                header.device_major()?.unwrap_or(0),
                header.device_minor()?.unwrap_or(0)
            )),
        };
        let key = format!("/{path}");
        // A non-directory replaces a whole tree; a directory over a directory
        // only updates its metadata.
        if kind != Kind::Dir {
            remove_below(fs, &key);
        }
        fs.insert(key, Node { kind, mode, uid, gid, mtime });
    }
    Ok(())
}

fn remove_below(fs: &mut BTreeMap<String, Node>, dir: &str) {
    let prefix = if dir == "/" { "/".to_string() } else { format!("{dir}/") };
    let doomed: Vec<String> =
        fs.range(prefix.clone()..).take_while(|(k, _)| k.starts_with(&prefix)).map(|(k, _)| k.clone()).collect();
    for key in doomed {
        fs.remove(&key);
    }
}

/// "./a//b/" → "a/b": layer writers differ in how they spell a path.
fn normal(path: &str) -> String {
    path.split('/').filter(|part| !part.is_empty() && *part != ".").collect::<Vec<_>>().join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    enum E<'a> {
        Dir(&'a str),
        File(&'a str, &'a str),
        Link(&'a str, &'a str),
    }

    fn layer(entries: &[E]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for e in entries {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            match e {
                E::Dir(p) => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_mode(0o755);
                    h.set_size(0);
                    b.append_data(&mut h, p, io::empty()).unwrap();
                }
                E::File(p, body) => {
                    h.set_size(body.len() as u64);
                    b.append_data(&mut h, p, body.as_bytes()).unwrap();
                }
                E::Link(p, target) => {
                    h.set_entry_type(tar::EntryType::Link);
                    h.set_size(0);
                    b.append_link(&mut h, p, target).unwrap();
                }
            }
        }
        b.into_inner().unwrap()
    }

    fn paths(fs: &BTreeMap<String, Node>) -> Vec<&str> {
        fs.keys().map(String::as_str).collect()
    }

    #[test]
    fn whiteouts_remove_a_path_and_what_is_below_it() {
        let mut fs = BTreeMap::new();
        apply(&mut fs, &layer(&[E::Dir("a/"), E::File("a/x", "x"), E::Dir("a/d/"), E::File("a/d/y", "y")])).unwrap();
        apply(&mut fs, &layer(&[E::File("a/.wh.d", "")])).unwrap();
        assert_eq!(paths(&fs), ["/a", "/a/x"]);
    }

    #[test]
    fn an_opaque_directory_keeps_only_the_new_layer_s_children() {
        let mut fs = BTreeMap::new();
        apply(&mut fs, &layer(&[E::Dir("a/"), E::File("a/old", "o")])).unwrap();
        apply(&mut fs, &layer(&[E::Dir("a/"), E::File("a/.wh..wh..opq", ""), E::File("a/new", "n")])).unwrap();
        assert_eq!(paths(&fs), ["/a", "/a/new"]);
    }

    #[test]
    fn a_file_replaces_a_directory_tree_and_a_hard_link_is_its_target() {
        let mut fs = BTreeMap::new();
        apply(&mut fs, &layer(&[E::Dir("./t/"), E::File("./t/in", "i"), E::File("f", "body")])).unwrap();
        apply(&mut fs, &layer(&[E::File("t", "now a file"), E::Link("g", "f")])).unwrap();
        assert_eq!(paths(&fs), ["/f", "/g", "/t"]);
        assert_eq!(fs["/g"].kind, fs["/f"].kind);
        assert!(matches!(&fs["/t"].kind, Kind::File { text: Some(t), .. } if t == "now a file"));
    }
}
