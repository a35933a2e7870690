//! `kiln build --debug-shell`: when a RUN fails, a shell in what it left.

use std::io::IsTerminal;
use std::sync::{Mutex, PoisonError};

use kiln_solver::ExecContext;

use super::{Engine, EngineError};
use crate::sandbox::{Limits, Spec, Stdio};

/// Steps run in parallel but kiln has one terminal: one shell at a time;
/// the other failed steps wait their turn.
static ONE_SHELL: Mutex<()> = Mutex::new(());

impl Engine {
    /// Run the image's /bin/sh where `failed` ran: its overlay (with what the
    /// step changed before it failed), environment, working directory, user,
    /// mounts and network, with kiln's own stdin, stdout and stderr, until
    /// the user leaves it. Its changes go nowhere: the step has failed.
    pub(super) fn debug_shell(&self, ctx: &ExecContext, failed: &Spec) -> Result<(), EngineError> {
        let _turn = ONE_SHELL.lock().unwrap_or_else(PoisonError::into_inner);
        let mut args = vec!["/bin/sh".to_owned()];
        // A shell reading a pipe prints no prompt; one on a terminal should.
        if std::io::stdin().is_terminal() {
            args.push("-i".to_owned());
        }
        // The step's limits, but no timeout: the user decides how long.
        let spec = Spec { args, limits: Limits { timeout_ms: None, ..failed.limits }, ..failed.clone() };
        let user = if failed.user.is_empty() { "root" } else { &failed.user };
        ctx.log(format!(
            "debug shell: /bin/sh in the failed step's filesystem (its changes so far), as {user} in {}, \
             with its environment; nothing done here is kept. Leave with `exit` or Ctrl-D; the build then fails.",
            failed.cwd
        ));
        // Not cancelled when another step fails: the user is in the middle of something.
        let exit = self.sandbox.run(&spec, Stdio::Proxy { stdin: true }, &|| false)?;
        ctx.log(format!("debug shell: left (exit code {})", exit.code));
        Ok(())
    }
}
