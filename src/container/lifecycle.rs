//! What the other commands do to a container: signal it (`kill`, `stop`),
//! wait for its end (`wait`), remove it (`rm`). A signal goes to the
//! sandbox process, which passes it down to the command (see
//! `sandbox::signals`); SIGKILL ends the sandbox process, and with it the
//! whole container. The process is named by its pid and start time: a
//! pidfd opened on the pid, then the start time checked, so a pid reused
//! since never gets the signal.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::monitor::start_time;
use super::state::{Containers, State, Status};
use super::{Config, ContainerError};
use crate::store::Store;

/// How long `stop` waits for the command before SIGKILL, as docker's.
const DEFAULT_STOP_TIMEOUT: u64 = 10;
/// How long a container may take to end once SIGKILL was sent.
const KILL_GRACE: Duration = Duration::from_secs(10);

/// A signal as docker reads one: `SIGTERM`, `TERM`, `term` or `15`.
pub fn parse_signal(text: &str) -> Result<Signal, ContainerError> {
    let bad = || ContainerError::BadSignal(text.to_owned());
    if let Ok(n) = text.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| bad());
    }
    let upper = text.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") { upper } else { format!("SIG{upper}") };
    name.parse::<Signal>().map_err(|_| bad())
}

/// Send `signal` to container `reference`'s command (SIGKILL: the whole
/// container); its config. Only a running container can be signalled.
pub fn kill(store: &Store, reference: &str, signal: &str) -> Result<Config, ContainerError> {
    let signal = parse_signal(signal)?;
    if signal != Signal::SIGKILL && !crate::sandbox::forwarded(signal) {
        return Err(ContainerError::BadSignal(format!(
            "{signal}: kiln passes on SIGKILL and {}",
            crate::sandbox::forwarded_names()
        )));
    }
    let containers = Containers::new(store);
    let (id, config, state) = containers.running(reference)?;
    containers.mark_stopping(&id)?;
    resume(store, &containers, &id);
    send(&state, signal)?;
    Ok(config)
}

/// Stop container `reference`: its stop signal, then, after `timeout`
/// seconds (its `--stop-timeout`, else 10), SIGKILL. A container that is not
/// running is left as it is.
pub fn stop(store: &Store, reference: &str, timeout: Option<u64>) -> Result<Config, ContainerError> {
    let containers = Containers::new(store);
    let id = containers.find(reference)?;
    let config = containers.config(&id)?;
    let state = containers.state(&id)?;
    if state.status != Status::Running {
        return Ok(config);
    }
    let signal = match &config.stop_signal {
        Some(s) => parse_signal(s)?,
        None => Signal::SIGTERM,
    };
    let secs = timeout.or(config.stop_timeout).unwrap_or(DEFAULT_STOP_TIMEOUT);
    containers.mark_stopping(&id)?;
    resume(store, &containers, &id);
    send(&state, signal)?;
    if ended_within(&containers, &id, Duration::from_secs(secs))? {
        return Ok(config);
    }
    send(&state, Signal::SIGKILL)?;
    if ended_within(&containers, &id, KILL_GRACE)? {
        return Ok(config);
    }
    Err(ContainerError::Unkillable { name: config.name, secs: KILL_GRACE.as_secs() })
}

/// Wait until container `reference` is not running; its exit code.
pub fn wait(store: &Store, reference: &str) -> Result<i32, ContainerError> {
    let containers = Containers::new(store);
    let id = containers.find(reference)?;
    loop {
        let state = containers.state(&id)?;
        // Created but held: its monitor is starting it.
        let starting = state.status == Status::Created && containers.monitor_alive(&id)?;
        if state.status != Status::Running && !starting {
            return Ok(state.exit_code);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Remove container `reference`: its record, logs and filesystem, and with
/// `volumes` its anonymous volumes. A running one only with `force`, killed first.
pub fn remove(store: &Store, reference: &str, force: bool, volumes: bool) -> Result<Config, ContainerError> {
    let containers = Containers::new(store);
    let id = containers.find(reference)?;
    let config = containers.config(&id)?;
    let drop_volumes = || if volumes { super::volumes::drop_anonymous(store, &config) } else { Ok(()) };
    loop {
        if let Some(held) = containers.hold_stopped(&id)? {
            containers.remove(&id, &held)?;
            drop_volumes()?;
            return Ok(config);
        }
        if !force {
            return Err(ContainerError::Running(config.name));
        }
        let state = containers.state(&id)?;
        if state.status == Status::Running {
            containers.mark_stopping(&id)?;
            send(&state, Signal::SIGKILL)?;
        }
        let deadline = Instant::now() + KILL_GRACE;
        while containers.monitor_alive(&id)? {
            if Instant::now() >= deadline {
                return Err(ContainerError::Unkillable { name: config.name, secs: KILL_GRACE.as_secs() });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // `--rm`: its monitor removed it on the way out.
        if !containers.dir(&id).exists() {
            drop_volumes()?;
            return Ok(config);
        }
    }
}

/// A paused container's processes resumed: a stop signal to a stopped
/// process waits until it is continued.
fn resume(store: &Store, containers: &Containers, id: &str) {
    if super::processes::paused(containers, id) {
        let _ = super::processes::pause(store, id, false);
    }
}

/// Whether the container ended within `timeout`.
fn ended_within(containers: &Containers, id: &str, timeout: Duration) -> Result<bool, ContainerError> {
    let deadline = Instant::now() + timeout;
    loop {
        match containers.state(id) {
            Ok(state) if state.status == Status::Running => {}
            Ok(_) => return Ok(true),
            // Removed (`--rm`) as it ended.
            Err(ContainerError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => return Ok(true),
            Err(e) => return Err(e),
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Send `signal` to the sandbox process `state` names, if it is still that
/// process. One that is gone already is not an error: it ended.
fn send(state: &State, signal: Signal) -> Result<(), ContainerError> {
    let pid = state.pid;
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return match std::io::Error::last_os_error() {
            e if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
            e => Err(ContainerError::Signal(pid, e)),
        };
    }
    // SAFETY: a descriptor pidfd_open just returned, owned from here on.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // The descriptor now names one process for good: if it is the one that
    // started then, it is the container's.
    if start_time(pid) != Some(state.pid_start) {
        return Ok(());
    }
    // SAFETY: pidfd_send_signal on our descriptor, no siginfo.
    let rc = unsafe {
        libc::syscall(libc::SYS_pidfd_send_signal, fd.as_raw_fd(), signal as libc::c_int, std::ptr::null::<u8>(), 0)
    };
    if rc < 0 {
        return match std::io::Error::last_os_error() {
            e if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
            e => Err(ContainerError::Signal(pid, e)),
        };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_read_as_docker_reads_them() {
        for (text, signal) in
            [("SIGTERM", Signal::SIGTERM), ("TERM", Signal::SIGTERM), ("term", Signal::SIGTERM), ("9", Signal::SIGKILL)]
        {
            assert_eq!(parse_signal(text).unwrap(), signal, "{text}");
        }
        for bad in ["", "SIGNOPE", "0", "999", "-1"] {
            assert!(parse_signal(bad).is_err(), "{bad}");
        }
    }
}
