//! Text for the terminal: everything kiln prints about its input goes through
//! [`escape`] (the library's `kiln::progress::escape`, shared with the
//! progress views), so the user sees control bytes instead of obeying them.
//!
//! Results go to stdout through [`print`]: when the reader has gone
//! (`kiln images | head -1`), the command stops and kiln exits 0, quietly, as
//! `ls | head -1` does. kiln keeps SIGPIPE ignored (Rust's default) rather than
//! dying of it: `kiln run` copies a container's output to stdout, and there a
//! closed stdout must end the copy, so the container gets its own SIGPIPE and
//! kiln reports the container's exit status, not kill everything with kiln.

use std::io::Write as _;

/// Standard output was closed by its reader: the command ends, kiln exits 0.
#[derive(Debug, thiserror::Error)]
#[error("standard output was closed")]
pub struct StdoutClosed;

/// Write `text` to stdout. A reader that went away is [`StdoutClosed`].
pub fn print(text: std::fmt::Arguments<'_>) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_fmt(text).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(StdoutClosed.into()),
        Err(e) => Err(anyhow::Error::new(e).context("writing to standard output")),
        Ok(()) => Ok(()),
    }
}

/// `println!` through [`print`]: `outln!("{x}")?`.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::output::print(format_args!("{}\n", format_args!($($arg)*)))
    };
}

pub use kiln::progress::escape;

/// Sizes as docker shows them: powers of 1000, one decimal.
pub fn human_size(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1000.0 && u < units.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes}B")
    } else {
        format!("{v:.1}{}", units[u])
    }
}

/// Sizes as docker's prune and `system df` show them (go-units'
/// `HumanSize`): powers of 1000, four significant digits, no trailing zeros.
pub fn human_size_4(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1000.0 && u < units.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    let decimals = if v >= 100.0 {
        1
    } else if v >= 10.0 {
        2
    } else {
        3
    };
    let text = format!("{v:.decimals$}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}{}", units[u])
}

#[cfg(test)]
mod tests {
    use super::{human_size, human_size_4};

    #[test]
    fn prune_sizes_read_like_go_units() {
        for (bytes, want) in [
            (0, "0B"),
            (999, "999B"),
            (1000, "1kB"),
            (1500, "1.5kB"),
            (123_456, "123.5kB"),
            (1_234_567, "1.235MB"),
            (12_345_678, "12.35MB"),
            (1_200_000_000, "1.2GB"),
            // As go-units: rounding happens after the unit is chosen.
            (999_999, "1000kB"),
        ] {
            assert_eq!(human_size_4(bytes), want, "{bytes}");
        }
    }

    #[test]
    fn sizes_read_like_docker() {
        for (bytes, want) in [(0, "0B"), (999, "999B"), (1000, "1.0kB"), (1_234_567, "1.2MB"), (5_000_000_000, "5.0GB")]
        {
            assert_eq!(human_size(bytes), want);
        }
    }
}
