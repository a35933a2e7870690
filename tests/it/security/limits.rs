//! Resource limits: input built to exhaust kiln's stack or memory, or to
//! overflow a number, gets a clear error naming the Dockerfile line (or a cost
//! proportional to its size), never a crash or a silently wrong result.

use std::fs;
use std::process::{Command, Stdio};

use super::super::harness::{Kiln, Run, KILN};

/// Build `dockerfile` and expect kiln itself to refuse it: exit code 1 (its
/// error path), not an abort (134) or a signal, with every one of `expect` in
/// the error, and nothing tagged.
#[track_caller]
fn refused(k: &Kiln, dockerfile: &str, args: &[&str], expect: &[&str]) -> Run {
    k.write("Dockerfile", dockerfile);
    let mut all = vec!["-t", "limits:v1"];
    all.extend_from_slice(args);
    let out = k.build(&all);
    // 1 is kiln's own error exit; 134 would be an abort, -1 a signal.
    assert_eq!(out.code, 1, "expected kiln to refuse the build with exit code 1:\n{}", out.stderr);
    for e in expect {
        assert!(out.stderr.contains(e), "expected {e:?} in:\n{}", out.stderr);
    }
    assert!(!k.image_names().contains(&"limits:v1".to_string()), "a refused build tagged its image");
    out
}

#[test]
fn deeply_nested_variable_expansion_is_an_error_not_a_stack_overflow() {
    let k = Kiln::with_busybox();
    let deep = 20_000;
    let word: String = (0..deep).map(|i| format!("${{a{i}:-")).collect::<String>() + "x" + &"}".repeat(deep);
    // Continuations keep each line within BuildKit's line length limit.
    let lines: Vec<String> = word.as_bytes().chunks(1_000).map(|c| String::from_utf8_lossy(c).into_owned()).collect();
    let word = lines.join("\\\n");
    refused(
        &k,
        &format!("FROM busybox\n\nLABEL deep={word}\n"),
        &[],
        &["Dockerfile:3:", "variable expansion nests deeper than 100 levels"],
    );
}

#[test]
fn a_line_longer_than_buildkit_reads_is_refused() {
    let k = Kiln::with_busybox();
    let long = format!("FROM busybox\nLABEL a={}\n", "x".repeat(70_000));
    refused(&k, &long, &[], &["Dockerfile:2:1: the line is longer than 65535 bytes"]);
}

#[test]
fn a_long_chain_of_stages_builds_without_a_stack_overflow() {
    let k = Kiln::empty();
    let mut text = String::from("FROM scratch AS s0\n");
    for i in 1..3_000 {
        text += &format!("FROM s{} AS s{i}\nLABEL n={i}\n", i - 1);
    }
    k.write("Dockerfile", &text);
    k.build(&["-t", "chain:v1"]).ok();
}

#[test]
fn chown_ids_that_do_not_fit_in_32_bits_are_refused() {
    let k = Kiln::with_busybox();
    k.write("a.txt", "a");
    for (spec, what) in [
        // Truncated to 32 bits this was uid 1215752191: another user, silently.
        ("99999999999:1", "uid 99999999999 is out of range"),
        ("1:4294967296", "gid 4294967296 is out of range"),
        // (uid_t)-1: "leave the owner unchanged" to chown(2).
        ("4294967295", "uid 4294967295 is out of range"),
    ] {
        let dockerfile = format!("FROM busybox\nCOPY --chown={spec} a.txt /a\n");
        refused(&k, &dockerfile, &[], &["Dockerfile:2:", &format!("--chown \"{spec}\""), what]);
    }
    k.assert_clean();
}

#[test]
fn an_empty_build_arg_name_is_refused() {
    let k = Kiln::with_busybox();
    for arg in ["=x", "=", ""] {
        let out = refused(&k, "FROM busybox\nRUN touch /x\n", &["--build-arg", arg], &["--build-arg", "name is empty"]);
        assert!(!out.stderr.contains("RUN touch"), "nothing should have run:\n{}", out.stderr);
    }
}

