//! Properties of the public API that a golden file cannot show: pinned full
//! digests, the fields of [`Error`], and inputs too big to keep as files.
//! Whole-Dockerfile expectations live in `golden/` (see `golden.rs`).

mod support;

use kiln_frontend::{build_graph, BuildOptions, Error, ErrorKind};
use support::{opts, FakeResolver};

fn lower_err(text: &str, o: &BuildOptions) -> Error {
    match build_graph(text, o, &FakeResolver::default()) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e,
    }
}

#[test]
fn digests_are_stable() {
    let text = "FROM scratch\nCOPY a /";
    let one = build_graph(text, &opts(&[], None), &FakeResolver::default()).unwrap();
    let two = build_graph(text, &opts(&[], None), &FakeResolver::default()).unwrap();
    assert_eq!(one.target, two.target);
    // The canonical encoding is part of the contract: this digest must not change
    // across machines or releases without a reason.
    // sha256 of `{"op":"scratch","inputs":[]}`.
    let copy = one.graph.get(&one.target).unwrap();
    assert_eq!(copy.inputs[0].as_str(), "sha256:93572e4502834635e4089eeaf4c8d6f9f73f51d5d07e4fcd7d5462e86303422d");
    // sha256 of `{"op":{"copy":{"from":"context","sources":["a"],"dest":"/",
    // "chown":null,"chmod":null}},"inputs":["sha256:9357…"]}`.
    assert_eq!(one.target.as_str(), "sha256:8596a1199531900ccdbb2c5290ca5d084eccd97b0336033af967bbc8b836136d");
}

#[test]
fn error_fields() {
    let mut o = opts(&[], None);
    o.dockerfile_name = "app/Containerfile".to_owned();
    let e = lower_err("FROM busybox\n  RUNN x", &o);
    assert_eq!((e.line(), e.column()), (Some(2), Some(3)));
    assert_eq!(e.file, "app/Containerfile");
    assert!(matches!(e.kind, ErrorKind::Parse(_)));
    let e = lower_err("FROM busybox\nCOPY --from=nope a /", &o);
    assert!(matches!(e.kind, ErrorKind::Lower(_)));
    let e = lower_err("ARG A", &o);
    assert_eq!((e.location, e.line()), (None, None));
    // No name given: "Dockerfile".
    let e = build_graph("", &BuildOptions::default(), &FakeResolver::default()).unwrap_err();
    assert!(e.to_string().starts_with("Dockerfile: "), "{e}");
}

