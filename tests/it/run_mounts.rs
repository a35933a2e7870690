//! RUN --mount=type=bind|cache|tmpfs: what the step sees, what it keeps
//! (nothing but its own changes), and `kiln prune --cache-mounts`.

use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::harness::{Kiln, Mode};

/// The host folder of the cache mount `id`.
fn cache_dir(k: &Kiln, id: &str) -> PathBuf {
    let hex: String = Sha256::digest(id.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    k.root().join("cache-mounts").join(hex)
}

/// The top layer's entries of `image`.
fn top_layer(k: &Kiln, image: &str) -> Vec<String> {
    k.layers(image).pop().unwrap()
}

#[test]
fn a_context_bind_is_read_only_sees_what_dockerignore_lets_through_and_leaves_no_trace() {
    for k in Kiln::each_mode() {
        k.write("sub/a", "hello\n").write("ignored", "no\n").write(".dockerignore", "ignored\n");
        k.write(
            "Dockerfile",
            "FROM busybox\n\
             RUN --mount=target=/c cat /c/sub/a && test ! -e /c/ignored && ! touch /c/new 2>/dev/null\n\
             RUN --mount=target=/opt/in/f,source=sub/a cat /opt/in/f > /copied\n\
             RUN --mount=target=/w,rw echo changed > /w/sub/a && echo new > /w/new\n\
             RUN --mount=type=tmpfs,target=/root/.cache true\n",
        );
        let out = k.build(&["-t", "bind:v1"]).ok();
        assert!(out.stderr.contains("hello"), "{:?}: {}", k.mode, out.stderr);
        let layers = k.layers("bind:v1");
        // Mount points kiln had to make (/c, /opt/in/f, /w, /root/.cache) are in no layer.
        let n = layers.len();
        // Nor is /root, which the image has and the last step left as it was.
        assert_eq!(layers[n - 4..], [vec![], vec!["copied".to_owned()], vec![], vec![]], "{:?}", k.mode);
        // The rw bind's writes went to a throw-away copy.
        assert_eq!(std::fs::read_to_string(k.ctx().join("sub/a")).unwrap(), "hello\n");
        assert!(!k.ctx().join("new").exists());
        k.assert_clean();
    }
}

#[test]
fn a_change_to_a_bound_context_file_reruns_the_step() {
    let k = Kiln::with_busybox();
    k.write("a", "1\n").write("other", "x\n");
    k.write("Dockerfile", "FROM busybox\nRUN --mount=target=/c,source=a cat /c > /seen\n");
    k.build(&["-t", "rerun:v1"]).ok();
    assert_eq!(k.file_in_top_layer("rerun:v1", "seen").as_deref(), Some("1\n"));
    k.write("other", "changed, but not mounted\n");
    let out = k.build(&["-t", "rerun:v1"]).ok();
    assert!(out.stderr.contains("CACHED"), "{}", out.stderr);
    k.write("a", "2\n");
    k.build(&["-t", "rerun:v1"]).ok();
    assert_eq!(k.file_in_top_layer("rerun:v1", "seen").as_deref(), Some("2\n"));
}

#[test]
fn binds_from_a_stage_and_an_image_are_read_only_or_throw_their_writes_away() {
    for k in Kiln::each_mode() {
        k.write(
            "Dockerfile",
            "FROM busybox AS st\nRUN mkdir -p /opt/s && echo stage > /opt/s/f && ln -s /opt/s /link\n\
             FROM busybox\n\
             RUN --mount=from=st,source=/link,target=/s cat /s/f > /from-stage && ! touch /s/x 2>/dev/null\n\
             RUN --mount=from=st,source=opt/s,target=/s,rw echo overwritten > /s/f && cat /s/f\n\
             RUN --mount=from=st,source=/opt/s,target=/s cat /s/f > /again\n\
             RUN --mount=from=busybox,source=/etc,target=/e test -f /e/passwd && touch /image-ok\n",
        );
        k.build(&["-t", "stage:v1"]).ok();
        let layers = k.layers("stage:v1");
        let n = layers.len();
        assert_eq!(layers[n - 4..], [vec!["from-stage"], vec![], vec!["again"], vec!["image-ok"]], "{:?}", k.mode);
        k.cmd(&["run", "stage:v1", "sh", "-c", "grep -qx stage /again && grep -qx stage /from-stage"]).ok();
        k.assert_clean();
    }
}

#[test]
fn a_missing_bind_source_is_a_clear_error() {
    let k = Kiln::with_busybox();
    k.write("Dockerfile", "FROM busybox AS st\nFROM busybox\nRUN --mount=from=st,source=/nope,target=/s true\n");
    let out = k.build(&[]).failed();
    assert!(out.stderr.contains("target=/s") && out.stderr.contains("/nope"), "{}", out.stderr);
    k.assert_clean();
}

#[test]
fn a_cache_persists_across_builds_never_reaches_a_layer_and_prune_removes_it() {
    for k in Kiln::each_mode() {
        k.write(
            "Dockerfile",
            "FROM busybox\n\
             RUN --mount=type=cache,target=/var/cache/app,mode=0700,uid=7,gid=8 \
                 echo run >> /var/cache/app/log && cat /var/cache/app/log | wc -l > /runs \
                 && stat -c '%a %u %g' /var/cache/app > /owner\n",
        );
        for want in ["1", "2"] {
            k.build(&["-t", "cache:v1", "--no-cache"]).ok();
            k.cmd(&["run", "cache:v1", "sh", "-c", &format!("test $(cat /runs) = {want}")]).ok();
        }
        k.cmd(&["run", "cache:v1", "grep", "-qx", "700 7 8", "/owner"]).ok();
        assert_eq!(top_layer(&k, "cache:v1"), ["owner", "runs"], "{:?}", k.mode);
        assert!(cache_dir(&k, "/var/cache/app").join("log").exists());

        let out = k.cmd(&["prune", "-f", "--cache-mounts"]).ok();
        assert!(
            out.stdout.contains("/var/cache/app") && out.stdout.contains("Total reclaimed space: 8B"),
            "{}",
            out.stdout
        );
        assert!(!cache_dir(&k, "/var/cache/app").exists());
        k.build(&["-t", "cache:v1", "--no-cache"]).ok();
        k.cmd(&["run", "cache:v1", "sh", "-c", "test $(cat /runs) = 1"]).ok();
        k.assert_clean();
    }
}

#[test]
fn a_read_only_cache_seeded_from_a_stage() {
    let k = Kiln::with_busybox();
    k.write(
        "Dockerfile",
        "FROM busybox AS seed\nRUN mkdir -p /s && echo seeded > /s/f\n\
         FROM busybox\n\
         RUN --mount=type=cache,id=seeded,from=seed,source=/s,target=/c,ro cat /c/f > /got && ! touch /c/x 2>/dev/null\n",
    );
    k.build(&["-t", "seed:v1"]).ok();
    assert_eq!(k.file_in_top_layer("seed:v1", "got").as_deref(), Some("seeded\n"));
}

#[test]
fn a_tmpfs_has_its_size_and_is_gone_after_the_step() {
    for k in Kiln::each_mode() {
        k.write(
            "Dockerfile",
            "FROM busybox\n\
             RUN --mount=type=tmpfs,target=/t,size=1m echo x > /t/f \
                 && ! dd if=/dev/zero of=/t/big bs=1024 count=2048 2>/dev/null && touch /done\n",
        );
        k.build(&["-t", "tmpfs:v1"]).ok();
        assert_eq!(top_layer(&k, "tmpfs:v1"), ["done"], "{:?}", k.mode);
        k.assert_clean();
    }
}

/// Wait until `path` exists (a step got that far).
fn wait_for(path: &std::path::Path, child: &mut Child) {
    let start = Instant::now();
    while !path.exists() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the first build ended ({status}) before {} appeared", path.display());
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn spawn_build(k: &Kiln, ctx: &std::path::Path, tag: &str) -> Child {
    let mut cmd = k.command();
    cmd.args(["build", "--no-cache", "-t", tag]).arg(ctx).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.spawn().unwrap()
}

fn finish(child: Child) {
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "build failed:\n{}", String::from_utf8_lossy(&out.stderr));
}

/// Two builds with their own context folders on one store.
fn two_contexts(k: &Kiln, first: &str, second: &str) -> (PathBuf, PathBuf) {
    let (a, b) = (k.dir.path().join("ctx-a"), k.dir.path().join("ctx-b"));
    for (dir, body) in [(&a, first), (&b, second)] {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("Dockerfile"), body).unwrap();
        k.give(dir);
    }
    (a, b)
}

