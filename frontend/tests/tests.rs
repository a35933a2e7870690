//! Lowering whole Dockerfiles through the public API, with a fake image resolver.

use std::cell::RefCell;
use std::collections::BTreeMap;

use kiln_frontend::{
    build_graph, BuildGraph, BuildOptions, CopyFrom, Error, History, ImageConfig, ImageResolver, Op, ResolvedImage,
};
use kiln_solver::Digest;

/// Knows a few images and counts lookups. `broken` fails to resolve.
#[derive(Default)]
struct FakeResolver {
    calls: RefCell<BTreeMap<String, usize>>,
}

impl ImageResolver for FakeResolver {
    fn resolve(&self, reference: &str) -> Result<Option<ResolvedImage>, String> {
        *self.calls.borrow_mut().entry(reference.to_owned()).or_default() += 1;
        let (name, env, cmd): (&str, &[&str], &[&str]) = match reference {
            "busybox" | "busybox:latest" => ("busybox:latest", &["PATH=/bin"], &["sh"]),
            "golang:1.22" => ("golang:1.22", &["PATH=/go/bin:/bin", "GOPATH=/go"], &["bash"]),
            "broken" | "broken:latest" => return Err("registry on fire".to_owned()),
            _ => return Ok(None),
        };
        Ok(Some(ResolvedImage {
            name: name.to_owned(),
            digest: format!("sha256:{}", name.replace(':', "-")),
            config: ImageConfig {
                env: env.iter().map(|s| s.to_string()).collect(),
                cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
                working_dir: String::new(),
                history: vec![History {
                    created: None,
                    created_by: format!("base layer of {name}"),
                    comment: None,
                    empty_layer: false,
                }],
                ..ImageConfig::default()
            },
        }))
    }
}

fn opts(build_args: &[(&str, &str)], target: Option<&str>) -> BuildOptions {
    BuildOptions {
        dockerfile_name: "Dockerfile".to_owned(),
        build_args: build_args.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        target: target.map(str::to_owned),
        platform: Some("linux/arm64/v8".to_owned()),
    }
}

fn lower(text: &str) -> BuildGraph {
    build_graph(text, &opts(&[], None), &FakeResolver::default()).unwrap()
}

fn lower_err(text: &str, o: &BuildOptions) -> Error {
    match build_graph(text, o, &FakeResolver::default()) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e,
    }
}

/// The target's vertices, inputs first, one per line:
/// `#n name | op | <- #inputs`.
fn render(bg: &BuildGraph) -> String {
    fn visit(bg: &BuildGraph, d: &Digest, seen: &mut Vec<Digest>, out: &mut Vec<String>) {
        if seen.contains(d) {
            return;
        }
        let v = bg.graph.get(d).expect("vertex in graph");
        for input in &v.inputs {
            visit(bg, input, seen, out);
        }
        seen.push(d.clone());
        let op = match &v.op {
            Op::Scratch => "scratch".to_owned(),
            Op::Image { name, digest } => format!("image {name} {digest}"),
            Op::Copy(c) => format!(
                "copy {} {:?} -> {}{}{}",
                if c.from == CopyFrom::Context { "context" } else { "input" },
                c.sources,
                c.dest,
                c.chown.as_ref().map(|s| format!(" chown={s}")).unwrap_or_default(),
                c.chmod.as_ref().map(|s| format!(" chmod={s}")).unwrap_or_default(),
            ),
            Op::Exec(e) => format!("exec {:?} env={:?} cwd={} user={}", e.args, e.env, e.cwd, e.user),
        };
        let inputs: Vec<String> =
            v.inputs.iter().map(|i| format!("#{}", seen.iter().position(|s| s == i).unwrap() + 1)).collect();
        let arrow = if inputs.is_empty() { String::new() } else { format!(" <- {}", inputs.join(" ")) };
        out.push(format!("#{} {} | {op}{arrow}", seen.len(), v.name));
    }
    let (mut seen, mut out) = (Vec::new(), Vec::new());
    visit(bg, &bg.target, &mut seen, &mut out);
    assert_eq!(seen.len(), bg.graph.len(), "the graph holds only what the target needs");
    out.join("\n")
}

