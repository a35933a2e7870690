//! The image store: names in the OCI layout's `index.json`, one manifest
//! descriptor per name (annotation `org.opencontainers.image.ref.name`).
//! Updates are read-modify-write under an exclusive lock and replace the file
//! atomically, so concurrent builds never lose each other's tags.
//!
//! An image built without a name is kept as an entry with no name annotation,
//! so it stays reachable by its ID (`kiln images` lists it as `<none>`); tools
//! reading the layout by name (`oci:<root>/oci:app:v1`) skip such entries. A
//! manifest has such an entry only while nothing names it.
//!
//! An image's ID is its config digest, as docker's is. Lookups take a name, the
//! whole ID, or a unique prefix of it (see [`reference::IdPrefix`]); a name
//! wins over a prefix that reads as one (`cafe`), as in docker.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, OpenOptions};
use std::path::Path;

use fs2::FileExt;
use kiln_solver::Digest;
use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageIndexBuilder, ImageManifest, MediaType};

use super::reference::{self, IdPrefix, Reference};
use super::{blobs::write_atomic, io_err, Store, StoreError};

const REF_NAME: &str = "org.opencontainers.image.ref.name";

pub(super) fn empty_index() -> ImageIndex {
    ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(Vec::<Descriptor>::new())
        .build()
        .expect("an index with every required field")
}

pub(super) fn write_index(path: &Path, index: &ImageIndex) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec_pretty(index).expect("an index serialises");
    write_atomic(path, &bytes)
}

/// An image in the store: one entry of the index.
#[derive(Debug, Clone)]
pub struct StoredImage {
    /// `repository:tag`; `None` for an image built without a name.
    pub name: Option<String>,
    /// The manifest's descriptor.
    pub descriptor: Descriptor,
}

impl StoredImage {
    /// The manifest digest.
    pub fn digest(&self) -> Digest {
        crate::digest::from_oci(self.descriptor.digest()).expect("the store writes sha256 digests")
    }
}

impl Store {
    fn index_path(&self) -> std::path::PathBuf {
        self.layout().join("index.json")
    }

    fn read_index(&self) -> Result<ImageIndex, StoreError> {
        let path = self.index_path();
        let bytes = fs::read(&path).map_err(io_err("reading", &path))?;
        serde_json::from_slice(&bytes).map_err(|source| StoreError::Json {
            what: "the image index",
            digest: path.display().to_string(),
            source,
        })
    }