#[test]
fn a_locked_cache_makes_two_builds_take_turns() {
    let k = Kiln::in_mode(Mode::Root);
    // The first step waits (up to 5 s) for the second's mark: if the two ran
    // together, the second's line would come before the first's last.
    let (a, b) = two_contexts(
        &k,
        "FROM busybox\nRUN --mount=type=cache,id=turns,target=/c,sharing=locked \
         echo a-in >> /c/log; i=0; while [ ! -e /c/b ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; \
         echo a-out >> /c/log\n",
        "FROM busybox\nRUN --mount=type=cache,id=turns,target=/c,sharing=locked echo b-in >> /c/log; touch /c/b\n",
    );
    let mut first = spawn_build(&k, &a, "turn-a");
    wait_for(&cache_dir(&k, "turns").join("log"), &mut first);
    let second = spawn_build(&k, &b, "turn-b");
    finish(first);
    finish(second);
    let log = std::fs::read_to_string(cache_dir(&k, "turns").join("log")).unwrap();
    assert_eq!(log, "a-in\na-out\nb-in\n");
    k.assert_clean();
}

#[test]
fn a_private_cache_in_use_gives_the_next_step_a_folder_of_its_own() {
    let k = Kiln::in_mode(Mode::Root);
    // A shared cache, `sync`, lets the second step tell the first to finish.
    let (a, b) = two_contexts(
        &k,
        "FROM busybox\nRUN --mount=type=cache,id=sync,target=/s --mount=type=cache,id=p,target=/c,sharing=private \
         touch /c/a; i=0; while [ ! -e /s/done ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; test -e /s/done\n",
        "FROM busybox\nRUN --mount=type=cache,id=sync,target=/s --mount=type=cache,id=p,target=/c,sharing=private \
         test ! -e /c/a && touch /c/b && touch /s/done\n",
    );
    let mut first = spawn_build(&k, &a, "private-a");
    wait_for(&cache_dir(&k, "p").join("a"), &mut first);
    let second = spawn_build(&k, &b, "private-b");
    finish(second);
    finish(first);
    // The second step's own folder went with it.
    assert!(!cache_dir(&k, "p").join("b").exists());
    k.assert_clean();
}

