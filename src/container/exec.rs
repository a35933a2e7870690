//! `kiln exec`: a command in a running container, through `kiln __exec`
//! (see `sandbox::join`): the container's namespaces and cgroups, its
//! confinement, its environment with `-e` on top, its user and working
//! directory unless `-u`/`-w` say otherwise. Streams are copied through
//! pipes, never handed over: no descriptor or terminal of kiln's reaches the
//! container.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio as StdStdio};

use super::state::{Containers, Status};
use super::ContainerError;
use crate::sandbox::{signals, Spec};
use crate::store::Store;

/// What `kiln exec` runs.
#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    pub command: Vec<String>,
    /// `KEY=VALUE`, or `KEY` for this process's value.
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    /// Pass this process's stdin on (`-i`).
    pub stdin: bool,
    /// A pty of its own for the command (`-t`), driven from kiln's terminal.
    pub tty: bool,
}

/// Run `request` in container `reference`; the command's exit code (126,
/// 127 and 125 as `kiln run`'s).
pub fn exec(store: &Store, reference: &str, request: &ExecRequest, exe: &Path) -> Result<i32, ContainerError> {
    let containers = Containers::new(store);
    let id = containers.find(reference)?;
    let config = containers.config(&id)?;
    let state = containers.state(&id)?;
    if state.status != Status::Running {
        return Err(ContainerError::ExecNotRunning(config.name));
    }
    if super::processes::paused(&containers, &id) {
        return Err(ContainerError::Paused(config.name));
    }
    let mut env = config.env.clone();
    for e in &request.env {
        let Some((key, value)) = crate::flags::name_value(e, crate::flags::process_env) else { continue };
        env.retain(|x| x.split_once('=').map(|(k, _)| k) != Some(key));
        env.push(format!("{key}={value}"));
    }
    let spec = Spec {
        rootfs: PathBuf::from("/"),
        args: request.command.clone(),
        env,
        cwd: request.workdir.clone().unwrap_or(config.cwd),
        user: request.user.clone().unwrap_or(config.user),
        hostname: config.hostname,
        terminal: request.tty,
        ..Spec::default()
    };
    let spec = spec.validated().map_err(crate::sandbox::SandboxError::from)?;
    let failed = |e: std::io::Error| ContainerError::Exec(config.name.clone(), e);
    let (spec_read, mut spec_write) = std::io::pipe().map_err(failed)?;
    let mut cmd = Command::new(exe);
    cmd.arg("__exec").arg(state.pid.to_string()).env_clear();
    // With -t, a new pty: its other side is the command's terminal.
    let pty = if request.tty {
        let pty = nix::pty::openpty(crate::sandbox::window_size().as_ref(), None).map_err(|e| failed(e.into()))?;
        let slave = || pty.slave.try_clone().map_err(failed);
        cmd.stdin(slave()?).stdout(slave()?).stderr(slave()?);
        Some(File::from(pty.master))
    } else {
        cmd.stdin(if request.stdin { StdStdio::piped() } else { StdStdio::null() });
        cmd.stdout(StdStdio::piped()).stderr(StdStdio::piped());
        None
    };
    let fd = spec_read.as_raw_fd();
    // SAFETY: between fork and exec only prctl, setsid, fcntl, dup2 and close_range.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 || libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // At fd 3, every other descriptor above stdio closed.
            crate::sandbox::inherit_channel(fd)
        });
    }
    let _forwarding = signals::install(false).map_err(|e| failed(e.into()))?;
    let mut child = cmd.spawn().map_err(failed)?;
    signals::forward_to(nix::unistd::Pid::from_raw(child.id() as i32));
    drop(cmd);
    drop(spec_read);
    let json = serde_json::to_vec(&spec).expect("a spec serialises");
    // A child that failed before reading says why on stderr.
    let _ = spec_write.write_all(&json);
    drop(spec_write);
    if let Some(master) = pty {
        let _raw = request.stdin.then(super::terminal::RawMode::enter).flatten();
        let done = std::sync::atomic::AtomicBool::new(false);
        let status = std::thread::scope(|s| {
            if request.stdin {
                let to = master.try_clone();
                let (master, done) = (&master, &done);
                s.spawn(move || {
                    if let Ok(to) = to {
                        crate::sandbox::copy_stdin(to, done, Some(master));
                    }
                });
            }
            // Until EIO: every holder of the pty's other side is gone.
            let _ = std::io::copy(&mut &master, &mut std::io::stdout());
            let status = child.wait();
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            status
        });
        return Ok(crate::sandbox::exit_code(status.map_err(failed)?));
    }
    if let Some(mut input) = child.stdin.take() {
        // Not joined: it may wait on a terminal long after the command ended.
        std::thread::spawn(move || std::io::copy(&mut std::io::stdin().lock(), &mut input));
    }
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let copying = std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::stderr()));
    let _ = std::io::copy(&mut out, &mut std::io::stdout());
    let _ = copying.join();
    let status = child.wait().map_err(failed)?;
    Ok(crate::sandbox::exit_code(status))
}
