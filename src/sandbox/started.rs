//! One sandbox process, from its start to its end. [`Started::start`]
//! spawns `kiln __sandbox`, which enters new namespaces; the launcher maps
//! its ids, moves it into its cgroup and attaches its network, and the
//! process then waits for its spec. [`Started::run`] hands it the spec,
//! streams its output, forwards signals to it (`kiln run`), and waits for it
//! (or kills it when cancelled). Nothing of the step is known at the start
//! but its network and limits, so a sandbox can be started before its step
//! is (see `warm`).

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio as StdStdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;

use super::cgroup::{Cgroup, CgroupError};
use super::channel::{self, ChannelError, Report};
use super::launch::{Exit, SandboxError, Stdio, Stream};
use super::network::{Attached, NetworkSetup, PortMap};
use super::{signals, Limits, NetworkMode, Spec};

/// How the sandbox's standard streams are wired, chosen when it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wiring {
    /// Pipes to copy kiln's stdin (when `stdin`), stdout and stderr through.
    Proxy { stdin: bool },
    /// One pipe for stdout and stderr together; stdin is /dev/null.
    Capture,
    /// A pty for all three.
    Terminal { input: bool },
}

impl Wiring {
    pub(crate) fn of(stdio: &Stdio<'_>) -> Wiring {
        match stdio {
            Stdio::Proxy { stdin } | Stdio::Streams { stdin, .. } => Wiring::Proxy { stdin: *stdin },
            Stdio::Capture(_) => Wiring::Capture,
            Stdio::Terminal { input, .. } => Wiring::Terminal { input: *input },
        }
    }
}

/// Kiln's ends of the pipes of a [`Wiring`].
enum Pipes {
    Proxy {
        input: Option<std::io::PipeWriter>,
        out: std::io::PipeReader,
        err: std::io::PipeReader,
    },
    Capture(std::io::PipeReader),
    /// The pty's master side.
    Terminal(fs::File),
}

/// A sandbox process in its namespaces, ids mapped, network attached and
/// cgroup joined, waiting for its spec. Dropped unused, it is killed, and
/// its cgroup and network go with it.
pub(crate) struct Started {
    child: Option<Child>,
    launcher: Option<channel::Parent>,
    pipes: Option<Pipes>,
    // Declared after `child`: dropped once it is dead and reaped.
    cgroup: Option<Cgroup>,
    helper: Option<Attached>,
    network: NetworkSetup,
    mode: NetworkMode,
    limits: Limits,
    wiring: Wiring,
}