/// Run kiln with `args` as [`Kiln::cmd`] does; its exit code (-1 for a signal),
/// its stderr, and its peak resident set size in MB, as GNU time reports it
/// (which covers the processes kiln waited for too).
fn run_measured(k: &Kiln, args: &[&str]) -> (i32, String, i64) {
    run_measured_within(k, args, None)
}

/// [`run_measured`], with kiln's address space capped at `max_bytes`: a test
/// of an attack on memory then fails (an abort) instead of taking the
/// machine's memory when the defence is missing.
fn run_measured_within(k: &Kiln, args: &[&str], max_bytes: Option<u64>) -> (i32, String, i64) {
    use std::os::unix::process::CommandExt;
    let err_path = k.dir.path().join("measured.stderr");
    let rss_path = k.dir.path().join("measured.rss");
    // Measured by GNU time, not by our own wait4: a child of this (big,
    // many-threaded) test process starts as a copy of it, or shares its
    // memory until exec, and the kernel counts that in the child's peak.
    // time's own child starts from time's few pages.
    let mut cmd = Command::new("/usr/bin/time");
    cmd.arg("-f").arg("%M").arg("-o").arg(&rss_path).arg(KILN);
    cmd.arg("--root").arg(k.root()).args(args).stdout(Stdio::null()).stderr(fs::File::create(&err_path).unwrap());
    if let Some(max) = max_bytes {
        // SAFETY: setrlimit is async-signal-safe and touches only this struct.
        unsafe {
            cmd.pre_exec(move || {
                let limit = libc::rlimit { rlim_cur: max as libc::rlim_t, rlim_max: max as libc::rlim_t };
                if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let status = cmd.status().unwrap();
    // time's file ends with the figure, after a line about a failed exit.
    let rss = fs::read_to_string(&rss_path).unwrap();
    let kib: i64 =
        rss.lines().last().and_then(|l| l.trim().parse().ok()).unwrap_or_else(|| panic!("time said {rss:?}"));
    // time exits as the command did, 128+N when signal N ended it.
    let code = status.code().filter(|c| *c < 128).unwrap_or(-1);
    (code, fs::read_to_string(&err_path).unwrap(), kib / 1024)
}

#[test]
fn a_dockerfile_of_600000_labels_builds_in_memory_proportional_to_its_size() {
    let k = Kiln::empty();
    let mut text = String::from("FROM scratch\n");
    for i in 0..600_000 {
        text += &format!("LABEL k{i}=v{i}\n");
    }
    k.write("Dockerfile", &text);
    let ctx = k.ctx();
    let (code, stderr, peak_mb) = run_measured(&k, &["build", "-t", "labels:v1", ctx.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    // The file is 13 MB. Every node, a copy of every typed instruction, of the
    // config, of its JSON used to be held at once: 840 MB. Now it is about 320.
    assert!(peak_mb < 450, "kiln build used {peak_mb} MB for a {} MB Dockerfile", text.len() >> 20);
    let labels = &k.inspect("labels:v1")["Config"]["config"]["Labels"];
    assert_eq!((labels["k0"].as_str(), labels["k599999"].as_str()), (Some("v0"), Some("v599999")));
}

#[test]
fn variable_expansion_that_squares_or_doubles_a_value_is_refused_in_little_memory() {
    let k = Kiln::empty();
    // Each line squares a's length (the replacement is expanded for every
    // character), or doubles it: 10^32 or 10·2^40 bytes if nothing stops it.
    let squares = format!("FROM scratch\nARG a=0123456789\n{}LABEL a=$a\n", "ARG a=${a//?/$a}\n".repeat(5));
    let doubles = format!("FROM scratch\nENV a=0123456789\n{}LABEL a=$a\n", "ENV a=$a$a\n".repeat(40));
    for (dockerfile, at) in [(squares, "Dockerfile:5:7: "), (doubles, "Dockerfile:19:7: ")] {
        k.write("Dockerfile", &dockerfile);
        let ctx = k.ctx();
        let args = ["build", "-t", "expand:v1", ctx.to_str().unwrap()];
        let (code, stderr, peak_mb) = run_measured_within(&k, &args, Some(2 << 30));
        assert_eq!(code, 1, "expected kiln to refuse the build:\n{stderr}");
        assert!(stderr.contains(&format!("{at}variable expansion grows a value past")), "{stderr}");
        // A handful of 1 MiB values at most, beside kiln itself.
        assert!(peak_mb < 100, "kiln used {peak_mb} MB to refuse {} bytes of Dockerfile", dockerfile.len());
    }
    assert!(!k.image_names().contains(&"expand:v1".to_string()), "a refused build tagged its image");
}

#[test]
fn a_failing_run_of_10_mb_is_shown_shortened_not_three_times_whole() {
    let k = Kiln::with_busybox();
    // Unique all along, so any long stretch of it found in stderr is a copy.
    let filler: String = (0..1_000_000).map(|i| format!("{i:07} ")).collect::<String>();
    // Lines of 1000 words, joined again by the continuations: each within
    // BuildKit's line length limit, the command as long as ever.
    let lines: Vec<&str> = filler.as_bytes().chunks(8_000).map(|c| std::str::from_utf8(c).unwrap()).collect();
    k.write("Dockerfile", &format!("FROM busybox\nRUN false && : {}\n", lines.join("\\\n")));
    let out = k.build(&["-t", "limits:v1"]);
    // Checked first, and never printed whole: it used to be 30 MB.
    let head: String = out.stderr.chars().take(2_000).collect();
    assert!(out.stderr.len() < 100_000, "stderr is {} bytes; it starts:\n{head}", out.stderr.len());
    assert_eq!(out.code, 1, "{}", out.stderr);
    for expect in ["Dockerfile:2:", "RUN false && : 0000000 ", "characters)", "did not complete successfully"] {
        assert!(out.stderr.contains(expect), "expected {expect:?} in:\n{}", out.stderr);
    }
    // Past the first few hundred characters, the command is shown nowhere.
    assert!(!out.stderr.contains(&filler[10_000..10_100]), "the command is shown whole:\n{}", out.stderr);
    k.assert_clean();
}

#[test]
fn the_user_id_that_means_unchanged_is_refused_not_run_as_root() {
    // (uid_t)-1 tells setresuid to leave the id alone: the step would run as root.
    for k in Kiln::each_mode() {
        for user in ["4294967295", "0:4294967295"] {
            k.write("Dockerfile", &format!("FROM busybox\nUSER {user}\nRUN id -u > /uid\n"));
            let out = k.build(&["-t", "minus-one:v1"]).failed();
            assert!(
                out.stderr.contains("4294967295") && out.stderr.contains("out of range"),
                "{:?}: {}",
                k.mode,
                out.stderr
            );
            let out = k.cmd(&["run", "-u", user, "busybox", "id", "-u"]);
            assert_eq!(out.code, 125, "{:?} {user}: {}{}", k.mode, out.stdout, out.stderr);
        }
        assert!(!k.image_names().contains(&"minus-one:v1".to_string()));
    }
}

#[test]
fn an_image_whose_passwd_is_a_fifo_is_an_error_not_a_hang() {
    // Reading a FIFO with no writer would block the step forever; runc errors.
    let k = Kiln::with_busybox();
    refused(
        &k,
        "FROM busybox\nRUN rm /etc/passwd && mkfifo /etc/passwd\nUSER nobody\nWORKDIR /w\n",
        &[],
        &["cannot read the image's /etc/passwd: it is not a regular file"],
    );
}

#[test]
fn a_run_printing_a_50_mb_line_without_newline_keeps_kilns_memory_bounded() {
    let k = Kiln::with_busybox();
    k.write("Dockerfile", "FROM busybox\nRUN head -c 50000000 /dev/zero | tr '\\0' a\n");
    let ctx = k.ctx();
    let args = ["build", "-t", "long-line:v1", ctx.to_str().unwrap()];
    let (code, stderr, peak_mb) = run_measured_within(&k, &args, Some(2 << 30));
    let head: String = stderr.chars().take(2_000).collect();
    assert_eq!(code, 0, "{head}");
    // The line was held whole, and copied for the log and the error's tail.
    assert!(peak_mb < 100, "kiln used {peak_mb} MB for a step printing a 50 MB line");
}
