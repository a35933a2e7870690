//! Golden tests of whole Dockerfiles, one folder per case, the way BuildKit
//! keeps `parser/testfiles/`:
//!
//! ```text
//! frontend/tests/golden/<case>/Dockerfile   the input
//!                             /args         optional: build options, one a line
//!                             /plan         expected: the lowered build graph
//!                             /error        expected instead: the error message
//! ```
//!
//! `args` lines (blank lines and `#` comments skipped):
//! `build-arg K=V`, `target NAME`, `platform os/arch[/variant]` or `platform none`
//! (default `linux/arm64/v8`), `name PATH` (the Dockerfile's name in errors),
//! `context NAME=DIR` or `context NAME=docker-image://REF` (`--build-context`).
//!
//! Base images come from `support::FakeResolver` (`busybox`, `golang:1.22`;
//! `broken` fails to resolve).
//!
//! After a deliberate change, re-bless every expectation and review the diff:
//!
//! ```text
//! KILN_BLESS=1 cargo test -p kiln-frontend --test golden
//! ```
//!
//! Without `KILN_BLESS` nothing is written (so CI never writes a golden), and
//! a case without an expected file fails.

mod support;

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use kiln_frontend::{build_graph, BuildGraph, CopyFrom, ImageConfig, MountFrom, NamedContext, Op, RunMount};
use kiln_solver::Digest;
use support::{opts, FakeResolver};

/// The expected files; a case has exactly one.
const PLAN: &str = "plan";
const ERROR: &str = "error";

#[test]
fn golden() {
    check_cases("tests/golden", 30, FakeResolver::default);
}

/// Dockerfiles in the style of popular official images (`tests/corpus/`),
/// lowered against a resolver that finds any base image: the issue's "a new
/// user tries kiln on real Dockerfiles", kept from regressing.
#[test]
fn corpus() {
    check_cases("tests/corpus", 10, FakeResolver::open);
}