impl Started {
    /// Start a sandbox with `mode`'s network and `limits`' cgroup, its
    /// streams wired as `wiring` says, re-executing `exe` (kiln).
    pub(crate) fn start(
        exe: &Path,
        scratch: &Path,
        mode: NetworkMode,
        limits: &Limits,
        wiring: Wiring,
        ports: &[PortMap],
    ) -> Result<Started, SandboxError> {
        // Made before anything runs: a limit that cannot be applied is an
        // error, never a step run without it.
        let cgroup = Cgroup::for_limits(limits)?;
        // The handshake (see `channel`): the child unshares, asks, and waits
        // until we have written its id maps, then for its spec.
        let (mut launcher, child_end) = channel::pair().map_err(SandboxError::Handshake)?;
        let mut cmd = Command::new(exe);
        cmd.arg("__sandbox").arg(mode.as_arg()).arg(scratch).env_clear();
        let pipes = match wiring {
            Wiring::Proxy { stdin } => {
                let (out_read, out_write) = std::io::pipe().map_err(SandboxError::Spawn)?;
                let (err_read, err_write) = std::io::pipe().map_err(SandboxError::Spawn)?;
                let input = if stdin {
                    let (in_read, in_write) = std::io::pipe().map_err(SandboxError::Spawn)?;
                    cmd.stdin(in_read);
                    Some(in_write)
                } else {
                    cmd.stdin(StdStdio::null());
                    None
                };
                cmd.stdout(out_write).stderr(err_write);
                Pipes::Proxy { input, out: out_read, err: err_read }
            }
            Wiring::Terminal { .. } => {
                let pty = nix::pty::openpty(window_size().as_ref(), None).map_err(|e| SandboxError::Spawn(e.into()))?;
                let slave = || pty.slave.try_clone().map_err(SandboxError::Spawn);
                cmd.stdin(slave()?).stdout(slave()?).stderr(slave()?);
                Pipes::Terminal(fs::File::from(pty.master))
            }
            Wiring::Capture => {
                let (reader, writer) = std::io::pipe().map_err(SandboxError::Spawn)?;
                cmd.stdin(StdStdio::null()).stdout(writer.try_clone().map_err(SandboxError::Spawn)?).stderr(writer);
                Pipes::Capture(reader)
            }
        };
        let child_fd = child_end.raw_fd();
        let v1_tasks = cgroup.as_ref().map(Cgroup::v1_tasks).unwrap_or_default();
        // SAFETY: between fork and exec the closure only makes raw syscalls
        // (prctl, setsid, fcntl, dup2, close_range, open, write, close),
        // which are async-signal-safe, and allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                super::detach_with_channel(child_fd)?;
                super::cgroup::enter_v1(&v1_tasks)
            });
        }
        let mut child = cmd.spawn().map_err(SandboxError::Spawn)?;
        // v2 directories are joined while the child starts: it forks
        // nothing before we answer its mapping request, which waits for this.
        let joining = cgroup.as_ref().and_then(|c| c.join_in_background(child.id()));
        drop(cmd); // closes our copies of the pipes' child ends
        drop(child_end);
        // The helper is found (or its absence reported) while the child
        // starts, and before it runs anything of a step: it waits for its
        // maps, which it gets only once this is done.
        let network = match NetworkSetup::publishing(mode, scratch, ports) {
            Ok(network) => network,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                let _ = joined(joining);
                return Err(e.into());
            }
        };
        let connected = match launcher.wait_for_mapping_request() {
            // It has unshared and forked nothing yet, nor will it before
            // the join is done: every process of the step is born in the cgroup.
            Ok(()) => map_and_connect(&mut launcher, child.id(), joining, &network).map(Some),
            // The child failed before unsharing; its own message says why
            // (the join, of a process that may be gone, is not the news).
            Err(ChannelError::Closed(_)) => {
                let _ = joined(joining);
                Ok(None)
            }
            Err(e) => {
                let _ = joined(joining);
                Err(SandboxError::Handshake(e))
            }
        };
        let helper = match connected {
            Ok(helper) => helper,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        Ok(Started {
            child: Some(child),
            launcher: Some(launcher),
            pipes: Some(pipes),
            cgroup,
            helper,
            network,
            mode,
            limits: *limits,
            wiring,
        })
    }

    /// Whether its process still waits for a spec.
    pub(crate) fn alive(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Whether a step with this network, these limits and streams wired
    /// this way can run here.
    pub(crate) fn fits(&self, (mode, limits, wiring): &(NetworkMode, Limits, Wiring)) -> bool {
        self.mode == *mode && self.limits == *limits && self.wiring == *wiring
    }

    /// Run `spec` (validated, and fitting this sandbox) to completion; see
    /// [`super::Sandbox::run`].
    pub(crate) fn run(
        mut self,
        mut spec: Spec,
        stdio: Stdio<'_>,
        scratch: &Path,
        cancelled: &dyn Fn() -> bool,
        proxy_signals: bool,
    ) -> Result<Exit, SandboxError> {
        spec.resolv_conf = self.network.resolv_conf().map(Path::to_owned);
        let mut spec_file = tempfile::Builder::new()
            .prefix(&crate::store::temp_prefix("sandbox"))
            .suffix(".json")
            .tempfile_in(scratch)
            .map_err(|e| SandboxError::Spec(scratch.to_owned(), e))?;
        // One write, not one per JSON token (serde writes tokens unbuffered).
        serde_json::to_vec(&spec)
            .map_err(std::io::Error::from)
            .and_then(|json| spec_file.write_all(&json))
            .map_err(|e| SandboxError::Spec(spec_file.path().to_owned(), e))?;
        let mut launcher = self.launcher.take().expect("a started sandbox has its channel");
        // A child that died meanwhile hangs up: its exit status says the rest.
        let mut listening = match launcher.send_spec(spec_file.path()) {
            Ok(()) => true,
            Err(ChannelError::Send(..)) => false,
            Err(e) => return Err(SandboxError::Handshake(e)),
        };
        // Its PID 1 prepares the root meanwhile; the command waits for this
        // word, and the routes the sandbox process adds after it (see
        // `init`). On an error, the drop kills the process.
        if listening && self.mode == NetworkMode::Outbound {
            self.helper.as_mut().map_or(Ok(()), Attached::wait_ready)?;
            listening = match launcher.network_ready() {
                Ok(()) => true,
                Err(ChannelError::Send(..)) => false,
                Err(e) => return Err(SandboxError::Handshake(e)),
            };
        }
        let mut child = self.child.take().expect("a started sandbox has its process");
        // Installed only now that there is a child to forward to: a signal
        // before this kills kiln, and the child with it (its death signal).
        let forward_signals = proxy_signals && !matches!(stdio, Stdio::Capture(_));
        let _forwarding = match forward_signals.then(|| signals::install(false)).transpose() {
            Ok(forwarding) => forwarding,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(SandboxError::Signals(e));
            }
        };
        signals::forward_to(nix::unistd::Pid::from_raw(child.id() as i32));
        let exit_fd = pidfd(child.id());
        let deadline = spec.limits.timeout_ms.map(|ms| Instant::now() + Duration::from_millis(ms));
        let cgroup = self.cgroup.take();
        // Told the sandbox process's pid once the command's exec succeeded.
        let mut on_running: Option<&(dyn Fn(u32) + Sync)> = None;
        let (proxy, output, streams, terminal) = match (self.pipes.take(), stdio) {
            (Some(Pipes::Proxy { input, out, err }), Stdio::Proxy { .. }) => {
                (Some((input, out, err)), None, None, None)
            }
            (Some(Pipes::Proxy { input, out, err }), Stdio::Streams { sink, started, .. }) => {
                on_running = Some(started);
                (None, None, Some((input, out, err, sink)), None)
            }
            (Some(Pipes::Terminal(master)), Stdio::Terminal { input, sink, started }) => {
                on_running = Some(started);
                (None, None, None, Some((master, input, sink)))
            }
            (Some(Pipes::Capture(reader)), Stdio::Capture(sink)) => (None, Some((reader, sink)), None, None),
            _ => unreachable!("a sandbox runs with the wiring it started with (see `Started::fits`)"),
        };

        let mut timed_out = false;
        let stdin_done = AtomicBool::new(false);
        let status = thread::scope(|s| {
            if let Some((input, out, err)) = proxy {
                if let Some(input) = input {
                    s.spawn(|| copy_stdin(input, &stdin_done, None));
                }
                s.spawn(move || copy_out(out, std::io::stdout()));
                s.spawn(move || copy_out(err, std::io::stderr()));
            }
            if let Some((reader, sink)) = output {
                s.spawn(move || for_each_line(reader, MAX_LINE, sink));
            }
            if let Some((master, input, sink)) = terminal {
                let from = master.try_clone();
                s.spawn(move || {
                    if let Ok(from) = from {
                        for_each_chunk(from, Stream::Stdout, sink);
                    }
                });
                if input {
                    let (to, done) = (master.try_clone(), &stdin_done);
                    s.spawn(move || {
                        if let Ok(to) = to {
                            copy_stdin(to, done, Some(&master));
                        }
                    });
                }
            }
            if let Some((input, out, err, sink)) = streams {
                if let Some(input) = input {
                    s.spawn(|| copy_stdin(input, &stdin_done, None));
                }
                s.spawn(move || for_each_chunk(out, Stream::Stdout, sink));
                s.spawn(move || for_each_chunk(err, Stream::Stderr, sink));
            }
            let status = loop {
                match child.try_wait() {
                    Ok(Some(status)) => {
                        // What it left behind (its pid namespace took them
                        // with it, unless one got out) must not hold the
                        // output pipe open, or this scope would never end.
                        if let Some(cgroup) = &cgroup {
                            cgroup.kill_all();
                        }
                        break Ok(Ended::Exited(status));
                    }
                    Ok(None) if cancelled() => {
                        let _ = child.kill();
                    }
                    Ok(None) if deadline.is_some_and(|d| Instant::now() >= d) => {
                        timed_out = true;
                        // The whole step at once, not only its first process:
                        // the output pipe closes only when the last writer dies.
                        if let Some(cgroup) = &cgroup {
                            cgroup.kill_all();
                        }
                        let _ = child.kill();
                    }
                    Ok(None) => {
                        let report = listening.then_some(&launcher);
                        if wait_exit(exit_fd.as_ref(), report, Duration::from_millis(20)) {
                            match launcher.report() {
                                Ok(Report::Running) => {
                                    if let Some(started) = on_running.take() {
                                        started(child.id());
                                    }
                                }
                                // Its PID 1 reaped, no process of the step is
                                // left; the sandbox process's own exit is not
                                // waited for (see `channel`).
                                Ok(Report::Exited(code)) => break Ok(Ended::Reported(code)),
                                // It ended without a word: its exit status tells.
                                Err(_) => listening = false,
                            }
                        }
                    }
                    Err(e) => break Err(SandboxError::Wait(e)),
                }
            };
            // The scope waits for the stdin copy: tell it to stop.
            stdin_done.store(true, Ordering::Relaxed);
            status
        })?;
        let oom_killed = cgroup.as_ref().is_some_and(Cgroup::oom_killed);
        let code = match status {
            Ended::Exited(status) => {
                // Dropping it kills whatever the step left behind and removes it.
                drop(cgroup);
                exit_code(status)
            }
            Ended::Reported(code) => {
                // The sandbox process is still ending, in its cgroup: both
                // go off this step's path, before kiln exits (`trash::wait_empty`).
                crate::store::trash::later(move || {
                    let _ = child.wait();
                    drop(cgroup);
                });
                code
            }
        };
        if let Ok(path) = spec_file.into_temp_path().keep() {
            crate::store::trash::remove_later(path);
        }
        Ok(Exit { code, oom_killed, timed_out })
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        // Unused (or its run failed before it took the process): the
        // process waits for a spec that will not come.
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A descriptor that becomes readable when process `pid` (our child, not
/// yet reaped) exits; none on kernels before 5.3.
fn pidfd(pid: u32) -> Option<std::os::fd::OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor, owned here.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    // SAFETY: a descriptor the kernel just made for us alone.
    (fd >= 0).then(|| unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) })
}