#[test]
fn prune_skips_a_cache_in_use() {
    let k = Kiln::in_mode(Mode::Root);
    let (a, _) = two_contexts(
        &k,
        "FROM busybox\nRUN --mount=type=cache,id=busy,target=/c,sharing=locked \
         touch /c/in; i=0; while [ ! -e /c/stop ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done\n",
        "",
    );
    let mut first = spawn_build(&k, &a, "busy");
    let dir = cache_dir(&k, "busy");
    wait_for(&dir.join("in"), &mut first);
    let out = k.cmd(&["prune", "-f", "--cache-mounts"]).ok();
    assert!(out.stderr.contains("\"busy\" is in use"), "{}", out.stderr);
    assert!(dir.join("in").exists());
    std::fs::write(dir.join("stop"), "").unwrap();
    finish(first);
    k.assert_clean();
}

#[test]
fn prune_asks_before_removing_cache_mounts() {
    let k = Kiln::empty();
    let out = k.cmd(&["prune", "--cache-mounts"]).failed();
    assert!(out.stdout.contains("RUN --mount=type=cache folders"), "{}", out.stdout);
    assert!(out.stderr.contains("-f"), "{}", out.stderr);
}

#[test]
fn a_failed_step_leaves_no_mount_or_staged_folder_behind() {
    let k = Kiln::with_busybox();
    k.write("f", "x\n");
    k.write(
        "Dockerfile",
        "FROM busybox AS st\nFROM busybox\n\
         RUN --mount=from=st,target=/s,rw --mount=target=/c,rw --mount=type=cache,target=/k \
             --mount=type=tmpfs,target=/t touch /s/x /c/x /k/x /t/x && exit 3\n",
    );
    let out = k.build(&[]).failed();
    assert!(out.stderr.contains("exit code: 3"), "{}", out.stderr);
    k.assert_clean();
}

