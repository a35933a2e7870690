//! Parallel and lazy (issue 10): independent stages run at the same time,
//! stages the target does not need never run, and `--jobs` is checked.
//! Overlap is read from times the steps record themselves (the host's
//! /proc/uptime, which a pid namespace does not change), never asserted as
//! a speed.

use std::fs;

use super::harness::Kiln;

/// Four stages that each record when they started and ended around a sleep,
/// and a last stage that copies what they recorded. Each stage differs (its
/// name), so they are four vertices, not one.
fn four_stages(k: &Kiln) {
    let mut text = String::new();
    for s in ["a", "b", "c", "d"] {
        text += &format!(
            "FROM busybox AS {s}\nRUN cut -d' ' -f1 /proc/uptime > /start; echo {s} > /name; sleep 2; \
             cut -d' ' -f1 /proc/uptime > /end\n"
        );
    }
    text += "FROM busybox\n";
    for s in ["a", "b", "c", "d"] {
        text += &format!("COPY --from={s} /start /{s}.start\nCOPY --from={s} /end /{s}.end\n");
    }
    k.write("Dockerfile", &text);
}

/// Each stage's (start, end), in seconds of uptime, from a build's local output.
fn spans(k: &Kiln, args: &[&str]) -> Vec<(f64, f64)> {
    let out = k.dir.path().join(format!("out-{}", args.join("-")));
    let dest = format!("type=local,dest={}", out.display());
    let mut all = vec!["--no-cache", "-o", &dest];
    all.extend_from_slice(args);
    k.build(&all).ok();
    let read = |name: String| fs::read_to_string(out.join(name)).unwrap().trim().parse::<f64>().unwrap();
    ["a", "b", "c", "d"].iter().map(|s| (read(format!("{s}.start")), read(format!("{s}.end")))).collect()
}

/// How many pairs of stages ran at the same time for a while.
fn overlapping_pairs(spans: &[(f64, f64)]) -> usize {
    let mut n = 0;
    for (i, a) in spans.iter().enumerate() {
        for b in &spans[i + 1..] {
            if a.0 < b.1 && b.0 < a.1 {
                n += 1;
            }
        }
    }
    n
}

#[test]
fn independent_stages_run_at_the_same_time_up_to_jobs() {
    let k = Kiln::with_busybox();
    four_stages(&k);
    // Four jobs: each stage starts before any other ends.
    let spans4 = spans(&k, &["--jobs", "4"]);
    let last_start = spans4.iter().map(|s| s.0).fold(f64::MIN, f64::max);
    let first_end = spans4.iter().map(|s| s.1).fold(f64::MAX, f64::min);
    assert!(last_start < first_end, "with --jobs 4 not all four stages overlapped: {spans4:?}");
    // One job: none overlaps another.
    let spans1 = spans(&k, &["--jobs", "1"]);
    assert_eq!(overlapping_pairs(&spans1), 0, "with --jobs 1 stages overlapped: {spans1:?}");
    // The default is the number of CPUs: with two or more, stages overlap.
    if std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2 {
        let spans = spans(&k, &[]);
        assert!(overlapping_pairs(&spans) >= 1, "by default no stages overlapped: {spans:?}");
    }
}

#[test]
fn jobs_must_be_a_number_of_one_or_more() {
    let k = Kiln::with_busybox();
    k.write("Dockerfile", "FROM busybox\nRUN echo should-not-run\n");
    for bad in ["0", "2.5", "many"] {
        let out = k.build(&["--jobs", bad]).failed();
        assert!(out.stderr.contains("--jobs"), "{bad}: {}", out.stderr);
        assert!(out.stderr.contains("1 or more"), "{bad}: {}", out.stderr);
        assert!(!out.stderr.contains("should-not-run"), "{bad}: {}", out.stderr);
    }
}

#[test]
fn a_stage_the_target_does_not_need_never_runs_nor_shows() {
    let k = Kiln::with_busybox();
    k.write(
        "Dockerfile",
        "FROM busybox AS unused\nRUN echo unused-stage-ran; exit 7\n\
         FROM busybox AS used\nRUN echo used > /u\n\
         FROM busybox\nCOPY --from=used /u /u\n",
    );
    for args in [&[][..], &["--target", "used"]] {
        let out = k.build(args).ok();
        assert!(!out.stderr.contains("unused"), "{args:?}: {}", out.stderr);
    }
    // The stage would fail: the build above succeeded because it did not run.
    let out = k.build(&["--target", "unused"]).failed();
    assert!(out.stderr.contains("exit code: 7"), "{}", out.stderr);
}

/// A COPY that is writing its layer when a sibling stage fails stops there:
/// the build fails with the sibling's error, and nothing of the COPY is
/// left, half-written or cached. The sibling fails only once the test has
/// seen the COPY's first bytes, by a loopback server it polls for.
#[test]
fn a_failing_stage_stops_a_copy_that_is_writing_its_layer() {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::process::Stdio;

    let k = Kiln::with_busybox();
    // 384 MiB of sparse zeros: seconds to write for a test build of kiln,
    // where the sibling fails within a fraction of one.
    let big = fs::File::create(k.ctx().join("big.img")).unwrap();
    big.set_len(384 << 20).unwrap();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    k.write(
        "Dockerfile",
        &format!(
            "FROM busybox AS big\nCOPY big.img /big.img\n\
             FROM busybox AS failing\n\
             RUN --network=host until wget -q -O /dev/null http://127.0.0.1:{port}/; do sleep 0.05; done; exit 5\n\
             FROM busybox\nCOPY --from=big /big.img /a\nCOPY --from=failing /etc/hostname /b\n"
        ),
    );
    k.give(&k.ctx());
    let serve = move || {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        std::thread::spawn(move || {
            for mut conn in listener.incoming().flatten() {
                let _ = conn.read(&mut [0; 1024]);
                let _ = conn.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n");
            }
        });
    };
    let args = ["build", "--progress", "rawjson", "--allow", "network.host", "--jobs", "2"];
    let mut child = k.command().args(args).arg(k.ctx()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let mut events = String::new();
    let mut serving = false;
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        if !serving && line.contains("\"event\":\"bytes\"") && line.contains("COPY big.img") {
            serve();
            serving = true;
        }
        events.push_str(&line);
        events.push('\n');
    }
    let status = child.wait().unwrap();
    assert!(serving, "the COPY never reported its bytes:\n{events}");
    assert_eq!(status.code(), Some(1), "{events}");
    assert!(events.contains("exit code: 5"), "{events}");
    assert!(!events.lines().any(|l| l.contains("\"event\":\"done\"") && l.contains("COPY big.img")), "{events}");
    k.assert_clean();

    // No layer of the COPY was stored, whole or in part.
    for blob in fs::read_dir(k.root().join("oci/blobs/sha256")).unwrap() {
        let blob = blob.unwrap();
        assert!(blob.metadata().unwrap().len() < 64 << 20, "a layer of the stopped COPY: {:?}", blob.path());
    }
    k.assert_clean();
}
