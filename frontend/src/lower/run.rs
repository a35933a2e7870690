//! RUN: an Exec vertex on the stage's filesystem, with the environment the
//! command sees (the image's, then ARGs), and the proxy build args beside it;
//! and the wrapping of any shell-form command line in the stage's SHELL.

use std::collections::BTreeMap;

use super::args::PROXY_KINDS;
use super::stage::StageState;
use super::{env_get, env_set, heredoc, Halt, Lowering};
use crate::config::ImageConfig;
use crate::instructions::{Command, CommandLine, Run};
use crate::ops::{ExecOp, Network, Op, RunMount};

/// The command to run: exec form as written; shell form appended to the
/// stage's SHELL (`/bin/sh -c` by default).
pub(super) fn wrap(config: &ImageConfig, line: &CommandLine) -> Vec<String> {
    match line {
        CommandLine::Exec(args) => args.clone(),
        CommandLine::Shell(text) => {
            let mut args = config.shell.clone().unwrap_or_else(|| vec!["/bin/sh".to_owned(), "-c".to_owned()]);
            args.push(text.clone());
            args
        }
    }
}

impl Lowering<'_> {
    pub(super) fn run(&mut self, index: usize, st: &mut StageState, cmd: &Command, run: &Run) -> Result<(), Halt> {
        // First what may halt (a `from=` stage not lowered yet): nothing
        // below changes the stage before it.
        let mut inputs = vec![st.vertex.clone()];
        let mounts = self.mounts(index, st, run, &mut inputs)?;
        // Checked by the parser; `host` and `insecure` are the engine's to
        // allow (`--allow`), before anything runs.
        let network = match run.network.as_ref().map(|w| w.raw.as_str()) {
            Some("none") => Network::None,
            Some("host") => Network::Host,
            _ => Network::Default,
        };
        let insecure = run.security.as_ref().is_some_and(|w| w.raw == "insecure");
        let (line, files) = match &run.command {
            CommandLine::Shell(text) if !run.heredocs.is_empty() => heredoc::run_command(text, &run.heredocs),
            line => (line.clone(), Vec::new()),
        };
        let args = &wrap(&st.config, &line);
        // The image env, with the ARGs' values BuildKit adds to it: an ARG
        // declared after an ENV of its name replaces its value.
        let mut env = st.config.env.clone();
        for arg in &st.args {
            if let Some(v) = &arg.value {
                if arg.over_env || env_get(&st.config.env, &arg.name).is_none() {
                    env_set(&mut env, &arg.name, v);
                }
            }
        }
        // BuildKit's `|N` list: every ARG, with the value the step sees
        // (an ENV's when that came later), empty for one without a value.
        let shown_args: Vec<String> =
            st.args.iter().map(|a| format!("{}={}", a.name, st.get(&a.name).unwrap_or_default())).collect();
        // BuildKit points SSH_AUTH_SOCK at the first agent, unless set.
        let first_agent = mounts.iter().find_map(|m| match m {
            RunMount::Ssh { target, .. } => Some(target),
            _ => None,
        });
        if let Some(target) = first_agent.filter(|_| env_get(&env, "SSH_AUTH_SOCK").is_none()) {
            env_set(&mut env, "SSH_AUTH_SOCK", target);
        }
        let proxy_env = proxy_env(&self.opts.build_args, &env);
        let op = Op::Exec(ExecOp {
            args: args.to_vec(),
            env,
            cwd: st.workdir(),
            user: st.config.user.clone(),
            files,
            proxy_env,
            mounts,
            network,
            insecure,
        });
        // Like BuildKit: a RUN of one heredoc is named with its first line.
        let name = match (&run.command, run.heredocs.first()) {
            (CommandLine::Shell(text), Some(doc)) if heredoc::is_alone(text) => {
                st.name(&format!("{} ({})", cmd.text, heredoc::summary(&doc.content)))
            }
            _ => st.name(&cmd.text),
        };
        st.vertex = self.add(op, inputs, name, cmd.location)?;
        // Like docker: `RUN |2 A=1 B=2 /bin/sh -c make` when ARGs are in scope.
        let args_note = match shown_args.len() {
            0 => String::new(),
            n => format!("|{n} {} ", shown_args.join(" ")),
        };
        st.history_of_op(format!("RUN {args_note}{}", args.join(" ")));
        Ok(())
    }
}

/// The proxy build args as the step's extra environment, BuildKit's way: a
/// build arg named like a proxy in any case (`HTTP_PROXY`, `http_proxy`)
/// gives both spellings, unless `env` (ENV, a declared ARG) already sets them.
/// They stay out of the digest, the history and the image config, so a
/// build behind a proxy shares its cache with one that is not.
fn proxy_env(build_args: &BTreeMap<String, String>, env: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for kind in PROXY_KINDS {
        // The upper-case spelling first, so it wins when both are given.
        let Some(value) = build_args.iter().filter(|(k, _)| k.eq_ignore_ascii_case(kind)).map(|(_, v)| v).next() else {
            continue;
        };
        for name in [kind.to_owned(), kind.to_ascii_lowercase()] {
            if env_get(env, &name).is_none() {
                out.push(format!("{name}={value}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxies_come_in_both_spellings_unless_the_env_has_them() {
        let args: BTreeMap<String, String> =
            [("http_proxy", "h"), ("No_Proxy", "n"), ("OTHER", "o"), ("HTTPS_PROXY", "s1"), ("https_proxy", "s2")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
        let env = vec!["no_proxy=mine".to_owned()];
        assert_eq!(
            proxy_env(&args, &env),
            ["HTTP_PROXY=h", "http_proxy=h", "HTTPS_PROXY=s1", "https_proxy=s1", "NO_PROXY=n"]
        );
    }
}
