//! Builds each case under tools/compat/cases with kiln and with docker
//! (BuildKit), and prints how the two images differ: final filesystem,
//! config, history. Not run in CI: it needs a docker daemon. See README.md;
//! tools/compat/setup.sh prepares a machine.
//!
//!   cargo run --example compat -- [--kiln PATH] [--docker PATH] [--work DIR] [CASE...]

mod archive;
mod compare;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

struct Tools {
    kiln: PathBuf,
    docker: PathBuf,
    work: PathBuf,
}

/// How one case came out.
enum Outcome {
    Same,
    Different(usize),
    BothFailed,
    OnlyKilnFailed,
    OnlyDockerFailed,
}

fn main() -> ExitCode {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut tools = Tools {
        // The kiln of the same build: target/<profile>/examples/compat → target/<profile>/kiln.
        kiln: std::env::current_exe()
            .ok()
            .and_then(|exe| Some(exe.parent()?.parent()?.join("kiln")))
            .unwrap_or_else(|| root.join("target/debug/kiln")),
        // Debian's docker.io client: a newer client without buildx cannot
        // use BuildKit, and may come first in PATH.
        docker: PathBuf::from(if Path::new("/usr/bin/docker").exists() { "/usr/bin/docker" } else { "docker" }),
        work: std::env::temp_dir().join("kiln-compat"),
    };
    let mut names = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().map(PathBuf::from).expect("a flag without its value");
        match arg.as_str() {
            "--kiln" => tools.kiln = value(),
            "--docker" => tools.docker = value(),
            "--work" => tools.work = value(),
            _ => names.push(arg),
        }
    }
    if !tools.kiln.is_file() {
        eprintln!("no kiln at {}: build it (cargo build) or give --kiln PATH", tools.kiln.display());
        return ExitCode::from(2);
    }
    if std::env::var_os("KILN_ROOT").is_none() {
        eprintln!("set KILN_ROOT to the kiln store that tools/compat/setup.sh filled (it holds busybox:latest)");
        return ExitCode::from(2);
    }
    let cases_dir = root.join("tools/compat/cases");
    if names.is_empty() {
        let mut all: Vec<String> = fs::read_dir(&cases_dir)
            .expect("tools/compat/cases")
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        all.sort();
        names = all;
    }
    let mut summary = Vec::new();
    for name in &names {
        println!("==== {name}");
        let outcome = run_case(&tools, name, &cases_dir.join(name)).unwrap_or_else(|e| panic!("case {name}: {e}"));
        summary.push((name, outcome));
    }
    println!("==== summary");
    let mut failed = false;
    for (name, outcome) in summary {
        let text = match outcome {
            Outcome::Same => "same".to_string(),
            Outcome::Different(n) => format!("DIFFERENT ({n})"),
            Outcome::BothFailed => "both reject it".to_string(),
            Outcome::OnlyKilnFailed => "KILN FAILS, docker builds it".to_string(),
            Outcome::OnlyDockerFailed => "DOCKER FAILS, kiln builds it".to_string(),
        };
        failed |= !matches!(outcome, Outcome::Same | Outcome::BothFailed);
        println!("{name:32} {text}");
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn run_case(tools: &Tools, name: &str, case: &Path) -> std::io::Result<Outcome> {
    let work = tools.work.join(name);
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work)?;
    let context = work.join("context");
    // cp -a: a case may hold symlinks and modes that must reach both builders as they are.
    check(Command::new("cp").arg("-a").arg(case).arg(&context))?;
    if context.join("compat.setup").exists() {
        check(Command::new("sh").arg("compat.setup").current_dir(&context))?;
    }
    let build_args: Vec<String> = fs::read_to_string(context.join("compat.args"))
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    let mtime_paths: BTreeSet<String> =
        fs::read_to_string(context.join("compat.mtime")).unwrap_or_default().lines().map(str::to_string).collect();

    // ADD's URL cases: both builders fetch from one local server (dockerd
    // fetches from the host's network namespace, so loopback reaches it).
    let _server = match context.join("compat.http") {
        dir if dir.is_dir() => Some(HttpServer::start(&dir)?),
        _ => None,
    };
    if context.join("Dockerfile.base").exists() {
        let base = format!("compat-{name}-base");
        let k = kiln_build(tools, &context, "Dockerfile.base", &base, &build_args);
        let d = docker_build(tools, &context, "Dockerfile.base", &base, &build_args);
        if let Some(outcome) = failures(k, d) {
            println!("  (the base image)");
            return Ok(outcome);
        }
    }
    let tag = format!("compat-{name}");
    // Docker's own frontend may predate the syntax a case checks: then the
    // case gives a stand-in that should make the same image.
    let stand_in = context.join("Dockerfile.docker").exists();
    if stand_in {
        println!(
            "  (docker builds Dockerfile.docker, a stand-in in the syntax its frontend knows; history not compared)"
        );
    }
    let k = kiln_build(tools, &context, "Dockerfile", &tag, &build_args);
    let d = docker_build(tools, &context, if stand_in { "Dockerfile.docker" } else { "Dockerfile" }, &tag, &build_args);
    if let Some(outcome) = failures(k, d) {
        return Ok(outcome);
    }
    let (kiln_tar, docker_tar) = (work.join("kiln.tar"), work.join("docker.tar"));
    check(Command::new(&tools.kiln).args(["save", &tag, "-o"]).arg(&kiln_tar))?;
    check(Command::new(&tools.docker).args(["save", &tag, "-o"]).arg(&docker_tar))?;
    let diffs = compare::differences(&archive::read(&kiln_tar)?, &archive::read(&docker_tar)?, &mtime_paths, !stand_in);
    for diff in &diffs {
        println!("  {diff}");
    }
    Ok(if diffs.is_empty() { Outcome::Same } else { Outcome::Different(diffs.len()) })
}

