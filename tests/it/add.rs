//! ADD of local files: archives (told by content) extracted, others copied.

use std::io::Write;

use super::harness::Kiln;

/// A tar of `files` (path, body), owned by 1234.
fn tar_of(files: &[(&str, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, body) in files {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o640);
        h.set_uid(1234);
        h.set_size(body.len() as u64);
        b.append_data(&mut h, path, body.as_bytes()).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn add_extracts_archives_by_content_and_copies_the_rest() {
    for k in Kiln::each_mode() {
        add_extracts(&k);
    }
}

/// Archives owned by another user extract alike for root and rootless kiln.
fn add_extracts(k: &Kiln) {
    let archive = tar_of(&[("app/bin/tool", "tool"), ("app/README", "read me")]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&archive).unwrap();
    std::fs::write(k.ctx().join("app.tgz"), gz.finish().unwrap()).unwrap();
    let mut xz = lzma_rust2::XzWriter::new(Vec::new(), lzma_rust2::XzOptions::default()).unwrap();
    xz.write_all(&archive).unwrap();
    // A name that says nothing: the content is what counts.
    std::fs::write(k.ctx().join("blob"), xz.finish().unwrap()).unwrap();
    k.write("notes.tar.gz", "not an archive at all");
    k.write(
        "Dockerfile",
        "FROM busybox\nADD app.tgz /opt/\nADD blob /srv\nADD notes.tar.gz /notes/\n\
         ADD --unpack=false app.tgz /kept/\nADD --chown=nobody app.tgz /owned/\n",
    );
    k.give(&k.ctx());
    k.build(&["-t", "add:v1"]).ok();
    k.assert_clean();
    let script = "cat /opt/app/bin/tool /srv/app/README /notes/notes.tar.gz; echo; ls /kept; \
                  stat -c '%n %a %u' /opt/app/bin/tool /owned/app/README /owned/app";
    let out = k.cmd(&["run", "add:v1", "sh", "-c", script]).ok().stdout;
    assert_eq!(
        out,
        "toolread menot an archive at all\napp.tgz\n/opt/app/bin/tool 640 1234\n/owned/app/README 640 65534\n\
         /owned/app 755 0\n"
    );
}

#[test]
fn add_refuses_an_archive_that_climbs_out() {
    let k = Kiln::with_busybox();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(1);
    h.set_mode(0o644);
    // The tar crate will not write `..` itself: the name goes in by hand.
    h.as_old_mut().name[..9].copy_from_slice(b"../escape");
    h.set_cksum();
    b.append(&h, &b"x"[..]).unwrap();
    std::fs::write(k.ctx().join("evil.tar"), b.into_inner().unwrap()).unwrap();
    k.write("Dockerfile", "FROM busybox\nADD evil.tar /x/\n");
    let out = k.build(&["-t", "evil:v1"]).failed();
    assert!(
        out.stderr.contains("ADD failed: archive evil.tar: entry ../escape: its name climbs out of the destination"),
        "{}",
        out.stderr
    );
}

#[test]
fn add_refuses_an_archive_with_a_huge_long_name() {
    let k = Kiln::with_busybox();
    // 2 MiB of name, a few KiB once gzip'd: tar-rs alone would read it whole
    // (or the gigabytes a header may claim).
    let archive = tar_of(&[(&"a/".repeat(1024 * 1024), "x")]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&archive).unwrap();
    std::fs::write(k.ctx().join("long.tgz"), gz.finish().unwrap()).unwrap();
    k.write("Dockerfile", "FROM busybox\nADD long.tgz /x/\n");
    let out = k.build(&["-t", "long:v1"]).failed();
    assert!(
        out.stderr.contains("GNU long name record of 2097153 bytes is larger than the 1 MiB allowed"),
        "{}",
        out.stderr
    );
}
