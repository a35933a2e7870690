//! The network a sandbox gets: the host's, none (a namespace of its own with
//! only `lo`), or outbound only (a namespace of its own, connected to the
//! world by a user-mode network stack running outside it).
//!
//! The sandbox unshares its network namespace with its other namespaces
//! (see `init`) and brings `lo` up itself. For [`NetworkMode::Outbound`] the
//! launcher drives a [`NetworkSetup`]: before the spawn it picks the helper
//! and writes the resolv.conf the sandbox binds; once the sandbox has
//! unshared and its ids are mapped, [`NetworkSetup::attach`] starts the helper
//! on it and waits until the helper has configured the interface, and only
//! then lets the sandbox go on. The helper dies with the step ([`Attached`]
//! kills it on drop) and with kiln (its parent-death signal).
//!
//! # slirp4netns, else pasta
//!
//! Both are user-mode TCP/IP stacks: the step's packets go to a tap device in
//! its namespace, and the helper, outside, replays each connection with
//! ordinary sockets of the host. So the same set-up serves root and rootless
//! kiln, and nothing on the host (no bridge, no NAT rule) is changed.
//! Both forward the step's DNS queries (to their address 10.0.2.3) from the
//! host's side, so a resolver on the host's loopback (systemd-resolved's
//! 127.0.0.53) serves the step too. Both give the namespace slirp's layout,
//! 10.0.2.100/24 by gateway 10.0.2.2 (pasta's default, the host's own
//! address, would make the host's address the step's own, so a server on
//! the host's LAN address could not be reached).
//!
//! Every RUN step starts its helper, so its start-up is paid once a step,
//! and it decides: slirp4netns (libslirp, what rootless docker and podman
//! before 5.0 use) is preferred, pasta (Debian package `passt`) is the
//! fallback. Measured on a 2-core VM with Debian 12's versions (pasta
//! 2023-03-09, slirp4netns 1.2.0): until the namespace is configured, pasta
//! about 85 ms, slirp4netns about 28 ms quiet; a 4-step `RUN echo` build
//! under load 12 took 1.66-1.89 s with pasta, 1.08-1.28 s with slirp4netns
//! and 0.95-1.14 s with `--network=none`. pasta moves bulk data with less
//! CPU (it translates at the socket level rather than emulating TCP), which
//! a download bound by the network does not notice.
//!
//! What the step must not reach, and how each helper is told:
//! - the host's loopback services: pasta `--no-map-gw` (the gateway address
//!   is the real gateway, not the host), and `-T none -U none` (no port bound
//!   on the host's loopback appears on the namespace's); slirp4netns
//!   `--disable-host-loopback` (10.0.2.2 does not lead to 127.0.0.1);
//! - ports on the host: pasta `-t none -u none` (its default forwards every
//!   port the namespace binds); slirp4netns forwards nothing unless asked
//!   through its API socket, which is not enabled.
//!
//! - the cloud's metadata service (169.254.169.254, fd00:ec2::254), which
//!   would hand the runner's cloud credentials to any step (the helper
//!   connects from the host, so IMDSv2's hop limit does not help): the
//!   sandbox adds `prohibit` routes for 169.254.0.0/16 and fd00:ec2::/64 in
//!   its namespace after the helper configured it ([`blocked_routes`]), and
//!   its command, without CAP_NET_ADMIN, cannot remove them, nor pass them
//!   with a packet socket or an IP header of its own (both refused by
//!   `seccomp`). The host's own
//!   other addresses and its LAN stay reachable, as from docker's bridge.
//!
//! DNS: the host's /etc/resolv.conf may name a resolver on its loopback
//! (systemd-resolved's 127.0.0.53), which the namespace cannot reach. The
//! sandbox gets a resolv.conf naming the helper's forwarder (pasta's
//! `--dns-forward` address and slirp4netns's, 10.0.2.3),
//! which relays each query to the host's resolvers from the host's side,
//! with the host's `search` and `options` lines.

