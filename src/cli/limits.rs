//! The values of `kiln build`'s limit flags, in docker's syntax. Each parser
//! is a clap value parser: clap names the flag and quotes the value, and the
//! message here says what is expected.

/// The smallest memory limit, docker's: below it the kernel refuses the
/// limit or the step cannot even start.
const MIN_MEMORY: u64 = 6 << 20;

/// `--memory`: bytes, or a number (decimals allowed) with `b`, `k`, `m`,
/// `g`, `t` or `p` (binary multiples, an optional `i` and `b` after it:
/// `64m`, `64MiB`, `1.5g`), as docker's `RAMInBytes`. At least 6 MiB.
pub fn memory(text: &str) -> Result<u64, String> {
    let bad = || format!("expected a size such as 64m, 1g or a number of bytes (at least 6m), not {text:?}");
    let bytes = kiln_frontend::ram_in_bytes(text.trim()).ok_or_else(bad)?;
    if bytes < MIN_MEMORY {
        return Err(format!(
            "the memory limit {text:?} is below the minimum of 6 MiB (6m) the kernel can run a step in"
        ));
    }
    Ok(bytes)
}

/// `--pids-limit`: a number of processes and threads; `0` or `-1` (docker's)
/// for no limit, which this returns as 0.
pub fn pids(text: &str) -> Result<u64, String> {
    match text.trim().parse::<i64>() {
        Ok(-1 | 0) => Ok(0),
        Ok(n) if n > 0 => Ok(n as u64),
        _ => Err(format!("expected a number of processes, or 0 or -1 for no limit, not {text:?}")),
    }
}

/// `--cpus`: how many CPUs' worth of time, decimals allowed (`1.5`), as
/// thousandths of a CPU. At least 0.01, the kernel's smallest quota.
pub fn cpus(text: &str) -> Result<u64, String> {
    let bad = || format!("expected a number of CPUs such as 1.5 (at least 0.01), not {text:?}");
    let t = text.trim();
    if t.is_empty() || !t.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(bad());
    }
    let value: f64 = t.parse().map_err(|_| bad())?;
    let milli = (value * 1000.0).round();
    if !(10.0..=1e12).contains(&milli) {
        return Err(bad());
    }
    Ok(milli as u64)
}

/// `--step-timeout`: a duration in Go's syntax, one or more numbers with a
/// unit each (`ms`, `s`, `m`, `h`): `30s`, `5m`, `1h30m`, `1.5h`; in
/// milliseconds.
pub fn duration(text: &str) -> Result<u64, String> {
    let bad = || format!("expected a duration such as 30s, 5m, 1h or 1h30m, not {text:?}");
    let ns = kiln_frontend::parse_go_duration(text.trim()).ok_or_else(bad)?;
    let ms = (ns + 500_000) / 1_000_000;
    if !(1..1_000_000_000_000_000).contains(&ms) {
        return Err(format!("the timeout {text:?} must be at least 1ms"));
    }
    Ok(ms as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes_parse_as_docker_parses_them() {
        for (text, want) in [
            ("64m", Ok(64 << 20)),
            ("64M", Ok(64 << 20)),
            ("64MiB", Ok(64 << 20)),
            ("64mb", Ok(64 << 20)),
            ("1g", Ok(1 << 30)),
            ("1.5g", Ok(3 << 29)),
            ("7000000", Ok(7_000_000)),
            ("8192k", Ok(8 << 20)),
        ] {
            assert_eq!(memory(text), want, "{text}");
        }
        for text in ["", "m", "64x", "-64m", "1e9", "64 m m", "6m1"] {
            assert!(memory(text).unwrap_err().contains("expected a size"), "{text}");
        }
        for text in ["5m", "1000", "0"] {
            assert!(memory(text).unwrap_err().contains("below the minimum of 6 MiB"), "{text}");
        }
        assert_eq!(memory("6m"), Ok(6 << 20));
    }

    #[test]
    fn pids_limits_and_docker_s_unlimited() {
        for (text, want) in [("100", Ok(100)), ("0", Ok(0)), ("-1", Ok(0)), ("4096", Ok(4096))] {
            assert_eq!(pids(text), want, "{text}");
        }
        for text in ["-2", "x", "", "1.5"] {
            assert!(pids(text).is_err(), "{text}");
        }
    }

    #[test]
    fn cpus_are_thousandths() {
        for (text, want) in [("1.5", Ok(1500)), ("2", Ok(2000)), ("0.01", Ok(10)), ("0.5", Ok(500))] {
            assert_eq!(cpus(text), want, "{text}");
        }
        for text in ["0", "0.001", "-1", "x", "", "1,5"] {
            assert!(cpus(text).is_err(), "{text}");
        }
    }

    #[test]
    fn durations_in_go_syntax() {
        for (text, want) in [
            ("30s", Ok(30_000)),
            ("5m", Ok(300_000)),
            ("1h", Ok(3_600_000)),
            ("1h30m", Ok(5_400_000)),
            ("1.5h", Ok(5_400_000)),
            ("500ms", Ok(500)),
            ("2m3s", Ok(123_000)),
        ] {
            assert_eq!(duration(text), want, "{text}");
        }
        for text in ["", "30", "s", "5x", "-5s", "1h30", "0s"] {
            assert!(duration(text).is_err(), "{text}");
        }
    }
}
