//! STOPSIGNAL's accepted values, as docker's `signal.ParseSignal` reads them
//! on Linux: a number, or a name with or without `SIG` (any case),
//! `RTMIN+n` / `RTMAX-n` included.

const NAMES: &[&str] = &[
    "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT", "KILL", "PIPE", "POLL",
    "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM", "TRAP", "TSTP", "TTIN", "TTOU", "UNUSED", "URG",
    "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ", "RTMIN", "RTMAX",
];

/// The real-time signals between RTMIN (34) and RTMAX (64).
const RT_SPAN: u32 = 30;

pub(super) fn is_signal(value: &str) -> bool {
    if let Ok(n) = value.parse::<u32>() {
        return (1..=64).contains(&n);
    }
    let upper = value.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if NAMES.contains(&name) {
        return true;
    }
    let offset = |s: &str| s.parse::<u32>().is_ok_and(|n| (1..RT_SPAN).contains(&n));
    name.strip_prefix("RTMIN+").is_some_and(offset) || name.strip_prefix("RTMAX-").is_some_and(offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        for ok in ["SIGTERM", "TERM", "sigkill", "9", "64", "SIGRTMIN+3", "RTMAX-1", "SIGWINCH"] {
            assert!(is_signal(ok), "{ok}");
        }
        for bad in ["0", "65", "SIGFOO", "", "SIG", "RTMIN+40", "-9"] {
            assert!(!is_signal(bad), "{bad}");
        }
    }
}
