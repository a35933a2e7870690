//! STOPSIGNAL's accepted values, as docker's `signal.ParseSignal` reads them
//! on Linux: any number but 0 (it does not check the range), or a name of
//! its signal map with or without `SIG` (any case), `RTMIN+1`…`RTMIN+15`
//! and `RTMAX-14`…`RTMAX-1` included.

const NAMES: &[&str] = &[
    "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT", "KILL", "PIPE", "POLL",
    "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM", "TRAP", "TSTP", "TTIN", "TTOU", "UNUSED", "URG",
    "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ", "RTMIN", "RTMAX",
];

/// How far above RTMIN the signal map names real-time signals (below
/// RTMAX: one less, as the two meet).
const RT_NAMED: u32 = 15;

pub(super) fn is_signal(value: &str) -> bool {
    // Go's Atoi: an optional sign, then digits, within 64 bits.
    if let Ok(n) = value.parse::<i64>() {
        return n != 0;
    }
    let upper = value.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if NAMES.contains(&name) {
        return true;
    }
    let offset = |max: u32| move |s: &str| s.parse::<u32>().is_ok_and(|n| (1..=max).contains(&n));
    name.strip_prefix("RTMIN+").is_some_and(offset(RT_NAMED))
        || name.strip_prefix("RTMAX-").is_some_and(offset(RT_NAMED - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        for ok in ["SIGTERM", "TERM", "sigkill", "9", "64", "99", "-9", "+9", "SIGRTMIN+15", "RTMAX-1", "SIGWINCH"] {
            assert!(is_signal(ok), "{ok}");
        }
        for bad in ["0", "-0", "SIGFOO", "", "SIG", "RTMIN+16", "RTMAX-15", "SIGSIGTERM", "9x", "99999999999999999999"]
        {
            assert!(!is_signal(bad), "{bad}");
        }
    }
}
