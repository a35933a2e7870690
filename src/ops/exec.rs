//! RUN: the command in the sandbox, on a writable overlay of the base's
//! layers; what it changed (the overlay's upper folder) becomes the new layer.

use std::collections::VecDeque;

use kiln_frontend::{ExecOp, Network, Shortened};
use kiln_solver::ExecContext;

use super::{Engine, EngineError, FsState};
use crate::build::Entitlements;
use crate::layer::{diff, LayerWriter};
use crate::sandbox::rootfs::MountPoints;
use crate::sandbox::{NetworkMode, Spec, SpecFile, Stdio};

/// How many lines of a failed RUN's output the error shows.
const TAIL_LINES: usize = 12;

/// The last lines of a failed RUN's output, as the error shows them.
pub(super) fn tail_text(tail: &[String]) -> String {
    if tail.is_empty() {
        return String::new();
    }
    let mut s = String::from("\n  last lines of its output:");
    for l in tail {
        s.push_str("\n  | ");
        s.push_str(l);
    }
    s
}

/// The sandbox's network for `RUN --network=…`: a namespace of its own with
/// outbound access by default, the host's only with `--allow network.host`.
fn network_mode(network: Network, allow: Entitlements) -> Result<NetworkMode, EngineError> {
    match network {
        Network::Default => Ok(NetworkMode::Outbound),
        Network::None => Ok(NetworkMode::None),
        Network::Host if allow.network_host => Ok(NetworkMode::Host),
        Network::Host => Err(EngineError::NetworkHostNotAllowed),
    }
}

impl Engine {
    pub(super) fn exec(&self, ctx: &ExecContext, op: &ExecOp, inputs: &[FsState]) -> Result<FsState, EngineError> {
        let network = network_mode(op.network, self.run.allow)?;
        let base = &inputs[0];
        let mount = self.snapshots.mount(&base.layers, true)?;
        let made = MountPoints::before(&mount.root);
        let spec = Spec {
            rootfs: mount.root.clone(),
            args: op.args.clone(),
            // The proxies are part of what the step sees, not of what it is
            // (its digest), so they come in only here.
            env: op.env.iter().chain(&op.proxy_env).cloned().collect(),
            cwd: if op.cwd.is_empty() { "/".into() } else { op.cwd.clone() },
            user: op.user.clone(),
            hostname: ctx.key().0.hex()[..12].to_owned(),
            files: op.files.iter().map(|f| SpecFile { path: f.name.clone(), content: f.content.clone() }).collect(),
            network,
            ..Spec::default()
        };
        let mut tail: VecDeque<String> = VecDeque::with_capacity(TAIL_LINES);
        let mut sink = |line: &str| {
            if tail.len() == TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(line.to_owned());
            ctx.log(line);
        };
        let code = self.sandbox.run(&spec, Stdio::Capture(&mut sink), &|| ctx.is_cancelled())?.code;
        if ctx.is_cancelled() {
            return Err(EngineError::Cancelled);
        }
        if code != 0 {
            let command = Shortened::new(&op.args.join(" ")).quoted();
            return Err(EngineError::RunFailed { command, code, tail: tail.into() });
        }
        let upper = mount.upper.clone().expect("a writable mount has an upper dir");
        made.clean(&upper);
        let mut writer = LayerWriter::new(&self.store)?;
        diff::write_upper(&upper, writer.tar())?;
        let layer = writer.finish()?;
        drop(mount);
        Ok(base.with(layer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_network_maps_to_its_sandbox_mode_and_host_needs_the_entitlement() {
        let allowed = Entitlements { network_host: true, ..Entitlements::default() };
        let none = Entitlements::default();
        for (network, allow, want) in [
            (Network::Default, none, Some(NetworkMode::Outbound)),
            (Network::None, none, Some(NetworkMode::None)),
            (Network::Host, allowed, Some(NetworkMode::Host)),
            (Network::Host, none, None),
            (Network::Default, allowed, Some(NetworkMode::Outbound)),
        ] {
            let got = network_mode(network, allow);
            match want {
                Some(mode) => assert_eq!(got.unwrap(), mode, "{network:?}"),
                None => assert!(matches!(got, Err(EngineError::NetworkHostNotAllowed)), "{network:?}"),
            }
        }
    }
}
