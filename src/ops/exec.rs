//! RUN: the command in the sandbox, on a writable overlay of the base's
//! layers; what it changed (the overlay's upper folder) becomes the new layer.

use std::collections::VecDeque;

use kiln_frontend::{ExecOp, Shortened};
use kiln_solver::ExecContext;

use super::{Engine, EngineError, FsState};
use crate::layer::{diff, LayerWriter};
use crate::sandbox::rootfs::MountPoints;
use crate::sandbox::{Spec, SpecFile, Stdio};

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

impl Engine {
    pub(super) fn exec(&self, ctx: &ExecContext, op: &ExecOp, inputs: &[FsState]) -> Result<FsState, EngineError> {
        let base = &inputs[0];
        let mount = self.snapshots.mount(&base.layers, true)?;
        // Dropped on every way out of this function: what the mounts needed goes with the step.
        let prepared = self.prepare_mounts(op, inputs, &|| ctx.is_cancelled())?;
        // The context files were staged after the cache key was made from
        // their checksum: had they changed, the result would be saved under a
        // key that does not describe it.
        if ctx.content_checksum().is_some() && self.mounts_checksum(op)?.as_ref() != ctx.content_checksum() {
            return Err(super::run_mounts::RunMountError::ContextChanged.into());
        }
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
            mounts: prepared.mounts.clone(),
            ..Spec::default()
        };
        let made = MountPoints::before(&mount.root, &spec.mounts);
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
        drop(prepared);
        Ok(base.with(layer))
    }
}
