//! RUN: the command in the sandbox, on a writable overlay of the base's
//! layers; what it changed (the overlay's upper folder) becomes the new layer.

use std::collections::VecDeque;

use kiln_frontend::{ExecOp, Network, Shortened};
use kiln_solver::ExecContext;

use super::{Engine, EngineError, FsState};
use crate::build::Entitlements;
use crate::layer::LayerWriter;
use crate::sandbox::cgroup::DEFAULT_PIDS_LIMIT;
use crate::sandbox::rootfs::MountPoints;
use crate::sandbox::userns::IdMapping;
use crate::sandbox::{Limits, NetworkMode, Spec, SpecFile, Stdio};
use crate::secrets::StepSecrets;

/// How many lines of a failed RUN's output the error shows.
const TAIL_LINES: usize = 20;

/// How many sandboxes of one kind are started ahead at most: the next RUN's,
/// and one for a RUN beside it.
const WARM_AHEAD: usize = 2;

/// The RUN steps of a build that have neither run nor been found in the
/// cache, by network: sandboxes for them are started while other steps run
/// (see `sandbox::warm`). Started only once a step of the build runs: a
/// build that finds every step in the cache starts none.
#[derive(Debug, Default)]
pub(crate) struct RunsAhead(std::sync::Mutex<Vec<Network>>);

impl RunsAhead {
    pub(crate) fn new(runs: impl IntoIterator<Item = Network>) -> Self {
        RunsAhead(std::sync::Mutex::new(runs.into_iter().collect()))
    }

    fn runs(&self) -> std::sync::MutexGuard<'_, Vec<Network>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `op`, if a RUN, will not need a sandbox started ahead: it was found in the cache.
    pub(crate) fn found_in_cache(&self, op: &kiln_frontend::Op) {
        if let kiln_frontend::Op::Exec(e) = op {
            let mut runs = self.runs();
            if let Some(i) = runs.iter().position(|n| *n == e.network) {
                runs.remove(i);
            }
        }
    }

    /// `op` is about to run: the network of the next RUN (this one, if it
    /// is a RUN), and how many sandboxes of that network to have started
    /// (this RUN's, which takes one ready or waits for one starting, and
    /// those of the RUN steps of that network still to come).
    fn running(&self, op: &kiln_frontend::Op) -> Option<(Network, usize)> {
        let mut runs = self.runs();
        let now = match op {
            kiln_frontend::Op::Exec(e) => {
                let i = runs.iter().position(|n| *n == e.network)?;
                Some(runs.remove(i))
            }
            _ => None,
        };
        let next = now.or(runs.first().copied())?;
        let want = runs.iter().filter(|n| **n == next).count() + usize::from(now.is_some());
        Some((next, want.min(WARM_AHEAD)))
    }
}

impl Engine {
    /// A step is about to run: have sandboxes started for the RUN steps to come.
    pub(super) fn warm_ahead(&self, op: &kiln_frontend::Op) {
        let Some((next, want)) = self.runs_ahead.running(op) else { return };
        let Ok(mode) = network_mode(next, self.run.allow) else { return };
        self.sandbox.prewarm(mode, &step_limits(&self.run.limits), want);
    }
}

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

/// The limits a RUN runs with: the build's, and the default pids limit
/// where it set none (`Some(0)` there: no pids limit at all).
pub(crate) fn step_limits(build: &Limits) -> Limits {
    let (pids, pids_default) = match build.pids {
        None => (Some(DEFAULT_PIDS_LIMIT), true),
        Some(0) => (None, false),
        Some(n) => (Some(n), false),
    };
    Limits { pids, pids_default, ..*build }
}

/// `bytes` as a person writes a limit: `64 MiB`, `1.5 GiB`, `1000 bytes`.
pub(super) fn format_size(bytes: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if bytes >= size {
            let whole = bytes / size;
            let tenths = (bytes % size) * 10 / size;
            return if tenths == 0 { format!("{whole} {unit}") } else { format!("{whole}.{tenths} {unit}") };
        }
    }
    format!("{bytes} bytes")
}

