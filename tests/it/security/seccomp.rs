//! Escape class: the kernel's attack surface from inside a step. A RUN step
//! (and `kiln run`) gets docker's default seccomp filter and capability set:
//! no new user namespaces (where it would hold every capability over new
//! mounts), no keyrings, no exotic sockets or personalities; clone3 answers
//! ENOSYS so that libc falls back to clone, whose flags the filter can read.
//! `RUN --security=insecure` lifts both, and only with `--allow
//! security.insecure`. Each is checked from inside a step, for root and
//! rootless kiln.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::super::harness::{Kiln, Mode, Run};

/// docker's default capabilities as /proc/self/status shows them: CHOWN,
/// DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID, SETUID, SETPCAP,
/// NET_BIND_SERVICE, NET_RAW, SYS_CHROOT, MKNOD, AUDIT_WRITE, SETFCAP.
const DOCKER_CAPS: &str = "00000000a80425fb";

/// `probes/seccomp_probe.c`, compiled static once per test run: the test
/// images have no libc. CI installs gcc and libc6-dev (see .ci/run).
fn probe() -> &'static Path {
    static PROBE: OnceLock<PathBuf> = OnceLock::new();
    PROBE.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/security/probes/seccomp_probe.c");
        let dir = tempfile::Builder::new().prefix("kiln-probe-").tempdir().unwrap().keep();
        let out = dir.join("probe");
        let gcc = Command::new("gcc").args(["-static", "-O1", "-pthread", "-o"]).arg(&out).arg(&src).output();
        let gcc = gcc.expect("gcc is needed to build the seccomp probe (Debian: gcc libc6-dev)");
        assert!(gcc.status.success(), "gcc -static failed:\n{}", String::from_utf8_lossy(&gcc.stderr));
        out
    })
}

/// A store of `k`'s mode with the probe in its context.
fn with_probe(k: &Kiln) {
    std::fs::copy(probe(), k.ctx().join("probe")).unwrap();
    k.give(&k.ctx());
}

/// The step output lines (`#N 0.123 TEXT`) as TEXT.
fn step_lines(out: &Run) -> Vec<String> {
    out.stderr
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ' ');
            let (n, t, text) = (f.next()?, f.next()?, f.next()?);
            (n.starts_with('#') && t.parse::<f64>().is_ok()).then(|| text.to_owned())
        })
        .collect()
}

/// What follows `prefix` on the first line that starts with it, trimmed.
fn after(lines: &[String], prefix: &str) -> String {
    let hit = lines.iter().find_map(|l| l.strip_prefix(prefix));
    hit.unwrap_or_else(|| panic!("no line starts with {prefix:?}: {lines:#?}")).trim().to_owned()
}

/// The probe's verdict on `name`: `rc=… errno=…`.
fn verdict(lines: &[String], name: &str) -> String {
    after(lines, &format!("{name} "))
}

#[test]
fn a_step_can_make_no_user_namespace_nor_use_keyrings() {
    for k in Kiln::each_mode() {
        with_probe(&k);
        k.write(
            "Dockerfile",
            "FROM busybox\nCOPY probe /probe\nRUN /probe\n\
             RUN unshare -U true; echo unshare-U=$?; unshare -m true; echo unshare-m=$?\n",
        );
        let out = k.build(&["--no-cache"]).ok();
        let lines = step_lines(&out);
        let mode = k.mode;
        for (name, want) in [
            ("unshare-user", "rc=-1 errno=1"),
            ("clone-newuser", "rc=-1 errno=1"),
            ("clone3", "rc=-1 errno=38"),
            ("keyctl", "rc=-1 errno=1"),
            ("add_key", "rc=-1 errno=1"),
            ("personality-bsd", "rc=-1 errno=1"),
            ("socket-vsock", "rc=-1 errno=1"),
            // A packet socket or an IP header of the step's own would pass
            // the metadata block's routes (run_network).
            ("socket-packet", "rc=-1 errno=1"),
            ("socket-raw-ip", "rc=-1 errno=1"),
            ("hdrincl", "rc=-1 errno=1"),
        ] {
            assert_eq!(verdict(&lines, name), want, "{name} ({mode:?})");
        }
        for (name, want) in [
            ("clone-plain", "rc=1 errno=0"),
            ("socket-unix", "rc=1 errno=0"),
            ("socket-raw-icmp", "rc=1 errno=0"),
            ("ip-ttl", "rc=0 errno=0"),
        ] {
            assert_eq!(verdict(&lines, name), want, "{name} ({mode:?})");
        }
        // glibc's pthread_create tries clone3 first: ENOSYS must send it to clone.
        assert_eq!(verdict(&lines, "thread"), "rc=0 errno=0", "({mode:?})");
        for refused in ["unshare-U=1", "unshare-m=1"] {
            assert!(lines.iter().any(|l| l == refused), "{refused} ({mode:?}): {lines:#?}");
        }
    }
}

