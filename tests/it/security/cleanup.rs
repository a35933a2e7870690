//! Cleaning up after a step never follows what the step left behind (the
//! class of CVE-2024-23652): a RUN that turns /etc into a symlink to a host
//! folder must not make kiln delete files there.

use super::super::harness::Kiln;

#[test]
fn a_run_step_that_replaces_etc_with_a_symlink_deletes_no_host_file() {
    for k in Kiln::each_mode() {
        let host = k.dir.path().join("host-etc");
        std::fs::create_dir_all(&host).unwrap();
        // Empty, like the mount points kiln makes and removes.
        for f in ["hosts", "resolv.conf"] {
            std::fs::write(host.join(f), "").unwrap();
        }
        k.give(&host);
        // A base without /etc, so kiln makes the mount points itself.
        k.write(
            "Dockerfile",
            &format!(
                "FROM busybox AS b\nFROM scratch\nCOPY --from=b /bin /bin\n\
                 RUN mv /etc /etc.old && ln -s {} /etc\n",
                host.display()
            ),
        );
        k.build(&["-t", "etc-link:v1"]).ok();
        for f in ["hosts", "resolv.conf"] {
            assert!(host.join(f).exists(), "{:?}: kiln deleted {f} from the host folder", k.mode);
        }
        k.assert_clean();
    }
}
