//! The build cache: nothing re-runs that need not, and equal builds give equal images.

use super::harness::Kiln;

fn steps(stderr: &str) -> (usize, usize) {
    let cached = stderr.lines().filter(|l| l.ends_with(" CACHED")).count();
    let done = stderr.lines().filter(|l| l.starts_with('#') && l.contains(" DONE ")).count();
    (cached, done)
}

#[test]
fn a_second_build_runs_nothing_and_gives_the_same_image() {
    let k = Kiln::with_busybox();
    k.write("a.txt", "a\n").write("b.txt", "b\n");
    k.write("Dockerfile", "FROM busybox\nCOPY a.txt /a\nRUN cat /a > /a2\nCOPY b.txt /b\nRUN cat /b > /b2\n");
    let first = k.build(&["-t", "c:v1"]).ok();
    assert_eq!(steps(&first.stderr), (0, 5), "{}", first.stderr);
    let id1 = first.stdout.trim().to_owned();

    let second = k.build(&["-t", "c:v2"]).ok();
    assert_eq!(steps(&second.stderr), (5, 0), "{}", second.stderr);
    assert_eq!(second.stdout.trim(), id1);
    assert_eq!(k.inspect("c:v1")["Digest"], k.inspect("c:v2")["Digest"]);

    // Changing b.txt re-runs its COPY and what follows, nothing before.
    k.write("b.txt", "b changed\n");
    let third = k.build(&["-t", "c:v3"]).ok();
    assert_eq!(steps(&third.stderr), (3, 2), "{}", third.stderr);
    assert_eq!(k.cmd(&["run", "c:v3", "cat", "/b2"]).ok().stdout, "b changed\n");

    // --no-cache runs everything again.
    let fourth = k.build(&["-t", "c:v4", "--no-cache"]).ok();
    assert_eq!(steps(&fourth.stderr).0, 0, "{}", fourth.stderr);
}

#[test]
fn labels_do_not_change_the_image_id_from_build_to_build() {
    // oci-spec keeps labels in a HashMap, whose order differs per process:
    // the config must still come out byte for byte the same.
    let k = Kiln::with_busybox();
    let labels: String = (0..12).map(|i| format!("LABEL label{i}=value{i}\n")).collect();
    k.write("Dockerfile", &format!("FROM busybox\n{labels}RUN true\n"));
    let first = k.build(&[]).ok().stdout;
    for _ in 0..3 {
        assert_eq!(k.build(&[]).ok().stdout, first);
    }
}