use std::fs;
use std::io::{Read, Seek, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::spec::NetworkMode;

/// The address pasta answers DNS queries on: slirp4netns's, in the
/// namespace's own 10.0.2.0/24 (not podman's link-local 169.254.1.1, as
/// 169.254.0.0/16 is blocked, see [`blocked_routes`]).
const PASTA_DNS: &str = "10.0.2.3";

/// slirp4netns's DNS forwarder in its default 10.0.2.0/24 network.
const SLIRP_DNS: &str = "10.0.2.3";

/// How long the helper may take to configure the namespace. It takes
/// milliseconds; this only bounds a hung helper.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The descriptor the helper tells readiness on: the write end of our pipe,
/// handed over where `super::inherit_channel` puts a descriptor.
const READY_FD: i32 = super::channel::CHILD_FD;

/// Why a step's network could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error(
        "RUN's default network needs pasta (Debian package passt) or slirp4netns, and neither is installed: \
         install one (apt-get install slirp4netns), or give the step RUN --network=none"
    )]
    NoHelper,
    #[error("writing the step's resolv.conf in {0}")]
    ResolvConf(PathBuf, #[source] std::io::Error),
    #[error("starting {0}")]
    Spawn(&'static str, #[source] std::io::Error),
    #[error("{name} could not set up the step's network{}", output_text(.output))]
    Failed { name: &'static str, output: String },
    #[error("{0} did not set up the step's network within {1} seconds")]
    Timeout(&'static str, u64),
    #[error("publishing ports (-p) needs pasta (Debian package passt): apt-get install passt")]
    PortsNeedPasta,
}

/// A port of the sandbox published on the host (`kiln run -p`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PortMap {
    /// The host address it listens on; `None` for all of them.
    pub host_ip: Option<std::net::IpAddr>,
    pub host_port: u16,
    pub container_port: u16,
    pub udp: bool,
}

impl PortMap {
    /// docker's `-p [IP:]HOST_PORT:CONTAINER_PORT[/tcp|/udp]`.
    pub fn parse(text: &str) -> Result<PortMap, String> {
        let bad = |why: &str| format!("-p {text}: {why}");
        let (spec, proto) = text.rsplit_once('/').unwrap_or((text, "tcp"));
        let udp = match proto {
            "tcp" => false,
            "udp" => true,
            _ => return Err(bad("the protocol is tcp or udp")),
        };
        let (host, container) = spec.rsplit_once(':').ok_or_else(|| bad("give HOST_PORT:CONTAINER_PORT"))?;
        let (host_ip, host_port) = match host.rsplit_once(':') {
            Some((ip, port)) => {
                let ip = ip.trim_start_matches('[').trim_end_matches(']');
                (Some(ip.parse().map_err(|_| bad("the host address is not an IP address"))?), port)
            }
            None => (None, host),
        };
        let port = |p: &str| p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| bad("ports are 1 to 65535"));
        Ok(PortMap { host_ip, host_port: port(host_port)?, container_port: port(container)?, udp })
    }

    /// As pasta's `-t`/`-u` take it: `[ADDR/]HOST:CONTAINER`.
    fn pasta_arg(&self) -> String {
        let addr = self.host_ip.map(|ip| format!("{ip}/")).unwrap_or_default();
        format!("{addr}{}:{}", self.host_port, self.container_port)
    }
}

/// A helper's own words, indented under the error (none when it said nothing).
fn output_text(output: &str) -> String {
    let lines: Vec<&str> =
        output.lines().filter(|l| !l.trim().is_empty() && !l.starts_with("Failed to send")).collect();
    if lines.is_empty() {
        return String::new();
    }
    // /dev/net/tun is 0666 on a stock Debian (udev); some minimal machines leave it 0600.
    let hint = if output.contains("/dev/net/tun") {
        "\n  (is /dev/net/tun readable and writable by kiln's user? udev makes it mode 0666)"
    } else {
        ""
    };
    format!(":\n  | {}{hint}", lines.join("\n  | "))
}

/// A user-mode network stack kiln can run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Helper {
    /// pasta, from passt.
    Pasta(PathBuf),
    /// slirp4netns.
    Slirp4netns(PathBuf),
}

