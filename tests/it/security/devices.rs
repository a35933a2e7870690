//! Device nodes in an image are files to list and copy, never devices to
//! open: a block node 7:0 is the host's /dev/loop0, a char node 1:11 its
//! kernel log.

use super::super::harness::{busybox_tar, Kiln};

/// The busybox rootfs plus `/evil/null` (char 1:3) and `/evil/loop0` (block 7:0).
fn rootfs_with_devices(k: &Kiln) -> std::path::PathBuf {
    let mut src = tar::Archive::new(std::fs::File::open(busybox_tar()).unwrap());
    let path = k.dir.path().join("devices.tar");
    let mut out = tar::Builder::new(std::fs::File::create(&path).unwrap());
    for entry in src.entries().unwrap() {
        let mut entry = entry.unwrap();
        let header = entry.header().clone();
        out.append(&header, &mut entry).unwrap();
    }
    for (name, kind, major, minor) in
        [("evil/null", tar::EntryType::Char, 1, 3), ("evil/loop0", tar::EntryType::Block, 7, 0)]
    {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(0o666);
        h.set_size(0);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        out.append_data(&mut h, name, std::io::empty()).unwrap();
    }
    out.finish().unwrap();
    k.give(&path);
    path
}

/// A shell line that prints OPENED-<node> for each device node it manages to
/// open (rootless extraction cannot make nodes at all: then there is nothing
/// to open). The marker is put together at run time, so the command line
/// that progress output echoes never holds it.
const TRY_OPEN: &str = "A=OPEN; for n in null loop0; do [ -c /evil/$n -o -b /evil/$n ] && \
                        (exec 3</evil/$n) 2>/dev/null && echo ${A}ED-$n; done; \
                        echo ok > /dev/null && echo DEV-NULL-WORKS";

#[test]
fn device_nodes_of_an_image_cannot_be_opened_by_run_or_run_steps() {
    for k in Kiln::each_mode() {
        let tar = rootfs_with_devices(&k);
        k.cmd(&["import", tar.to_str().unwrap(), "devices"]).ok();
        let out = k.cmd(&["run", "devices", "sh", "-c", TRY_OPEN]).ok();
        assert_eq!(out.stdout, "DEV-NULL-WORKS\n", "{:?}: kiln run opened an image's device node", k.mode);

        k.write("Dockerfile", &format!("FROM devices\nRUN {TRY_OPEN} > /result\nCMD [\"cat\", \"/result\"]\n"));
        k.build(&["-t", "devices:run"]).ok();
        let out = k.cmd(&["run", "devices:run"]).ok();
        assert_eq!(out.stdout, "DEV-NULL-WORKS\n", "{:?}: a RUN step opened an image's device node", k.mode);
        k.assert_clean();
    }
}

#[test]
fn a_run_step_cannot_make_a_device_it_can_open() {
    for k in Kiln::each_mode() {
        k.write(
            "Dockerfile",
            "FROM busybox\nRUN A=OPEN; for d in /dev /tmp; do mknod $d/n c 1 3 2>/dev/null && \
             (exec 3<$d/n) 2>/dev/null && echo ${A}ED; done; true\n",
        );
        let out = k.build(&["-t", "mknod:v1"]).ok();
        assert!(!out.stderr.contains("OPENED"), "{:?}:\n{}", k.mode, out.stderr);
    }
}

#[test]
fn under_the_copy_snapshotter_the_root_is_nodev_too() {
    // The copy snapshotter extracts into a plain folder, where kiln as root
    // really makes the image's nodes: only a nodev root keeps them closed.
    let k = Kiln::empty();
    let tar = rootfs_with_devices(&k);
    let cmd = |args: &[&str]| {
        let out = k.command().env("KILN_SNAPSHOTTER", "copy").args(args).output().unwrap();
        super::super::harness::Run::from(out)
    };
    cmd(&["import", tar.to_str().unwrap(), "devices"]).ok();
    let out = cmd(&["run", "devices", "sh", "-c", TRY_OPEN]).ok();
    assert_eq!(out.stdout, "DEV-NULL-WORKS\n", "kiln run opened an image's device node");
    k.write("Dockerfile", &format!("FROM devices\nRUN {TRY_OPEN} > /result\nCMD [\"cat\", \"/result\"]\n"));
    let ctx = k.ctx();
    cmd(&["build", "-t", "devices:run", ctx.to_str().unwrap()]).ok();
    let out = cmd(&["run", "devices:run"]).ok();
    assert_eq!(out.stdout, "DEV-NULL-WORKS\n", "a RUN step opened an image's device node");
}
