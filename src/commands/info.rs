//! `kiln info`: the store root, the snapshotter in use and why, the cgroup
//! layout, whether kiln runs rootless and how its ids map, the network helpers
//! found, and seccomp.

use kiln::host::{seccomp_available, CgroupVersion, IdMappingInfo, NetworkTools};
use kiln::sandbox::userns::IdMapping;
use kiln::snapshot::Snapshotter;
use kiln::store::Store;

use crate::cli::info::Args;
use crate::cli::settings::Environment;

pub fn info(store: &Store, args: Args) -> anyhow::Result<()> {
    let choice = Snapshotter::new(store).choice()?;
    let cgroup = CgroupVersion::current();
    let rootless = !Environment::current().is_root;
    let ids = IdMappingInfo::from(&IdMapping::current());
    let network = NetworkTools::current();
    let seccomp = seccomp_available();
    if args.format == "json" {
        let v = serde_json::json!({
            "root": store.root(),
            "rootless": rootless,
            "snapshotter": {"name": choice.kind.name(), "why": choice.why},
            "cgroup": cgroup.name(),
            "idMapping": ids,
            "network": network,
            "seccomp": seccomp,
        });
        crate::outln!("{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(());
    }
    let found = |p: &Option<std::path::PathBuf>| p.as_ref().map_or("not found".to_owned(), |p| p.display().to_string());
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    crate::outln!("root:         {}", store.root().display())?;
    crate::outln!("rootless:     {}", yes_no(rootless))?;
    crate::outln!("snapshotter:  {} ({})", choice.kind, choice.why)?;
    crate::outln!("cgroup:       {}", cgroup.name())?;
    crate::outln!("ids:          {}", ids.description)?;
    crate::outln!("pasta:        {}", found(&network.pasta))?;
    crate::outln!("slirp4netns:  {}", found(&network.slirp4netns))?;
    crate::outln!("seccomp:      {}", if seccomp { "available" } else { "not available" })?;
    Ok(())
}