/// `ms` as `--step-timeout` takes it: `10s`, `1h30m`, `1500ms`.
pub(super) fn format_duration(ms: u64) -> String {
    if ms == 0 || !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let secs = ms / 1000;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut text = String::new();
    for (n, unit) in [(h, "h"), (m, "m"), (s, "s")] {
        if n > 0 {
            text += &format!("{n}{unit}");
        }
    }
    text
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
        // The engine's own refusal: an entitlement or a required secret the
        // build lacks never reaches a step, whoever built the graph.
        crate::secrets::check_exec(op, &self.run)?;
        let network = network_mode(op.network, self.run.allow)?;
        let base = &inputs[0];
        let mut mount = self.snapshots.mount(&base.layers, true)?;
        // Dropped on every way out of this function: what the mounts needed goes with the step.
        let prepared = self.prepare_mounts(op, inputs, &|| ctx.is_cancelled())?;
        // The context files were staged after the cache key was made from
        // their checksum: had they changed, the result would be saved under a
        // key that does not describe it.
        if ctx.content_checksum().is_some() && self.mounts_checksum(op)?.as_ref() != ctx.content_checksum() {
            return Err(super::run_mounts::RunMountError::ContextChanged.into());
        }
        // Dropped after the sandbox is gone: its tmpfs goes with the values.
        let secrets = StepSecrets::prepare(op, &self.run, &self.store.work_dir())?;
        let mut env: Vec<String> = op.env.iter().chain(&op.proxy_env).cloned().collect();
        if let Some(sock) = &secrets.ssh_auth_sock {
            env.retain(|e| !e.starts_with("SSH_AUTH_SOCK="));
            env.push(format!("SSH_AUTH_SOCK={sock}"));
        }
        let spec = Spec {
            rootfs: mount.root.clone(),
            args: op.args.clone(),
            // The proxies are part of what the step sees, not of what it is
            // (its digest), so they come in only here.
            env,
            cwd: if op.cwd.is_empty() { "/".into() } else { op.cwd.clone() },
            user: op.user.clone(),
            hostname: ctx.key().0.hex()[..12].to_owned(),
            files: op.files.iter().map(|f| SpecFile { path: f.name.clone(), content: f.content.clone() }).collect(),
            limits: step_limits(&self.run.limits),
            mounts: prepared.mounts.iter().chain(&secrets.mounts).cloned().collect(),
            env_files: secrets.env_files.clone(),
            insecure: op.insecure,
            network,
            ..Spec::default()
        };
        let made = MountPoints::before(&mount.root, &spec.mounts);
        let mut tail: VecDeque<String> = VecDeque::with_capacity(TAIL_LINES);
        let mut sink = |line: &str| {
            // Before the line goes anywhere: progress, the error's tail.
            let line = secrets.redactor.line(line);
            if tail.len() == TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(line.to_string());
            ctx.log(line);
        };
        let exit = self.sandbox.run(&spec, Stdio::Capture(&mut sink), &|| ctx.is_cancelled())?;
        if ctx.is_cancelled() {
            return Err(EngineError::Cancelled);
        }
        if exit.code != 0 && !exit.timed_out && self.run.debug_shell {
            self.debug_shell(ctx, &spec)?;
        }
        let command = || Shortened::new(&op.args.join(" ")).quoted();
        if exit.timed_out {
            let after = format_duration(spec.limits.timeout_ms.unwrap_or_default());
            return Err(EngineError::TimedOut { command: command(), after, tail: tail.into() });
        }
        if exit.code != 0 && exit.oom_killed {
            let limit = format_size(spec.limits.memory.unwrap_or_default());
            return Err(EngineError::OutOfMemory { command: command(), limit, tail: tail.into() });
        }
        if exit.code != 0 {
            let hint = single_id_hint();
            return Err(EngineError::RunFailed { command: command(), code: exit.code, tail: tail.into(), hint });
        }
        drop(secrets);
        let mut writer = LayerWriter::new(&self.store)?;
        if let Some(tee) = self.snapshots.upper_tee(&mount) {
            writer.tee(tee);
        }
        let bytes = ctx.byte_progress();
        writer.report_bytes(move |n| bytes.report(n, None));
        writer.cancel_on(ctx.cancellation());
        mount.write_diff(&made, writer.tar(), self.epoch)?;
        mount.unmount();
        let layer = writer.finish()?;
        drop(mount);
        drop(prepared);
        Ok(base.with(layer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_read_as_the_flags_wrote_them() {
        for (bytes, want) in [(64 << 20, "64 MiB"), (6 << 20, "6 MiB"), (3 << 29, "1.5 GiB"), (1000, "1000 bytes")] {
            assert_eq!(format_size(bytes), want);
        }
        for (ms, want) in [(10_000, "10s"), (5_400_000, "1h30m"), (3_600_000, "1h"), (1500, "1500ms"), (61_000, "1m1s")]
        {
            assert_eq!(format_duration(ms), want);
        }
    }

    #[test]
    fn a_build_without_a_pids_limit_gets_the_default_and_zero_means_none() {
        let with = |pids| step_limits(&Limits { pids, memory: Some(1 << 30), ..Limits::default() });
        assert_eq!((with(None).pids, with(None).pids_default), (Some(DEFAULT_PIDS_LIMIT), true));
        assert_eq!((with(Some(0)).pids, with(Some(0)).pids_default), (None, false));
        assert_eq!((with(Some(50)).pids, with(Some(50)).pids_default), (Some(50), false));
        assert_eq!(with(None).memory, Some(1 << 30));
    }

    fn run(network: Network) -> kiln_frontend::Op {
        let args = vec!["true".to_owned()];
        let (env, files, proxy_env, mounts) = (vec![], vec![], vec![], vec![]);
        let (cwd, user) = ("/".to_owned(), String::new());
        kiln_frontend::Op::Exec(ExecOp { args, env, cwd, user, files, proxy_env, mounts, network, insecure: false })
    }

    #[test]
    fn sandboxes_are_started_ahead_for_the_run_steps_still_to_come() {
        let runs = RunsAhead::new([Network::Default, Network::None, Network::Default, Network::Default]);
        // A COPY runs: the first RUN's network, for it and the next of that network.
        assert_eq!(runs.running(&kiln_frontend::Op::Scratch), Some((Network::Default, WARM_AHEAD)));
        // One RUN is found in the cache: it needs none.
        runs.found_in_cache(&run(Network::Default));
        // A RUN runs: its own, and the one more of its network to come.
        assert_eq!(runs.running(&run(Network::Default)), Some((Network::Default, 2)));
        // The last of its network: its own only.
        assert_eq!(runs.running(&run(Network::Default)), Some((Network::Default, 1)));
        // A step runs while one RUN (of another network) is left.
        assert_eq!(runs.running(&kiln_frontend::Op::Scratch), Some((Network::None, 1)));
        assert_eq!(runs.running(&run(Network::None)), Some((Network::None, 1)));
        // None left: none started, whatever runs (a RUN the list did not hold included).
        assert_eq!(runs.running(&kiln_frontend::Op::Scratch), None);
        assert_eq!(runs.running(&run(Network::Default)), None);
    }

    #[test]
    fn a_build_found_in_the_cache_starts_no_sandbox_ahead() {
        let runs = RunsAhead::new([Network::Default, Network::None]);
        runs.found_in_cache(&run(Network::Default));
        runs.found_in_cache(&run(Network::None));
        assert_eq!(runs.running(&kiln_frontend::Op::Scratch), None);
    }

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
