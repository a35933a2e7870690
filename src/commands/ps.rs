//! `kiln ps`: docker's columns, newest first; running containers unless `-a`.

use kiln::container::{Containers, Status};
use kiln::history::human_duration;
use kiln::store::Store;

use crate::cli::containers::PsArgs;

pub fn ps(store: &Store, args: PsArgs) -> anyhow::Result<()> {
    let containers = Containers::new(store);
    let now = now_secs();
    let mut rows = Vec::new();
    for id in containers.ids()? {
        // One removed meanwhile, or a record torn by a crash: not listed.
        let (Ok(config), Ok(state)) = (containers.config(&id), containers.state(&id)) else { continue };
        if !args.all && state.status != Status::Running {
            continue;
        }
        let ago = |ns: u64| human_duration(now - (ns / 1_000_000_000) as i64);
        let status = match state.status {
            Status::Created => "Created".to_owned(),
            Status::Running if kiln::container::processes::paused(&containers, &id) => {
                format!("Up {} (Paused)", ago(state.started_at))
            }
            Status::Running => format!("Up {}", ago(state.started_at)),
            Status::Exited => format!("Exited ({}) {} ago", state.exit_code, ago(state.finished_at)),
        };
        let command = format!("{:?}", config.argv.join(" "));
        let (id, command) = if args.no_trunc { (id, command) } else { (id[..12].to_owned(), truncate(&command, 20)) };
        let created = format!("{} ago", ago(config.created));
        let ports = if state.status == Status::Running { ports(&config.ports) } else { String::new() };
        rows.push((config.created, [id, config.image, command, created, status, ports, config.name]));
    }
    rows.sort_by_key(|r| std::cmp::Reverse(r.0));
    if args.quiet {
        for (_, row) in rows {
            crate::outln!("{}", row[0])?;
        }
        return Ok(());
    }
    let head = ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"].map(str::to_owned);
    let mut widths = head.clone().map(|h| h.chars().count());
    for (_, row) in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&head).chain(rows.iter().map(|(_, r)| r)) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}   ", width = widths[i]));
            }
        }
        crate::outln!("{}", crate::cli::output::escape(&line))?;
    }
    Ok(())
}

/// docker's `0.0.0.0:8080->80/tcp, …`.
fn ports(ports: &[kiln::sandbox::PortMap]) -> String {
    let one = |p: &kiln::sandbox::PortMap| {
        let ip = p.host_ip.map_or("0.0.0.0".to_owned(), |ip| ip.to_string());
        format!("{ip}:{}->{}/{}", p.host_port, p.container_port, if p.udp { "udp" } else { "tcp" })
    };
    ports.iter().map(one).collect::<Vec<_>>().join(", ")
}

/// docker's cut: the first `max - 1` characters and an ellipsis.
fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    text.chars().take(max - 1).chain(std::iter::once('…')).collect()
}

fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}
