//! The seccomp filter of every RUN step and `kiln run`: docker's default
//! profile (moby/profiles, `seccomp/default_linux.go`) for a container with
//! docker's default capabilities.
//!
//! An allowlist, as docker's, not a denylist of what docker blocks. A
//! denylist lets through every call it does not name: the calls of kernels
//! newer than the list, and on x86_64 the x32 ABI's numbers (the listed
//! number with bit 30 set, under the same audit architecture), which reach
//! the same kernel code. With an allowlist those get EPERM, as in docker. An
//! allowlist is a long filter, so kiln emits it itself (`bpf`): a binary
//! search over ranges of call numbers, not seccompiler's chain of one test
//! per call, which the kernel ran for every call number at each install.
//! The kernel caches the verdict of every call whose rule reads no argument
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

use bpf::{Cond, Op, Verdict};

mod bpf;
mod syscalls;

/// One compiled filter: the kernel's `struct sock_filter`s.
pub(crate) type Program = Vec<libc::sock_filter>;

/// Why the filter could not be built.
#[derive(Debug, thiserror::Error)]
#[error("building the seccomp filter: {0}")]
pub struct SeccompError(String);

/// One architecture's numbers for the filter.
struct Arch {
    /// AUDIT_ARCH_* (linux/audit.h).
    audit: u32,
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
    audit: 0xc000_003e,
    allowed: syscalls::X86_64,
    clone: 56,
    clone3: 435,
    personality: 135,
    socket: 41,
    setsockopt: 54,
};

