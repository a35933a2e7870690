//! `kiln run`: exit codes like docker's, streams, overrides.

use super::harness::Kiln;

#[test]
fn run_returns_the_container_exit_code_and_docker_codes_for_its_own_failures() {
    let k = Kiln::with_busybox();
    let code = |args: &[&str]| k.cmd(args).code;
    assert_eq!(code(&["run", "busybox", "sh", "-c", "exit 0"]), 0);
    assert_eq!(code(&["run", "busybox", "sh", "-c", "exit 42"]), 42);
    assert_eq!(code(&["run", "busybox", "no-such-command"]), 127);
    assert_eq!(code(&["run", "busybox", "/etc/passwd"]), 126);
    assert_eq!(code(&["run", "no-such-image"]), 125);
    assert_eq!(code(&["run", "busybox"]), 125, "no command at all");
    assert_eq!(code(&["run", "-u", "no-such-user", "busybox", "true"]), 125);
    k.assert_clean();
}

#[test]
fn a_user_id_setuid_reads_as_unchanged_is_refused_not_root() {
    // setresuid(4294967295) is setresuid(-1): "leave the uid as it is", root.
    let k = Kiln::with_busybox();
    for user in ["4294967295", "0:4294967295", "99999999999"] {
        let out = k.cmd(&["run", "-u", user, "busybox", "id", "-u"]);
        assert_eq!(out.code, 125, "-u {user}: {}{}", out.stdout, out.stderr);
        assert!(out.stderr.contains("out of range"), "-u {user}: {}", out.stderr);
    }
    k.assert_clean();
}

#[test]
fn run_streams_output_and_applies_overrides() {
    let k = Kiln::with_busybox();
    let out = k
        .cmd(&[
            "run",
            "--rm",
            "-e",
            "X=1",
            "-w",
            "/tmp",
            "-u",
            "nobody",
            "busybox",
            "sh",
            "-c",
            "echo $X $(pwd) $(id -u); echo err >&2",
        ])
        .ok();
    assert_eq!(out.stdout, "1 /tmp 65534\n");
    assert_eq!(out.stderr, "err\n");
    let out = k.cmd(&["run", "--entrypoint", "echo", "busybox", "via", "entrypoint"]).ok();
    assert_eq!(out.stdout, "via entrypoint\n");
    // The container's changes are thrown away with it.
    k.cmd(&["run", "busybox", "touch", "/made-by-run"]).ok();
    assert_eq!(k.cmd(&["run", "busybox", "ls", "/made-by-run"]).code, 1);
}
