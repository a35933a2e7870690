//! `--secret` and `--ssh`: a secret's value reaches the steps that mount it
//! and nothing else — no layer, config, cache record, store file, progress
//! line or metadata file — and its mount points leave no trace; what the
//! Dockerfile asks for that the caller did not give (a required secret or
//! agent, an entitlement) fails before any step runs.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::harness::{Kiln, Mode, Run};

/// A fresh random token: what a leak would show.
fn token() -> String {
    let mut bytes = [0u8; 24];
    fs::File::open("/dev/urandom").unwrap().read_exact(&mut bytes).unwrap();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256(text: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

/// `kiln build` of the context with `envs` in kiln's environment.
fn build_with_env(k: &Kiln, envs: &[(&str, &str)], args: &[&str]) -> Run {
    let mut cmd = k.command();
    cmd.arg("build").args(args).arg(k.ctx());
    for (name, value) in envs {
        cmd.env(name, value);
    }
    let out = cmd.output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Every file under `dir` whose bytes — as stored, gunzipped or
/// zstd-decompressed (a layer is a compressed tar, whose decompressed bytes
/// hold each entry's content) — contain `needle`.
fn files_holding(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let needle = needle.as_bytes();
    let holds = |bytes: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    let mut found = Vec::new();
    for entry in walkdir::WalkDir::new(dir).follow_links(false) {
        let entry = entry.unwrap();
        if !entry.file_type().is_file() {
            continue;
        }
        let raw = fs::read(entry.path()).unwrap();
        let mut gunzipped = Vec::new();
        let _ = flate2::read::MultiGzDecoder::new(&raw[..]).read_to_end(&mut gunzipped);
        let unzstd = zstd::decode_all(&raw[..]).unwrap_or_default();
        if holds(&raw) || holds(&gunzipped) || holds(&unzstd) {
            found.push(entry.path().to_owned());
        }
    }
    found
}

/// Every layer entry of `image` that is not in busybox's layer.
fn new_entries(k: &Kiln, image: &str) -> Vec<String> {
    k.layers(image).into_iter().skip(1).flatten().collect()
}

fn secret_file(k: &Kiln, value: &str) -> PathBuf {
    let path = k.dir.path().join("token.txt");
    fs::write(&path, value).unwrap();
    k.give(&path);
    path
}

const LEAKY: &str = r#"FROM busybox
RUN --mount=type=secret,id=tok cat /run/secrets/tok; echo; echo "echoed $(cat /run/secrets/tok)"; echo "file $(sha256sum < /run/secrets/tok)" && touch /one
RUN --mount=type=secret,id=envtok,env=TOKEN echo "in env $TOKEN"; env; printf %s "$TOKEN" | sha256sum | sed 's/^/env /' && touch /two
RUN --mount=type=secret,id=tok,target=/etc/app/tok,mode=0440,uid=1,gid=2 stat -c 'mode %a %u %g' /etc/app/tok && touch /three
"#;

#[test]
fn a_secret_reaches_its_step_and_nothing_else() {
    for k in Kiln::each_mode() {
        let (file_token, env_token) = (token(), token());
        let src = secret_file(&k, &file_token);
        k.write("Dockerfile", LEAKY);
        let metadata = k.dir.path().join("metadata.json");
        let secret = format!("id=tok,src={}", src.display());
        let meta = metadata.to_str().unwrap();
        let args =
            ["-t", "leaky", "--secret", &secret, "--secret", "id=envtok,env=KILN_TEST_TOKEN", "--metadata-file", meta];
        let mode = k.mode;
        let out = build_with_env(&k, &[("KILN_TEST_TOKEN", &env_token)], &args).ok();

        // The steps saw the values (their hashes say so), as files and in the environment.
        let stderr = &out.stderr;
        assert!(stderr.contains(&format!("file {}", sha256(&file_token))), "{mode:?}: {stderr}");
        assert!(stderr.contains(&format!("env {}", sha256(&env_token))), "{mode:?}: {stderr}");
        assert!(stderr.contains("mode 440 1 2"), "{mode:?}: {stderr}");
        // What they printed of them is masked.
        assert!(stderr.contains("echoed ****") && stderr.contains("in env ****"), "{mode:?}: {stderr}");
        assert!(stderr.contains("TOKEN=****"), "{mode:?}: {stderr}");
        for value in [&file_token, &env_token] {
            assert!(!out.stdout.contains(value.as_str()) && !stderr.contains(value.as_str()), "{mode:?}: {stderr}");
            let leaks = files_holding(&k.root(), value);
            assert!(leaks.is_empty(), "{mode:?}: the store holds a secret in {leaks:?}");
            assert!(files_holding(&metadata, value).is_empty(), "{mode:?}: the metadata file holds a secret");
        }
        let config = serde_json::to_string(&k.inspect("leaky")).unwrap();
        assert!(!config.contains(&file_token) && !config.contains(&env_token), "{mode:?}: {config}");
        // The mount points kiln made are not in the layers: only what the steps wrote.
        assert_eq!(new_entries(&k, "leaky"), ["one", "two", "three"], "{mode:?}");

        // Another value is the same step: every RUN comes from the cache, and
        // the new values are nowhere either.
        let (file_token2, env_token2) = (token(), token());
        fs::write(&src, &file_token2).unwrap();
        let again = build_with_env(&k, &[("KILN_TEST_TOKEN", &env_token2)], &args).ok();
        let cached = again.stderr.lines().filter(|l| l.ends_with(" CACHED")).count();
        assert_eq!(cached, 4, "{mode:?}: a new secret value invalidated the cache:\n{}", again.stderr);
        for value in [&file_token2, &env_token2] {
            assert!(files_holding(&k.root(), value).is_empty(), "{mode:?}: the store holds the second secret");
        }
        k.assert_clean();
    }
}

/// The scan's control: a value a step writes into its layer (the user's own
/// doing) is found in the layer's compressed blob.
#[test]
fn the_scan_finds_a_secret_a_step_copies_into_its_layer() {
    let k = Kiln::with_busybox();
    let value = token();
    let src = secret_file(&k, &value);
    k.write("Dockerfile", "FROM busybox\nRUN --mount=type=secret,id=tok cp /run/secrets/tok /copied\n");
    k.build(&["-t", "copied", "--secret", &format!("id=tok,src={}", src.display())]).ok();
    let found = files_holding(&k.root(), &value);
    assert!(found.iter().any(|f| f.to_string_lossy().contains("/oci/blobs/")), "{found:?}");
}

#[test]
fn a_failing_step_shows_its_output_with_the_secret_masked() {
    for k in Kiln::each_mode() {
        let value = token();
        let src = secret_file(&k, &value);
        k.write(
            "Dockerfile",
            "FROM busybox\nRUN --mount=type=secret,id=tok echo \"leaked $(cat /run/secrets/tok)\"; exit 3\n",
        );
        let out = k.build(&["--secret", &format!("id=tok,src={}", src.display())]).failed();
        assert!(
            out.stderr.contains("exit code: 3") && out.stderr.contains("| leaked ****"),
            "{:?}: {}",
            k.mode,
            out.stderr
        );
        assert!(!out.stderr.contains(&value), "{:?}: {}", k.mode, out.stderr);
        assert!(files_holding(&k.root(), &value).is_empty(), "{:?}", k.mode);
        k.assert_clean();
    }
}

/// The tmpfs holding the values is never swapped out where the kernel
/// allows it: real root (Linux 6.4+); a user namespace may not ask, and
/// gets a tmpfs without `noswap` rather than a failed step.
#[test]
fn the_secrets_tmpfs_is_not_swapped_where_the_kernel_allows() {
    for k in Kiln::each_mode() {
        let src = secret_file(&k, &token());
        k.write(
            "Dockerfile",
            "FROM busybox\nRUN --mount=type=secret,id=tok grep ' /run/secrets/tok ' /proc/self/mountinfo\n\
             RUN echo AFTER''-THE-SECRET\n",
        );
        let out = k.build(&["--secret", &format!("id=tok,src={}", src.display())]).ok();
        let mountinfo =
            out.stderr.lines().find(|l| l.contains("/run/secrets/tok") && l.contains("tmpfs")).unwrap_or("");
        let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        let numbers: Vec<u32> = kernel.split(['.', '-']).take(2).map(|n| n.trim().parse().unwrap_or(0)).collect();
        let knows_noswap = numbers.as_slice() >= [6, 4].as_slice();
        let want = knows_noswap && matches!(k.mode, Mode::Root);
        assert_eq!(mountinfo.contains("noswap"), want, "{:?}: {}", k.mode, out.stderr);
        // kiln is non-dumpable from the secret on; the next step's sandbox
        // (its id maps, its network helper) is set up as before.
        assert!(out.stderr.contains("AFTER-THE-SECRET"), "{:?}: {}", k.mode, out.stderr);
    }
}

#[test]
fn an_optional_secret_not_given_is_not_mounted() {
    for k in Kiln::each_mode() {
        k.write("Dockerfile", "FROM busybox\nRUN --mount=type=secret,id=absent,env=ABSENT test ! -e /run/secrets/absent && test -z \"$ABSENT\" && echo NOT-MOUNTED\n");
        let out = k.build(&["-t", "opt"]).ok();
        assert!(out.stderr.contains("NOT-MOUNTED"), "{:?}: {}", k.mode, out.stderr);
    }
}

/// The build failed with `want` before any step ran (no step's command
/// shows in its progress).
#[track_caller]
fn refused_before_anything_ran(out: Run, want: &[&str]) {
    let out = out.failed();
    for w in want {
        assert!(out.stderr.contains(w), "wanted {w:?} in:\n{}", out.stderr);
    }
    assert!(!out.stderr.contains("STEP-RAN"), "a step ran before the check:\n{}", out.stderr);
}

#[test]
fn what_the_caller_did_not_give_fails_the_build_before_any_step() {
    let k = Kiln::with_busybox();
    let first = "FROM busybox\nRUN echo STEP-RAN > /ran\n";
    for (run, args, want) in [
        (
            "RUN --mount=type=secret,id=tok,required cat /run/secrets/tok",
            &[][..],
            &["Dockerfile:3", "--secret id=tok"][..],
        ),
        (
            "RUN --mount=type=secret,id=tok,required=true cat /run/secrets/tok",
            &["--secret", "id=other,env=PATH"],
            &["Dockerfile:3", "no secret \"tok\" was given"],
        ),
        ("RUN --mount=type=ssh,required ssh-add -l", &[], &["Dockerfile:3", "--ssh default"]),
        ("RUN --mount=type=ssh,id=git,required=true true", &[], &["Dockerfile:3", "--ssh git"]),
        ("RUN --network=host true", &[], &["Dockerfile:3", "--allow network.host"]),
        ("RUN --security=insecure true", &["--allow", "network.host"], &["Dockerfile:3", "--allow security.insecure"]),
    ] {
        k.write("Dockerfile", &format!("{first}{run}\n"));
        refused_before_anything_ran(k.build(args), want);
    }
}

#[test]
fn a_missing_secret_fails_before_a_base_image_is_pulled() {
    let k = Kiln::with_busybox();
    // Nothing listens on port 1: a pull would fail with a connection error.
    k.write("Dockerfile", "FROM localhost:1/absent:latest\nRUN --mount=type=secret,id=tok,required true\n");
    let out = k.build(&[]).failed();
    assert!(out.stderr.contains("Dockerfile:2: RUN --mount=type=secret,id=tok,required"), "{}", out.stderr);
    assert!(!out.stderr.contains("localhost:1"), "a pull was tried first:\n{}", out.stderr);
    // With the secret, the pull is what fails: the check stood in for nothing else.
    let out = k.build(&["--secret", "id=tok,env=PATH"]).failed();
    assert!(out.stderr.contains("localhost:1"), "{}", out.stderr);
}

#[test]
fn an_entitlement_given_lets_the_step_run() {
    for k in Kiln::each_mode() {
        k.write("Dockerfile", "FROM busybox\nRUN --network=host echo HOST-NET\n");
        let out = k.build(&["--allow", "network.host,security.insecure"]).ok();
        assert!(out.stderr.contains("HOST-NET"), "{:?}: {}", k.mode, out.stderr);
    }
}

#[test]
fn bad_flags_are_errors_naming_the_flag() {
    let k = Kiln::with_busybox();
    k.write("Dockerfile", "FROM busybox\nRUN echo STEP-RAN\n");
    let file = secret_file(&k, "x");
    let dup = format!("id=a,src={}", file.display());
    let key = k.dir.path().join("id_ed25519");
    fs::write(&key, "not a key").unwrap();
    let key_flag = format!("default={}", key.display());
    let dir_flag = format!("default={}", k.dir.path().display());
    for (args, want) in [
        (vec!["--secret", "id=a,src=/no/such/secret"], "--secret id=a: cannot read /no/such/secret"),
        (vec!["--secret", "src=/etc/hostname"], "invalid --secret \"src=/etc/hostname\": the id is missing"),
        (vec!["--secret", "id=a,type=ssh"], "unsupported type \"ssh\""),
        (vec!["--secret", &dup, "--secret", &dup], "--secret id=a is given twice"),
        (vec!["--ssh", &key_flag], "key files are not supported"),
        (vec!["--ssh", &dir_flag], "is not a socket"),
        (vec!["--ssh", "default=/no/such.sock"], "--ssh default: cannot use /no/such.sock"),
        (vec!["--allow", "network.hots"], "unknown --allow \"network.hots\""),
    ] {
        refused_before_anything_ran(k.build(&args), &[want]);
    }
    let mut cmd = k.command();
    let out = cmd.args(["build", "--ssh", "default"]).arg(k.ctx()).env_remove("SSH_AUTH_SOCK").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("SSH_AUTH_SOCK is not set"), "{out:?}");
}

/// An ssh-agent holding one new key, run as the user kiln runs as (the
/// agent refuses other users' connections).
struct Agent {
    socket: PathBuf,
    pid: String,
}

impl Agent {
    fn start(k: &Kiln) -> Agent {
        let dir = k.dir.path().join("agent");
        fs::create_dir_all(&dir).unwrap();
        k.give(&dir);
        let socket = dir.join("agent.sock");
        let as_user = |args: &[&str]| {
            let mut c = match k.mode.user() {
                None => Command::new(args[0]),
                Some(user) => {
                    let mut c = Command::new("runuser");
                    c.args(["-u", user, "--", args[0]]);
                    c
                }
            };
            c.args(&args[1..]).env("SSH_AUTH_SOCK", &socket);
            let out = c.output().unwrap();
            assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let started = as_user(&["ssh-agent", "-s", "-a", socket.to_str().unwrap()]);
        let pid = started.split("SSH_AGENT_PID=").nth(1).unwrap().split(';').next().unwrap().to_owned();
        let key = dir.join("key");
        as_user(&[
            "ssh-keygen",
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "kiln-forwarded-key",
            "-f",
            key.to_str().unwrap(),
        ]);
        as_user(&["ssh-add", "-q", key.to_str().unwrap()]);
        Agent { socket, pid }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(&self.pid).status();
    }
}

/// The host's ssh-add and the libraries it loads, copied into the context
/// as `ssh/`, to run in busybox through the host's dynamic loader.
fn ssh_add_in_context(k: &Kiln) -> String {
    let dir = k.ctx().join("ssh");
    fs::create_dir_all(&dir).unwrap();
    let exe =
        String::from_utf8(Command::new("sh").args(["-c", "command -v ssh-add"]).output().unwrap().stdout).unwrap();
    let exe = exe.trim();
    fs::copy(exe, dir.join("ssh-add")).unwrap();
    let ldd = String::from_utf8(Command::new("ldd").arg(exe).output().unwrap().stdout).unwrap();
    let mut loader = String::new();
    for lib in ldd.split_whitespace().filter(|w| w.starts_with('/')) {
        let name = Path::new(lib).file_name().unwrap().to_str().unwrap().to_owned();
        fs::copy(lib, dir.join(&name)).unwrap();
        if name.starts_with("ld-linux") {
            loader = name;
        }
    }
    assert!(!loader.is_empty(), "no dynamic loader in: {ldd}");
    k.give(&k.ctx());
    format!("/ssh/{loader} --library-path /ssh /ssh/ssh-add")
}

#[test]
fn an_ssh_agent_is_forwarded_to_the_steps_that_mount_it() {
    for k in Kiln::each_mode() {
        let agent = Agent::start(&k);
        let ssh_add = ssh_add_in_context(&k);
        k.write(
            "Dockerfile",
            &format!(
                "FROM busybox\nCOPY ssh /ssh\n\
                 RUN --mount=type=ssh {ssh_add} -l && echo \"sock $SSH_AUTH_SOCK\"\n\
                 USER nobody\n\
                 RUN --mount=type=ssh,id=git,target=/tmp/agent,uid=65534,mode=0600 SSH_AUTH_SOCK=/tmp/agent {ssh_add} -l | sed 's/^/as nobody /'\n\
                 RUN test -z \"$SSH_AUTH_SOCK\" && ! {ssh_add} -l && echo NO-AGENT-HERE\n"
            ),
        );
        let default = format!("default={}", agent.socket.display());
        let git = format!("git={}", agent.socket.display());
        let out = k.build(&["-t", "ssh", "--ssh", &default, "--ssh", &git]).ok();
        let mode = k.mode;
        assert!(out.stderr.contains("kiln-forwarded-key (ED25519)"), "{mode:?}: {}", out.stderr);
        assert!(out.stderr.contains("sock /run/buildkit/ssh_agent.0"), "{mode:?}: {}", out.stderr);
        assert!(out.stderr.contains("as nobody 256 SHA256:"), "{mode:?}: {}", out.stderr);
        assert!(out.stderr.contains("NO-AGENT-HERE"), "{mode:?}: {}", out.stderr);
        // No socket or mount point of the agents is in a layer.
        let entries = new_entries(&k, "ssh");
        assert!(!entries.iter().any(|e| e.starts_with("run") || e.starts_with("tmp/agent")), "{mode:?}: {entries:?}");
        k.assert_clean();
    }
}

/// A step may use the agent's keys, never change the agent: `ssh-add -D`
/// (remove every key) is refused without reaching it, as BuildKit lends the
/// agent read-only, and the key is still there during and after the build.
#[test]
fn a_step_cannot_remove_the_agents_keys() {
    for k in Kiln::each_mode() {
        let agent = Agent::start(&k);
        let ssh_add = ssh_add_in_context(&k);
        k.write(
            "Dockerfile",
            &format!(
                "FROM busybox\nCOPY ssh /ssh\n\
                 RUN --mount=type=ssh if {ssh_add} -D; then echo REMO''VED; else echo REFU''SED; fi; {ssh_add} -l\n"
            ),
        );
        let default = format!("default={}", agent.socket.display());
        let out = k.build(&["--ssh", &default]).ok();
        let mode = k.mode;
        assert!(out.stderr.contains("REFUSED") && !out.stderr.contains("REMOVED"), "{mode:?}: {}", out.stderr);
        assert!(out.stderr.contains("kiln-forwarded-key (ED25519)"), "{mode:?}: {}", out.stderr);
        let listed = Command::new("ssh-add").arg("-l").env("SSH_AUTH_SOCK", &agent.socket).output().unwrap();
        let listed = String::from_utf8_lossy(&listed.stdout);
        assert!(listed.contains("kiln-forwarded-key"), "{mode:?}: the agent lost its key: {listed}");
    }
}

#[test]
fn an_unreadable_secret_file_is_an_error_naming_the_flag() {
    // Root reads every file: only the rootless user meets one it cannot.
    let k = Kiln::in_mode(Mode::Rootless);
    k.write("Dockerfile", "FROM busybox\nRUN echo STEP-RAN\n");
    let file = k.dir.path().join("root-only");
    fs::write(&file, "x").unwrap();
    std::os::unix::fs::chown(&file, Some(0), Some(0)).unwrap();
    fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let flag = format!("id=a,src={}", file.display());
    let want = format!("--secret id=a: cannot read {}", file.display());
    refused_before_anything_ran(k.build(&["--secret", &flag]), &[&want, "Permission denied"]);
}