impl Helper {
    /// The helper to use: slirp4netns when installed, else pasta (see the
    /// module doc). Looked up in `PATH`, or the system's folders without one.
    pub fn find() -> Option<Helper> {
        find("slirp4netns").map(Helper::Slirp4netns).or_else(|| find("pasta").map(Helper::Pasta))
    }

    /// Its name, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Helper::Pasta(_) => "pasta",
            Helper::Slirp4netns(_) => "slirp4netns",
        }
    }

    /// The address of its DNS forwarder inside the namespace.
    fn dns(&self) -> &'static str {
        match self {
            Helper::Pasta(_) => PASTA_DNS,
            Helper::Slirp4netns(_) => SLIRP_DNS,
        }
    }

    /// Its arguments, to attach to the namespaces of process `pid` and say
    /// it is ready on [`READY_FD`].
    fn args(&self, pid: u32, ports: &[PortMap]) -> Vec<String> {
        let mut args = self.base_args(pid);
        if let Helper::Pasta(_) = self {
            // Published ports replace "none" (the pair after each flag).
            for (flag, udp) in [("--tcp-ports", false), ("--udp-ports", true)] {
                let wanted: Vec<String> = ports.iter().filter(|p| p.udp == udp).map(PortMap::pasta_arg).collect();
                if wanted.is_empty() {
                    continue;
                }
                let at = args.iter().position(|a| a == flag).expect("pasta's arguments name both");
                args.splice(at..at + 2, wanted.into_iter().flat_map(|w| [flag.to_owned(), w]));
            }
        }
        args
    }

    fn base_args(&self, pid: u32) -> Vec<String> {
        let (pid, pid_file, ready_fd) =
            (pid.to_string(), format!("/proc/self/fd/{READY_FD}"), format!("--ready-fd={READY_FD}"));
        let args: Vec<&str> = match self {
            Helper::Pasta(_) => vec![
                "--config-net",
                "--foreground",
                "--quiet",
                // As root, pasta would drop to nobody before joining the
                // sandbox's user namespace, which nobody may not enter; it
                // joins it (and so holds no privilege on the host) before it
                // handles a packet, and sandboxes itself there.
                "--runas",
                "0:0",
                "--address",
                "10.0.2.100",
                "--netmask",
                "24",
                "--gateway",
                "10.0.2.2",
                // No port of the namespace published on the host, none of
                // the host's on the namespace's loopback.
                "--tcp-ports",
                "none",
                "--udp-ports",
                "none",
                "--tcp-ns",
                "none",
                "--udp-ns",
                "none",
                // The gateway is the real gateway, not a way to the host's loopback.
                "--no-map-gw",
                "--dns-forward",
                PASTA_DNS,
                // Written once the interface is configured.
                "--pid",
                &pid_file,
                &pid,
            ],
            Helper::Slirp4netns(_) => vec![
                "--configure",
                "--mtu=65520",
                "--disable-host-loopback",
                "--enable-sandbox",
                "--enable-seccomp",
                &ready_fd,
                &pid,
                "tap0",
            ],
        };
        args.into_iter().map(str::to_owned).collect()
    }

    fn program(&self) -> &Path {
        match self {
            Helper::Pasta(p) | Helper::Slirp4netns(p) => p,
        }
    }
}

