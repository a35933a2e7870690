//! The seccomp filter of every RUN step and `kiln run`: docker's default
//! profile (moby/profiles, `seccomp/default_linux.go`) for a container with
//! docker's default capabilities.
//!
//! An allowlist, as docker's, not a denylist of what docker blocks. A
//! denylist lets through every call it does not name: the calls of kernels
//! newer than the list, and on x86_64 the x32 ABI's numbers (the listed
//! number with bit 30 set, under the same audit architecture), which reach
//! the same kernel code. With an allowlist those get EPERM, as in docker. The
//! cost of an allowlist, a filter longer than a denylist, is paid once: the
//! kernel caches the verdict of every call whose rule reads no argument
//! (since 5.11), which is all of them but four.
//!
//! What the profile does, beyond its plain list (`syscalls`):
//! - clone is allowed only without namespace flags; unshare, setns, mount,
//!   pivot_root, bpf, perf_event_open, keyctl, add_key, request_key, kexec,
//!   module loading, open_by_handle_at, userfaultfd, io_uring, reboot,
//!   swapon, acct, syslog and the rest of docker's list are not allowed at all
//!   (EPERM). So a step can make no user namespace, where it would hold every
//!   capability over new mounts.
//! - clone3 gets ENOSYS, not EPERM: its flags sit behind a pointer seccomp
//!   cannot read, and ENOSYS makes glibc (and Go) fall back to clone, whose
//!   flags it can.
//! - personality only with the values docker allows; socket only for the
//!   address families docker allows (no AF_ALG, no AF_VSOCK) less AF_PACKET,
//!   and, unlike docker, raw IP sockets only for ICMP and never writing their
//!   own IP header (IPPROTO_RAW, IP_HDRINCL, IPV6_HDRINCL): either would
//!   pass the routes that block the cloud metadata service (see `network`).
//!
//! Only the filter's native architecture is allowed: a 32-bit binary (i386
//! on x86_64, arm on aarch64) is killed at its first call, where docker
//! would allow the 32-bit numbers too. Builds run images of the host's own
//! platform. On other architectures kiln runs without a filter, as docker
//! does where the kernel has no seccomp.
//!
//! The filter is installed by the command's own process, after the setup that
//! needs blocked calls and before it drops to the step's user (see
//! `init::become_user`). It is installed without no_new_privs, as runc
//! installs docker's, so that setuid programs in the image (`su`) work as in
//! docker: the process may, since it still has CAP_SYS_ADMIN in the
//! sandbox's user namespace at that point.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule, TargetArch,
};

mod syscalls;

/// Why the filter could not be built.
#[derive(Debug, thiserror::Error)]
#[error("building the seccomp filter")]
pub struct SeccompError(#[source] seccompiler::BackendError);

/// One architecture's numbers for the filter.
struct Arch {
    target: TargetArch,
    /// Allowed whatever their arguments.
    allowed: &'static [(&'static str, i64)],
    clone: i64,
    clone3: i64,
    personality: i64,
    socket: i64,
    setsockopt: i64,
}

/// IPV6_HDRINCL (linux/in6.h), which libc does not name.
const IPV6_HDRINCL: u64 = 36;

const X86_64: Arch = Arch {
    target: TargetArch::x86_64,
    allowed: syscalls::X86_64,
    clone: 56,
    clone3: 435,
    personality: 135,
    socket: 41,
    setsockopt: 54,
};

const AARCH64: Arch = Arch {
    target: TargetArch::aarch64,
    allowed: syscalls::AARCH64,
    clone: 220,
    clone3: 435,
    personality: 92,
    socket: 198,
    setsockopt: 208,
};

/// The architecture kiln was built for, when the filter knows it.
fn native() -> Option<&'static Arch> {
    match std::env::consts::ARCH {
        "x86_64" => Some(&X86_64),
        "aarch64" => Some(&AARCH64),
        _ => None,
    }
}

/// Every namespace flag: clone may create none of them.
const NAMESPACE_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP) as u64;

/// The personality values docker allows: PER_LINUX, UNAME26, PER_LINUX32,
/// UNAME26|PER_LINUX32, and 0xffffffff (the query).
const PERSONALITIES: [u64; 5] = [0x0, 0x0008, 0x20000, 0x20008, 0xffff_ffff];