const AARCH64: Arch = Arch {
    audit: 0xc000_00b7,
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
pub(crate) fn default_filters() -> Result<Option<Vec<Program>>, SeccompError> {
    native().map(|arch| build(arch).map(|p| vec![p])).transpose()
}

/// The allowlist: EPERM for every call it does not name, ENOSYS for clone3.
fn build(arch: &Arch) -> Result<Program, SeccompError> {
    let nr = |n: i64| u32::try_from(n).map_err(|_| SeccompError(format!("call number {n}")));
    let mut calls = BTreeMap::new();
    for (_, n) in arch.allowed {
        calls.insert(nr(*n)?, Verdict::Allow);
    }
    calls.insert(nr(arch.clone3)?, Verdict::Errno(libc::ENOSYS as u32));
    for (n, rules) in [
        (arch.clone, clone_rules()),
        (arch.personality, personality_rules()),
        (arch.socket, socket_rules()),
        (arch.setsockopt, setsockopt_rules()),
    ] {
        calls.insert(nr(n)?, Verdict::Rules(rules));
    }
    Ok(bpf::program(arch.audit, &calls, libc::EPERM as u32))
}

/// A test of the low 32 bits of argument `arg`.
fn dword(arg: u8, op: Op) -> Cond {
    Cond { arg, qword: false, op }
}

/// clone(flags, …) on both architectures: flags is the first argument.
fn clone_rules() -> Vec<bpf::Rule> {
    vec![vec![Cond { arg: 0, qword: true, op: Op::MaskedEq { mask: NAMESPACE_FLAGS, value: 0 } }]]
}

fn personality_rules() -> Vec<bpf::Rule> {
    PERSONALITIES.iter().map(|v| vec![dword(0, Op::Eq(*v))]).collect()
}

fn socket_rules() -> Vec<bpf::Rule> {
    let (inet, inet6) = (libc::AF_INET as u64, libc::AF_INET6 as u64);
    let mut rules = vec![vec![dword(0, Op::Lt(12)), dword(0, Op::Ne(inet)), dword(0, Op::Ne(inet6))]];
    for family in &MORE_SOCKET_FAMILIES {
        rules.push(vec![dword(0, Op::Eq(*family))]);
    }
    // IP sockets: any but raw ones, and those only for ICMP (ping). A raw
    // socket writing its own IP header (IPPROTO_RAW, or IP_HDRINCL below) is
    // routed by the address given to sendto, not the header's, so it passes
    // the namespace's routes: the metadata block (see `network`).
    let kind = |k: i32| dword(1, Op::MaskedEq { mask: 0xf, value: k as u64 });
    for (family, icmp) in [(inet, libc::IPPROTO_ICMP as u64), (inet6, libc::IPPROTO_ICMPV6 as u64)] {
        for k in [libc::SOCK_STREAM, libc::SOCK_DGRAM, libc::SOCK_SEQPACKET] {
            rules.push(vec![dword(0, Op::Eq(family)), kind(k)]);
        }
        rules.push(vec![dword(0, Op::Eq(family)), kind(libc::SOCK_RAW), dword(2, Op::Eq(icmp))]);
    }
    rules
}

fn setsockopt_rules() -> Vec<bpf::Rule> {
    let (ip, ip6) = (libc::IPPROTO_IP as u64, libc::IPPROTO_IPV6 as u64);
    vec![
        vec![dword(1, Op::Ne(ip)), dword(1, Op::Ne(ip6))],
        vec![dword(1, Op::Eq(ip)), dword(2, Op::Ne(libc::IP_HDRINCL as u64))],
        vec![dword(1, Op::Eq(ip6)), dword(2, Op::Ne(IPV6_HDRINCL))],
    ]
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
pub(super) fn install(program: &[libc::sock_filter]) -> nix::Result<()> {
    let len = u16::try_from(program.len()).map_err(|_| nix::errno::Errno::E2BIG)?;
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
    use seccompiler::{
        SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule, TargetArch,
    };

    /// The filter as seccompiler builds it, as kiln installed it before its
    /// own emitter: the allowlist, then a second filter for clone3's ENOSYS
    /// (a seccompiler filter has one action for its matches). The
    /// reference the emitted program must agree with.
    fn reference(arch: &Arch) -> Vec<Program> {
        let target = if arch.audit == X86_64.audit { TargetArch::x86_64 } else { TargetArch::aarch64 };
        let condition = |arg, len, op: &Op| {
            let (op, value) = match *op {
                Op::Eq(v) => (SeccompCmpOp::Eq, v),
                Op::Ne(v) => (SeccompCmpOp::Ne, v),
                Op::Lt(v) => (SeccompCmpOp::Lt, v),
                Op::MaskedEq { mask, value } => (SeccompCmpOp::MaskedEq(mask), value),
            };
            SeccompCondition::new(arg, len, op, value).unwrap()
        };
        // The rules written once more in seccompiler's terms, from the same values.
        let convert = |rules: Vec<bpf::Rule>| -> Vec<SeccompRule> {
            rules
                .into_iter()
                .map(|r| {
                    let conds = r.iter().map(|c| {
                        let len = if c.qword { SeccompCmpArgLen::Qword } else { SeccompCmpArgLen::Dword };
                        condition(c.arg, len, &c.op)
                    });
                    SeccompRule::new(conds.collect()).unwrap()
                })
                .collect()
        };
        let mut rules: BTreeMap<i64, Vec<SeccompRule>> = arch.allowed.iter().map(|(_, nr)| (*nr, Vec::new())).collect();
        rules.insert(arch.clone3, Vec::new());
        rules.insert(arch.clone, convert(clone_rules()));
        rules.insert(arch.personality, convert(personality_rules()));
        rules.insert(arch.socket, convert(socket_rules()));
        rules.insert(arch.setsockopt, convert(setsockopt_rules()));
        let eperm = SeccompAction::Errno(libc::EPERM as u32);
        let allowlist = SeccompFilter::new(rules, eperm, SeccompAction::Allow, target).unwrap();
        let clone3 = BTreeMap::from([(arch.clone3, Vec::new())]);
        let enosys = SeccompAction::Errno(libc::ENOSYS as u32);
        let clone3 = SeccompFilter::new(clone3, SeccompAction::Allow, enosys, target).unwrap();
        [allowlist, clone3]
            .into_iter()
            .map(|f| {
                let program = seccompiler::BpfProgram::try_from(f).unwrap();
                program.iter().map(|i| libc::sock_filter { code: i.code, jt: i.jt, jf: i.jf, k: i.k }).collect()
            })
            .collect()
    }

    /// The verdict of `programs` installed in order: the kernel runs them
    /// all and keeps the most severe action, and of equal ones the last
    /// installed's (seccomp(2)).
    fn verdict(programs: &[Program], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
        let severity = |v: u32| match v & libc::SECCOMP_RET_ACTION_FULL {
            libc::SECCOMP_RET_KILL_PROCESS => 0,
            libc::SECCOMP_RET_ERRNO => 3,
            libc::SECCOMP_RET_ALLOW => 7,
            other => panic!("action {other:#x}"),
        };
        let verdicts = programs.iter().map(|p| bpf::run(p, arch, nr, args));
        verdicts.rev().min_by_key(|v| severity(*v)).unwrap()
    }

    #[test]
    fn the_emitted_program_agrees_with_seccompilers_on_every_call() {
        let ns = NAMESPACE_FLAGS;
        let (inet, unix) = (libc::AF_INET as u64, libc::AF_UNIX as u64);
        let (raw, stream, dgram) = (libc::SOCK_RAW as u64, libc::SOCK_STREAM as u64, libc::SOCK_DGRAM as u64);
        let cloexec = libc::SOCK_CLOEXEC as u64;
        let mut args: Vec<[u64; 6]> = vec![[0; 6], [u64::MAX; 6]];
        // clone's flags; personality's values; socket's families, kinds and
        // protocols; setsockopt's levels and options: around every edge.
        for first in
            [0x11, ns, libc::CLONE_NEWUSER as u64, 0x1_0000_0000, 0x1_0000_0011, 0x8, 0x20000, 0x20008, 0xffff_ffff]
        {
            args.push([first, 0, 0, 0, 0, 0]);
        }
        for family in (0..50).chain([inet | 1 << 32, 0x1_0000_0011]) {
            // 10: the obsolete SOCK_PACKET.
            for kind in [stream, dgram, raw, libc::SOCK_SEQPACKET as u64, 10, raw | cloexec] {
                for proto in [0, 1, 58, 255] {
                    args.push([family, kind, proto, 0, 0, 0]);
                }
            }
        }
        for level in [0, 41, 1, 6, 1 << 32] {
            for opt in [0, 3, 36, 1 << 32 | 3] {
                args.push([0, level, opt, 0, 0, 0]);
            }
        }
        args.push([unix, stream, 0, 0, 0, 0]);
        for arch in [&X86_64, &AARCH64] {
            let (ours, theirs) = (vec![build(arch).unwrap()], reference(arch));
            let special = [arch.clone, arch.personality, arch.socket, arch.setsockopt];
            let numbers = (0..1100).chain([0x4000_0000, 0x4000_0029, 0x4000_0101, u32::MAX]);
            for nr in numbers {
                let all_args = if special.contains(&i64::from(nr)) { &args[..] } else { &args[..2] };
                for a in all_args {
                    let (got, want) = (verdict(&ours, arch.audit, nr, *a), verdict(&theirs, arch.audit, nr, *a));
                    assert_eq!(got, want, "call {nr} with {a:x?} on {:#x}", arch.audit);
                }
            }
            // Another architecture's call (i386's, arm's) is killed by both.
            let other = if arch.audit == X86_64.audit { 0x4000_0003 } else { 0x4000_0028 };
            assert_eq!(verdict(&ours, other, 1, [0; 6]), libc::SECCOMP_RET_KILL_PROCESS);
            assert_eq!(verdict(&theirs, other, 1, [0; 6]), libc::SECCOMP_RET_KILL_PROCESS);
            // And it is searched, not walked: a few instructions a range.
            assert!(ours[0].len() < theirs[0].len() / 3, "{} against {}", ours[0].len(), theirs[0].len());
        }
    }

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
                assert!(!allowed.contains(&blocked), "{blocked} is allowed unconditionally on {:#x}", arch.audit);
            }
            for kept in ["read", "execve", "openat", "chroot", "setresuid", "wait4", "ptrace", "close_range"] {
                assert!(allowed.contains(&kept), "{kept} is missing on {:#x}", arch.audit);
            }
        }
    }

    #[test]
    fn each_table_names_each_call_and_number_once_and_sorted() {
        for arch in [&X86_64, &AARCH64] {
            let numbers: Vec<i64> = arch.allowed.iter().map(|(_, nr)| *nr).collect();
            assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{:#x}", arch.audit);
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
}
