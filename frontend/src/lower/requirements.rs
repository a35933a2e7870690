//! What the RUN steps of a graph ask of the build before anything runs:
//! secrets, ssh agents, the host's network, insecure mode. The engine checks
//! them against what it was given (`--secret`, `--ssh`, `--allow`) and fails
//! naming the Dockerfile line, instead of failing halfway through a build.

use kiln_solver::Digest;

use super::BuildGraph;
use crate::error::Location;
use crate::ops::{Network, Op, RunMount};

/// A secret or ssh agent a step mounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequiredId {
    /// `id=`, as the build's `--secret id=…` or `--ssh ID=…` names it.
    pub id: String,
    /// `required=true`: the step must not run without it. Otherwise the
    /// step runs without it (BuildKit's default).
    pub required: bool,
}

/// What one RUN step asks of the build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRequirements {
    /// The Exec vertex.
    pub vertex: Digest,
    /// Its RUN instruction (`None` only for a vertex with no recorded place).
    pub location: Option<Location>,
    /// Its `--mount=type=secret`s, in the order written.
    pub secrets: Vec<RequiredId>,
    /// Its `--mount=type=ssh`s, in the order written.
    pub ssh: Vec<RequiredId>,
    /// `--network=host`: needs `--allow network.host`.
    pub network_host: bool,
    /// `--security=insecure`: needs `--allow security.insecure`.
    pub insecure: bool,
}

impl BuildGraph {
    /// What the target's RUN steps ask of the build (secrets, ssh agents,
    /// `--network=host`, `--security=insecure`), one entry per step that asks
    /// anything, in Dockerfile order (then by digest, for steps at one place).
    pub fn run_requirements(&self) -> Vec<RunRequirements> {
        let vertices = self.graph.closure(&self.target).unwrap_or_default();
        let mut out: Vec<RunRequirements> = vertices
            .into_iter()
            .filter_map(|v| {
                let Op::Exec(exec) = &v.op else { return None };
                let mut needs = RunRequirements {
                    vertex: v.digest.clone(),
                    location: self.sources.get(&v.digest).copied(),
                    secrets: Vec::new(),
                    ssh: Vec::new(),
                    network_host: exec.network == Network::Host,
                    insecure: exec.insecure,
                };
                for mount in &exec.mounts {
                    match mount {
                        RunMount::Secret { id, required, .. } => {
                            needs.secrets.push(RequiredId { id: id.clone(), required: *required })
                        }
                        RunMount::Ssh { id, required, .. } => {
                            needs.ssh.push(RequiredId { id: id.clone(), required: *required })
                        }
                        _ => {}
                    }
                }
                let asks = !needs.secrets.is_empty() || !needs.ssh.is_empty() || needs.network_host || needs.insecure;
                asks.then_some(needs)
            })
            .collect();
        out.sort_by(|a, b| (a.location, &a.vertex).cmp(&(b.location, &b.vertex)));
        out
    }
}
