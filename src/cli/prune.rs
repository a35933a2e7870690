//! `kiln prune`'s and `kiln system df`'s flags.

use std::time::Duration;

/// `kiln prune [-a] [-f] [--filter until=DURATION] [--keep-storage SIZE] [--cache-mounts]`.
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
    /// more recently than that.
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
    /// `until=DURATION`.
    Until(Duration),
}

fn filter(text: &str) -> Result<Filter, String> {
    match text.split_once('=') {
        Some(("until", value)) => {
            let ns = kiln_frontend::parse_go_duration(value.trim())
                .filter(|ns| *ns >= 0)
                .ok_or_else(|| format!("expected until=DURATION such as until=24h or until=90m, not {text:?}"))?;
            Ok(Filter::Until(Duration::from_nanos(ns.min(u64::MAX as i128) as u64)))
        }
        _ => Err(format!("kiln prune filters by until=DURATION (until=24h) only, not {text:?}")),
    }
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
        for (text, want) in [
            ("until=24h", Some(Filter::Until(Duration::from_secs(86_400)))),
            ("until=1h30m", Some(Filter::Until(Duration::from_secs(5_400)))),
            ("until=0s", Some(Filter::Until(Duration::ZERO))),
            ("until=-1h", None),
            ("until=yesterday", None),
            ("label=x", None),
            ("until", None),
        ] {
            assert_eq!(filter(text).ok(), want, "{text}");
        }
        assert_eq!(size("10g"), Ok(10 << 30));
        assert_eq!(size("512MiB"), Ok(512 << 20));
        assert_eq!(size("1000"), Ok(1000));
        assert!(size("ten").unwrap_err().contains("10g"));
    }
}
