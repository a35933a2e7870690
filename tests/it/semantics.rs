//! Build semantics where docker's (BuildKit's) result is not the obvious one:
//! HOME, ARGs across stages, proxy build args, WORKDIR's directory, supplementary groups.

use serde_json::Value;

use super::harness::Kiln;

/// The image config's `config.Env` of `image`.
fn env_of(k: &Kiln, image: &str) -> Vec<String> {
    let v = k.inspect(image);
    v["Config"]["config"]["Env"].as_array().unwrap().iter().map(|e| e.as_str().unwrap().to_owned()).collect()
}

fn history_of(k: &Kiln, image: &str) -> Vec<String> {
    let v = k.inspect(image);
    v["Config"]["history"].as_array().unwrap().iter().map(|h| h["created_by"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn home_comes_from_the_users_passwd_entry_in_run_and_kiln_run() {
    let k = Kiln::with_busybox();
    k.write(
        "Dockerfile",
        "FROM busybox\n\
         RUN echo 'app:x:1000:1000::/home/app:/bin/sh' >> /etc/passwd && mkdir -m 777 /out\n\
         RUN echo \"root=$HOME\" > /out/root\n\
         USER app\n\
         RUN echo \"app=$HOME\" > /out/app\n\
         USER 4242\n\
         RUN echo \"4242=$HOME\" > /out/4242\n\
         ENV HOME=/custom\n\
         RUN echo \"env=$HOME\" > /out/env\n\
         USER app\n",
    );
    k.build(&["-t", "home:v1"]).ok();
    let out = k.cmd(&["run", "-u", "0", "home:v1", "cat", "/out/root", "/out/app", "/out/4242", "/out/env"]).ok();
    assert_eq!(out.stdout, "root=/root\napp=/home/app\n4242=/\nenv=/custom\n");
    // ENV HOME is the image's; without it, `kiln run` fills HOME in as docker run does.
    assert_eq!(k.cmd(&["run", "home:v1", "sh", "-c", "echo $HOME"]).ok().stdout, "/custom\n");
    k.write("Dockerfile", "FROM busybox\nRUN echo 'app:x:1000:1000::/home/app:/bin/sh' >> /etc/passwd\nUSER app\n");
    k.build(&["-t", "home:v2"]).ok();
    assert_eq!(k.cmd(&["run", "home:v2", "sh", "-c", "echo $HOME"]).ok().stdout, "/home/app\n");
    assert_eq!(k.cmd(&["run", "-u", "nobody", "home:v2", "sh", "-c", "echo $HOME"]).ok().stdout, "/nonexistent\n");
    assert_eq!(k.cmd(&["run", "-u", "77", "home:v2", "sh", "-c", "echo $HOME"]).ok().stdout, "/\n");
    // HOME is the runtime's doing: never written into the image config.
    assert!(!env_of(&k, "home:v2").iter().any(|e| e.starts_with("HOME=")), "{:?}", env_of(&k, "home:v2"));
}

#[test]
fn a_stage_built_from_a_stage_sees_its_args() {
    let k = Kiln::with_busybox();
    k.write(
        "Dockerfile",
        "FROM busybox AS base\nARG NAME=app\n\
         FROM base AS dev\nARG NAME=\"$NAME-dev\"\nRUN echo \"$NAME\" > /name\n\
         FROM busybox AS other\nRUN echo \"[$NAME]\" > /name\n\
         FROM dev\nCOPY --from=other /name /other\nRUN echo \"$NAME\" > /last\n",
    );
    k.build(&["-t", "args:v1"]).ok();
    let out = k.cmd(&["run", "args:v1", "cat", "/name", "/other", "/last"]).ok();
    assert_eq!(out.stdout, "app-dev\n[]\napp-dev\n");
    // The build arg wins over the inherited value, in the history too.
    k.build(&["-t", "args:v2", "--build-arg", "NAME=cli"]).ok();
    assert_eq!(k.cmd(&["run", "args:v2", "cat", "/name"]).ok().stdout, "cli\n");
    let history = history_of(&k, "args:v2");
    assert!(history.contains(&"ARG NAME=cli".to_owned()), "{history:?}");
}

#[test]
fn proxy_build_args_reach_run_but_not_the_image_or_the_cache_key() {
    let k = Kiln::with_busybox();
    k.write("Dockerfile", "FROM busybox\nRUN env | grep -i _proxy | sort > /proxies\n");
    let with = k.build(&["-t", "proxy:v1", "--build-arg", "HTTP_PROXY=http://proxy:3128", "--build-arg", "no_proxy=x"]);
    let with = with.ok();
    assert!(!with.stderr.contains("were not consumed"), "{}", with.stderr);
    let proxies = k.cmd(&["run", "proxy:v1", "cat", "/proxies"]).ok().stdout;
    assert_eq!(proxies, "HTTP_PROXY=http://proxy:3128\nNO_PROXY=x\nhttp_proxy=http://proxy:3128\nno_proxy=x\n");
    assert!(!env_of(&k, "proxy:v1").iter().any(|e| e.to_ascii_lowercase().contains("proxy")));
    assert!(!history_of(&k, "proxy:v1").iter().any(|h| h.contains("proxy:3128")), "{:?}", history_of(&k, "proxy:v1"));
    // Out of the cache key: the same build without a proxy reuses the step.
    let again = k.build(&["-t", "proxy:v2"]).ok();
    assert!(again.stderr.contains("CACHED"), "{}", again.stderr);
    assert_eq!(k.cmd(&["run", "proxy:v2", "cat", "/proxies"]).ok().stdout, proxies);

    // Declared with ARG, a proxy is an ordinary build arg: in the history and the key.
    k.write("Dockerfile", "FROM busybox\nARG HTTP_PROXY\nRUN echo \"$HTTP_PROXY\" > /p\n");
    k.build(&["-t", "proxy:v3", "--build-arg", "HTTP_PROXY=http://p:1"]).ok();
    assert_eq!(k.cmd(&["run", "proxy:v3", "cat", "/p"]).ok().stdout, "http://p:1\n");
    assert!(history_of(&k, "proxy:v3").iter().any(|h| h.starts_with("RUN |1 HTTP_PROXY=http://p:1 ")));
}

#[test]
fn a_build_arg_without_a_value_comes_from_kilns_environment() {
    let k = Kiln::with_busybox();
    k.write("Dockerfile", "FROM busybox\nARG FROM_ENV=default\nARG UNSET=default\nRUN echo $FROM_ENV $UNSET > /v\n");
    let out = k
        .command()
        .args(["build", "-t", "envarg:v1", "--build-arg", "FROM_ENV", "--build-arg", "UNSET"])
        .arg(k.ctx())
        .env("FROM_ENV", "from-env")
        .env_remove("UNSET")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(k.cmd(&["run", "envarg:v1", "cat", "/v"]).ok().stdout, "from-env default\n");
}

#[test]
fn unused_build_args_get_dockers_warning() {
    let k = Kiln::with_busybox();
    k.write("Dockerfile", "FROM busybox\nARG USED\n");
    let out = k.build(&["--build-arg", "USED=1", "--build-arg", "B=2", "--build-arg", "A=1"]).ok();
    assert!(out.stderr.contains("warning: One or more build-args [A B] were not consumed"), "{}", out.stderr);
}

/// `(path, mode, uid, gid)` of the entries of `image`'s layer `n`.
fn owners(k: &Kiln, image: &str, n: usize) -> Vec<(String, u32, u64, u64)> {
    let v: Value = k.inspect(image);
    let digest = v["Manifest"]["layers"][n]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_owned();
    let blob = std::fs::File::open(k.root().join("oci/blobs/sha256").join(digest)).unwrap();
    let mut archive = tar::Archive::new(blob);
    let entries = archive.entries().unwrap().map(Result::unwrap);
    entries
        .map(|e| {
            let h = e.header();
            let path = e.path().unwrap().to_string_lossy().trim_end_matches('/').to_owned();
            (path, h.mode().unwrap(), h.uid().unwrap(), h.gid().unwrap())
        })
        .collect()
}

#[test]
fn workdir_makes_its_directory_owned_by_the_user() {
    let k = Kiln::with_busybox();
    k.write("Dockerfile", "FROM busybox\nWORKDIR /app\nUSER nobody\nWORKDIR data/deep\nWORKDIR /bin\nWORKDIR /\n");
    k.build(&["-t", "wd:v1"]).ok();
    // Like BuildKit: one layer per WORKDIR but `/`, empty when nothing was missing.
    let layers = k.layers("wd:v1");
    assert_eq!(layers.len(), 4, "{layers:?}");
    assert_eq!(owners(&k, "wd:v1", 1), [("app".into(), 0o755, 0, 0)]);
    assert_eq!(
        owners(&k, "wd:v1", 2),
        [("app/data".into(), 0o755, 65534, 65534), ("app/data/deep".into(), 0o755, 65534, 65534)]
    );
    assert_eq!(layers[3], Vec::<String>::new());
    let history: Vec<(String, bool)> = k.inspect("wd:v1")["Config"]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["created_by"].as_str().unwrap().to_owned(), h["empty_layer"].as_bool().unwrap_or(false)))
        .collect();
    let tail: Vec<_> = history.iter().skip(history.len() - 5).cloned().collect();
    assert_eq!(
        tail,
        [
            ("WORKDIR /app".to_owned(), false),
            ("USER nobody".to_owned(), true),
            ("WORKDIR /app/data/deep".to_owned(), false),
            ("WORKDIR /bin".to_owned(), false),
            ("WORKDIR /".to_owned(), true),
        ]
    );
    let out = k.cmd(&["run", "-w", "/app/data/deep", "wd:v1", "sh", "-c", "pwd; stat -c '%U %a' ."]).ok();
    assert_eq!(out.stdout, "/app/data/deep\nnobody 755\n");
    // A WORKDIR through a file is an error naming it.
    k.write("Dockerfile", "FROM busybox\nRUN touch /f\nWORKDIR /f/x\n");
    let err = k.build(&[]).failed();
    assert!(err.stderr.contains("/f exists and is not a directory"), "{}", err.stderr);
}

#[test]
fn a_heredoc_with_a_shebang_runs_as_a_script_outside_the_image() {
    // Root and rootless: the scripts' tmpfs is remounted read-only in the
    // sandbox's own user namespace either way.
    for k in Kiln::each_mode() {
        k.write(
            "Dockerfile",
            "FROM busybox\n\
         RUN <<EOF\n\
         #!/bin/sh -e\n\
         echo \"ran $0\" > /ran\n\
         EOF\n\
         USER nobody\n\
         RUN <<SCRIPT\n\
         #!/bin/sh\n\
         id -u > /tmp/uid\n\
         touch /dev/pipes/SCRIPT 2>/dev/null || echo read-only >> /tmp/uid\n\
         SCRIPT\n",
        );
        k.build(&["-t", "shebang:v1"]).ok();
        let out = k.cmd(&["run", "shebang:v1", "cat", "/ran", "/tmp/uid"]).ok();
        assert_eq!(out.stdout, "ran /dev/pipes/EOF\n65534\nread-only\n");
        // The scripts were never part of the filesystem.
        let layers = k.layers("shebang:v1");
        assert!(!layers.iter().flatten().any(|p| p.contains("pipes")), "{layers:?}");
    }
}

#[test]
fn supplementary_groups_are_the_users_group_lines_only_in_run_and_kiln_run() {
    // runc (BuildKit's RUN, `docker run`) gives a process the groups
    // /etc/group lists its user's name in, not its primary gid; none when
    // USER names a group or the uid has no passwd entry.
    let k = Kiln::with_busybox();
    let groups = |tag: &str| format!("RUN echo {tag}: $(sed -n 's/^Groups://p' /proc/self/status) >> /tmp/groups\n");
    k.write(
        "Dockerfile",
        &format!(
            "FROM busybox\n\
             RUN echo 'crew:x:4000:other,nobody' >> /etc/group && echo 'band:x:4001:nobodyelse' >> /etc/group && touch /tmp/groups && chmod 666 /tmp/groups\n\
             {}USER nobody\n{}USER nobody:nogroup\n{}USER 1234:65534\n{}USER 65534\n{}USER nobody\n",
            groups("root"),
            groups("name"),
            groups("name-and-group"),
            groups("numbers"),
            groups("uid"),
        ),
    );
    k.build(&["-t", "groups:v1"]).ok();
    let out = k
        .cmd(&[
            "run",
            "groups:v1",
            "sh",
            "-c",
            "cat /tmp/groups; echo run: $(sed -n 's/^Groups://p' /proc/self/status)",
        ])
        .ok();
    assert_eq!(out.stdout, "root:\nname: 4000\nname-and-group:\nnumbers:\nuid: 4000\nrun: 4000\n");
}

#[test]
fn of_an_env_and_an_arg_of_one_name_run_sees_the_later() {
    // BuildKit adds an ARG's value to the steps' environment after ENV's;
    // the image config keeps the ENV's value.
    let k = Kiln::with_busybox();
    k.write(
        "Dockerfile",
        "FROM busybox\nENV X=env\nARG X=again\nRUN echo $X > /seen && env | grep ^X= >> /seen\nENV X=last\nRUN echo $X >> /seen\n",
    );
    k.build(&["-t", "argenv:v1"]).ok();
    assert_eq!(k.cmd(&["run", "argenv:v1", "cat", "/seen"]).ok().stdout, "again\nX=again\nlast\n");
    assert!(env_of(&k, "argenv:v1").contains(&"X=last".to_owned()));
    let history = history_of(&k, "argenv:v1");
    assert!(history.iter().any(|h| h.starts_with("RUN |1 X=again /bin/sh -c echo $X > /seen")), "{history:?}");
}
