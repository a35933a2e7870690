//! `--metadata-file`: what a build made, as JSON with BuildKit's keys, for the
//! CI step that comes next.

use serde_json::{json, Map, Value};

use super::BuildResult;
use crate::registry::Pushed;
use crate::store::reference::Reference;

impl BuildResult {
    /// BuildKit's metadata of an image build: `containerimage.digest` (the
    /// manifest's), `containerimage.descriptor`, `containerimage.config.digest`
    /// (the image ID) and, when it has names, `image.name` (their full forms,
    /// comma-separated).
    pub fn metadata(&self) -> Map<String, Value> {
        let mut out = Map::new();
        out.insert("containerimage.config.digest".into(), json!(self.id.as_str()));
        out.insert("containerimage.descriptor".into(), json!(self.manifest));
        out.insert("containerimage.digest".into(), json!(self.manifest.digest().to_string()));
        let names: Vec<String> =
            self.tags.iter().map(|t| Reference::parse(t).map_or_else(|_| t.clone(), |r| r.to_string())).collect();
        if !names.is_empty() {
            out.insert("image.name".into(), json!(names.join(",")));
        }
        out
    }

    /// [`BuildResult::metadata`] after `--push`: `image.name` names what was
    /// pushed (as BuildKit's does), and `image.pushed` lists each
    /// `name@digest` — the digest the registry has, which differs from the
    /// local one when the layers left recompressed.
    pub fn pushed_metadata(&self, pushed: &[Pushed]) -> Map<String, Value> {
        let mut out = self.metadata();
        if !pushed.is_empty() {
            let names: Vec<&str> = pushed.iter().map(|p| p.reference.as_str()).collect();
            out.insert("image.name".into(), json!(names.join(",")));
            let refs: Vec<String> = pushed.iter().map(|p| format!("{}@{}", p.reference, p.digest)).collect();
            out.insert("image.pushed".into(), json!(refs));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_solver::Digest;
    use oci_spec::image::{DescriptorBuilder, MediaType};

    #[test]
    fn metadata_has_buildkits_keys() {
        let manifest = DescriptorBuilder::default()
            .media_type(MediaType::ImageManifest)
            .digest(crate::digest::to_oci(&Digest::of(b"manifest")))
            .size(42u64)
            .build()
            .unwrap();
        let id = Digest::of(b"config");
        for (tags, name) in [
            (vec![], None),
            (vec!["app:v1".to_owned()], Some("docker.io/library/app:v1")),
            (
                vec!["app:v1".to_owned(), "localhost:5000/team/app:v2".to_owned()],
                Some("docker.io/library/app:v1,localhost:5000/team/app:v2"),
            ),
        ] {
            let result = BuildResult { id: id.clone(), manifest: manifest.clone(), tags, warnings: vec![] };
            let m = result.metadata();
            assert_eq!(m["containerimage.config.digest"], id.as_str());
            assert_eq!(m["containerimage.digest"], Digest::of(b"manifest").as_str());
            assert_eq!(m["containerimage.descriptor"]["size"], 42);
            assert_eq!(m["containerimage.descriptor"]["mediaType"], "application/vnd.oci.image.manifest.v1+json");
            assert_eq!(m.get("image.name").and_then(Value::as_str), name);
            assert!(m.get("image.pushed").is_none());
        }
    }

    #[test]
    fn pushed_metadata_names_what_the_registry_has() {
        let manifest = DescriptorBuilder::default()
            .media_type(MediaType::ImageManifest)
            .digest(crate::digest::to_oci(&Digest::of(b"manifest")))
            .size(42u64)
            .build()
            .unwrap();
        let result =
            BuildResult { id: Digest::of(b"config"), manifest, tags: vec!["h:5000/a:1".into()], warnings: vec![] };
        let remote = Digest::of(b"remote");
        for (pushed, name, refs) in [
            (vec![], Some("h:5000/a:1"), None),
            (
                vec![Pushed { reference: "h:5000/a:1".into(), digest: remote.clone() }],
                Some("h:5000/a:1"),
                Some(vec![format!("h:5000/a:1@{remote}")]),
            ),
        ] {
            let m = result.pushed_metadata(&pushed);
            assert_eq!(m.get("image.name").and_then(Value::as_str), name);
            let got: Option<Vec<String>> = m.get("image.pushed").map(|v| serde_json::from_value(v.clone()).unwrap());
            assert_eq!(got, refs);
            assert_eq!(m["containerimage.digest"], Digest::of(b"manifest").as_str());
        }
    }
}