/// docker's address families above AF_ROSE (11): all of 1..=11 are allowed.
/// Left out: DECnet 12, ECONET 19, ATMSVC 20, IRDA 23, WANPIPE 25, ISDN 34,
/// CAIF 37 (gone from the kernel), ALG 38 (the kernel's crypto API, needless
/// attack surface), VSOCK 40 (reaches the host's VMs), and, unlike docker,
/// PACKET 17: with CAP_NET_RAW a packet socket writes frames straight to the
/// network helper's tap device, past the namespace's routes, so past the
/// block on the cloud metadata service (see `network`).
const MORE_SOCKET_FAMILIES: [u64; 24] =
    [13, 14, 15, 16, 18, 21, 22, 24, 26, 27, 28, 29, 30, 31, 32, 33, 35, 36, 39, 41, 42, 43, 44, 45];

/// The filters to install, in order, for the native architecture; `None`
/// where kiln has no filter for it.
pub(crate) fn default_filters() -> Result<Option<Vec<BpfProgram>>, SeccompError> {
    native().map(build).transpose()
}

/// The allowlist (EPERM for the rest), then a second filter for clone3's
/// ENOSYS: one seccompiler filter has one action for its matches. The first
/// lets clone3 through, so the second's ENOSYS is the verdict whatever the
/// kernel's order of equal actions.
fn build(arch: &Arch) -> Result<Vec<BpfProgram>, SeccompError> {
    let condition = |arg, len, op, value| SeccompCondition::new(arg, len, op, value).map_err(SeccompError);
    let rule = |conditions| SeccompRule::new(conditions).map_err(SeccompError);
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = arch.allowed.iter().map(|(_, nr)| (*nr, Vec::new())).collect();
    rules.insert(arch.clone3, Vec::new());
    // clone(flags, …) on both architectures: flags is the first argument.
    let no_namespace = condition(0, SeccompCmpArgLen::Qword, SeccompCmpOp::MaskedEq(NAMESPACE_FLAGS), 0)?;
    rules.insert(arch.clone, vec![rule(vec![no_namespace])?]);
    let personality = PERSONALITIES
        .iter()
        .map(|v| rule(vec![condition(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, *v)?]))
        .collect::<Result<_, _>>()?;
    rules.insert(arch.personality, personality);
    let arg = |n, op, v| condition(n, SeccompCmpArgLen::Dword, op, v);
    let (inet, inet6) = (libc::AF_INET as u64, libc::AF_INET6 as u64);
    let mut socket = vec![rule(vec![
        arg(0, SeccompCmpOp::Lt, 12)?,
        arg(0, SeccompCmpOp::Ne, inet)?,
        arg(0, SeccompCmpOp::Ne, inet6)?,
    ])?];
    for family in &MORE_SOCKET_FAMILIES {
        socket.push(rule(vec![arg(0, SeccompCmpOp::Eq, *family)?])?);
    }
    // IP sockets: any but raw ones, and those only for ICMP (ping). A raw
    // socket writing its own IP header (IPPROTO_RAW, or IP_HDRINCL below) is
    // routed by the address given to sendto, not the header's, so it passes
    // the namespace's routes: the metadata block (see `network`).
    for (family, icmp) in [(inet, libc::IPPROTO_ICMP as u64), (inet6, libc::IPPROTO_ICMPV6 as u64)] {
        for kind in [libc::SOCK_STREAM, libc::SOCK_DGRAM, libc::SOCK_SEQPACKET] {
            let kind = arg(1, SeccompCmpOp::MaskedEq(0xf), kind as u64)?;
            socket.push(rule(vec![arg(0, SeccompCmpOp::Eq, family)?, kind])?);
        }
        let raw = arg(1, SeccompCmpOp::MaskedEq(0xf), libc::SOCK_RAW as u64)?;
        socket.push(rule(vec![arg(0, SeccompCmpOp::Eq, family)?, raw, arg(2, SeccompCmpOp::Eq, icmp)?])?);
    }
    rules.insert(arch.socket, socket);
    let (ip, ip6) = (libc::IPPROTO_IP as u64, libc::IPPROTO_IPV6 as u64);
    let setsockopt = vec![
        rule(vec![arg(1, SeccompCmpOp::Ne, ip)?, arg(1, SeccompCmpOp::Ne, ip6)?])?,
        rule(vec![arg(1, SeccompCmpOp::Eq, ip)?, arg(2, SeccompCmpOp::Ne, libc::IP_HDRINCL as u64)?])?,
        rule(vec![arg(1, SeccompCmpOp::Eq, ip6)?, arg(2, SeccompCmpOp::Ne, IPV6_HDRINCL)?])?,
    ];
    rules.insert(arch.setsockopt, setsockopt);
    let eperm = SeccompAction::Errno(libc::EPERM as u32);
    let allowlist = SeccompFilter::new(rules, eperm, SeccompAction::Allow, arch.target).map_err(SeccompError)?;
    let clone3 = BTreeMap::from([(arch.clone3, Vec::new())]);
    let enosys = SeccompAction::Errno(libc::ENOSYS as u32);
    let clone3 = SeccompFilter::new(clone3, SeccompAction::Allow, enosys, arch.target).map_err(SeccompError)?;
    [allowlist, clone3].into_iter().map(|f| BpfProgram::try_from(f).map_err(SeccompError)).collect()
}

