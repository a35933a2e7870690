//! `kiln prune`'s and `kiln system df`'s flags.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `kiln prune [-a] [-f] [--filter until=DURATION|TIME] [--keep-storage SIZE] [--cache-mounts]`.
#[derive(clap::Args)]
pub struct Args {
    /// Remove all build cache, not only dangling entries (those holding
    /// layers no image uses), and the RUN --mount=type=cache folders.
    #[arg(short, long)]
    pub all: bool,
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub force: bool,
    /// Only what matches: until=DURATION (24h, 90m) spares entries used
    /// more recently than that long ago; until=TIME (a Unix time, or RFC
    /// 3339: 2026-11-30T12:00:00Z, 2026-11-30) those used after it.
    #[arg(long, value_name = "FILTER", value_parser = filter)]
    pub filter: Vec<Filter>,
    /// Stop once the build cache takes no more than SIZE (10g, 512m:
    /// docker's binary units), removing the least recently used first.
    #[arg(long, value_name = "SIZE", value_parser = size)]
    pub keep_storage: Option<u64>,
    /// Remove only the folders of RUN --mount=type=cache that no build is using.
    #[arg(long)]
    pub cache_mounts: bool,
}

/// `kiln system …`.
#[derive(clap::Args)]
pub struct SystemArgs {
    /// The subcommand.
    #[command(subcommand)]
    pub command: SystemCommand,
}

/// `kiln system`'s subcommands.
#[derive(clap::Subcommand)]
pub enum SystemCommand {
    /// Show how much disk the store's images and build cache take.
    Df(DfArgs),
}

/// `kiln system df [-v]`.
#[derive(clap::Args)]
pub struct DfArgs {
    /// One row per image and per build cache entry too.
    #[arg(short, long)]
    pub verbose: bool,
}

/// One `--filter`.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `until=WHEN`: entries last used at or before this time.
    Until(SystemTime),
}

fn filter(text: &str) -> Result<Filter, String> {
    match text.split_once('=') {
        Some(("until", value)) => until(value.trim(), SystemTime::now()).map(Filter::Until).ok_or_else(|| {
            format!(
                "expected until=DURATION (until=24h, until=90m), a Unix time (until=1700000000) \
                 or an RFC 3339 time (until=2026-11-30T12:00:00Z, until=2026-11-30), not {text:?}"
            )
        }),
        _ => Err(format!("kiln prune filters by until=DURATION or until=TIME (until=24h) only, not {text:?}")),
    }
}

/// The time `until=` names, as docker reads it: a duration back from `now`,
/// Unix seconds (a fraction allowed), or an RFC 3339 time; a date, or a
/// time without a zone, is taken as UTC.
fn until(value: &str, now: SystemTime) -> Option<SystemTime> {
    if let Some(ns) = kiln_frontend::parse_go_duration(value) {
        let ago = Duration::from_nanos(u64::try_from(ns).ok()?);
        return Some(now.checked_sub(ago).unwrap_or(UNIX_EPOCH));
    }
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let (secs, frac) = value.split_once('.').unwrap_or((value, ""));
        let nanos: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
        let at = Duration::new(secs.parse().ok()?, if frac.len() > 9 { return None } else { nanos.parse().ok()? });
        return UNIX_EPOCH.checked_add(at);
    }
    let full = match value.len() {
        10 => format!("{value}T00:00:00Z"),
        19 => format!("{value}Z"),
        _ => value.to_owned(),
    };
    let secs = kiln::history::parse_rfc3339(&full)?;
    UNIX_EPOCH.checked_add(Duration::from_secs(u64::try_from(secs).ok()?))
}

/// A size as docker's `--keep-storage` takes it (go-units' `RAMInBytes`).
pub fn size(text: &str) -> Result<u64, String> {
    kiln_frontend::ram_in_bytes(text.trim())
        .ok_or_else(|| format!("expected a size such as 10g, 512m or a number of bytes, not {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_and_sizes_parse_as_docker_reads_them() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let at = |secs: u64| Some(UNIX_EPOCH + Duration::from_secs(secs));
        for (text, want) in [
            ("24h", at(1_800_000_000 - 86_400)),
            ("1h30m", at(1_800_000_000 - 5_400)),
            ("0s", Some(now)),
            ("1700000000", at(1_700_000_000)),
            ("1700000000.5", Some(UNIX_EPOCH + Duration::from_millis(1_700_000_000_500))),
            ("2026-11-23T02:13:20Z", at(1_795_400_000)),
            ("2026-11-23T04:13:20+02:00", at(1_795_400_000)),
            ("2026-11-23T02:13:20", at(1_795_400_000)),
            ("2026-11-23", at(1_795_400_000 - 8_000)),
            ("-1h", None),
            ("yesterday", None),
            ("1.2.3", None),
            ("", None),
        ] {
            assert_eq!(until(text, now), want, "{text}");
        }
        for (text, ok) in [("until=24h", true), ("until=2026-11-23", true), ("label=x", false), ("until", false)] {
            assert_eq!(filter(text).is_ok(), ok, "{text}");
        }
        assert_eq!(size("10g"), Ok(10 << 30));
        assert_eq!(size("512MiB"), Ok(512 << 20));
        assert_eq!(size("1000"), Ok(1000));
        assert!(size("ten").unwrap_err().contains("10g"));
    }
}