/// The program `name`, looked up in `PATH`, or the system's folders without one.
fn find(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin".into());
    std::env::split_paths(&path).filter(|d| d.is_absolute()).map(|d| d.join(name)).find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The sandbox's /etc/resolv.conf behind a helper: its forwarder as the one
/// nameserver, with the host's search domains and options.
fn resolv_conf(host: &str, nameserver: &str) -> String {
    let mut out = format!("nameserver {nameserver}\n");
    for line in host.lines() {
        let word = line.split_whitespace().next().unwrap_or_default();
        if matches!(word, "search" | "domain" | "options") {
            out.push_str(line.trim());
            out.push('\n');
        }
    }
    out
}

/// The network of one sandbox, from before it is spawned until it is gone.
/// The launcher makes it, binds [`NetworkSetup::resolv_conf`] in the
/// sandbox, and [`NetworkSetup::attach`]es it once the sandbox's namespaces
/// exist; `kiln run` can drive it the same way.
pub struct NetworkSetup {
    helper: Option<Helper>,
    ports: Vec<PortMap>,
    resolv_conf: Option<tempfile::NamedTempFile>,
    scratch: PathBuf,
}

impl NetworkSetup {
    /// The set-up of `mode`: for [`NetworkMode::Outbound`], the helper
    /// (an error when none is installed) and its resolv.conf, written under
    /// `scratch`.
    pub fn new(mode: NetworkMode, scratch: &Path) -> Result<Self, NetworkError> {
        Self::publishing(mode, scratch, &[])
    }

    /// As [`NetworkSetup::new`], with `ports` published on the host (by
    /// pasta, which binds them before the sandbox starts: a port in use is
    /// an error then).
    pub fn publishing(mode: NetworkMode, scratch: &Path, ports: &[PortMap]) -> Result<Self, NetworkError> {
        let mut setup =
            NetworkSetup { helper: None, ports: ports.to_vec(), resolv_conf: None, scratch: scratch.to_owned() };
        if mode != NetworkMode::Outbound {
            return Ok(setup);
        }
        let helper = if ports.is_empty() {
            Helper::find().ok_or(NetworkError::NoHelper)?
        } else {
            find("pasta").map(Helper::Pasta).ok_or(NetworkError::PortsNeedPasta)?
        };
        let host = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let err = |e| NetworkError::ResolvConf(scratch.to_owned(), e);
        let mut file = tempfile::Builder::new()
            .prefix(&crate::store::temp_prefix("resolv"))
            .suffix(".conf")
            .tempfile_in(scratch)
            .map_err(err)?;
        file.write_all(resolv_conf(&host, helper.dns()).as_bytes()).map_err(err)?;
        // Bound read-only in the sandbox, whose user must be able to read it.
        fs::set_permissions(file.path(), std::os::unix::fs::PermissionsExt::from_mode(0o644)).map_err(err)?;
        setup.helper = Some(helper);
        setup.resolv_conf = Some(file);
        Ok(setup)
    }

    /// The file to bind at the sandbox's /etc/resolv.conf instead of the host's.
    pub fn resolv_conf(&self) -> Option<&Path> {
        self.resolv_conf.as_ref().map(|f| f.path())
    }

    /// Start connecting the network namespace of process `pid` (which has
    /// unshared it, and whose user namespace owns it) to the world; the
    /// returned guard stops the helper. Its interface is configured once
    /// [`Attached::wait_ready`] says so: the helper starts (a few ms) while
    /// the sandbox prepares its root, and its command runs after.
    pub fn attach(&self, pid: u32) -> Result<Attached, NetworkError> {
        let Some(helper) = &self.helper else {
            return Ok(Attached { child: None, publishes: false, pending: None });
        };
        let name = helper.name();
        let log = tempfile::tempfile_in(&self.scratch).map_err(|e| NetworkError::Spawn(name, e))?;
        let (ready, ready_writer) = std::io::pipe().map_err(|e| NetworkError::Spawn(name, e))?;
        let mut cmd = Command::new(helper.program());
        cmd.args(helper.args(pid, &self.ports)).env_clear().stdin(Stdio::null()).stdout(Stdio::null());
        cmd.stderr(log.try_clone().map_err(|e| NetworkError::Spawn(name, e))?);
        let writer_fd = ready_writer.as_fd().as_raw_fd();
        // SAFETY: between fork and exec only raw, async-signal-safe syscalls
        // (prctl, setsid, fcntl, dup2, close_range), and no allocation.
        unsafe {
            cmd.pre_exec(move || super::detach_with_channel(writer_fd));
        }
        let child = cmd.spawn().map_err(|e| NetworkError::Spawn(name, e))?;
        drop(cmd);
        drop(ready_writer); // the helper's copy is the only one left: EOF when it dies
        Ok(Attached {
            child: Some(child),
            publishes: !self.ports.is_empty(),
            pending: Some(Pending { name, ready, log }),
        })
    }
}

/// A helper that has not yet said it is ready.
struct Pending {
    name: &'static str,
    ready: std::io::PipeReader,
    /// Its standard error, the reason when it fails.
    log: fs::File,
}

/// Wait for the helper's word on `ready`: `Ok(true)` once it wrote anything,
/// `Ok(false)` when it closed the pipe without (it died), `Err` at the timeout.
fn wait_ready(ready: &mut std::io::PipeReader, timeout: Duration) -> Result<bool, ()> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(());
        }
        let mut poll = libc::pollfd { fd: ready.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd, for the duration of the call.
        let rc = unsafe { libc::poll(&mut poll, 1, left.as_millis().min(i32::MAX as u128) as i32) };
        if rc < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        if rc <= 0 {
            continue; // timed out: the deadline check above ends it
        }
        let mut byte = [0u8; 64];
        return match ready.read(&mut byte) {
            Ok(n) => Ok(n > 0),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => Ok(false),
        };
    }
}

