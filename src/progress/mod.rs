//! How a build shows itself (`kiln build --progress`): the views a build's
//! [`Progress`] reports go to. Each writes to what the caller hands it (the
//! command hands stderr); the formats are documented in docs/progress.md.
//!
//! - [`Plain`]: stable, greppable lines in BuildKit's style, `#5 [build 2/4] RUN make`;
//! - [`Tty`]: a live view (indicatif) of the running steps, their timers,
//!   last lines and bytes per second, and a summary line;
//! - [`RawJson`]: one JSON object per line, versioned;
//! - quiet: [`crate::build::Silent`].
//!
//! A step's full output is kept on disk whatever the view (`build::logs`).

mod escape;
mod plain;
mod rawjson;
mod tty;

use std::str::FromStr;

pub use escape::escape;
pub use plain::Plain;
pub use rawjson::{RawJson, RAWJSON_VERSION};
pub use tty::Tty;

use crate::build::{Progress, Silent};
use crate::registry::Transfer;

/// What `--progress` (or `KILN_PROGRESS`) asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// [`Mode::Tty`] when stderr is a terminal, else [`Mode::Plain`].
    Auto,
    /// The live view.
    Tty,
    /// Plain lines.
    Plain,
    /// JSON lines.
    RawJson,
    /// Nothing but the image ID (on stdout) and, on failure, the error.
    Quiet,
}

/// A progress mode kiln does not know.
#[derive(Debug, thiserror::Error)]
#[error("unknown progress mode {0:?}: use auto, tty, plain, rawjson or quiet")]
pub struct ModeError(String);

impl FromStr for Mode {
    type Err = ModeError;

    fn from_str(s: &str) -> Result<Self, ModeError> {
        Ok(match s {
            "auto" => Mode::Auto,
            "tty" => Mode::Tty,
            "plain" => Mode::Plain,
            "rawjson" => Mode::RawJson,
            "quiet" => Mode::Quiet,
            _ => return Err(ModeError(s.to_owned())),
        })
    }
}

impl Mode {
    /// What the view is on this terminal: `auto` is tty on a terminal
    /// (unless `TERM=dumb`, which cannot move the cursor), plain elsewhere (CI, a pipe).
    pub fn resolve(self, stderr_is_terminal: bool, term: Option<&str>) -> Mode {
        match self {
            Mode::Auto if stderr_is_terminal && term != Some("dumb") => Mode::Tty,
            Mode::Auto => Mode::Plain,
            other => other,
        }
    }
}

/// A view a build reports to: its [`Progress`], and an end.
pub trait View: Progress {
    /// The build ended (`ok`: it succeeded); a view may print a summary.
    /// Nothing is reported after it.
    fn finish(&self, _ok: bool) {}
}

impl View for Silent {}

/// The lines a view prints for the first step that missed the cache: all
/// of `--explain`'s (`explain`), else one summary line unless the miss was
/// expected (a first build, `--no-cache`).
pub fn miss_lines(miss: &crate::explain::Miss, explain: bool) -> Vec<String> {
    match explain {
        true => miss.details(),
        false if miss.is_expected() => Vec::new(),
        false => vec![format!("cache miss: {}", miss.summary())],
    }
}

/// A base image blob's transfer as a line (`kiln pull`'s and plain progress's).
pub fn transfer_line(event: &Transfer) -> String {
    let short = |d: &str| d.strip_prefix("sha256:").unwrap_or(d).chars().take(12).collect::<String>();
    match event {
        Transfer::Exists { digest } => format!("{}: already exists", short(digest)),
        Transfer::Started { digest, size } => format!("{}: sending {size} bytes", short(digest)),
        Transfer::Done { digest, size } => format!("{}: done ({size} bytes)", short(digest)),
        Transfer::Mounted { digest, from } => format!("{}: mounted from {from}", short(digest)),
    }
}

/// `bytes` in binary units, one decimal (`12.5 MiB`), as the views show sizes.
fn binary_size(bytes: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_read_and_auto_follows_the_terminal() {
        for (text, want) in [
            ("auto", Some(Mode::Auto)),
            ("tty", Some(Mode::Tty)),
            ("plain", Some(Mode::Plain)),
            ("rawjson", Some(Mode::RawJson)),
            ("quiet", Some(Mode::Quiet)),
            ("json", None),
            ("", None),
            ("Plain", None),
        ] {
            assert_eq!(text.parse::<Mode>().ok(), want, "{text:?}");
        }
        for (terminal, term, want) in [
            (true, Some("xterm"), Mode::Tty),
            (true, None, Mode::Tty),
            (true, Some("dumb"), Mode::Plain),
            (false, Some("xterm"), Mode::Plain),
        ] {
            assert_eq!(Mode::Auto.resolve(terminal, term), want, "{terminal} {term:?}");
        }
        assert_eq!(Mode::Tty.resolve(false, None), Mode::Tty, "asked for, not guessed");
    }

    #[test]
    fn sizes_read_in_binary_units() {
        for (bytes, want) in [(0.0, "0 B"), (1023.0, "1023 B"), (1024.0, "1.0 KiB"), (5.5 * 1048576.0, "5.5 MiB")] {
            assert_eq!(binary_size(bytes), want);
        }
    }
}
