//! `kiln login` without `--password-stdin` asks on the terminal, as docker's
//! does: the user name echoed, the password not.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::harness::{spawn_in_terminal, Kiln};
use super::registry::{Registry, Session, PASSWORD, USER};

#[test]
fn login_asks_for_the_user_and_password_on_the_terminal_without_echoing_the_password() {
    let r = Registry::tls_htpasswd();
    let s = Session::with_config(&format!("[registries.\"{}\"]\nca = \"{}\"\n", r.host, r.ca().display()));
    let k = Kiln::empty();
    let mut cmd = k.command();
    cmd.args(["login", &r.host])
        .env("DOCKER_CONFIG", s.dir.path().join("docker"))
        .env("KILN_CONFIG", s.dir.path().join("config.toml"));
    let (mut child, mut master) = spawn_in_terminal(&mut cmd);
    drop(cmd);
    let screen = Arc::new(Mutex::new(String::new()));
    let reader = {
        let (mut master, screen) = (master.try_clone().unwrap(), screen.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 1024];
            while let Ok(n) = master.read(&mut buf) {
                if n == 0 {
                    break;
                }
                screen.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        })
    };
    let wait_for = |what: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !screen.lock().unwrap().contains(what) {
            assert!(Instant::now() < deadline, "no {what:?} on the terminal:\n{}", screen.lock().unwrap());
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_for("Username: ");
    master.write_all(format!("{USER}\n").as_bytes()).unwrap();
    wait_for("Password: ");
    // The echo must be off by the time the prompt shows, or a quick answer
    // (a paste, a script, this test) is echoed.
    let settings = nix::sys::termios::tcgetattr(&master).unwrap();
    assert!(
        !settings.local_flags.contains(nix::sys::termios::LocalFlags::ECHO),
        "the password prompt showed with the echo still on"
    );
    master.write_all(format!("{PASSWORD}\n").as_bytes()).unwrap();
    let status = child.wait().unwrap();
    let _ = reader.join();
    let screen = screen.lock().unwrap().clone();
    assert!(status.success(), "{screen}");
    assert!(screen.contains("Login Succeeded"), "{screen}");
    assert!(screen.contains(USER), "the user name is echoed:\n{screen}");
    assert!(!screen.contains(PASSWORD), "the password was echoed:\n{screen}");
    assert!(std::fs::read_to_string(s.docker_config()).unwrap().contains(&r.host));
}

#[test]
fn login_without_a_terminal_or_password_stdin_says_what_to_do() {
    let r = Registry::start();
    let s = Session::new();
    let k = Kiln::empty();
    let mut cmd = k.command();
    cmd.args(["login", "-u", USER, &r.host]).env("DOCKER_CONFIG", s.dir.path().join("docker"));
    // SAFETY: setsid only, between fork and exec: no controlling terminal.
    unsafe {
        cmd.pre_exec(|| if libc::setsid() < 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) });
    }
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("--password-stdin"), "{stderr}");
    assert!(!s.docker_config().exists());
}