/// How a sandbox's run ended.
enum Ended {
    /// The sandbox process exited (or was killed) with this status.
    Exited(ExitStatus),
    /// It reported its step's exit code, and is ending.
    Reported(i32),
}

/// Wait at most `max` for the child behind `pidfd` to exit or to report on
/// `launcher`: a short step ends its wait when it does, not at the next tick
/// of a polling sleep. True when the channel has something to read.
fn wait_exit(pidfd: Option<&std::os::fd::OwnedFd>, launcher: Option<&channel::Parent>, max: Duration) -> bool {
    let event = |fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    let mut fds: Vec<libc::pollfd> = pidfd.map(|fd| event(fd.as_raw_fd())).into_iter().collect();
    fds.extend(launcher.map(|l| event(l.raw_fd())));
    if fds.is_empty() {
        thread::sleep(max);
        return false;
    }
    // SAFETY: `fds` is valid for the call. EINTR or an error just ends this wait early.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, max.as_millis() as i32) };
    n > 0 && launcher.is_some() && fds.last().is_some_and(|f| f.revents != 0)
}

/// The longest line [`Stdio::Capture`] hands on whole: a step printing
/// without a newline (`cat /dev/zero`) must not grow kiln's memory.
const MAX_LINE: usize = 64 * 1024;

