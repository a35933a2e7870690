//! `kiln logs`: a container's output as it was written, stdout to stdout and
//! stderr to stderr, from its log (see `kiln::container::logs`).

use std::io::Write;

use kiln::container::logs::{self, ReadOptions};
use kiln::container::Containers;
use kiln::sandbox::Stream;
use kiln::store::Store;

use crate::cli::containers::LogsArgs;
use crate::cli::output::StdoutClosed;

pub fn logs(store: &Store, args: LogsArgs) -> anyhow::Result<()> {
    let containers = Containers::new(store);
    let id = containers.find(&args.container)?;
    let tail = match args.tail.as_str() {
        "all" | "-1" => None,
        n => Some(n.parse::<usize>().map_err(|_| anyhow::anyhow!("--tail {n}: give a number of lines, or all"))?),
    };
    let options = ReadOptions { tail, follow: args.follow };
    let alive = || containers.monitor_alive(&id).unwrap_or(false);
    let result = logs::read(&containers.dir(&id), options, &alive, &mut |entry| {
        let line = if args.timestamps { format!("{} {}", entry.time, entry.log) } else { entry.log.clone() };
        // The container's bytes, as docker shows them: not escaped.
        match entry.stream {
            Stream::Stdout => {
                std::io::stdout().lock().write_all(line.as_bytes()).and_then(|()| std::io::stdout().flush())
            }
            Stream::Stderr => std::io::stderr().lock().write_all(line.as_bytes()),
        }
    });
    match result {
        Err(kiln::container::ContainerError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            Err(StdoutClosed.into())
        }
        r => Ok(r?),
    }
}
