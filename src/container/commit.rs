//! `kiln commit CONTAINER IMAGE`: the container's changes (its kept overlay
//! upper folder, `fs/upper`) become one layer on top of its image's, with
//! the image's metadata, the container's environment, and a history entry.
//! A running container is paused meanwhile, as docker does, so the folder
//! is read while nothing changes it.

use oci_spec::image::Descriptor;

use super::processes;
use super::state::{Containers, Status};
use super::ContainerError;
use crate::layer::LayerWriter;
use crate::snapshot::probe::Kind;
use crate::snapshot::Snapshotter;
use crate::store::{reference, Store};

/// Commit container `reference` as the image `name`; the new image's manifest.
pub fn commit(store: &Store, reference: &str, name: &str, message: Option<&str>) -> Result<Descriptor, ContainerError> {
    let name = reference::normalize(name)?;
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
    meta.history.push(kiln_frontend::History {
        created: None,
        created_by: format!("kiln commit {}", config.name),
        comment: message.map(str::to_owned),
        empty_layer: false,
    });
    layers.push(layer);
    let (descriptor, _) = crate::image::write(store, &layers, None, meta)?;
    store.tag(&name, &descriptor)?;
    Ok(descriptor)
}