#[test]
fn a_bind_from_a_named_context_and_no_source_outside_the_context() {
    let k = Kiln::with_busybox();
    let named = k.dir.path().join("named");
    std::fs::create_dir_all(&named).unwrap();
    std::fs::write(named.join("n"), "named\n").unwrap();
    std::fs::write(named.join(".dockerignore"), "hidden\n").unwrap();
    std::fs::write(named.join("hidden"), "no\n").unwrap();
    k.write("Dockerfile", "FROM busybox\nRUN --mount=from=extra,target=/n cat /n/n > /got && test ! -e /n/hidden\n");
    let build_context = format!("extra={}", named.display());
    k.build(&["-t", "named:v1", "--build-context", &build_context]).ok();
    assert_eq!(k.file_in_top_layer("named:v1", "got").as_deref(), Some("named\n"));

    k.write("Dockerfile", "FROM busybox\nRUN --mount=source=../../etc,target=/e ls /e\n");
    let out = k.build(&[]).failed();
    // Cleaned to `etc` in the context, as BuildKit does: never the host's /etc.
    assert!(out.stderr.contains("target=/e: source \"etc\" is not in the build context"), "{}", out.stderr);
    k.assert_clean();
}

#[test]
fn a_bind_of_the_stage_the_step_builds_on_sees_it_as_it_was() {
    let k = Kiln::with_busybox();
    k.write(
        "Dockerfile",
        "FROM busybox AS b\nRUN echo before > /f\nFROM b\n\
         RUN --mount=from=b,target=/m echo after > /f && cat /m/f > /seen\n",
    );
    k.build(&["-t", "self:v1"]).ok();
    assert_eq!(k.file_in_top_layer("self:v1", "seen").as_deref(), Some("before\n"));
    k.assert_clean();
}

/// Wait for `child` at most `secs`: a build that hangs fails the test instead.
fn finish_within(mut child: Child, secs: u64) -> std::process::Output {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(secs) {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!("the build still ran after {secs}s:\n{}", String::from_utf8_lossy(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_locked_cache_id_mounted_twice_in_one_step_does_not_wait_on_itself() {
    let k = Kiln::with_busybox();
    let (a, _) = two_contexts(
        &k,
        "FROM busybox\nRUN --mount=type=cache,id=twice,target=/a,sharing=locked \
         --mount=type=cache,id=twice,target=/b --mount=type=cache,id=other,target=/o,sharing=locked \
         touch /a/x && test -e /b/x\n",
        "",
    );
    let out = finish_within(spawn_build(&k, &a, "twice"), 120);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    k.assert_clean();
}

#[test]
fn the_wait_for_a_locked_cache_ends_with_the_step_timeout() {
    let k = Kiln::with_busybox();
    let (a, b) = two_contexts(
        &k,
        "FROM busybox\nRUN --mount=type=cache,id=held,target=/c,sharing=locked \
         touch /c/in; i=0; while [ ! -e /c/stop ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done\n",
        "FROM busybox\nRUN --mount=type=cache,id=held,target=/c,sharing=locked true\n",
    );
    let mut first = spawn_build(&k, &a, "held-a");
    let dir = cache_dir(&k, "held");
    wait_for(&dir.join("in"), &mut first);
    let mut cmd = k.command();
    cmd.args(["build", "--no-cache", "--step-timeout", "1s", "-t", "held-b"]).arg(&b);
    let second = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let out = finish_within(second, 60);
    std::fs::write(dir.join("stop"), "").unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    for want in ["waited 1s (--step-timeout)", "\"held\"", "raise --step-timeout"] {
        assert!(stderr.contains(want), "{want}: {stderr}");
    }
    finish(first);
    k.assert_clean();
}

#[test]
fn a_cache_seeded_from_a_stage_keeps_owners_and_modes_and_takes_a_file() {
    for k in Kiln::each_mode() {
        k.write(
            "Dockerfile",
            "FROM busybox AS seed\n\
             RUN mkdir -p /s/d && echo x > /s/d/f && chown -R 1000:1001 /s/d && chmod 4755 /s/d/f && echo one > /one\n\
             FROM busybox\n\
             RUN --mount=type=cache,id=owned,from=seed,source=/s,target=/c \
                 --mount=type=cache,id=file,from=seed,source=/one,target=/f \
                 stat -c '%u:%g %a' /c/d /c/d/f > /got && cat /f/one >> /got\n",
        );
        k.build(&["-t", "seeded:v1"]).ok();
        let got = k.file_in_top_layer("seeded:v1", "got");
        assert_eq!(got.as_deref(), Some("1000:1001 755\n1000:1001 4755\none\n"), "{:?}", k.mode);
        k.assert_clean();
    }
}