/// A running helper; dropping it stops it (the step is over).
pub struct Attached {
    child: Option<Child>,
    /// It holds published ports, which must be free once kiln is done.
    publishes: bool,
    pending: Option<Pending>,
}

impl Attached {
    /// Return once the helper has configured the namespace's interface (at
    /// once if it had, or there is none); its error if it died first, and
    /// then it is stopped.
    pub fn wait_ready(&mut self) -> Result<(), NetworkError> {
        let Some(mut pending) = self.pending.take() else { return Ok(()) };
        match wait_ready(&mut pending.ready, READY_TIMEOUT) {
            Ok(true) => Ok(()),
            Ok(false) => {
                self.stop();
                let mut output = String::new();
                let _ = pending.log.rewind().and_then(|_| pending.log.read_to_string(&mut output));
                Err(NetworkError::Failed { name: pending.name, output })
            }
            Err(()) => {
                self.stop();
                Err(NetworkError::Timeout(pending.name, READY_TIMEOUT.as_secs()))
            }
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            // The helper's exit closes its tap device, which the kernel
            // unregisters slowly (an RCU grace period, tens of ms): reaped
            // off the step's path. One that published ports is waited for
            // before kiln ends, so that a port is free once the container's
            // monitor is gone; another is not (init reaps it if kiln ends
            // first), which keeps the wait off `kiln run`'s and a build's end.
            if self.publishes {
                crate::store::trash::later(move || {
                    let _ = child.wait();
                });
            } else {
                std::thread::spawn(move || child.wait());
            }
        }
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The destinations a step's namespace gets a `prohibit` route for: the
/// cloud metadata services' link-local ranges (AWS, GCP, Azure's IMDS,
/// OpenStack at 169.254.169.254; AWS's IPv6 endpoint fd00:ec2::254).
/// Prohibit routes need no device, so they hold whatever the helper set up.
pub(crate) fn blocked_routes() -> [(std::net::IpAddr, u8); 2] {
    use std::net::{Ipv4Addr, Ipv6Addr};
    [(Ipv4Addr::new(169, 254, 0, 0).into(), 16), (Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0).into(), 64)]
}

/// The rtnetlink RTM_NEWROUTE request for a `prohibit` route to
/// `dst`/`prefix` in the main table (what `ip route replace prohibit` sends):
/// a header, an rtmsg and one RTA_DST attribute. Replaces a route the helper
/// may have set for the same destination.
pub(crate) fn prohibit_route_request(dst: std::net::IpAddr, prefix: u8, seq: u32) -> Vec<u8> {
    let (family, addr) = match dst {
        std::net::IpAddr::V4(a) => (libc::AF_INET, a.octets().to_vec()),
        std::net::IpAddr::V6(a) => (libc::AF_INET6, a.octets().to_vec()),
    };
    let attr_len = 4 + addr.len(); // rtattr header + address, both 4-aligned
    let len = 16 + 12 + attr_len;
    let flags = libc::NLM_F_REQUEST | libc::NLM_F_ACK | libc::NLM_F_CREATE | libc::NLM_F_REPLACE;
    let mut msg = Vec::with_capacity(len);
    // struct nlmsghdr
    msg.extend_from_slice(&(len as u32).to_ne_bytes());
    msg.extend_from_slice(&libc::RTM_NEWROUTE.to_ne_bytes());
    msg.extend_from_slice(&(flags as u16).to_ne_bytes());
    msg.extend_from_slice(&seq.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes()); // pid: the kernel's
                                                // struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type; flags
    msg.extend_from_slice(&[
        family as u8,
        prefix,
        0,
        0,
        libc::RT_TABLE_MAIN,
        libc::RTPROT_STATIC,
        libc::RT_SCOPE_UNIVERSE,
        libc::RTN_PROHIBIT,
    ]);
    msg.extend_from_slice(&0u32.to_ne_bytes());
    // struct rtattr RTA_DST
    msg.extend_from_slice(&(attr_len as u16).to_ne_bytes());
    msg.extend_from_slice(&libc::RTA_DST.to_ne_bytes());
    msg.extend_from_slice(&addr);
    msg
}

/// Add the [`blocked_routes`] in the calling process's network namespace
/// (which needs CAP_NET_ADMIN there). A namespace without IPv6 (a kernel
/// booted with ipv6.disable=1) has no IPv6 route to block.
pub(crate) fn add_blocked_routes() -> nix::Result<()> {
    use nix::errno::Errno;
    // SAFETY: a fresh socket, closed by OwnedFd.
    let socket = unsafe {
        let fd =
            Errno::result(libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::NETLINK_ROUTE))?;
        <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd)
    };
    for (seq, (dst, prefix)) in (1u32..).zip(blocked_routes()) {
        let msg = prohibit_route_request(dst, prefix, seq);
        // SAFETY: sends the bytes of `msg`, which outlives the call.
        let sent = unsafe { libc::send(socket.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
        match Errno::result(sent) {
            Err(Errno::EAFNOSUPPORT) if dst.is_ipv6() => continue,
            r => r?,
        };
        match netlink_ack(socket.as_raw_fd(), seq) {
            Err(Errno::EAFNOSUPPORT) if dst.is_ipv6() => {}
            r => r?,
        }
    }
    Ok(())
}

/// Read the kernel's answer to request `seq`: its NLMSG_ERROR, whose error
/// is 0 on success.
fn netlink_ack(fd: i32, seq: u32) -> nix::Result<()> {
    use nix::errno::Errno;
    let mut buf = [0u8; 1024];
    loop {
        // SAFETY: receives into `buf`, at most its length.
        let n = Errno::result(unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) })? as usize;
        if n == 0 {
            return Err(Errno::EPROTO);
        }
        let mut at = 0;
        while at + 16 <= n {
            let word = |i: usize| u32::from_ne_bytes(buf[at + i..at + i + 4].try_into().unwrap());
            let len = word(0) as usize;
            let kind = u16::from_ne_bytes([buf[at + 4], buf[at + 5]]);
            if len < 16 || at + len > n {
                return Err(Errno::EPROTO);
            }
            if kind == libc::NLMSG_ERROR as u16 && word(8) == seq && len >= 20 {
                let code = i32::from_ne_bytes(buf[at + 16..at + 20].try_into().unwrap());
                return if code == 0 { Ok(()) } else { Err(Errno::from_raw(-code)) };
            }
            at += (len + 3) & !3;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metadata_ranges_get_a_prohibit_route_request_in_the_main_table() {
        let [(v4, 16), (v6, 64)] = blocked_routes() else { panic!("{:?}", blocked_routes()) };
        assert_eq!(v4.to_string(), "169.254.0.0");
        assert_eq!(v6.to_string(), "fd00:ec2::");
        let msg = prohibit_route_request(v4, 16, 7);
        assert_eq!(msg.len(), 16 + 12 + 8);
        assert_eq!(u32::from_ne_bytes(msg[0..4].try_into().unwrap()), 36);
        assert_eq!(u16::from_ne_bytes([msg[4], msg[5]]), libc::RTM_NEWROUTE);
        assert_eq!(u32::from_ne_bytes(msg[8..12].try_into().unwrap()), 7);
        // family, dst_len, .., table, protocol, scope, type
        assert_eq!(msg[16..24], [libc::AF_INET as u8, 16, 0, 0, 254, libc::RTPROT_STATIC, 0, libc::RTN_PROHIBIT]);
        assert_eq!(u16::from_ne_bytes([msg[30], msg[31]]), libc::RTA_DST);
        assert_eq!(msg[32..], [169, 254, 0, 0]);
        let msg = prohibit_route_request(v6, 64, 8);
        assert_eq!((msg.len(), msg[16], msg[17]), (16 + 12 + 20, libc::AF_INET6 as u8, 64));
    }

    #[test]
    fn resolv_conf_names_the_forwarder_and_keeps_the_hosts_search_and_options() {
        for (host, want) in [
            ("", "nameserver 10.0.2.3\n"),
            ("nameserver 127.0.0.53\n", "nameserver 10.0.2.3\n"),
            (
                "# generated\nnameserver 127.0.0.53\nnameserver 10.0.0.1\nsearch corp.example\noptions edns0 trust-ad\n",
                "nameserver 10.0.2.3\nsearch corp.example\noptions edns0 trust-ad\n",
            ),
            ("domain lan\n  options ndots:2\nsortlist 10.0.0.0\n", "nameserver 10.0.2.3\ndomain lan\noptions ndots:2\n"),
        ] {
            assert_eq!(resolv_conf(host, PASTA_DNS), want, "{host:?}");
        }
    }

    #[test]
    fn neither_helper_is_ever_told_to_reach_the_host_or_publish_ports() {
        let pasta = Helper::Pasta("/usr/bin/pasta".into()).args(42, &[]);
        for (flag, value) in
            [("--tcp-ports", "none"), ("--udp-ports", "none"), ("--tcp-ns", "none"), ("--udp-ns", "none")]
        {
            let at = pasta.iter().position(|a| a == flag).unwrap_or_else(|| panic!("{flag} missing: {pasta:?}"));
            assert_eq!(pasta[at + 1], value);
        }
        assert!(pasta.contains(&"--no-map-gw".to_owned()));
        assert_eq!(pasta.last().unwrap(), "42");
        let slirp = Helper::Slirp4netns("/usr/bin/slirp4netns".into()).args(42, &[]);
        assert!(slirp.contains(&"--disable-host-loopback".to_owned()));
        assert!(!slirp.iter().any(|a| a.starts_with("--api-socket")));
        assert_eq!(slirp[slirp.len() - 2..], ["42", "tap0"]);
    }

    #[test]
    fn other_modes_start_nothing_and_keep_the_hosts_resolv_conf() {
        let dir = tempfile::tempdir().unwrap();
        for mode in [NetworkMode::Host, NetworkMode::None] {
            let setup = NetworkSetup::new(mode, dir.path()).unwrap();
            assert_eq!(setup.resolv_conf(), None);
            assert!(setup.attach(1).unwrap().child.is_none());
        }
    }

    /// Both helpers, for real, on a namespace `unshare` holds: the interface
    /// is configured once `wait_ready` returns, and the guard stops the helper.
    #[test]
    fn each_helper_configures_the_namespace_once_ready_and_stops_with_its_guard() {
        let dir = tempfile::tempdir().unwrap();
        let on_path = |name: &str| {
            let path = std::env::var_os("PATH").unwrap_or_default();
            let found = std::env::split_paths(&path).map(|d| d.join(name)).find(|p| is_executable(p));
            found.unwrap_or_else(|| panic!("{name} is not installed: CI's apt line installs passt and slirp4netns"))
        };
        for helper in [Helper::Pasta(on_path("pasta")), Helper::Slirp4netns(on_path("slirp4netns"))] {
            let mut holder =
                Command::new("unshare").args(["--user", "--map-root-user", "--net", "sleep", "60"]).spawn().unwrap();
            let pid = holder.id();
            let ours = fs::read_link("/proc/self/ns/net").unwrap();
            while fs::read_link(format!("/proc/{pid}/ns/net")).is_ok_and(|ns| ns == ours) {
                std::thread::sleep(Duration::from_millis(5));
            }
            let setup = NetworkSetup {
                helper: Some(helper.clone()),
                ports: vec![],
                resolv_conf: None,
                scratch: dir.path().to_owned(),
            };
            let mut attached = setup.attach(pid).unwrap_or_else(|e| panic!("{}: {e}: {:?}", helper.name(), e));
            attached.wait_ready().unwrap_or_else(|e| panic!("{}: {e}: {:?}", helper.name(), e));
            let pid_text = pid.to_string();
            let ip = ["-t", &pid_text, "-U", "-n", "--preserve-credentials", "ip", "-4", "-o", "addr"];
            let out = Command::new("nsenter").args(ip).output().unwrap();
            let addresses = String::from_utf8_lossy(&out.stdout);
            assert!(addresses.contains("inet 10.0.2.100/24"), "{}: {addresses}", helper.name());
            let helper_pid = attached.child.as_ref().unwrap().id();
            drop(attached);
            // Killed by the drop, reaped off the caller's path: gone soon after.
            let deadline = Instant::now() + Duration::from_secs(10);
            while Path::new(&format!("/proc/{helper_pid}")).exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            assert!(!Path::new(&format!("/proc/{helper_pid}")).exists(), "{} outlived its guard", helper.name());
            let _ = holder.kill();
            let _ = holder.wait();
        }
    }

    #[test]
    fn published_ports_read_as_dockers_and_reach_pastas_command_line() {
        let p = |t: &str| PortMap::parse(t);
        assert_eq!(p("8080:80"), Ok(PortMap { host_ip: None, host_port: 8080, container_port: 80, udp: false }));
        let local = p("127.0.0.1:53:5353/udp").unwrap();
        assert_eq!((local.host_ip, local.udp), (Some([127, 0, 0, 1].into()), true));
        assert_eq!(p("[::1]:8080:80").unwrap().host_ip, Some(std::net::Ipv6Addr::LOCALHOST.into()));
        for bad in ["80", "0:80", "8080:70000", "x:8080:80", "8080:80/sctp", ""] {
            assert!(p(bad).is_err(), "{bad}");
        }
        let args =
            Helper::Pasta("/usr/bin/pasta".into()).args(7, &[p("8080:80").unwrap(), p("9000:90").unwrap(), local]);
        let line = args.join(" ");
        assert!(line.contains("--tcp-ports 8080:80 --tcp-ports 9000:90 "), "{line}");
        assert!(line.contains("--udp-ports 127.0.0.1/53:5353 "), "{line}");
        assert!(line.contains("--tcp-ns none") && !line.contains("--tcp-ports none"), "{line}");
    }

    #[test]
    fn a_helper_that_dies_is_an_error_with_its_words() {
        let dir = tempfile::tempdir().unwrap();
        // `false` stands for a helper that fails at once, saying nothing.
        let setup = NetworkSetup {
            helper: Some(Helper::Slirp4netns("/bin/false".into())),
            ports: vec![],
            resolv_conf: None,
            scratch: dir.path().to_owned(),
        };
        let mut helper = setup.attach(1).expect("the helper starts");
        let err = helper.wait_ready().expect_err("a helper that exits is not ready");
        assert!(helper.wait_ready().is_ok(), "said once: its guard then only stops it");
        assert!(matches!(err, NetworkError::Failed { name: "slirp4netns", .. }), "{err:?}");
        assert_eq!(
            output_text("Failed to send 9 bytes to syslog\nCouldn't open /dev/net/tun: Permission denied\n"),
            ":\n  | Couldn't open /dev/net/tun: Permission denied\n  (is /dev/net/tun readable and writable by \
             kiln's user? udev makes it mode 0666)"
        );
    }
}
