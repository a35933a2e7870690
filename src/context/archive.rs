//! `kiln build -`: what stdin holds, told apart as buildx tells it — a tar
//! archive of the context (plain, gzip or zstd), or else a Dockerfile and no
//! context at all. BuildKit applies no `.dockerignore` to an archive.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

use tempfile::TempDir;

use super::ContextError;
use crate::layer::compress::Form;
use crate::layer::extract::apply_blob_any_owner;

/// What `kiln build -` read from stdin. Each holds a temporary folder,
/// removed when it is dropped.
#[derive(Debug)]
pub enum StdinContext {
    /// A context archive, unpacked into this folder.
    Archive(TempDir),
    /// A Dockerfile; the context is this empty folder.
    Dockerfile {
        /// The Dockerfile.
        text: String,
        /// The empty context.
        empty: TempDir,
    },
}

impl StdinContext {
    /// The context folder.
    pub fn dir(&self) -> &std::path::Path {
        match self {
            StdinContext::Archive(dir) | StdinContext::Dockerfile { empty: dir, .. } => dir.path(),
        }
    }
}

/// How the folder of a context read from stdin is named, in the temporary
/// directory: it lives for one build, so no context index is kept for it.
pub(crate) const TEMP_PREFIX: &str = "kiln-context-";

/// Read stdin's content from `input`: spooled to a temporary file, then
/// unpacked (never outside its folder: the layer extractor's checks) when it
/// is an archive.
pub fn read(mut input: impl Read) -> Result<StdinContext, ContextError> {
    let io_err = |e: io::Error| ContextError::Stdin(e);
    let mut spool = tempfile::tempfile().map_err(io_err)?;
    let size = io::copy(&mut input, &mut spool).map_err(io_err)?;
    if size == 0 {
        return Err(ContextError::EmptyStdin);
    }
    spool.seek(SeekFrom::Start(0)).map_err(io_err)?;
    let mut head = Vec::with_capacity(512);
    (&mut spool).take(512).read_to_end(&mut head).map_err(io_err)?;
    spool.seek(SeekFrom::Start(0)).map_err(io_err)?;
    for (magic, name) in [(&b"BZh"[..], "bzip2"), (&[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00][..], "xz")] {
        if head.starts_with(magic) {
            return Err(ContextError::Compression(name));
        }
    }
    if Form::sniff(&head) == Form::Tar && !is_tar_header(&head) {
        let mut text = Vec::new();
        spool.read_to_end(&mut text).map_err(io_err)?;
        let empty = tempfile::Builder::new().prefix(TEMP_PREFIX).tempdir().map_err(io_err)?;
        return Ok(StdinContext::Dockerfile { text: String::from_utf8_lossy(&text).into_owned(), empty });
    }
    let dir = tempfile::Builder::new().prefix(TEMP_PREFIX).tempdir().map_err(io_err)?;
    let path = spool_path(&spool)?;
    apply_blob_any_owner(&path, dir.path(), "the build context on stdin")
        .map_err(|e| ContextError::Archive(Box::new(e)))?;
    Ok(StdinContext::Archive(dir))
}

/// The spool as a path the extractor can open (it stays open, so
/// `/proc/self/fd` reaches it though it has no name).
fn spool_path(spool: &File) -> Result<std::path::PathBuf, ContextError> {
    use std::os::fd::AsRawFd;
    Ok(std::path::PathBuf::from(format!("/proc/self/fd/{}", spool.as_raw_fd())))
}

/// Whether `head` is a tar header: its checksum (the byte sum with the
/// checksum field as spaces) is the one it records.
fn is_tar_header(head: &[u8]) -> bool {
    if head.len() < 512 {
        return false;
    }
    let field = String::from_utf8_lossy(&head[148..156]);
    let Ok(recorded) = u32::from_str_radix(field.trim_matches(|c: char| c == '\0' || c == ' '), 8) else {
        return false;
    };
    let sum: u32 =
        head[..512].iter().enumerate().map(|(i, b)| if (148..156).contains(&i) { 32 } else { *b as u32 }).sum();
    sum == recorded
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(files: &[(&str, &str)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, body) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(body.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, name, body.as_bytes()).unwrap();
        }
        builder.into_inner().unwrap()
    }

    #[test]
    fn tells_archives_from_dockerfiles() {
        let tar = tar_of(&[("Dockerfile", "FROM scratch\n"), ("sub/a", "a")]);
        let StdinContext::Archive(dir) = read(&tar[..]).unwrap() else { panic!("a tar is an archive") };
        assert_eq!(std::fs::read_to_string(dir.path().join("sub/a")).unwrap(), "a");
        let path = dir.path().to_owned();
        drop(dir);
        assert!(!path.exists(), "the folder goes with the value");

        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut gz, &tar).unwrap();
        let gz = gz.finish().unwrap();
        assert!(matches!(read(&gz[..]).unwrap(), StdinContext::Archive(_)));

        let StdinContext::Dockerfile { text, empty } = read(&b"FROM busybox\n"[..]).unwrap() else {
            panic!("text is a Dockerfile")
        };
        assert_eq!(text, "FROM busybox\n");
        assert_eq!(std::fs::read_dir(empty.path()).unwrap().count(), 0);

        assert!(matches!(read(&b""[..]), Err(ContextError::EmptyStdin)));
        assert!(matches!(read(&b"BZh91AY"[..]), Err(ContextError::Compression("bzip2"))));
    }

    #[test]
    fn an_archive_cannot_write_outside_its_folder() {
        let mut data = Vec::new();
        {
            let mut builder = tar::Builder::new(&mut data);
            let mut header = tar::Header::new_gnu();
            header.set_size(1);
            header.set_mode(0o644);
            // Written raw: the tar crate refuses to build such a name itself.
            header.as_gnu_mut().unwrap().name[..11].copy_from_slice(b"../escaped\0");
            header.set_cksum();
            builder.append(&header, &b"x"[..]).unwrap();
            builder.finish().unwrap();
        }
        let err = read(&data[..]).unwrap_err();
        assert!(matches!(err, ContextError::Archive(_)), "{err}");
    }
}
