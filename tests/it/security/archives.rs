//! Hostile archives: `kiln load` and `kiln import` must refuse what they
//! cannot store safely, and name nothing when they refuse.

use std::path::Path;

use sha2::Digest as _;

/// Write a `docker save` archive of one image to `path`: named `repo_tags`,
/// its one layer the tar `layer`, its config listing that layer's diffID.
pub(super) fn docker_save(path: &Path, repo_tags: &[&str], layer: &[u8]) {
    let diff_id = format!("sha256:{}", hex::encode(sha2::Sha256::digest(layer)));
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": match std::env::consts::ARCH { "x86_64" => "amd64", "aarch64" => "arm64", a => a },
        "os": "linux",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!([
        {"Config": "config.json", "RepoTags": repo_tags, "Layers": ["layer/layer.tar"]}
    ]))
    .unwrap();
    let mut tar = tar::Builder::new(std::fs::File::create(path).unwrap());
    for (name, bytes) in [("manifest.json", &manifest), ("config.json", &config), ("layer/layer.tar", &layer.to_vec())]
    {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        tar.append_data(&mut h, name, &bytes[..]).unwrap();
    }
    tar.finish().unwrap();
}

/// A tar of regular files whose names are written exactly as given: the tar
/// crate's own path setters refuse `..`, which is what these tests need.
pub(super) fn raw_tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_ustar();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}