#[test]
fn kiln_run_gets_the_same_filter() {
    for k in Kiln::each_mode() {
        let out =
            k.cmd(&["run", "busybox", "sh", "-c", "unshare -U true && echo ESCAPED; grep Seccomp: /proc/self/status"]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(!out.stdout.contains("ESCAPED"), "{:?}: {}", k.mode, out.stdout);
        assert!(out.stdout.contains("Seccomp:\t2"), "{:?}: {}", k.mode, out.stdout);
    }
}

#[test]
fn capabilities_are_dockers_for_root_and_none_but_the_bounding_set_for_a_user() {
    for k in Kiln::each_mode() {
        k.write(
            "Dockerfile",
            "FROM busybox\nRUN grep -E '^(Cap|NoNewPrivs|Seccomp)' /proc/self/status | sed 's/^/root /'\n\
             USER nobody\nRUN grep -E '^(Cap|NoNewPrivs)' /proc/self/status | sed 's/^/nobody /'\n",
        );
        let lines = step_lines(&k.build(&["--no-cache"]).ok());
        let field = |who: &str, name: &str| after(&lines, &format!("{who} {name}:"));
        let mode = k.mode;
        for name in ["CapEff", "CapPrm", "CapBnd"] {
            assert_eq!(field("root", name), DOCKER_CAPS, "root {name} ({mode:?})");
        }
        assert_eq!(field("root", "CapAmb"), "0000000000000000", "({mode:?})");
        // no_new_privs stays off, as in docker: setuid programs work.
        assert_eq!(field("root", "NoNewPrivs"), "0", "({mode:?})");
        assert_eq!(field("root", "Seccomp"), "2", "filter mode ({mode:?})");
        for name in ["CapEff", "CapPrm", "CapAmb"] {
            assert_eq!(field("nobody", name), "0000000000000000", "nobody {name} ({mode:?})");
        }
        assert_eq!(field("nobody", "CapBnd"), DOCKER_CAPS, "({mode:?})");
        assert_eq!(field("nobody", "NoNewPrivs"), "0", "({mode:?})");
    }
}

#[test]
fn ordinary_steps_still_work_under_the_filter() {
    for k in Kiln::each_mode() {
        with_probe(&k);
        // su and chown as root, a setuid program run by a user (it must gain
        // its owner's uid, as in docker), chroot (CAP_SYS_CHROOT), pipes,
        // background jobs and threads (the probe's pthread_create).
        k.write(
            "Dockerfile",
            "FROM busybox\nCOPY probe /probe\n\
             RUN cp /probe /suid && chmod 4755 /suid && mkdir /owned && chown 65534:65534 /owned\n\
             RUN su nobody -s /bin/sh -c 'id -u' | sed 's/^/su-as=/'\n\
             RUN chroot / true && echo chroot-ok; (sleep 0 & wait) && echo jobs-ok\n\
             USER nobody\nRUN /suid euid | sed 's/^/suid-/' && touch /owned/f && echo owned-ok\n",
        );
        let lines = step_lines(&k.build(&["--no-cache"]).ok());
        for want in ["su-as=65534", "chroot-ok", "jobs-ok", "suid-euid=0", "owned-ok"] {
            assert!(lines.iter().any(|l| l == want), "{want} ({:?}): {lines:#?}", k.mode);
        }
    }
}

#[test]
fn insecure_is_refused_without_allow_and_unconfined_with_it() {
    for k in Kiln::each_mode() {
        k.write(
            "Dockerfile",
            "FROM busybox\nRUN --security=insecure echo RAN-INSECURE; \
             grep -E '^(CapEff|Seccomp):' /proc/self/status; \
             unshare -U true && echo UNSHARED; \
             echo proc-sys-mounts=$(grep -c ' /proc/sys ' /proc/self/mounts); \
             (echo insecure-box > /proc/sys/kernel/hostname) 2>/dev/null && echo SYSCTL-WRITTEN; true\n",
        );
        let refused = k.build(&["--no-cache"]).failed();
        assert!(refused.stderr.contains("--allow security.insecure"), "{:?}: {}", k.mode, refused.stderr);
        let ran = step_lines(&refused).iter().any(|l| l == "RAN-INSECURE");
        assert!(!ran, "the step ran ({:?}): {}", k.mode, refused.stderr);

        let lines = step_lines(&k.build(&["--no-cache", "--allow", "security.insecure"]).ok());
        let mode = k.mode;
        // /proc/sys is not made read-only. Rootless, its files still belong to
        // the host's root, so only root's step can write a knob of its own
        // namespace (docker rootless --privileged alike).
        let mut wanted = vec!["RAN-INSECURE", "Seccomp:\t0", "UNSHARED", "proc-sys-mounts=0"];
        if mode == Mode::Root {
            wanted.push("SYSCTL-WRITTEN");
        }
        for want in wanted {
            assert!(lines.iter().any(|l| l == want), "{want} ({mode:?}): {lines:#?}");
        }
        let cap_eff = after(&lines, "CapEff:");
        assert_ne!(cap_eff, DOCKER_CAPS, "every capability ({mode:?})");
        assert!(u64::from_str_radix(&cap_eff, 16).unwrap() & (1 << 21) != 0, "CAP_SYS_ADMIN ({mode:?})");
    }
}

#[test]
fn an_unknown_entitlement_is_refused_naming_the_flag() {
    let k = Kiln::with_busybox();
    k.write("Dockerfile", "FROM busybox\nRUN true\n");
    let out = k.build(&["--allow", "security.insecure,root.everything"]).failed();
    assert!(out.stderr.contains("--allow \"root.everything\""), "{}", out.stderr);
}