/// The kernel has seccomp filters: prctl(PR_GET_SECCOMP) fails with EINVAL
/// on a kernel built without CONFIG_SECCOMP.
pub(super) fn kernel_supports() -> bool {
    // SAFETY: PR_GET_SECCOMP only reads the calling thread's mode.
    let rc = unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) };
    rc >= 0 || nix::errno::Errno::last() != nix::errno::Errno::EINVAL
}

/// seccomp(SECCOMP_SET_MODE_FILTER) of `program`, without no_new_privs (see
/// the module doc): the caller must have CAP_SYS_ADMIN in its namespace.
pub(super) fn install(program: &[seccompiler::sock_filter]) -> nix::Result<()> {
    let len = u16::try_from(program.len()).map_err(|_| nix::errno::Errno::E2BIG)?;
    // seccompiler's sock_filter is the kernel's struct, as libc's is.
    let prog = libc::sock_fprog { len, filter: program.as_ptr() as *mut libc::sock_filter };
    // SAFETY: the kernel copies the program in; `prog` and `program` outlive the call.
    let rc = unsafe {
        libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, 0 as libc::c_ulong, &prog as *const _)
    };
    nix::errno::Errno::result(rc).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(arch: &Arch) -> Vec<&'static str> {
        arch.allowed.iter().map(|(n, _)| *n).collect()
    }

    #[test]
    fn the_escape_calls_are_not_allowed_on_either_architecture() {
        for arch in [&X86_64, &AARCH64] {
            let allowed = names(arch);
            for blocked in [
                "unshare",
                "setns",
                "clone",
                "clone3",
                "keyctl",
                "add_key",
                "request_key",
                "mount",
                "umount2",
                "pivot_root",
                "bpf",
                "perf_event_open",
                "kexec_load",
                "init_module",
                "finit_module",
                "open_by_handle_at",
                "userfaultfd",
                "io_uring_setup",
                "reboot",
                "swapon",
                "acct",
                "syslog",
                "fsopen",
                "move_mount",
                "open_tree",
                "personality",
                "socket",
            ] {
                assert!(!allowed.contains(&blocked), "{blocked} is allowed unconditionally on {:?}", arch.target);
            }
            for kept in ["read", "execve", "openat", "chroot", "setresuid", "wait4", "ptrace", "close_range"] {
                assert!(allowed.contains(&kept), "{kept} is missing on {:?}", arch.target);
            }
        }
    }

    #[test]
    fn each_table_names_each_call_and_number_once_and_sorted() {
        for arch in [&X86_64, &AARCH64] {
            let numbers: Vec<i64> = arch.allowed.iter().map(|(_, nr)| *nr).collect();
            assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{:?}", arch.target);
            let mut names = names(arch);
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), numbers.len());
            for special in [arch.clone, arch.clone3, arch.personality, arch.socket] {
                assert!(!numbers.contains(&special));
            }
        }
        // Spot checks against the kernel's tables.
        assert!(X86_64.allowed.contains(&("openat", 257)) && AARCH64.allowed.contains(&("openat", 56)));
        assert!(X86_64.allowed.contains(&("arch_prctl", 158)) && !names(&AARCH64).contains(&"open"));
    }

    #[test]
    fn both_architectures_compile_to_two_programs() {
        for arch in [&X86_64, &AARCH64] {
            let programs = build(arch).unwrap();
            assert_eq!(programs.len(), 2);
            assert!(programs[0].len() > arch.allowed.len() && programs[0].len() < 4096);
        }
    }
}