/// Hostile nesting is an error or just works; it never overflows the stack.
/// Test threads have small stacks, so these would crash if anything recursed
/// once per level.
#[test]
fn deep_nesting_does_not_overflow_the_stack() {
    let deep = 20_000;
    let word = format!("{}x{}", "${A:-".repeat(deep), "}".repeat(deep));
    // Continuations keep each line within BuildKit's line length limit.
    let lines: Vec<String> = word.as_bytes().chunks(1_000).map(|c| String::from_utf8_lossy(c).into_owned()).collect();
    let word = lines.join("\\\n");
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

/// BuildKit's commitToHistory: every row its Dockerfile frontend writes has
/// its comment, and only rows of steps that ran (RUN, COPY, ADD) end with
/// ` # buildkit` — not WORKDIR, though it makes a layer.
#[test]
fn history_rows_are_marked_as_buildkit_marks_them() {
    let text = "FROM busybox\nENV A=1\nWORKDIR /w\nRUN true\nCOPY a .\nADD b .\nCMD x";
    let built = build_graph(text, &opts(&[], None), &FakeResolver::default()).unwrap();
    let rows: Vec<(&str, Option<&str>)> =
        built.config.history.iter().map(|h| (h.created_by.as_str(), h.comment.as_deref())).collect();
    let ours = Some("buildkit.dockerfile.v0");
    assert_eq!(
        rows,
        [
            // A base image's rows keep their own comment (none here).
            ("base layer of busybox:latest", None),
            ("ENV A=1", ours),
            ("WORKDIR /w", ours),
            ("RUN /bin/sh -c true # buildkit", ours),
            ("COPY a . # buildkit", ours),
            ("ADD b . # buildkit", ours),
            (r#"CMD ["/bin/sh" "-c" "x"]"#, ours),
        ]
    );
}

/// BuildKit's dispatchCmd sets ArgsEscaped; dispatchEntrypoint leaves it.
#[test]
fn cmd_sets_args_escaped_and_entrypoint_does_not() {
    let escaped =
        |text: &str| build_graph(text, &opts(&[], None), &FakeResolver::default()).unwrap().config.args_escaped;
    assert!(!escaped("FROM busybox\nENTRYPOINT [\"x\"]"));
    assert!(escaped("FROM busybox\nCMD [\"x\"]"));
    assert!(escaped("FROM busybox\nCMD [\"x\"]\nENTRYPOINT [\"y\"]"));
    assert!(escaped("FROM busybox AS a\nCMD [\"x\"]\nFROM a\nENTRYPOINT [\"y\"]"));
}

#[test]
fn run_requirements_list_what_each_built_step_asks() {
    let text = "\
FROM busybox AS tools
RUN --mount=type=secret,id=tools-token,required true
FROM busybox AS unused
RUN --mount=type=secret,id=never-asked,required --network=host true
FROM tools
RUN plain
RUN --mount=type=secret,id=npm --mount=type=secret,id=aws,required=true --mount=type=cache,target=/c true
RUN --mount=type=ssh --mount=type=ssh,id=gh,required true
RUN --network=host --security=insecure true
RUN --network=none --security=sandbox true
";
    let bg = build_graph(text, &opts(&[], None), &FakeResolver::default()).unwrap();
    let rows: Vec<String> = bg
        .run_requirements()
        .iter()
        .map(|r| {
            let ids = |list: &[kiln_frontend::RequiredId]| {
                list.iter().map(|s| format!("{}{}", s.id, if s.required { "!" } else { "" })).collect::<Vec<_>>()
            };
            assert_eq!(bg.sources.get(&r.vertex).copied(), r.location);
            format!(
                "{} secrets {:?} ssh {:?} host {} insecure {}",
                r.location.unwrap(),
                ids(&r.secrets),
                ids(&r.ssh),
                r.network_host,
                r.insecure
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            "2:1 secrets [\"tools-token!\"] ssh [] host false insecure false",
            "7:1 secrets [\"npm\", \"aws!\"] ssh [] host false insecure false",
            "8:1 secrets [] ssh [\"default\", \"gh!\"] host false insecure false",
            "9:1 secrets [] ssh [] host true insecure true",
        ]
    );
}

#[test]
fn run_flags_at_their_defaults_keep_the_step_digest() {
    let digest = |run: &str| {
        let bg = build_graph(&format!("FROM busybox\n{run}"), &opts(&[], None), &FakeResolver::default()).unwrap();
        bg.target
    };
    let plain = digest("RUN true");
    assert_eq!(digest("RUN --network=default --security=sandbox true"), plain);
    for changed in [
        "RUN --network=none true",
        "RUN --network=host true",
        "RUN --security=insecure true",
        "RUN --mount=type=secret,id=s true",
        "RUN --mount=type=cache,target=/c true",
    ] {
        assert_ne!(digest(changed), plain, "{changed}");
    }
}

/// Where each vertex comes from, for `kiln build --explain` and `--no-cache-filter`.
#[test]
fn places_name_each_steps_stage_number_text_and_args() {
    use kiln_frontend::StepPlace;
    let text = "FROM scratch AS a\nARG V=1\nCOPY x /x\nFROM scratch AS b\nENV E=1\nCOPY  x /x\nCOPY y /y\n\
                FROM a\nCOPY --from=b /y /z\n";
    let g = build_graph(text, &opts(&[], None), &FakeResolver::default()).unwrap();
    assert_eq!(g.stage_names, [Some("a".to_owned()), Some("b".to_owned()), None]);
    let place = |stage, step, text: &str, args: &[(&str, &str)]| StepPlace {
        stage,
        step,
        text: text.to_owned(),
        args: args.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
    };
    let mut places: Vec<Vec<StepPlace>> = g.places.values().cloned().collect();
    places.sort_by_key(|p| (p[0].stage, p[0].step));
    assert_eq!(
        places,
        [
            // Equal steps of two stages: one vertex, two places.
            vec![place(0, 1, "FROM scratch AS a", &[]), place(1, 1, "FROM scratch AS b", &[])],
            vec![place(0, 2, "COPY x /x", &[("V", "1")]), place(1, 2, "COPY  x /x", &[])],
            vec![place(1, 3, "COPY y /y", &[])],
            // `FROM a` makes no vertex of its own; it starts with a's ARGs.
            vec![place(2, 2, "COPY --from=b /y /z", &[("V", "1")])],
        ]
    );
}