fn history(config: &ImageConfig) -> Vec<String> {
    config.history.iter().map(|h| format!("{}{}", if h.empty_layer { "  " } else { "L " }, h.created_by)).collect()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn single_stage() {
    let bg = lower(
        "FROM busybox\n\
         ENV PATH=/usr/bin:/bin A=\"x y\"\n\
         WORKDIR app\n\
         COPY --chown=1:1 src lib ./\n\
         RUN make \\\n    all\n\
         USER nobody\n\
         EXPOSE 80 53/udp\n\
         LABEL a=b\n\
         CMD [\"./app\"]\n",
    );
    assert_eq!(
        render(&bg),
        "#1 [1/3] FROM busybox | image busybox:latest sha256:busybox-latest\n\
         #2 [2/3] COPY --chown=1:1 src lib ./ | copy context [\"src\", \"lib\"] -> /app/ chown=1:1 <- #1\n\
         #3 [3/3] RUN make     all | exec [\"/bin/sh\", \"-c\", \"make     all\"] env=[\"PATH=/usr/bin:/bin\", \"A=x y\"] cwd=/app user= <- #2"
    );
    let c = &bg.config;
    assert_eq!(c.env, strings(&["PATH=/usr/bin:/bin", "A=x y"]));
    assert_eq!(c.cmd, Some(strings(&["./app"])));
    assert_eq!(c.entrypoint, None);
    assert_eq!((c.working_dir.as_str(), c.user.as_str()), ("/app", "nobody"));
    assert_eq!(c.labels, BTreeMap::from([("a".to_owned(), "b".to_owned())]));
    assert_eq!(c.exposed_ports.iter().collect::<Vec<_>>(), ["53/udp", "80/tcp"]);
    assert_eq!(
        history(c),
        [
            "L base layer of busybox:latest",
            "  ENV PATH=/usr/bin:/bin A=x y",
            "  WORKDIR /app",
            "L COPY --chown=1:1 src lib ./",
            "L RUN /bin/sh -c make     all",
            "  USER nobody",
            "  EXPOSE 80/tcp 53/udp",
            "  LABEL a=b",
            "  CMD [\"./app\"]",
        ]
    );
    assert!(bg.warnings.is_empty());
}

const MULTI: &str = "\
ARG GO=1.22
ARG UNSET
FROM golang:${GO} AS build
ARG GO
ARG VERSION=dev
ENV CGO_ENABLED=0
WORKDIR /src
COPY . .
RUN go build -o /out/app
FROM broken AS unused
RUN false
FROM scratch
COPY --from=build /out/app /app
COPY --from=0 /src/go.mod /
ENTRYPOINT [\"/app\"]
";

#[test]
fn multi_stage() {
    let resolver = FakeResolver::default();
    let o = opts(&[("VERSION", "1.0"), ("EXTRA", "x"), ("HTTP_PROXY", "http://p")], None);
    let bg = build_graph(MULTI, &o, &resolver).unwrap();
    assert_eq!(
        render(&bg),
        "#1 [2 1/3] FROM scratch | scratch\n\
         #2 [build 1/3] FROM golang:${GO} AS build | image golang:1.22 sha256:golang-1.22\n\
         #3 [build 2/3] COPY . . | copy context [\".\"] -> /src/ <- #2\n\
         #4 [build 3/3] RUN go build -o /out/app | exec [\"/bin/sh\", \"-c\", \"go build -o /out/app\"] \
         env=[\"PATH=/go/bin:/bin\", \"GOPATH=/go\", \"CGO_ENABLED=0\", \"GO=1.22\", \"VERSION=1.0\", \"HTTP_PROXY=http://p\"] \
         cwd=/src user= <- #3\n\
         #5 [2 2/3] COPY --from=build /out/app /app | copy input [\"/out/app\"] -> /app <- #1 #4\n\
         #6 [2 3/3] COPY --from=0 /src/go.mod / | copy input [\"/src/go.mod\"] -> / <- #5 #4"
    );
    assert_eq!(
        history(&bg.config),
        ["L COPY --from=build /out/app /app", "L COPY --from=0 /src/go.mod /", "  ENTRYPOINT [\"/app\"]",]
    );
    assert_eq!(bg.config.entrypoint, Some(strings(&["/app"])));
    // FROM scratch sets no PATH, so the stage gets docker's default.
    assert_eq!(bg.config.cmd, None);
    assert_eq!(bg.config.env, ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]);
    assert_eq!(bg.warnings, ["build-arg EXTRA was not consumed: no ARG EXTRA in the stages built"]);
    // The unused stage's base is never looked up; each reference once.
    assert_eq!(*resolver.calls.borrow(), BTreeMap::from([("golang:1.22".to_owned(), 1)]));
}

#[test]
fn targets() {
    for target in ["build", "BUILD", "0"] {
        let bg = build_graph(MULTI, &opts(&[], Some(target)), &FakeResolver::default()).unwrap();
        assert_eq!(bg.graph.len(), 3, "target {target}");
        assert_eq!(bg.config.working_dir, "/src");
        assert_eq!(
            history(&bg.config),
            [
                "L base layer of golang:1.22",
                "  ARG GO",
                "  ARG VERSION=dev",
                "  ENV CGO_ENABLED=0",
                "  WORKDIR /src",
                "L COPY . .",
                "L RUN |2 GO=1.22 VERSION=dev /bin/sh -c go build -o /out/app",
            ]
        );
        // ARGs never reach the image config.
        assert_eq!(bg.config.env, strings(&["PATH=/go/bin:/bin", "GOPATH=/go", "CGO_ENABLED=0"]));
    }
    let e = lower_err(MULTI, &opts(&[], Some("unused")));
    assert_eq!(e.to_string(), "Dockerfile:10:6: cannot look up image \"broken\": registry on fire");
    let e = lower_err(MULTI, &opts(&[], Some("nope")));
    assert_eq!(e.to_string(), "Dockerfile: target stage \"nope\" not found");
    assert_eq!(e.location, None);
}

#[test]
fn stages_inherit_config_only_through_from() {
    let text = "\
FROM busybox AS one
ENV A=1
CMD [\"one\"]
FROM one AS two
ENTRYPOINT [\"e\"]
FROM one AS three
CMD c
ENTRYPOINT [\"e\"]
FROM busybox AS four
ENTRYPOINT [\"x\"]
FROM busybox AS five
";
    let config = |target: &str| build_graph(text, &opts(&[], Some(target)), &FakeResolver::default()).unwrap().config;
    let two = config("two");
    assert_eq!((two.cmd, two.entrypoint), (None, Some(strings(&["e"]))));
    assert_eq!(two.env, strings(&["PATH=/bin", "A=1"]));
    assert_eq!(
        history(&config("two")),
        ["L base layer of busybox:latest", "  ENV A=1", "  CMD [\"one\"]", "  ENTRYPOINT [\"e\"]",]
    );
    let three = config("three");
    assert_eq!(three.cmd, Some(strings(&["/bin/sh", "-c", "c"])));
    assert_eq!(config("four").cmd, None);
    let five = config("five");
    assert_eq!((five.cmd, five.env), (Some(strings(&["sh"])), strings(&["PATH=/bin"])));
    // `two` builds on `one`: same vertex, no new one.
    let g = build_graph(text, &opts(&[], Some("two")), &FakeResolver::default()).unwrap();
    assert_eq!(render(&g), "#1 [one 1/1] FROM busybox AS one | image busybox:latest sha256:busybox-latest");
}

/// Global lines, stage lines (after `FROM busybox`), build args, the value of label `v`.
type ScopeCase = (&'static str, &'static str, &'static [(&'static str, &'static str)], &'static str);

#[test]
fn arg_and_env_scoping() {
    let cases: &[ScopeCase] = &[
        ("ARG A=1", "LABEL v=${A:-unset}", &[], "unset"),
        ("ARG A=1", "ARG A\nLABEL v=$A", &[], "1"),
        ("ARG A=1", "ARG A\nLABEL v=$A", &[("A", "2")], "2"),
        ("ARG A", "ARG A\nLABEL v=${A-unset}", &[], "unset"),
        ("", "ARG A=1\nLABEL v=$A", &[("A", "3")], "3"),
        ("", "ARG A=1\nENV A=env\nLABEL v=$A", &[], "env"),
        ("", "ENV A=env\nARG A=1\nLABEL v=$A", &[("A", "b")], "env"),
        ("", "ENV A=1\nENV A=2 B=$A\nLABEL v=$B", &[], "1"),
        ("", "ARG A=1\nARG B=${A}2\nLABEL v=$B", &[], "12"),
        ("", "ARG A=1 B=\"$A x\"\nLABEL v=$B", &[], "1 x"),
        ("", "ENV A \"q\" r\nLABEL v=$A", &[], "q r"),
        ("", "LABEL v=$HTTP_PROXY", &[("HTTP_PROXY", "p")], ""),
        ("", "LABEL v='$A' w=\"$PATH\" A=\\$x", &[], "$A"),
        ("ARG T=b\nARG T2=${T}x", "ARG T2\nLABEL v=$T2", &[], "bx"),
    ];
    for (global, stage, args, want) in cases {
        let text = format!("{global}\nFROM busybox\n{stage}\n");
        let bg =
            build_graph(&text, &opts(args, None), &FakeResolver::default()).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(bg.config.labels["v"], *want, "Dockerfile:\n{text}");
    }
}

#[test]
fn run_environment() {
    let bg = build_graph(
        "ARG G=g\nFROM busybox\nARG G\nARG X=1\nENV Y=2 X=env\nARG NO_VALUE\nRUN [\"env\"]\nUSER 1:2",
        &opts(&[("no_proxy", "local"), ("UNUSED", "u")], None),
        &FakeResolver::default(),
    )
    .unwrap();
    let run = bg.graph.get(&bg.target).unwrap();
    let Op::Exec(exec) = &run.op else { panic!("{:?}", run.op) };
    assert_eq!(exec.args, ["env"]);
    assert_eq!(exec.env, strings(&["PATH=/bin", "Y=2", "X=env", "G=g", "no_proxy=local"]));
    assert_eq!((exec.cwd.as_str(), exec.user.as_str()), ("/", ""));
    assert_eq!(bg.config.user, "1:2");
    assert_eq!(bg.config.history[5].created_by, "RUN |1 G=g env");
    assert_eq!(bg.warnings, ["build-arg UNUSED was not consumed: no ARG UNUSED in the stages built"]);
}

#[test]
fn copy_destinations_and_sources() {
    let bg = lower(
        "FROM scratch\n\
         COPY a /abs\n\
         WORKDIR /app\n\
         COPY a b\n\
         COPY a .\n\
         COPY a sub/\n\
         COPY [\"x y\", \"../up/\"]\n\
         COPY --chmod=0755 --from=busybox /bin/sh ./\n",
    );
    let ops: Vec<String> = render(&bg).lines().map(|l| l.split(" | ").nth(1).unwrap().to_owned()).collect();
    assert_eq!(
        ops,
        [
            "scratch",
            "copy context [\"a\"] -> /abs <- #1",
            "copy context [\"a\"] -> /app/b <- #2",
            "copy context [\"a\"] -> /app/ <- #3",
            "copy context [\"a\"] -> /app/sub/ <- #4",
            "copy context [\"x y\"] -> /up/ <- #5",
            "image busybox:latest sha256:busybox-latest",
            "copy input [\"/bin/sh\"] -> /app/ chmod=0755 <- #6 #7",
        ]
    );
    assert_eq!(bg.config.history.last().unwrap().created_by, "COPY --from=busybox --chmod=0755 /bin/sh ./");
}

#[test]
fn equal_steps_are_one_vertex_and_digests_are_stable() {
    let text = "\
FROM scratch AS a
COPY x /x
FROM scratch AS b
COPY x /x
FROM busybox
COPY --from=a /x /a
COPY --from=b /x /b
COPY --from=busybox / /c
";
    let resolver = FakeResolver::default();
    let one = build_graph(text, &opts(&[], None), &resolver).unwrap();
    // scratch, COPY x (shared by a and b), busybox, three COPY --from.
    assert_eq!(one.graph.len(), 6);
    assert_eq!(resolver.calls.borrow()["busybox"], 1);
    let two = build_graph(text, &opts(&[], None), &FakeResolver::default()).unwrap();
    assert_eq!(one.target, two.target);
    // The canonical encoding is part of the contract: this digest must not change
    // across machines or releases without a reason.
    // sha256 of `{"op":"scratch","inputs":[]}`.
    let scratch = lower("FROM scratch\nCOPY a /");
    let copy = scratch.graph.get(&scratch.target).unwrap();
    assert_eq!(copy.inputs[0].as_str(), "sha256:93572e4502834635e4089eeaf4c8d6f9f73f51d5d07e4fcd7d5462e86303422d");
    // sha256 of `{"op":{"copy":{"from":"context","sources":["a"],"dest":"/",
    // "chown":null,"chmod":null}},"inputs":["sha256:9357…"]}`.
    assert_eq!(scratch.target.as_str(), "sha256:8596a1199531900ccdbb2c5290ca5d084eccd97b0336033af967bbc8b836136d");
}

#[test]
fn errors() {
    let cases: &[(&str, &str)] = &[
        ("", "Dockerfile: no instructions (the file is empty or holds only comments)"),
        ("ARG A=1\n", "Dockerfile: no FROM instruction"),
        ("FROM busybox\n\nRUNN make", "Dockerfile:3:1: unknown instruction \"RUNN\" (did you mean \"RUN\"?)"),
        ("FROM busybox\n\n\n\nADD . /", "Dockerfile:5:1: ADD is not supported yet"),
        ("FROM busybox\nCMD [\"a\"", "Dockerfile:2:5: unterminated JSON array"),
        (
            "FROM nope:latest",
            "Dockerfile:1:6: base image \"nope:latest\" not found: build or load it first (kiln load / kiln import)",
        ),
        ("FROM broken", "Dockerfile:1:6: cannot look up image \"broken\": registry on fire"),
        ("FROM  $NOPE", "Dockerfile:1:7: base image name \"$NOPE\" expands to nothing"),
        (
            "FROM busybox\nRUN x\n\nCOPY --from=foo a /",
            "Dockerfile:4:1: COPY --from=foo: no stage or image named \"foo\"",
        ),
        (
            "FROM y AS x\nFROM scratch AS y",
            "Dockerfile:1:6: FROM y: that stage comes later; a stage can only build on earlier ones",
        ),
        ("FROM scratch\nFROM X AS x", "Dockerfile:2:6: FROM X: a stage cannot build on itself"),
        ("FROM scratch AS a\nCOPY --from=a x /", "Dockerfile:2:1: COPY --from=a: a stage cannot copy from itself"),
        (
            "FROM scratch\nCOPY --from=1 x /\nFROM scratch\nCOPY --from=0 x /",
            "Dockerfile:2:1: COPY --from=1: that stage comes later; a stage can only copy from earlier ones",
        ),
        (
            "FROM scratch\nCOPY a b  c",
            "Dockerfile:2:11: COPY with more than one source needs a directory destination ending in \"/\", not \"c\"",
        ),
        (
            "FROM scratch\nCOPY --chmod=u+x a /",
            "Dockerfile:2:6: invalid --chmod=u+x: expected an octal mode such as 0755",
        ),
        ("FROM scratch\nENV A=1 B=\"x", "Dockerfile:2:11: missing closing double quote"),
        ("FROM scratch\nWORKDIR ${A:?needs A}", "Dockerfile:2:9: A: needs A"),
        (
            "FROM scratch\nEXPOSE 80 80/icmp",
            "Dockerfile:2:11: invalid port \"80/icmp\": expected PORT[/tcp|udp|sctp] or a range such as 8000-8010/udp",
        ),
        ("FROM scratch\nCOPY a $NOPE /", "Dockerfile:2:8: COPY source expands to nothing"),
        ("FROM scratch\nCOPY a ${NOPE}", "Dockerfile:2:8: COPY destination expands to nothing"),
        ("FROM scratch\nUSER $NOBODY", "Dockerfile:2:6: USER expands to nothing"),
        ("FROM scratch\nRUN cat <<EOF\nhi\nEOF", "Dockerfile:2:9: heredocs are not supported yet"),
    ];
    for (text, want) in cases {
        // Stages after the target are not lowered: aim at the first stage.
        let target = (text.contains("--from=1") || text.starts_with("FROM y AS x")).then_some("0");
        assert_eq!(lower_err(text, &opts(&[], target)).to_string(), *want, "Dockerfile:\n{text}");
    }
}

#[test]
fn error_fields() {
    let mut o = opts(&[], None);
    o.dockerfile_name = "app/Containerfile".to_owned();
    let e = lower_err("FROM busybox\n  RUNN x", &o);
    assert_eq!((e.line(), e.column()), (Some(2), Some(3)));
    assert_eq!(e.file, "app/Containerfile");
    assert!(e.to_string().starts_with("app/Containerfile:2:3: unknown instruction"));
    assert!(matches!(e.kind, kiln_frontend::ErrorKind::Parse(_)));
    // No name given: "Dockerfile".
    let e = build_graph("", &BuildOptions::default(), &FakeResolver::default()).unwrap_err();
    assert!(e.to_string().starts_with("Dockerfile: "), "{e}");
}

#[test]
fn platform_args_are_predefined_for_declared_stage_args() {
    let text = "FROM scratch AS base\nARG TARGETARCH\nARG BUILDPLATFORM\nRUN echo $TARGETARCH\n";
    let bg = build_graph(text, &opts(&[], None), &FakeResolver::default()).unwrap();
    let exec = bg
        .graph
        .closure(&bg.target)
        .unwrap()
        .into_iter()
        .find_map(|v| match &v.op {
            Op::Exec(e) => Some(e.env.clone()),
            _ => None,
        })
        .unwrap();
    assert!(exec.contains(&"TARGETARCH=arm64".to_string()), "{exec:?}");
    assert!(exec.contains(&"BUILDPLATFORM=linux/arm64/v8".to_string()), "{exec:?}");
    assert!(!exec.iter().any(|e| e.starts_with("TARGETOS=")), "undeclared platform ARGs stay out: {exec:?}");
}

/// Hostile nesting is an error or just works; it never overflows the stack.
/// Test threads have small stacks, so these would crash if anything recursed
/// once per level.
#[test]
fn deep_nesting_does_not_overflow_the_stack() {
    let deep = 20_000;
    let word = format!("{}x{}", "${A:-".repeat(deep), "}".repeat(deep));
    let e = lower_err(&format!("FROM scratch\n\nLABEL a={word}\n"), &opts(&[], None));
    assert_eq!(
        e.to_string(),
        "Dockerfile:3:9: variable expansion nests deeper than 100 levels: flatten the ${…:-…} chain"
    );

    // A chain of stages, each FROM the one before and copying from the one
    // before that: every stage is needed, and each is lowered once.
    let mut text = String::from("FROM busybox AS s0\nFROM s0 AS s1\n");
    for i in 2..2_000 {
        text += &format!("FROM s{} AS s{i}\nCOPY --from=s{} /x /x{i}\n", i - 1, i - 2);
    }
    let resolver = FakeResolver::default();
    let bg = build_graph(&text, &opts(&[], None), &resolver).unwrap();
    assert_eq!(bg.graph.closure(&bg.target).unwrap().len(), 1 + 1_998);
    assert_eq!(resolver.calls.borrow()["busybox"], 1);
}
