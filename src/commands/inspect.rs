//! `kiln inspect`: a container's record, or an image's name, digests,
//! manifest and config, as JSON.

use kiln::store::Store;

use crate::cli::images::InspectArgs;

pub fn inspect(store: &Store, args: InspectArgs) -> anyhow::Result<()> {
    // A container first, as docker looks: `kiln inspect web`.
    let containers = kiln::container::Containers::new(store);
    if let Ok(id) = containers.find(&args.image) {
        let out = kiln::container::inspect_json(&containers, &id)?;
        return crate::outln!("{}", serde_json::to_string_pretty(&out)?);
    }
    let image = store.get(&args.image)?;
    let (manifest, config) = store.image_parts(&image)?;
    let raw = store.image_config_bytes(&kiln::digest::from_oci(manifest.config().digest())?)?;
    let out = serde_json::json!({
        "Name": image.name,
        "Digest": image.digest().to_string(),
        "Id": manifest.config().digest().to_string(),
        "Manifest": manifest,
        "Config": kiln::docker_config::inspect_json(&config, &raw),
    });
    crate::outln!("{}", serde_json::to_string_pretty(&out)?)
}
