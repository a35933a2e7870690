//! Signals passed down the chain to the container's command, as docker's
//! default `--sig-proxy` does: `kiln run` (and, rootless, the kiln outside
//! the user namespace) → `kiln __sandbox` → the sandbox's PID 1 → the command.
//!
//! Each link forwards to the next with a handler that only calls kill(2). The
//! link that matters most is PID 1: the kernel drops any signal sent to the
//! init of a pid namespace from its ancestors unless init has a handler for
//! it, so without one, a `trap` in the command never runs.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use nix::errno::Errno;
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal};
use nix::unistd::Pid;

/// The signals forwarded: docker's proxy forwards all it can catch. These
/// are the ones a command is sent to stop, reload, report or wake; not the
/// faults (SIGSEGV, SIGBUS…: a handler that returns would loop on kiln's own),
/// nor job control, nor SIGCHLD, SIGPIPE, SIGURG and SIGWINCH, which are
/// about the process that gets them.
pub(crate) const FORWARDED: [Signal; 12] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGQUIT,
    Signal::SIGALRM,
    Signal::SIGCONT,
    Signal::SIGVTALRM,
    Signal::SIGPROF,
    Signal::SIGXCPU,
    Signal::SIGPWR,
];

/// Whether `signal` is passed down to a container's command.
pub fn forwarded(signal: Signal) -> bool {
    FORWARDED.contains(&signal)
}

/// The names of the signals passed down, for an error that says which.
pub fn forwarded_names() -> String {
    FORWARDED.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
}

/// Where the handler forwards to; 0 while there is nobody yet.
static TARGET: AtomicI32 = AtomicI32::new(0);
/// Whether signals the kernel sent (a terminal's ^C or hangup) are left alone.
static SKIP_FROM_KERNEL: AtomicBool = AtomicBool::new(false);

extern "C" fn forward(signal: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    let target = TARGET.load(Ordering::Relaxed);
    if target <= 0 {
        return;
    }
    // SAFETY: the kernel hands a SA_SIGINFO handler a valid siginfo.
    if SKIP_FROM_KERNEL.load(Ordering::Relaxed) && unsafe { (*info).si_code } == libc::SI_KERNEL {
        return;
    }
    // SAFETY: errno is thread-local; kill is async-signal-safe; errno is put
    // back so the interrupted code sees its own.
    unsafe {
        let saved = *libc::__errno_location();
        libc::kill(target, signal);
        *libc::__errno_location() = saved;
    }
}

/// Signal forwarding while it lives; the previous dispositions come back on drop.
pub(crate) struct Forwarding {
    previous: Vec<(Signal, SigAction)>,
}

/// Install the forwarding handler for every signal of [`FORWARDED`]; until
/// [`forward_to`] names a process, caught signals are dropped. With
/// `skip_from_kernel`, signals the kernel sent are not forwarded: a
/// terminal signals its whole foreground process group, so the child got
/// its own copy already.
pub(crate) fn install(skip_from_kernel: bool) -> Result<Forwarding, Errno> {
    SKIP_FROM_KERNEL.store(skip_from_kernel, Ordering::Relaxed);
    let action = SigAction::new(SigHandler::SigAction(forward), SaFlags::SA_RESTART, SigSet::empty());
    let mut previous = Vec::new();
    for signal in FORWARDED {
        // SAFETY: the handler only reads atomics and calls kill.
        previous.push((signal, unsafe { sigaction(signal, &action) }?));
    }
    Ok(Forwarding { previous })
}

/// Forward caught signals to `pid` from now on.
pub(crate) fn forward_to(pid: Pid) {
    TARGET.store(pid.as_raw(), Ordering::Relaxed);
}

impl Drop for Forwarding {
    fn drop(&mut self) {
        TARGET.store(0, Ordering::Relaxed);
        for (signal, action) in &self.previous {
            // SAFETY: putting back the disposition that was there before.
            let _ = unsafe { sigaction(*signal, action) };
        }
    }
}

/// Block (`true`) or unblock the forwarded signals in this thread. A
/// single-threaded process blocks them around a fork, so that a signal
/// arriving before [`forward_to`] names the new child waits for it instead
/// of being lost; the child unblocks them before it execs (the mask survives
/// exec).
pub(crate) fn block(block: bool) -> Result<(), Errno> {
    let set: SigSet = FORWARDED.into_iter().collect();
    let how = if block { SigmaskHow::SIG_BLOCK } else { SigmaskHow::SIG_UNBLOCK };
    nix::sys::signal::sigprocmask(how, Some(&set), None)
}
