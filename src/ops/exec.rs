//! RUN: the command in the sandbox, on a writable overlay of the base's
//! layers; what it changed (the overlay's upper folder) becomes the new layer.

use std::collections::VecDeque;

use kiln_frontend::{ExecOp, Shortened};
use kiln_solver::ExecContext;

use super::{Engine, EngineError, FsState};
use crate::layer::LayerWriter;
use crate::sandbox::rootfs::MountPoints;
use crate::sandbox::userns::IdMapping;
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

/// A failed step's hint, shown after its output.
pub(super) fn hint_text(hint: &Option<String>) -> String {
    hint.as_ref().map(|h| format!("\n  hint: {h}")).unwrap_or_default()
}

/// With a single-id map, a step that needs any user but root fails in ways
/// (EINVAL from chown or setuid) that do not say why: say it.
fn single_id_hint() -> Option<String> {
    let mapping = IdMapping::current();
    if !matches!(mapping, IdMapping::Single { .. }) {
        return None;
    }
    mapping.more_ids_hint().map(|h| format!("if the step needs users or groups other than root (chown, USER, su): {h}"))
}

impl Engine {
    pub(super) fn exec(&self, ctx: &ExecContext, op: &ExecOp, inputs: &[FsState]) -> Result<FsState, EngineError> {
        let base = &inputs[0];
        let mut mount = self.snapshots.mount(&base.layers, true)?;
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
            return Err(EngineError::RunFailed { command, code, tail: tail.into(), hint: single_id_hint() });
        }
        let mut writer = LayerWriter::new(&self.store)?;
        mount.write_diff(&made, writer.tar())?;
        let layer = writer.finish()?;
        drop(mount);
        Ok(base.with(layer))
    }
}
