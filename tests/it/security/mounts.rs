//! RUN --mount targets and their cleanup stay inside the step's root, whatever
//! the image or an earlier step made of the paths: a target through a
//! symlink climbing out of the root, a cache whose sub-folder a step swapped
//! for a symlink (the class of CVE-2024-23651), a mount point's parent
//! swapped for a symlink before kiln removes it (CVE-2024-23652).

use super::super::harness::Kiln;

/// A host folder outside the store, handed to the user kiln runs as, with a
/// marker file in it.
fn host_dir(k: &Kiln, name: &str) -> std::path::PathBuf {
    let host = k.dir.path().join(name);
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("marker"), "host\n").unwrap();
    k.give(&host);
    host
}

fn names(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

#[test]
fn a_mount_target_through_an_image_symlink_lands_inside_the_root() {
    for k in Kiln::each_mode() {
        let host = host_dir(&k, "host-x");
        k.write(
            "Dockerfile",
            &format!(
                "FROM busybox\nRUN ln -s /../../../../../../..{} /x\n\
                 RUN --mount=type=tmpfs,target=/x/t --mount=type=cache,id=c,target=/x/c \
                     touch /x/t/f /x/c/f && test ! -e /x/marker\n",
                host.display()
            ),
        );
        k.build(&["-t", "in-root:v1"]).ok();
        assert_eq!(names(&host), ["marker"], "{:?}: a mount point was made on the host", k.mode);
        // And the points made inside the root are not in the layer.
        assert_eq!(k.layers("in-root:v1").pop().unwrap(), Vec::<String>::new(), "{:?}", k.mode);
        k.assert_clean();
    }
}

#[test]
fn a_cache_sub_folder_swapped_for_a_symlink_leads_no_later_mount_out_of_the_root() {
    for k in Kiln::each_mode() {
        let host = host_dir(&k, "host-c");
        k.write("ctx-file", "from the context\n");
        k.write(
            "Dockerfile",
            &format!(
                "FROM busybox\n\
                 RUN --mount=type=cache,id=swap,target=/c rm -rf /c/sub && ln -s {} /c/sub\n\
                 RUN --mount=type=cache,id=swap,target=/c --mount=type=tmpfs,target=/c/sub/t \
                     --mount=target=/c/sub/b,rw --mount=type=cache,id=other,target=/c/sub/o \
                     echo x > /c/sub/b/ctx-file && touch /c/sub/t/f /c/sub/o/f\n",
                host.display()
            ),
        );
        k.build(&["-t", "swap:v1"]).ok();
        assert_eq!(names(&host), ["marker"], "{:?}: a mount or a write reached the host", k.mode);
        k.cmd(&["prune", "-f", "--cache-mounts"]).ok();
        assert_eq!(names(&host), ["marker"], "{:?}: prune followed the cache's symlink", k.mode);
        k.assert_clean();
    }
}

#[test]
fn removing_mount_points_never_follows_a_parent_the_step_swapped_for_a_symlink() {
    for k in Kiln::each_mode() {
        let host = host_dir(&k, "host-m");
        // What kiln would remove if it followed the link: an empty b/m.
        std::fs::create_dir_all(host.join("b/m")).unwrap();
        k.give(&host);
        k.write(
            "Dockerfile",
            &format!(
                "FROM busybox\n\
                 RUN --mount=type=tmpfs,target=/a/b/m mv /a /a.old && ln -s {} /a\n",
                host.display()
            ),
        );
        k.build(&["-t", "teardown:v1"]).ok();
        assert!(host.join("b/m").is_dir(), "{:?}: kiln removed a host folder through the step's symlink", k.mode);
        assert_eq!(names(&host), ["b", "marker"]);
        k.assert_clean();
    }
}

#[test]
fn a_target_in_proc_or_sys_is_refused_as_written_and_through_a_symlink() {
    let k = Kiln::with_busybox();
    k.write("Dockerfile", "FROM busybox\nRUN --mount=type=tmpfs,target=/proc/sys true\n");
    let out = k.build(&["-t", "proc:v1"]).failed();
    assert!(out.stderr.contains("Dockerfile:2:") && out.stderr.contains("is in /proc"), "{}", out.stderr);
    // The image's /p is /proc: only the sandbox, resolving in the root, sees it.
    for (link, fs) in [("/proc/sys", "/proc"), ("/sys/kernel", "/sys")] {
        k.write("Dockerfile", &format!("FROM busybox\nRUN ln -s {link} /p\nRUN --mount=type=tmpfs,target=/p true\n"));
        let out = k.build(&["-t", "proc:v2"]).failed();
        assert!(out.stderr.contains(&format!("in the sandbox's {fs}")), "{}", out.stderr);
    }
}
