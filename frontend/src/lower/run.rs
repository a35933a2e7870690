//! RUN: an Exec vertex on the stage's filesystem, with the environment the
//! command sees (the image's, then ARGs, then undeclared proxy build args);
//! and the wrapping of any shell-form command line in the stage's SHELL.

use super::args::PROXY_ARGS;
use super::stage::StageState;
use super::{env_get, LowerError, Lowering};
use crate::config::ImageConfig;
use crate::error::Error;
use crate::instructions::{Command, CommandLine, Run};
use crate::ops::{ExecOp, Op};

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
    pub(super) fn run(&mut self, st: &mut StageState, cmd: &Command, run: &Run) -> Result<(), Error> {
        // Checked by the parser; running them is not implemented yet, and
        // only refused here so that a stage nobody builds never fails on them.
        if let Some(mount) = run.mounts.first() {
            let e = LowerError::Unsupported(
                "RUN --mount is not supported yet: remove the flag (or do the step without the mount)".to_owned(),
            );
            return Err(Error::at(mount.location, e));
        }
        for (flag, word, default) in [("network", &run.network, "default"), ("security", &run.security, "sandbox")] {
            if let Some(w) = word.as_ref().filter(|w| w.raw != default) {
                let e =
                    LowerError::Unsupported(format!("RUN --{flag}={} is not supported yet: remove the flag", w.raw));
                return Err(Error::at(w.location, e));
            }
        }
        let args = &wrap(&st.config, &run.command);
        // The image env, then ARGs ENV does not shadow, then undeclared proxies.
        let mut env = st.config.env.clone();
        let mut shown_args = Vec::new();
        for (k, v) in &st.args {
            if env_get(&st.config.env, k).is_none() {
                env.push(format!("{k}={v}"));
                shown_args.push(format!("{k}={v}"));
            }
        }
        for &proxy in PROXY_ARGS {
            let declared = st.args.iter().any(|(k, _)| k == proxy);
            if let Some(v) = self.opts.build_args.get(proxy) {
                if !declared && env_get(&st.config.env, proxy).is_none() {
                    env.push(format!("{proxy}={v}"));
                }
            }
        }
        let op = Op::Exec(ExecOp {
            args: args.to_vec(),
            env,
            cwd: st.workdir(),
            user: st.config.user.clone(),
            files: Vec::new(),
            proxy_env: Vec::new(),
        });
        let name = st.name(&cmd.text);
        st.vertex = self.add(op, vec![st.vertex.clone()], name, cmd.location)?;
        // Like docker: `RUN |2 A=1 B=2 /bin/sh -c make` when ARGs are in scope.
        let args_note = match shown_args.len() {
            0 => String::new(),
            n => format!("|{n} {} ", shown_args.join(" ")),
        };
        st.history(format!("RUN {args_note}{}", args.join(" ")), false);
        Ok(())
    }
}
