//! `kiln stats`: what running containers use, from their processes as the
//! host sees them (see `processes`): CPU as a share of one CPU over the
//! sampling interval, resident memory against the container's limit (else
//! the machine's), the bytes its network namespace received and sent (its
//! interfaces but loopback; none with the host's network, as docker shows),
//! the bytes its running processes read from and wrote to block devices
//! (`/proc/PID/io`: a process that ended takes its count with it, where
//! docker's cgroup keeps it), and the process count. It needs no cgroup,
//! so it works rootless without a delegated tree too.

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
    /// Bytes received and sent.
    pub net: (u64, u64),
    /// Bytes read and written.
    pub block: (u64, u64),
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
        net: after.first().map_or((0, 0), |init| network(init.pid)),
        block: after.iter().filter_map(|p| block_io(p.pid)).fold((0, 0), |(r, w), (pr, pw)| (r + pr, w + pw)),
        pids: after.len(),
    })
}

/// Bytes received and sent by the interfaces of the network namespace of
/// process `pid` but loopback: nothing when that is the host's.
fn network(pid: u32) -> (u64, u64) {
    let ns = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/net")).ok();
    if ns(&pid.to_string()) == ns("self") {
        return (0, 0);
    }
    let dev = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).unwrap_or_default();
    net_dev_totals(&dev)
}

/// The received and sent bytes of /proc/net/dev's interfaces but `lo`.
fn net_dev_totals(dev: &str) -> (u64, u64) {
    dev.lines()
        .skip(2)
        .filter_map(|l| {
            let (name, counters) = l.split_once(':')?;
            let fields: Vec<u64> = counters.split_whitespace().filter_map(|f| f.parse().ok()).collect();
            // rx bytes, packets, errs, drop, fifo, frame, compressed, multicast, then tx bytes.
            (name.trim() != "lo" && fields.len() > 8).then(|| (fields[0], fields[8]))
        })
        .fold((0, 0), |(r, t), (pr, pt)| (r + pr, t + pt))
}

/// Bytes process `pid` had read from and written to block devices.
fn block_io(pid: u32) -> Option<(u64, u64)> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    let field = |name: &str| io.lines().find_map(|l| l.strip_prefix(name)?.trim().parse::<u64>().ok());
    Some((field("read_bytes:")?, field("write_bytes:")?))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_dev_sums_every_interface_but_loopback() {
        let dev = "Inter-|   Receive                            |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:    1000      10    0    0    0     0          0         0     1000      10    0    0    0     0       0          0
   tap0:    2048      20    0    0    0     0          0         0      512       5    0    0    0     0       0          0
  eth1:      10       1    0    0    0     0          0         0       20       1    0    0    0     0       0          0
";
        assert_eq!(net_dev_totals(dev), (2058, 532));
    }
}