/// Lower every case folder under `dir` (at least `min` of them) and compare
/// (or bless) its expected file.
fn check_cases(dir: &str, min: usize, resolver: fn() -> FakeResolver) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let bless = std::env::var_os("KILN_BLESS").is_some_and(|v| v != "0");
    let mut cases: Vec<PathBuf> =
        fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    cases.sort();
    assert!(cases.len() >= min, "expected the cases in {}", root.display());
    let mut failures = Vec::new();
    for case in &cases {
        let (file, actual) = run(case, &resolver());
        let other = case.join(if file == PLAN { ERROR } else { PLAN });
        let path = case.join(file);
        if bless {
            fs::write(&path, &actual).unwrap();
            let _ = fs::remove_file(&other);
            continue;
        }
        let name = case.file_name().unwrap().to_string_lossy();
        match fs::read_to_string(&path) {
            Ok(_) if other.exists() => failures.push(format!("{name}: both {PLAN} and {ERROR} exist; keep one\n")),
            Ok(expected) if expected == actual => {}
            Ok(expected) => failures.push(format!("{name}/{file}:\n{}", diff(&expected, &actual))),
            Err(_) => failures.push(format!("{name}: no {file} file; got:\n{actual}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} golden cases differ (re-bless with KILN_BLESS=1 if the change is deliberate):\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// Lower one case: which expected file it yields, and that file's text.
fn run(case: &Path, resolver: &FakeResolver) -> (&'static str, String) {
    let dockerfile = fs::read_to_string(case.join("Dockerfile")).unwrap();
    let mut o = opts(&[], None);
    let args = fs::read_to_string(case.join("args")).unwrap_or_default();
    for line in args.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (key, value) = line.split_once(' ').unwrap_or((line, ""));
        match key {
            "build-arg" => {
                let (k, v) = value.split_once('=').unwrap_or((value, ""));
                o.build_args.insert(k.to_owned(), v.to_owned());
            }
            "target" => o.target = Some(value.to_owned()),
            "platform" => o.platform = (value != "none").then(|| value.to_owned()),
            "name" => o.dockerfile_name = value.to_owned(),
            "context" => {
                let (k, v) = value.split_once('=').unwrap_or((value, ""));
                let named = match v.strip_prefix("docker-image://") {
                    Some(reference) => NamedContext::Image(reference.to_owned()),
                    None => NamedContext::Directory,
                };
                o.named_contexts.insert(k.to_owned(), named);
            }
            _ => panic!("{}: unknown args line {line:?}", case.display()),
        }
    }
    match build_graph(&dockerfile, &o, resolver) {
        Ok(bg) => (PLAN, render(&bg, resolver)),
        Err(e) => (ERROR, format!("{e}\n")),
    }
}

/// The plan as text: the target's vertices, inputs first (depth-first from
/// the target, so the order is stable), then the image config, the warnings
/// and the images looked up.
fn render(bg: &BuildGraph, resolver: &FakeResolver) -> String {
    let mut order: Vec<&Digest> = Vec::new();
    // Depth-first without recursion: (vertex, inputs visited yet).
    let mut stack = vec![(&bg.target, false)];
    while let Some((d, expanded)) = stack.pop() {
        if order.contains(&d) {
            continue;
        }
        let v = bg.graph.get(d).expect("vertex in graph");
        if expanded {
            order.push(d);
        } else {
            stack.push((d, true));
            stack.extend(v.inputs.iter().rev().map(|i| (i, false)));
        }
    }
    assert_eq!(order.len(), bg.graph.len(), "the graph holds only what the target needs");

    let mut out = String::from("vertices\n");
    for (n, d) in order.iter().enumerate() {
        let v = bg.graph.get(d).unwrap();
        let line = bg.sources.get(*d).map_or_else(|| "-".to_owned(), |l| l.to_string());
        let _ = writeln!(out, "  #{} {} at {line}: {}", n + 1, &d.hex()[..12], v.name);
        let mut field = |key: &str, value: &str| {
            let _ = writeln!(out, "      {key} {value}");
        };
        match &v.op {
            Op::Scratch => field("op", "scratch"),
            Op::Image { name, digest } => field("op", &format!("image {name} {digest}")),
            Op::Copy(c) => {
                match &c.from {
                    CopyFrom::Inline(files) => {
                        field("op", "copy from inline");
                        for f in files {
                            field("file", &format!("{} {:?}", f.name, f.content));
                        }
                    }
                    from => field("op", &format!("copy from {from:?}").to_lowercase()),
                }
                field("sources", &format!("{:?}", c.sources));
                field("dest", &c.dest);
                c.chown.iter().for_each(|s| field("chown", s));
                c.chmod.iter().for_each(|s| field("chmod", s));
                c.checksum.iter().for_each(|s| field("checksum", s));
                c.exclude.iter().for_each(|s| field("exclude", s));
                for (set, name) in [(c.unpack, "unpack"), (c.link, "link"), (c.parents, "parents")] {
                    if set {
                        field(name, "true");
                    }
                }
            }
            Op::Mkdir(m) => {
                field("op", "mkdir");
                field("path", &m.path);
                if !m.user.is_empty() {
                    field("user", &m.user);
                }
            }
            Op::Exec(e) => {
                field("op", "exec");
                field("args", &format!("{:?}", e.args));
                e.env.iter().for_each(|s| field("env", s));
                field("cwd", &e.cwd);
                if !e.user.is_empty() {
                    field("user", &e.user);
                }
                e.proxy_env.iter().for_each(|s| field("proxy env", s));
                for f in &e.files {
                    field("file", &format!("{} {:?}", f.name, f.content));
                }
                for m in &e.mounts {
                    field("mount", &mount(m));
                }
                if !e.network.is_default() {
                    field("network", &format!("{:?}", e.network).to_lowercase());
                }
                if e.insecure {
                    field("security", "insecure");
                }
            }
        }
        if !v.inputs.is_empty() {
            let inputs: Vec<String> =
                v.inputs.iter().map(|i| format!("#{}", order.iter().position(|o| *o == i).unwrap() + 1)).collect();
            field("inputs", &inputs.join(" "));
        }
    }
    out += &config(&bg.config);
    if let Some(check) = &bg.check_directive {
        let _ = writeln!(out, "check directive {check}");
    }
    if !bg.warnings.is_empty() {
        out += "warnings\n";
        bg.warnings.iter().for_each(|w| writeln!(out, "  {w}").unwrap());
    }
    out += "resolved\n";
    for (reference, n) in resolver.calls.borrow().iter() {
        let _ = writeln!(out, "  {reference} x{n}");
    }
    out
}

/// A RUN mount on one line, every field shown (defaults included).
fn mount(m: &RunMount) -> String {
    let from = |f: &MountFrom| match f {
        MountFrom::Context => "context".to_owned(),
        MountFrom::Input(n) => format!("input {n}"),
        MountFrom::NamedContext(key) => format!("named context {key}"),
    };
    match m {
        RunMount::Bind { target, from: f, source, rw } => {
            format!("bind {target} from {} source {source:?} rw {rw}", from(f))
        }
        RunMount::Cache { target, id, readonly, sharing, from: f, source, mode, uid, gid } => {
            let f = f.as_ref().map_or("empty".to_owned(), from);
            format!(
                "cache {target} id {id:?} readonly {readonly} sharing {sharing:?} from {f} source {source:?} mode {mode:o} uid {uid} gid {gid}"
            )
        }
        RunMount::Tmpfs { target, size } => format!("tmpfs {target} size {size:?}"),
        RunMount::Secret { id, target, env, required, mode, uid, gid } => format!(
            "secret id {id:?} target {target:?} env {env:?} required {required} mode {mode:o} uid {uid} gid {gid}"
        ),
        RunMount::Ssh { id, target, required, mode, uid, gid } => {
            format!("ssh id {id:?} target {target} required {required} mode {mode:o} uid {uid} gid {gid}")
        }
    }
}

/// The image config, one value a line; unset fields are left out (an unset
/// CMD is not `[]`, which is shown).
fn config(c: &ImageConfig) -> String {
    let mut out = String::from("config\n");
    let mut field = |key: &str, value: &str| {
        let _ = writeln!(out, "  {key} {value}");
    };
    c.env.iter().for_each(|e| field("env", e));
    c.entrypoint.iter().for_each(|e| field("entrypoint", &format!("{e:?}")));
    c.cmd.iter().for_each(|e| field("cmd", &format!("{e:?}")));
    if !c.working_dir.is_empty() {
        field("workdir", &c.working_dir);
    }
    if !c.user.is_empty() {
        field("user", &c.user);
    }
    c.labels.iter().for_each(|(k, v)| field("label", &format!("{k}={v}")));
    c.exposed_ports.iter().for_each(|p| field("expose", p));
    c.volumes.iter().for_each(|v| field("volume", v));
    c.stop_signal.iter().for_each(|s| field("stopsignal", s));
    c.shell.iter().for_each(|s| field("shell", &format!("{s:?}")));
    if let Some(h) = &c.healthcheck {
        let d = [h.interval, h.timeout, h.start_period, h.start_interval];
        field("healthcheck", &format!("{:?} durations(ns) {d:?} retries {}", h.test, h.retries));
    }
    c.on_build.iter().for_each(|t| field("onbuild", t));
    c.author.iter().for_each(|a| field("author", a));
    out += "history\n";
    for h in &c.history {
        let _ = writeln!(out, "  {} {}", if h.empty_layer { "     " } else { "LAYER" }, h.created_by);
    }
    out
}

/// A line diff good enough for short files: expected lines missing from
/// the actual output with `-`, new ones with `+`, in order.
fn diff(expected: &str, actual: &str) -> String {
    let (e, a): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    // Longest common subsequence, then walk it.
    let mut lcs = vec![vec![0usize; a.len() + 1]; e.len() + 1];
    for i in (0..e.len()).rev() {
        for j in (0..a.len()).rev() {
            lcs[i][j] = if e[i] == a[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < e.len() || j < a.len() {
        if i < e.len() && j < a.len() && e[i] == a[j] {
            let _ = writeln!(out, "  {}", e[i]);
            (i, j) = (i + 1, j + 1);
        } else if i < e.len() && (j == a.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            let _ = writeln!(out, "- {}", e[i]);
            i += 1;
        } else {
            let _ = writeln!(out, "+ {}", a[j]);
            j += 1;
        }
    }
    out
}