/// Prints what failed; None when both builds succeeded.
fn failures(kiln: Result<(), String>, docker: Result<(), String>) -> Option<Outcome> {
    for (who, result) in [("kiln", &kiln), ("docker", &docker)] {
        if let Err(e) = result {
            println!("  {who} failed:");
            for line in e.lines() {
                println!("    | {line}");
            }
        }
    }
    match (kiln.is_err(), docker.is_err()) {
        (false, false) => None,
        (true, true) => Some(Outcome::BothFailed),
        (true, false) => Some(Outcome::OnlyKilnFailed),
        (false, true) => Some(Outcome::OnlyDockerFailed),
    }
}

fn kiln_build(tools: &Tools, context: &Path, file: &str, tag: &str, args: &[String]) -> Result<(), String> {
    let mut cmd = Command::new(&tools.kiln);
    cmd.args(["build", "--no-cache", "-t", tag, "-f"]).arg(context.join(file)).arg(context);
    for arg in args {
        cmd.args(["--build-arg", arg]);
    }
    outcome(cmd)
}

fn docker_build(tools: &Tools, context: &Path, file: &str, tag: &str, args: &[String]) -> Result<(), String> {
    let mut cmd = Command::new(&tools.docker);
    cmd.env("DOCKER_BUILDKIT", "1").args(["build", "--no-cache", "--progress=plain", "-t", tag, "-f"]);
    cmd.arg(context.join(file)).arg(context);
    for arg in args {
        cmd.args(["--build-arg", arg]);
    }
    outcome(cmd)
}

/// The command's last lines of output when it fails: where builders say why.
fn outcome(mut cmd: Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let lines: Vec<&str> = text.lines().collect();
    Err(lines[lines.len().saturating_sub(8)..].join("\n"))
}

fn check(cmd: &mut Command) -> std::io::Result<()> {
    let out = cmd.output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!("{cmd:?}: {}", String::from_utf8_lossy(&out.stderr))))
    }
}

/// `busybox httpd` serving a case's `compat.http` folder on [`HTTP_ADDR`],
/// stopped when dropped.
struct HttpServer(std::process::Child);

/// Fixed, as a Dockerfile names it in its URLs; one case runs at a time.
const HTTP_ADDR: &str = "127.0.0.1:18080";

impl HttpServer {
    fn start(dir: &Path) -> std::io::Result<Self> {
        let child = Command::new("busybox").args(["httpd", "-f", "-p", HTTP_ADDR, "-h"]).arg(dir).spawn()?;
        // Up once it accepts a connection.
        for _ in 0..50 {
            if std::net::TcpStream::connect(HTTP_ADDR).is_ok() {
                return Ok(HttpServer(child));
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        Err(std::io::Error::other(format!("busybox httpd did not listen on {HTTP_ADDR}")))
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
