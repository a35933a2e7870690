//! `kiln commit CONTAINER IMAGE`: the container's changes (its kept overlay
//! upper folder, `fs/upper`) become one layer on top of its image's, with
//! the image's metadata, the container's environment, and a history entry.
//! A running container is paused meanwhile, as docker does, so the folder
//! is read while nothing changes it.

use kiln_frontend::{BuildOptions, ImageConfig, ImageResolver, ResolvedImage};
use oci_spec::image::Descriptor;

use super::processes;
use super::state::{Containers, Status};
use super::ContainerError;
use crate::layer::LayerWriter;
use crate::snapshot::probe::Kind;
use crate::snapshot::Snapshotter;
use crate::store::{reference, Store};

/// What `kiln commit` is asked besides the container and the new name.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// `-m`: the history entry's comment.
    pub message: Option<String>,
    /// `-c/--change`: Dockerfile lines applied to the new image's config.
    pub changes: Vec<String>,
}

/// Commit container `reference` as the image `name`; the new image's manifest.
pub fn commit(
    store: &Store,
    reference: &str,
    name: &str,
    options: &CommitOptions,
) -> Result<Descriptor, ContainerError> {
    let name = reference::normalize(name)?;
    // Checked before anything is paused or written.
    for change in &options.changes {
        let word = change.split_whitespace().next().unwrap_or_default().to_ascii_uppercase();
        if !CHANGEABLE.contains(&word.as_str()) {
            return Err(ContainerError::BadChange(change.clone()));
        }
    }
    let containers = Containers::new(store);
    let id = containers.find(reference)?;
    let config = containers.config(&id)?;
    let upper = containers.dir(&id).join("fs/upper");
    if Snapshotter::new(store).choice().map_err(ContainerError::Mount)?.kind != Kind::Overlay {
        return Err(ContainerError::CommitNeedsOverlay(config.name));
    }
    let running = containers.state(&id)?.status == Status::Running;
    let pause = running && !processes::paused(&containers, &id);
    if pause {
        processes::pause(store, &id, true)?;
    }
    let layer = (|| {
        let mut writer = LayerWriter::with_snapshot(store)?;
        if upper.is_dir() {
            crate::layer::diff::write_upper(&upper, writer.tar(), None)?;
        }
        writer.finish()
    })();
    if pause {
        processes::pause(store, &id, false)?;
    }
    let layer = layer.map_err(|e| ContainerError::Commit(config.name.clone(), e))?;
    let digest = config.image_id.parse().map_err(|_| ContainerError::NoSuchContainer(reference.to_owned()))?;
    let manifest: oci_spec::image::ImageManifest = store.read_json("manifest", &digest)?;
    let config_digest = crate::digest::from_oci(manifest.config().digest()).map_err(crate::image::ImageError::from)?;
    let raw = store.image_config_bytes(&config_digest)?;
    let (image_config, mut layers) = crate::image::read(store, &digest)?;
    let mut meta = crate::image::inherited(&image_config, &raw);
    meta.env = config.env.clone();
    if !options.changes.is_empty() {
        let history = std::mem::take(&mut meta.history);
        meta = ImageConfig { history, ..changed(meta, &options.changes)? };
    }
    meta.history.push(kiln_frontend::History {
        created: None,
        created_by: format!("kiln commit {}", config.name),
        comment: options.message.clone(),
        empty_layer: false,
    });
    layers.push(layer);
    let (descriptor, _) = crate::image::write(store, &layers, None, meta)?;
    store.tag(&name, &descriptor)?;
    Ok(descriptor)
}

/// The instructions docker's `commit --change` takes.
const CHANGEABLE: [&str; 9] = ["CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "ONBUILD", "USER", "VOLUME", "WORKDIR"];

/// `config` with `changes` applied as the Dockerfile's own lines would be
/// on an image with that config: the frontend lowers `FROM` it and then
/// them (a WORKDIR's folder is not made, as in docker's commit; the
/// history they would add is the caller's to drop).
fn changed(config: ImageConfig, changes: &[String]) -> Result<ImageConfig, ContainerError> {
    struct Committed(ImageConfig);
    impl ImageResolver for Committed {
        fn resolve(&self, _: &str) -> Result<Option<ResolvedImage>, String> {
            let config = self.0.clone();
            Ok(Some(ResolvedImage { name: "committed".into(), digest: format!("sha256:{}", "0".repeat(64)), config }))
        }
    }
    let mut text = String::from("FROM committed\n");
    for change in changes {
        // One instruction each: a line break would smuggle in another.
        text.push_str(&change.replace(['\n', '\r'], " "));
        text.push('\n');
    }
    let options = BuildOptions { dockerfile_name: "--change".into(), ..BuildOptions::default() };
    let graph = kiln_frontend::build_graph(&text, &options, &Committed(config)).map_err(ContainerError::Change)?;
    Ok(graph.config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_apply_as_dockerfile_lines_on_the_committed_config() {
        let base =
            ImageConfig { env: vec!["PATH=/bin".into()], cmd: Some(vec!["sh".into()]), ..ImageConfig::default() };
        let lines = [
            "CMD [\"serve\", \"-p\", \"80\"]",
            "ENV PATH=$PATH:/app MODE=prod",
            "EXPOSE 80",
            "WORKDIR /srv",
            "USER app",
        ];
        let got = changed(base, &lines.map(String::from)).unwrap();
        assert_eq!(got.cmd, Some(vec!["serve".into(), "-p".into(), "80".into()]));
        assert_eq!(got.env, ["PATH=/bin:/app", "MODE=prod"]);
        assert!(got.exposed_ports.contains("80/tcp"));
        assert_eq!((got.working_dir.as_str(), got.user.as_str()), ("/srv", "app"));
        // A line break cannot add a RUN behind the change's back.
        let got = changed(ImageConfig::default(), &["LABEL a=b\nRUN rm -rf /".into()]);
        assert!(got.is_err_and(|e| matches!(e, ContainerError::Change(_))));
    }
}
