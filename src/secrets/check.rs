//! What a build's RUN steps ask for that only the caller can give: required
//! secrets and ssh agents, `--network=host` and `--security=insecure`
//! (BuildKit's entitlements; CVE-2024-23653 was a step getting the latter
//! without them). Checked over the whole graph before any step runs, and
//! again by the engine for each step it is handed.

use kiln_frontend::{BuildGraph, ExecOp, Network, RequiredId, RunMount, RunRequirements};

use super::SecretsError;
use crate::build::RunOptions;

/// The first RUN (by Dockerfile line) of `graph`'s target that asks for a
/// required secret or ssh agent `run` lacks, or for an entitlement it does
/// not allow, as an error naming `dockerfile_name:LINE` and the flag to pass.
pub fn check_graph(graph: &BuildGraph, dockerfile_name: &str, run: &RunOptions) -> Result<(), SecretsError> {
    graph.run_requirements().iter().try_for_each(|needs| {
        let place = needs.location.map(|at| format!("{dockerfile_name}:{}: ", at.line)).unwrap_or_default();
        Asks::of_step(needs).refused(run, place).map_or(Ok(()), Err)
    })
}

/// The engine's own check of one step (the place is added by the caller).
pub(crate) fn check_exec(op: &ExecOp, run: &RunOptions) -> Result<(), SecretsError> {
    Asks::of_op(op).refused(run, String::new()).map_or(Ok(()), Err)
}

/// What one step asks for: each secret and agent id with whether it is
/// required, and the entitlements.
struct Asks<'a> {
    secrets: Vec<(&'a str, bool)>,
    ssh: Vec<(&'a str, bool)>,
    network_host: bool,
    insecure: bool,
}

impl<'a> Asks<'a> {
    fn of_step(needs: &'a RunRequirements) -> Self {
        let ids = |ids: &'a [RequiredId]| ids.iter().map(|r| (r.id.as_str(), r.required)).collect();
        Asks {
            secrets: ids(&needs.secrets),
            ssh: ids(&needs.ssh),
            network_host: needs.network_host,
            insecure: needs.insecure,
        }
    }

    fn of_op(op: &'a ExecOp) -> Self {
        let (mut secrets, mut ssh) = (Vec::new(), Vec::new());
        for m in &op.mounts {
            match m {
                RunMount::Secret { id, required, .. } => secrets.push((id.as_str(), *required)),
                RunMount::Ssh { id, required, .. } => ssh.push((id.as_str(), *required)),
                _ => {}
            }
        }
        Asks { secrets, ssh, network_host: op.network == Network::Host, insecure: op.insecure }
    }

    /// Why `run` cannot run this step, if it cannot.
    fn refused(&self, run: &RunOptions, place: String) -> Option<SecretsError> {
        if self.network_host && !run.allow.network_host {
            return Some(SecretsError::NetworkHost { place });
        }
        if self.insecure && !run.allow.security_insecure {
            return Some(SecretsError::Insecure { place });
        }
        let missing = |asked: &[(&'a str, bool)], given: Vec<&str>| {
            asked.iter().find(|(id, required)| *required && !given.contains(id)).map(|(id, _)| id.to_string())
        };
        if let Some(id) = missing(&self.secrets, run.secrets.iter().map(|s| s.id.as_str()).collect()) {
            return Some(SecretsError::MissingSecret { place, id });
        }
        let id = missing(&self.ssh, run.ssh.iter().map(|s| s.id.as_str()).collect())?;
        Some(SecretsError::MissingSsh { place, id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::Entitlements;
    use crate::secrets::{SecretKind, SecretSource, SshSource};

    fn exec(mounts: Vec<RunMount>, network: Network, insecure: bool) -> ExecOp {
        ExecOp {
            args: vec!["true".into()],
            env: vec![],
            cwd: "/".into(),
            user: String::new(),
            files: vec![],
            proxy_env: vec![],
            mounts,
            network,
            insecure,
        }
    }

    fn secret(id: &str, required: bool) -> RunMount {
        RunMount::Secret { id: id.into(), target: None, env: Some("V".into()), required, mode: 0o400, uid: 0, gid: 0 }
    }

    fn ssh(id: &str, required: bool) -> RunMount {
        RunMount::Ssh { id: id.into(), target: "/run/ssh".into(), required, mode: 0o600, uid: 0, gid: 0 }
    }

    #[test]
    fn each_request_needs_its_flag() {
        let given = RunOptions {
            secrets: vec![SecretSource { id: "tok".into(), kind: SecretKind::Env("T".into()) }],
            ssh: vec![SshSource { id: "default".into(), socket: "/s".into() }],
            allow: Entitlements { network_host: true, security_insecure: true },
            ..RunOptions::default()
        };
        let none = RunOptions::default();
        let d = Network::Default;
        for (op, with, want) in [
            (exec(vec![], d, false), &none, None),
            (exec(vec![secret("tok", false)], d, false), &none, None),
            (exec(vec![ssh("default", false)], d, false), &none, None),
            (exec(vec![secret("tok", true)], d, false), &given, None),
            (exec(vec![ssh("default", true)], d, false), &given, None),
            (exec(vec![], Network::Host, true), &given, None),
            (exec(vec![], Network::None, false), &none, None),
            (exec(vec![secret("tok", true)], d, false), &none, Some("no secret \"tok\" was given")),
            (exec(vec![secret("other", true)], d, false), &given, Some("--secret id=other,src=FILE")),
            (exec(vec![ssh("git", true)], d, false), &given, Some("no ssh agent \"git\" was given: pass --ssh git")),
            (exec(vec![], Network::Host, false), &none, Some("pass --allow network.host")),
            (exec(vec![], d, true), &none, Some("pass --allow security.insecure")),
        ] {
            let got = check_exec(&op, with).err().map(|e| e.to_string());
            match want {
                None => assert_eq!(got, None, "{op:?}"),
                Some(want) => assert!(got.as_deref().is_some_and(|g| g.contains(want)), "{op:?}: {got:?}"),
            }
        }
    }
}
