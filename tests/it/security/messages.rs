//! What kiln prints is text: bytes from an archive, a Dockerfile or the
//! command line reach the terminal escaped, so a hostile file cannot clear the
//! screen, move the cursor, rewrite earlier lines or retitle the window.

use std::process::Command;

use super::super::harness::{Kiln, KILN};

/// Bytes a terminal acts on, found raw in `out`: C0 controls but the newline,
/// DEL, and C1 controls (as UTF-8; some terminals take U+009B as a CSI).
fn raw_controls(out: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(out);
    text.chars().filter(|&c| c != '\n' && c.is_control()).map(|c| format!("{c:?}")).collect()
}

/// Deterministic bytes that look like nothing: xorshift, so every run is alike.
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn loading_a_binary_file_prints_no_raw_control_bytes_and_names_the_file() {
    for k in Kiln::each_mode_empty() {
        // The first bytes are where a tar header keeps its entry name, which tar
        // errors quote: clear screen, carriage return, bell, a C1 CSI, a title change.
        let mut bytes = b"\x1b[2J\rOWNED\x07\xc2\x9b31m\x1b]0;title\x07".to_vec();
        bytes.extend(noise(8192));
        bytes.extend(b"\x1b[2J\r");
        let file = k.dir.path().join("garbage.bin");
        std::fs::write(&file, &bytes).unwrap();
        let out = Command::new(KILN).arg("--root").arg(k.root()).args(["load", "-i"]).arg(&file).output().unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.stderr.contains(&0x1b), "ESC reached the terminal:\n{stderr:?}");
        assert_eq!(raw_controls(&out.stderr), Vec::<String>::new(), "in:\n{stderr:?}");
        assert!(std::str::from_utf8(&out.stderr).is_ok(), "stderr is not UTF-8:\n{stderr:?}");
        assert!(stderr.contains(file.to_str().unwrap()), "the file is not named:\n{stderr}");
    }
}

#[test]
fn build_warnings_print_no_raw_control_bytes() {
    for k in Kiln::each_mode() {
        k.write("Dockerfile", "FROM busybox\n");
        let out = Command::new(KILN)
            .arg("--root")
            .arg(k.root())
            .args(["build", "--build-arg", "\x1b[2J\rX\u{9b}=1"])
            .arg(k.ctx())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(stderr.contains("were not consumed"), "no warning:\n{stderr}");
        assert_eq!(raw_controls(&out.stderr), Vec::<String>::new(), "in:\n{stderr:?}");
    }
}
