//! What a build's RUN steps ask for that only the caller can give: required
//! secrets and ssh agents, `--network=host` and `--security=insecure`
//! (BuildKit's entitlements; CVE-2024-23653 was a step getting the latter
//! without them). Checked over the whole graph before any step runs, and
//! again by the engine for each step it is handed.

use kiln_frontend::{BuildGraph, ExecOp, Network, Op, RunMount};

use super::SecretsError;
use crate::build::RunOptions;

/// The first RUN (by Dockerfile line) of `graph`'s target that asks for a
/// required secret or ssh agent `run` lacks, or for an entitlement it does
/// not allow, as an error naming `dockerfile_name:LINE` and the flag to pass.
pub fn check_graph(graph: &BuildGraph, dockerfile_name: &str, run: &RunOptions) -> Result<(), SecretsError> {
    // A graph whose closure is broken fails in the solver with its own error.
    let vertices = graph.graph.closure(&graph.target).unwrap_or_default();
    let mut problems: Vec<(usize, SecretsError)> = vertices
        .into_iter()
        .filter_map(|v| {
            let Op::Exec(op) = &v.op else { return None };
            let line = graph.sources.get(&v.digest).map(|at| at.line);
            let place = line.map(|l| format!("{dockerfile_name}:{l}: ")).unwrap_or_default();
            problem(op, run, place).map(|e| (line.unwrap_or(usize::MAX), e))
        })
        .collect();
    problems.sort_by_key(|(line, _)| *line);
    match problems.into_iter().next() {
        Some((_, e)) => Err(e),
        None => Ok(()),
    }
}

/// The engine's own check of one step (the place is added by the caller).
pub(crate) fn check_exec(op: &ExecOp, run: &RunOptions) -> Result<(), SecretsError> {
    problem(op, run, String::new()).map_or(Ok(()), Err)
}

fn problem(op: &ExecOp, run: &RunOptions, place: String) -> Option<SecretsError> {
    if op.network == Network::Host && !run.allow.network_host {
        return Some(SecretsError::NetworkHost { place });
    }
    if op.insecure && !run.allow.security_insecure {
        return Some(SecretsError::Insecure { place });
    }
    op.mounts.iter().find_map(|m| match m {
        RunMount::Secret { id, required: true, .. } if !run.secrets.iter().any(|s| &s.id == id) => {
            Some(SecretsError::MissingSecret { place: place.clone(), id: id.clone() })
        }
        RunMount::Ssh { id, required: true, .. } if !run.ssh.iter().any(|s| &s.id == id) => {
            Some(SecretsError::MissingSsh { place: place.clone(), id: id.clone() })
        }
        _ => None,
    })
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