/// Hand `sink` each line of `from` (without its newline); a line longer
/// than `max` bytes goes in pieces of `max`.
fn for_each_line(from: impl Read, max: usize, sink: &mut (dyn FnMut(&str) + Send)) {
    let mut from = BufReader::new(from);
    let mut line = Vec::new();
    loop {
        line.clear();
        match (&mut from).take(max as u64).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        } else if from.fill_buf().is_ok_and(|b| b.first() == Some(&b'\n')) {
            // A line of exactly `max`: its newline ends it, not another line.
            from.consume(1);
        }
        sink(&String::from_utf8_lossy(&line));
    }
}

/// Copy kiln's stdin to the container's until either ends or `done` is set.
/// It waits for input in short polls and reads only when some is ready, so
/// once the container is gone it stops without taking another byte: what
/// the user types next belongs to whatever reads kiln's stdin next (the next
/// `--debug-shell`). Read straight from fd 0: std's buffered stdin could
/// keep input back from the next reader.
pub(crate) fn copy_stdin(mut to: impl Write, done: &AtomicBool, pty: Option<&fs::File>) {
    let fd = std::io::stdin().as_fd().as_raw_fd();
    let mut buf = [0u8; 8192];
    let mut size = None;
    // The pty follows kiln's window: its foreground processes get SIGWINCH
    // from the kernel when the size changes. Looked at every turn, and
    // before any input is passed on, so a command typed after a resize sees it.
    let mut follow = || {
        let Some(pty) = pty else { return };
        if let Some(now) = window_size().filter(|w| Some((w.ws_row, w.ws_col)) != size) {
            size = Some((now.ws_row, now.ws_col));
            // SAFETY: TIOCSWINSZ reads one winsize from a valid pointer.
            unsafe { libc::ioctl(pty.as_raw_fd(), libc::TIOCSWINSZ, &now) };
        }
    };
    while !done.load(Ordering::Relaxed) {
        follow();
        let mut ready = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        // SAFETY: one pollfd, valid for the call.
        match Errno::result(unsafe { libc::poll(&mut ready, 1, 100) }) {
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => follow(),
            Err(_) => return,
        }
        match nix::unistd::read(fd, &mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(Errno::EINTR) => {}
            Err(_) => return,
        }
    }
}

