//! `kiln stats`: what running containers use, from their processes as the
//! host sees them (see `processes`): CPU as a share of one CPU over the
//! sampling interval, resident memory against the container's limit (else
//! the machine's), and the process count. It needs no cgroup, so it works
//! rootless without a delegated tree too.

use std::time::{Duration, Instant};

use super::processes;
use super::ContainerError;
use crate::store::Store;

/// One container's use over one interval.
#[derive(Debug, Clone)]
pub struct Stats {
    pub id: String,
    pub name: String,
    /// Percent of one CPU.
    pub cpu_percent: f64,
    pub memory: u64,
    pub memory_limit: u64,
    pub pids: usize,
}

/// Sample container `reference` twice, `interval` apart.
pub fn sample(store: &Store, reference: &str, interval: Duration) -> Result<Stats, ContainerError> {
    let (config, before) = processes::list(store, reference)?;
    let ticks = |ps: &[processes::Process]| ps.iter().filter_map(|p| cpu_ticks(p.pid)).sum::<u64>();
    let (t0, start) = (ticks(&before), Instant::now());
    std::thread::sleep(interval);
    let (_, after) = processes::list(store, reference)?;
    let spent = ticks(&after).saturating_sub(t0) as f64 / clock_ticks();
    let memory = after.iter().filter_map(|p| rss(p.pid)).sum();
    let machine = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines().find_map(|l| l.strip_prefix("MemTotal:")?.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024);
    Ok(Stats {
        id: config.id.clone(),
        name: config.name.clone(),
        cpu_percent: 100.0 * spent / start.elapsed().as_secs_f64(),
        memory,
        memory_limit: config.limits.memory.unwrap_or(machine),
        pids: after.len(),
    })
}

/// utime + stime of process `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Resident memory of process `pid`, in bytes.
fn rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: u64 = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.split_whitespace().next()?.parse().ok()?;
    Some(kib * 1024)
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf reads a constant of the system.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        hz as f64
    } else {
        100.0
    }
}