    /// Apply `change` to the index under the store lock.
    fn update_index<T>(
        &self,
        change: impl FnOnce(&mut Vec<Descriptor>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let lock_path = self.root().join("index.lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err("opening", &lock_path))?;
        lock.lock_exclusive().map_err(io_err("locking", &lock_path))?;
        let mut index = self.read_index()?;
        let mut manifests = index.manifests().clone();
        let out = change(&mut manifests)?;
        index.set_manifests(manifests);
        write_index(&self.index_path(), &index)?;
        Ok(out)
    }

    /// Every image: the named ones sorted by name, then those without a name.
    pub fn images(&self) -> Result<Vec<StoredImage>, StoreError> {
        let mut out: Vec<StoredImage> = self
            .read_index()?
            .manifests()
            .iter()
            .map(|d| StoredImage { name: ref_name(d).cloned(), descriptor: d.clone() })
            .collect();
        out.sort_by(|a, b| {
            (a.name.is_none(), &a.name, a.descriptor.digest().as_ref()).cmp(&(
                b.name.is_none(),
                &b.name,
                b.descriptor.digest().as_ref(),
            ))
        });
        Ok(out)
    }

    /// The image `name` names, if any: a reference (`name[:tag]`, or
    /// `name[:tag]@sha256:…`), or an image ID, whole or a unique prefix.
    pub fn find(&self, name: &str) -> Result<Option<StoredImage>, StoreError> {
        match self.read_name(name)? {
            Lookup::Name(reference) => Ok(self.images()?.into_iter().find(|i| names(&reference, i))),
            Lookup::Id(id) => Ok(self.find_by_id(name, &id)?.map(|(_, image)| image)),
        }
    }

    /// How to read what the user wrote: the whole ID can only be an ID; a
    /// name wins over an ID prefix that reads as one (`cafe`), as in docker.
    fn read_name(&self, name: &str) -> Result<Lookup, StoreError> {
        let id = IdPrefix::parse(name);
        if let Some(id) = id.clone().filter(IdPrefix::is_whole) {
            return Ok(Lookup::Id(id));
        }
        let reference = Reference::parse(name)?;
        match id {
            Some(id) if !self.images()?.iter().any(|i| names(&reference, i)) => Ok(Lookup::Id(id)),
            _ => Ok(Lookup::Name(reference)),
        }
    }

    /// The image whose ID starts with `id`, and that ID; an error naming the
    /// candidates when more than one image does. Prefers a named entry.
    fn find_by_id(&self, written: &str, id: &IdPrefix) -> Result<Option<(Digest, StoredImage)>, StoreError> {
        let mut found: BTreeMap<String, StoredImage> = BTreeMap::new();
        for image in self.images()? {
            let image_id = self.image_id(&image)?;
            if id.matches(image_id.as_str()) {
                let slot = found.entry(image_id.to_string()).or_insert_with(|| image.clone());
                if slot.name.is_none() && image.name.is_some() {
                    *slot = image;
                }
            }
        }
        if found.len() > 1 {
            let matches = found.iter().map(|(id, i)| describe(id, i.name.as_deref())).collect();
            return Err(StoreError::AmbiguousId { id: written.to_owned(), matches });
        }
        Ok(found.into_iter().next().map(|(id, image)| (id.parse().expect("a stored config digest"), image)))
    }

    /// An image's ID: its config digest.
    pub fn image_id(&self, image: &StoredImage) -> Result<Digest, StoreError> {
        let manifest: ImageManifest = self.read_json("manifest", &image.digest())?;
        manifest
            .config()
            .digest()
            .to_string()
            .parse()
            .map_err(|_| StoreError::MissingBlob(manifest.config().digest().to_string()))
    }

    /// The image with this name, or an error that says how to list them.
    pub fn get(&self, name: &str) -> Result<StoredImage, StoreError> {
        self.find(name)?.ok_or_else(|| StoreError::NoSuchImage(name.to_owned()))
    }

    /// Point `name` at a manifest that is already stored, replacing what it named.
    pub fn tag(&self, name: &str, manifest: &Descriptor) -> Result<(), StoreError> {
        let name = reference::normalize(name)?;
        let digest = crate::digest::from_oci(manifest.digest())
            .map_err(|_| StoreError::MissingBlob(manifest.digest().to_string()))?;
        if !self.has_blob(&digest) {
            return Err(StoreError::MissingBlob(digest.to_string()));
        }
        let mut desc = manifest.clone();
        let mut annotations = desc.annotations().clone().unwrap_or_default();
        annotations.insert(REF_NAME.to_owned(), name.clone());
        desc.set_annotations(Some(annotations));
        self.update_index(|manifests| {
            // The old holder of the name, and the nameless entry of this manifest.
            manifests
                .retain(|d| ref_name(d) != Some(&name) && !(ref_name(d).is_none() && d.digest() == manifest.digest()));
            manifests.push(desc);
            Ok(())
        })
    }

    /// Keep a manifest that is already stored reachable without a name (an
    /// image built without `-t`), unless an entry of the index already holds it.
    pub fn keep_unnamed(&self, manifest: &Descriptor) -> Result<(), StoreError> {
        let digest: Digest = manifest
            .digest()
            .to_string()
            .parse()
            .map_err(|_| StoreError::MissingBlob(manifest.digest().to_string()))?;
        if !self.has_blob(&digest) {
            return Err(StoreError::MissingBlob(digest.to_string()));
        }
        let mut desc = manifest.clone();
        if let Some(mut annotations) = desc.annotations().clone() {
            annotations.remove(REF_NAME);
            desc.set_annotations(Some(annotations).filter(|a| !a.is_empty()));
        }
        self.update_index(|manifests| {
            if !manifests.iter().any(|d| d.digest() == manifest.digest()) {
                manifests.push(desc);
            }
            Ok(())
        })
    }

    /// Remove the names a reference matches: one name, or with a digest
    /// (`app@sha256:…`) every tag of that repository on that manifest. An
    /// image ID (whole or a unique prefix, when no name matches) removes the
    /// image's entries, unless it has more than one name: which one to remove
    /// is then for the user to say, as docker asks. The blobs stay (shared
    /// with other images and the cache).
    pub fn untag(&self, name: &str) -> Result<Vec<StoredImage>, StoreError> {
        self.untag_unless(name, &|_| None)
    }

    /// As [`Store::untag`], unless `refuse` gives a reason not to, told
    /// what the removal would do: then nothing is removed, and the error
    /// ([`StoreError::InUse`]) gives that reason.
    pub fn untag_unless(
        &self,
        name: &str,
        refuse: &dyn Fn(&Untagging<'_>) -> Option<String>,
    ) -> Result<Vec<StoredImage>, StoreError> {
        let wanted = match self.read_name(name)? {
            Lookup::Name(reference) => Ok(reference),
            Lookup::Id(id) => match self.find_by_id(name, &id)? {
                Some((id, _)) => Err(self.entries_with_id(&id, name)?),
                None => return Err(StoreError::NoSuchImage(name.to_owned())),
            },
        };
        // By ID, every entry of the image goes (`wanted` holds their digests).
        let by_id = wanted.is_err();
        self.update_index(|manifests| {
            let mut removed = Vec::new();
            manifests.retain(|d| {
                let image = StoredImage { name: ref_name(d).cloned(), descriptor: d.clone() };
                let hit = match &wanted {
                    Ok(reference) => names(reference, &image),
                    Err(digests) => digests.iter().any(|m| m == d.digest().as_ref()),
                };
                if hit {
                    removed.push(image);
                }
                !hit
            });
            if removed.is_empty() {
                return Err(StoreError::NoSuchImage(name.to_owned()));
            }
            if let Some(why) = refuse(&Untagging { by_id, removed: &removed, left: manifests }) {
                return Err(StoreError::InUse { name: name.to_owned(), why });
            }
            Ok(removed)
        })
    }

    /// The manifest and config of a stored image.
    pub fn image_parts(&self, image: &StoredImage) -> Result<(ImageManifest, ImageConfiguration), StoreError> {
        let manifest: ImageManifest = self.read_json("manifest", &image.digest())?;
        let config_digest = crate::digest::from_oci(manifest.config().digest())
            .map_err(|_| StoreError::MissingBlob(manifest.config().digest().to_string()))?;
        let config = self.read_image_config(&config_digest)?;
        Ok((manifest, config))
    }

    /// Read a stored image config (see [`Store::parse_image_config`]).
    pub fn read_image_config(&self, digest: &Digest) -> Result<ImageConfiguration, StoreError> {
        let bytes = self.image_config_bytes(digest)?;
        Self::parse_image_config(&bytes).map_err(|source| StoreError::Json {
            what: "image config",
            digest: digest.to_string(),
            source,
        })
    }

    /// A stored image config's JSON as stored: what oci-spec does not parse
    /// (docker's Healthcheck, Shell, OnBuild) is read from it.
    pub fn image_config_bytes(&self, digest: &Digest) -> Result<Vec<u8>, StoreError> {
        let path = self.blob_path(digest);
        fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => StoreError::MissingBlob(digest.to_string()),
            _ => crate::fsutil::PathError { action: "reading", path, source: e }.into(),
        })
    }

    /// Parse an image config. Every config kiln reads goes through here, not
    /// through `serde_json` straight into [`ImageConfiguration`]: oci-spec 0.7
    /// requires `history`, which the OCI image spec makes optional (and which
    /// images made by other tools may leave out), so a missing or `null`
    /// `history` is read as an empty one. Only the parsed value changes: a
    /// config is always stored as the bytes it came as, so its digest stays.
    pub fn parse_image_config(bytes: &[u8]) -> Result<ImageConfiguration, serde_json::Error> {
        let mut value: serde_json::Value = serde_json::from_slice(bytes)?;
        if let Some(config) = value.as_object_mut() {
            if config.get("history").is_none_or(serde_json::Value::is_null) {
                config.insert("history".to_owned(), serde_json::Value::Array(Vec::new()));
            }
        }
        serde_json::from_value(value)
    }
}

impl Store {
    /// The manifest digests of the entries of image `id`, refusing an image
    /// with several names (which one to remove is the user's to say).
    fn entries_with_id(&self, id: &Digest, written: &str) -> Result<Vec<String>, StoreError> {
        let mut manifests = Vec::new();
        let mut names = Vec::new();
        for image in self.images()? {
            if &self.image_id(&image)? == id {
                manifests.push(image.descriptor.digest().to_string());
                names.extend(image.name);
            }
        }
        if names.len() > 1 {
            return Err(StoreError::ManyNames { id: written.to_owned(), names });
        }
        Ok(manifests)
    }
}

/// What a name given to a lookup stands for.
/// What an untag would do, for [`Store::untag_unless`] to judge.
pub struct Untagging<'a> {
    /// It names an image by its ID: every entry of the image goes.
    pub by_id: bool,
    pub removed: &'a [StoredImage],
    /// The entries that stay.
    pub left: &'a [Descriptor],
}