/// The size of the terminal kiln's stdout (else stdin) is, if either is one.
pub(crate) fn window_size() -> Option<nix::pty::Winsize> {
    let mut size = nix::pty::Winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    [1, 0].into_iter().find_map(|fd| {
        // SAFETY: TIOCGWINSZ writes one winsize to a valid pointer.
        (unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut size) } == 0 && size.ws_row > 0).then_some(size)
    })
}

/// Ready the sandbox process `pid`, which has unshared its namespaces and
/// waits: its id maps, and its network helper started, while its cgroup is
/// `joining`; it hears back once all three are done. The helper's own
/// start goes on beside the sandbox's: [`Started::run`] waits for it
/// before the command runs.
fn map_and_connect(
    launcher: &mut channel::Parent,
    pid: u32,
    joining: Option<thread::JoinHandle<Result<(), CgroupError>>>,
    network: &NetworkSetup,
) -> Result<Attached, SandboxError> {
    let helper = write_id_maps(pid).and_then(|_| Ok(network.attach(pid)?));
    joined(joining)?;
    let helper = helper?;
    launcher.mapping_written().map_err(SandboxError::Handshake)?;
    Ok(helper)
}

/// The end of a [`Cgroup::join_in_background`].
fn joined(joining: Option<thread::JoinHandle<Result<(), CgroupError>>>) -> Result<(), SandboxError> {
    match joining.map(thread::JoinHandle::join) {
        None => Ok(()),
        Some(Ok(result)) => Ok(result?),
        Some(Err(panic)) => std::panic::resume_unwind(panic),
    }
}

/// Copy a container's output to one of kiln's streams until every writer is
/// gone, flushing as it goes so interleaved output keeps its order.
/// Hand what `from` gives to `sink` as it comes, until its end or until
/// `sink` wants no more.
fn for_each_chunk(mut from: impl Read, stream: Stream, sink: &(dyn Fn(Stream, &[u8]) -> bool + Sync)) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            // A pty's master reads EIO once no process holds its other side.
            Ok(0) => return,
            Ok(n) => {
                if !sink(stream, &buf[..n]) {
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

fn copy_out(mut from: std::io::PipeReader, mut to: impl Write) {
    let mut buf = [0u8; 8192];
    loop {
        match from.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if to.write_all(&buf[..n]).and_then(|_| to.flush()).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Map every id this process has to the same id in the sandbox's user namespace:
/// as real root that is all of them; rootless, the ranges kiln's own namespace got.
fn write_id_maps(pid: u32) -> Result<(), SandboxError> {
    for (own, child) in [("/proc/self/uid_map", "uid_map"), ("/proc/self/gid_map", "gid_map")] {
        let path = PathBuf::from(format!("/proc/{pid}/{child}"));
        let map = fs::read_to_string(own).map(|m| identity_map(&m)).map_err(|e| SandboxError::IdMap(own.into(), e))?;
        fs::write(&path, map).map_err(|e| SandboxError::IdMap(path, e))?;
    }
    Ok(())
}

/// One identity line per line of our own map. The kernel wants each line of a
/// child's map to fall within a single line of its parent's, so a rootless map
/// such as `0 1000 1` + `1 100000 65536` cannot become one `0 0 65537` line.
fn identity_map(map: &str) -> String {
    map.lines()
        .filter_map(|l| {
            let f: Vec<u64> = l.split_whitespace().filter_map(|x| x.parse().ok()).collect();
            (f.len() == 3).then(|| format!("{} {} {}\n", f[0], f[0], f[2]))
        })
        .collect()
}

/// A child's exit code, or 128+N when signal N killed it, as a shell reports it.
pub(crate) fn exit_code(status: ExitStatus) -> i32 {
    status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::{for_each_line, identity_map};

    #[test]
    fn a_line_longer_than_the_cap_is_handed_on_in_pieces() {
        let input = b"ab\ncdefghi\n\nklm\nj".to_vec();
        let mut lines = Vec::new();
        for_each_line(&input[..], 3, &mut |l: &str| lines.push(l.to_owned()));
        assert_eq!(lines, ["ab", "cde", "fgh", "i", "", "klm", "j"]);
    }

    #[test]
    fn maps_each_of_our_ranges_to_itself() {
        assert_eq!(identity_map("         0          0 4294967295\n"), "0 0 4294967295\n");
        assert_eq!(identity_map("0 1000 1\n1 100000 65536\n"), "0 0 1\n1 1 65536\n");
        assert_eq!(identity_map("0 1000 1\n"), "0 0 1\n");
    }
}
