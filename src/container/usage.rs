//! What containers and volumes take on disk, for `kiln system df`, and
//! `kiln container prune`.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::state::{Containers, Status};
use super::volumes::Volumes;
use super::ContainerError;
use crate::store::Store;

/// One container's share of the disk.
#[derive(Debug, Clone)]
pub struct ContainerUsage {
    pub name: String,
    pub image_id: String,
    pub running: bool,
    /// Its changes, logs and record.
    pub bytes: u64,
}

/// One volume's share of the disk.
#[derive(Debug, Clone)]
pub struct VolumeUsage {
    pub name: String,
    pub in_use: bool,
    pub bytes: u64,
}

/// Every container's and volume's size.
pub fn usage(store: &Store) -> Result<(Vec<ContainerUsage>, Vec<VolumeUsage>), ContainerError> {
    let out = each_container(store, true)?;
    let volumes = Volumes::new(store);
    let used: HashSet<String> = Volumes::in_use(store)?.into_iter().map(|(n, _)| n).collect();
    let vols = volumes
        .list()?
        .into_iter()
        .map(|v| VolumeUsage {
            in_use: used.contains(&v.name),
            bytes: disk_bytes(&volumes.data(&v.name)),
            name: v.name,
        })
        .collect();
    Ok((out, vols))
}

/// Every container, its image and whether it runs (`bytes` left 0): what
/// `kiln rmi` checks before it removes an image a container uses.
pub fn image_users(store: &Store) -> Result<Vec<ContainerUsage>, ContainerError> {
    each_container(store, false)
}

fn each_container(store: &Store, sized: bool) -> Result<Vec<ContainerUsage>, ContainerError> {
    let containers = Containers::new(store);
    let mut out = Vec::new();
    for id in containers.ids()? {
        let (Ok(config), Ok(state)) = (containers.config(&id), containers.state(&id)) else { continue };
        out.push(ContainerUsage {
            name: config.name,
            image_id: config.image_id,
            running: state.status == Status::Running,
            bytes: if sized { disk_bytes(&containers.dir(&id)) } else { 0 },
        });
    }
    Ok(out)
}

/// Remove every container that is not running (`kiln container prune`); their names.
pub fn prune(store: &Store) -> Result<Vec<String>, ContainerError> {
    let containers = Containers::new(store);
    let mut removed = Vec::new();
    for id in containers.ids()? {
        // Held: no monitor runs it, nor can start it meanwhile.
        let Some(held) = containers.try_hold(&id)? else { continue };
        let Ok(config) = containers.config(&id) else { continue };
        containers.remove(&id, &held)?;
        removed.push(config.id);
    }
    Ok(removed)
}

/// The disk blocks under `dir`, each inode once, as `du` counts them.
fn disk_bytes(dir: &Path) -> u64 {
    let mut seen = HashSet::new();
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter_map(|e| e.metadata().ok())
        .filter(|m| seen.insert((m.dev(), m.ino())))
        .map(|m| m.blocks() * 512)
        .sum()
}