impl Untagging<'_> {
    /// The manifests that no entry would name once it is done: the images
    /// it removes, not merely renames.
    pub fn orphaned(&self) -> Vec<Digest> {
        let mut out: Vec<Digest> = Vec::new();
        for image in self.removed {
            let digest = image.digest();
            let kept = self.left.iter().any(|d| d.digest().as_ref() == digest.to_string());
            if !kept && !out.contains(&digest) {
                out.push(digest);
            }
        }
        out
    }
}

enum Lookup {
    Name(Reference),
    Id(IdPrefix),
}

/// Whether `reference` names `image` (an image without a name it never does).
fn names(reference: &Reference, image: &StoredImage) -> bool {
    image.name.as_deref().is_some_and(|n| reference.matches(n, image.descriptor.digest().as_ref()))
}

/// `sha256:<12 hex> (name)`: an image in a list of candidates.
fn describe(id: &str, name: Option<&str>) -> String {
    let short = &id[..id.len().min("sha256:".len() + 12)];
    match name {
        Some(n) => format!("{short} ({n})"),
        None => short.to_owned(),
    }
}

fn ref_name(d: &Descriptor) -> Option<&String> {
    d.annotations().as_ref().and_then(|a: &HashMap<String, String>| a.get(REF_NAME))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::image::DescriptorBuilder;

    #[test]
    fn tags_replace_and_untag_removes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (d1, s1) = store.write_blob(b"{\"a\":1}").unwrap();
        let (d2, s2) = store.write_blob(b"{\"a\":2}").unwrap();
        let desc = |d: &Digest, s| {
            DescriptorBuilder::default()
                .media_type(MediaType::ImageManifest)
                .digest(crate::digest::to_oci(d))
                .size(s)
                .build()
                .unwrap()
        };
        store.tag("app", &desc(&d1, s1)).unwrap();
        store.tag("app:latest", &desc(&d2, s2)).unwrap();
        store.tag("other:v1", &desc(&d1, s1)).unwrap();
        let names: Vec<_> =
            store.images().unwrap().into_iter().map(|i| (i.name.clone().unwrap(), i.digest())).collect();
        assert_eq!(names, vec![("app:latest".into(), d2.clone()), ("other:v1".into(), d1.clone())]);
        store.untag("app").unwrap();
        assert!(store.find("app").unwrap().is_none());
        // By digest: any tag of the repository on that manifest.
        store.tag("other:v2", &desc(&d1, s1)).unwrap();
        assert_eq!(store.find(&format!("other@{d1}")).unwrap().unwrap().digest(), d1);
        assert!(store.find(&format!("other@{d2}")).unwrap().is_none());
        assert!(store.find(&format!("app@{d1}")).unwrap().is_none());
        let removed: Vec<_> =
            store.untag(&format!("other@{d1}")).unwrap().into_iter().map(|i| i.name.unwrap()).collect();
        assert_eq!(removed, ["other:v1", "other:v2"]);
        assert!(store.images().unwrap().is_empty());
        assert!(matches!(store.find("../../etc:1"), Err(StoreError::BadName(..))));
        assert!(matches!(store.untag("app"), Err(StoreError::NoSuchImage(_))));
        let missing = Digest::of(b"nope");
        assert!(store.tag("x", &desc(&missing, 1)).is_err());
    }

    /// Store an image whose config is `config`; its ID and manifest descriptor.
    fn image(store: &Store, config: &str) -> (String, Descriptor) {
        let (desc, id) = crate::image::write_manifest(store, config.as_bytes(), &[]).unwrap();
        (id.to_string(), desc)
    }

    #[test]
    fn images_are_found_by_id_or_a_unique_prefix_and_kept_without_a_name() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (id1, m1) = image(&store, "{\"n\":1}");
        let (id2, m2) = image(&store, "{\"n\":2}");
        let hex1 = id1.trim_start_matches("sha256:");
        assert_ne!(hex1[..4], id2[7..11], "the configs are picked so the IDs differ early");
        store.tag("one:v1", &m1).unwrap();
        store.keep_unnamed(&m2).unwrap();
        store.keep_unnamed(&m2).unwrap(); // once only
        store.keep_unnamed(&m1).unwrap(); // named already: nothing to keep
        let listed: Vec<_> = store.images().unwrap().into_iter().map(|i| i.name).collect();
        assert_eq!(listed, [Some("one:v1".to_owned()), None]);

        let found = |name: &str| store.find(name).unwrap().map(|i| i.descriptor.digest().to_string());
        let not_stored = format!("{}{}", &hex1[..63], if hex1.ends_with('0') { '1' } else { '0' });
        let (d1, d2) = (Some(m1.digest().to_string()), Some(m2.digest().to_string()));
        for (name, want) in [
            (id1.as_str(), &d1),
            (hex1, &d1),
            (&hex1[..4], &d1),
            (&id1[..13], &d1),
            (&id2, &d2),
            (&id2[..11], &d2),
            ("one:v1", &d1),
            (&not_stored, &None),
        ] {
            assert_eq!(&found(name), want, "{name}");
        }
        assert!(matches!(store.find(&hex1[..3]), Ok(None)), "3 digits are a name, not an ID");

        // A name wins over a prefix that reads as one.
        store.tag(&hex1[..4], &m2).unwrap();
        assert_eq!(found(&hex1[..4]), d2);
        store.untag(&hex1[..4]).unwrap();
        assert_eq!(found(&hex1[..4]), d1);

        // Tagging the unnamed image drops its unnamed entry; untagging by ID
        // removes an image with one name, and refuses one with several.
        store.tag("two:v1", &m2).unwrap();
        assert_eq!(store.images().unwrap().len(), 2);
        store.tag("two:v2", &m2).unwrap();
        assert!(matches!(store.untag(&id2), Err(StoreError::ManyNames { .. })));
        store.untag("two:v2").unwrap();
        let removed: Vec<_> = store.untag(&id2[..12]).unwrap().into_iter().map(|i| i.name).collect();
        assert_eq!(removed, [Some("two:v1".to_owned())]);
        store.keep_unnamed(&m2).unwrap();
        let removed: Vec<_> = store.untag(&id2).unwrap().into_iter().map(|i| i.name).collect();
        assert_eq!(removed, [None]);
        assert!(matches!(store.untag(&id2), Err(StoreError::NoSuchImage(_))));
    }

    #[test]
    fn an_id_prefix_of_several_images_is_ambiguous() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        // Two configs whose IDs share 4 hex digits, found by hashing, not storing.
        let mut seen = HashMap::new();
        let (a, b) = (0..)
            .map(|i| format!("{{\"n\":{i}}}"))
            .find_map(|c| seen.insert(Digest::of(c.as_bytes()).hex()[..4].to_owned(), c.clone()).map(|a| (a, c)))
            .unwrap();
        let pair = [image(&store, &a), image(&store, &b)];
        store.tag("a", &pair[0].1).unwrap();
        store.keep_unnamed(&pair[1].1).unwrap();
        let prefix = &pair[0].0["sha256:".len()..11];
        match store.find(prefix) {
            Err(StoreError::AmbiguousId { id, matches }) => {
                assert_eq!(id, prefix);
                assert_eq!(matches.len(), 2, "{matches:?}");
                assert!(matches.iter().any(|m| m.ends_with("(a:latest)")), "{matches:?}");
            }
            other => panic!("{other:?}"),
        }
        let longer = &pair[0].0["sha256:".len()..];
        assert!(store.find(longer).unwrap().is_some());
    }

    #[test]
    fn configs_without_history_parse() {
        let config = |history: Option<serde_json::Value>| {
            let mut c = serde_json::json!({"architecture": "amd64", "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": []}});
            if let Some(h) = history {
                c["history"] = h;
            }
            serde_json::to_vec(&c).unwrap()
        };
        for history in [None, Some(serde_json::Value::Null), Some(serde_json::json!([]))] {
            let parsed = Store::parse_image_config(&config(history.clone())).unwrap();
            assert!(parsed.history().is_empty(), "{history:?}");
        }
        let parsed = Store::parse_image_config(&config(Some(serde_json::json!([{"created_by": "x"}])))).unwrap();
        assert_eq!(parsed.history()[0].created_by().as_deref(), Some("x"));
        assert!(Store::parse_image_config(b"[]").is_err());
        assert!(Store::parse_image_config(b"{\"os\": \"linux\"}").is_err());
    }
}
