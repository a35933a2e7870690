//! kiln's own terminal while a container's pty is driven from it
//! (`run -it`, `exec -it`): raw mode, put back on the way out.

/// kiln's terminal in raw mode while it lives, put back as it was after.
pub(crate) struct RawMode {
    saved: nix::sys::termios::Termios,
}

impl RawMode {
    /// Raw mode on stdin, when it is a terminal.
    pub(crate) fn enter() -> Option<Self> {
        use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
        let stdin = std::io::stdin();
        let saved = tcgetattr(&stdin).ok()?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(&stdin, SetArg::TCSANOW, &raw).ok()?;
        Some(Self { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = nix::sys::termios::tcsetattr(std::io::stdin(), nix::sys::termios::SetArg::TCSANOW, &self.saved);
    }
}
