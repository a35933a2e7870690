//! `kiln volume create|ls|inspect|rm|prune`: the store's volumes (see
//! `kiln::container::volumes`).

use kiln::container::volumes::Volumes;
use kiln::container::ContainerError;
use kiln::store::Store;

use crate::cli::containers::{VolumeArgs, VolumeCommand};

pub fn volume(store: &Store, args: VolumeArgs) -> anyhow::Result<()> {
    let volumes = Volumes::new(store);
    match args.command {
        VolumeCommand::Create { name, driver } => {
            if driver != "local" {
                return Err(ContainerError::UnknownDriver(driver).into());
            }
            let (name, anonymous) = match name {
                Some(name) => (name, false),
                None => (kiln::container::state::new_id()?, true),
            };
            volumes.create(&name, anonymous)?;
            crate::outln!("{name}")
        }
        VolumeCommand::Ls { quiet } => {
            if !quiet {
                crate::outln!("{:<15} VOLUME NAME", "DRIVER")?;
            }
            for v in volumes.list()? {
                if quiet {
                    crate::outln!("{}", v.name)?;
                } else {
                    crate::outln!("{:<15} {}", "local", v.name)?;
                }
            }
            Ok(())
        }
        VolumeCommand::Inspect { names } => {
            let mut out = Vec::new();
            for name in names {
                let v = volumes.get(&name)?;
                out.push(serde_json::json!({
                    "Name": v.name,
                    "Driver": "local",
                    "Mountpoint": volumes.data(&v.name),
                    "CreatedAt": kiln::container::logs::rfc3339_nano(v.created),
                    "Scope": "local",
                    "Labels": v.anonymous.then(|| serde_json::json!({"anonymous": "true"})),
                }));
            }
            crate::outln!("{}", serde_json::to_string_pretty(&out)?)
        }
        VolumeCommand::Rm { names } => {
            let used = Volumes::in_use(store)?;
            let mut failed = None;
            for name in names {
                let result = match used.iter().find(|(n, _)| *n == name) {
                    Some((_, container)) => Err(ContainerError::VolumeInUse(name.clone(), container.clone())),
                    None => volumes.remove(&name),
                };
                match result {
                    Ok(()) => crate::outln!("{name}")?,
                    Err(e) if failed.is_none() => failed = Some(e),
                    Err(e) => eprintln!("error: {}", crate::cli::output::escape(&e.to_string())),
                }
            }
            failed.map_or(Ok(()), |e| Err(e.into()))
        }
        VolumeCommand::Prune { all, force: _ } => {
            let used = Volumes::in_use(store)?;
            for v in volumes.list()? {
                if (all || v.anonymous) && !used.iter().any(|(n, _)| *n == v.name) {
                    volumes.remove(&v.name)?;
                    crate::outln!("Deleted Volume: {}", v.name)?;
                }
            }
            Ok(())
        }
    }
}
