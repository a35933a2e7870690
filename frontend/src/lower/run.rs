//! RUN: an Exec vertex on the stage's filesystem, with the environment the
//! command sees (the image's, then ARGs, then undeclared proxy build args).

use super::args::PROXY_ARGS;
use super::stage::StageState;
use super::{env_get, Lowering};
use crate::error::Error;
use crate::instructions::Command;
use crate::ops::{ExecOp, Op};

impl Lowering<'_> {
    pub(super) fn run(&mut self, st: &mut StageState, cmd: &Command, args: &[String]) -> Result<(), Error> {
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
