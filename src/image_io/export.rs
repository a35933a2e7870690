//! Where a build's image goes: `kiln build -o …`, BuildKit's exporters and
//! their `type=…,dest=…` syntax.

use std::path::{Path, PathBuf};

use super::archive::{save_to_file, Format, Named};
use super::filesystem::{check_local_dest, export_local, export_tar};
use super::ImageIoError;
use crate::outbound::Compression;
use crate::store::Store;

/// One output of a build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// `type=image` (the default): the image is named in the store (`-t`).
    Image,
    /// `type=oci,dest=FILE[,compression=gzip|zstd]`: an OCI image layout tar.
    Oci {
        /// The archive to write.
        dest: PathBuf,
        /// How its layers are compressed (gzip unless asked).
        compression: Compression,
    },
    /// `type=docker,dest=FILE`: a `docker save` archive, for `docker load`.
    Docker {
        /// The archive to write.
        dest: PathBuf,
    },
    /// `type=local,dest=DIR`: the final filesystem, as files.
    Local {
        /// The folder to write: new, or empty.
        dest: PathBuf,
    },
    /// `type=tar,dest=FILE`: the final filesystem, as one tar.
    Tar {
        /// The tar to write.
        dest: PathBuf,
    },
}

impl Output {
    /// Read `-o`'s value: `type=TYPE[,dest=PATH]`, or a bare path for
    /// `type=local,dest=PATH`, as buildx reads it.
    pub fn parse(spec: &str) -> Result<Self, ImageIoError> {
        let bad = |why: &'static str| ImageIoError::BadOutput { spec: spec.to_owned(), why };
        if !spec.contains('=') {
            if spec.is_empty() || spec == "-" {
                return Err(bad("name a destination: standard output is not supported"));
            }
            return Ok(Output::Local { dest: PathBuf::from(spec) });
        }
        let (mut kind, mut dest, mut compression) = (None, None, None);
        for field in spec.split(',') {
            match field.split_once('=') {
                Some(("type", v)) => kind = Some(v),
                Some(("dest", v)) if !v.is_empty() => dest = Some(PathBuf::from(v)),
                Some(("dest", _)) => return Err(bad("dest is empty")),
                Some(("compression", "gzip")) => compression = Some(Compression::Gzip),
                Some(("compression", "zstd")) => compression = Some(Compression::Zstd),
                Some(("compression", _)) => return Err(bad("compression is gzip or zstd")),
                _ => return Err(bad("the fields are type, dest and (for type=oci) compression")),
            }
        }
        if compression.is_some() && kind != Some("oci") {
            return Err(bad("compression= applies to type=oci only (type=docker writes plain layers, as docker save)"));
        }
        let has_dest = dest.is_some();
        let dest = || match &dest {
            Some(d) if d.as_os_str() == "-" => Err(bad("name a destination: standard output is not supported")),
            Some(d) => Ok(d.clone()),
            None => Err(bad("this type needs dest=PATH")),
        };
        match kind {
            Some("image") if !has_dest => Ok(Output::Image),
            Some("image") => Err(bad("type=image takes no dest: it names the image in the store")),
            Some("oci") => Ok(Output::Oci { dest: dest()?, compression: compression.unwrap_or_default() }),
            Some("docker") => Ok(Output::Docker { dest: dest()? }),
            Some("local") => Ok(Output::Local { dest: dest()? }),
            Some("tar") => Ok(Output::Tar { dest: dest()? }),
            Some(_) => Err(bad("the types are image, oci, docker, local and tar")),
            None => Err(bad("it has no type=")),
        }
    }

    /// What can be checked before a build: a local export's folder is new or
    /// empty, and every destination's folder exists.
    pub fn check(&self) -> Result<(), ImageIoError> {
        let Some(dest) = self.dest() else { return Ok(()) };
        if let Output::Local { dest } = self {
            check_local_dest(dest)?;
        }
        let parent = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        if !parent.is_dir() {
            let source = std::io::Error::from(std::io::ErrorKind::NotFound);
            return Err(ImageIoError::Dest { path: parent.to_owned(), source });
        }
        Ok(())
    }

    /// The file or folder this output writes.
    pub fn dest(&self) -> Option<&Path> {
        match self {
            Output::Image => None,
            Output::Oci { dest, .. } | Output::Docker { dest } | Output::Local { dest } | Output::Tar { dest } => {
                Some(dest)
            }
        }
    }

    /// Write `image` from `store` to this output. [`Output::Image`] writes
    /// nothing here: naming in the store is the build's last step.
    pub fn export(&self, store: &Store, image: &Named) -> Result<(), ImageIoError> {
        match self {
            Output::Image => Ok(()),
            Output::Oci { dest, compression } => {
                save_to_file(store, std::slice::from_ref(image), Format::Oci(*compression), dest)
            }
            Output::Docker { dest } => save_to_file(store, std::slice::from_ref(image), Format::Docker, dest),
            Output::Local { dest } => export_local(store, &image.manifest, dest),
            Output::Tar { dest } => export_tar(store, &image.manifest, dest),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_parse_like_buildx() {
        let p = PathBuf::from;
        for (spec, want) in [
            ("type=image", Some(Output::Image)),
            ("type=oci,dest=out.tar", Some(Output::Oci { dest: p("out.tar"), compression: Compression::Gzip })),
            (
                "type=oci,compression=zstd,dest=out.tar",
                Some(Output::Oci { dest: p("out.tar"), compression: Compression::Zstd }),
            ),
            ("type=oci,dest=out.tar,compression=lz4", None),
            ("type=docker,dest=out.tar,compression=zstd", None),
            ("dest=a.tar,type=docker", Some(Output::Docker { dest: p("a.tar") })),
            ("type=local,dest=out", Some(Output::Local { dest: p("out") })),
            ("type=tar,dest=/tmp/fs.tar", Some(Output::Tar { dest: p("/tmp/fs.tar") })),
            ("out/dir", Some(Output::Local { dest: p("out/dir") })),
            ("type=oci", None),
            ("type=oci,dest=", None),
            ("type=tar,dest=-", None),
            ("-", None),
            ("", None),
            ("type=registry", None),
            ("type=image,dest=x", None),
            ("type=local,dest=x,compression=zstd", None),
            ("dest=x", None),
        ] {
            assert_eq!(Output::parse(spec).ok(), want, "{spec:?}");
        }
    }
}
