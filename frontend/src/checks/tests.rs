//! Each rule, where it fires and where it must not, on small files; then the
//! directive and the build's own use of the checks.

use super::*;
use crate::options::ResolvedImage;
use crate::ImageConfig;

/// Knows `busybox` (PATH and HOME set) and `shelly` (a SHELL set); nothing else.
struct Images;

impl ImageResolver for Images {
    fn resolve(&self, reference: &str) -> Result<Option<ResolvedImage>, String> {
        let config = match reference {
            "busybox" => ImageConfig { env: vec!["PATH=/bin".into(), "HOME=/root".into()], ..Default::default() },
            "shelly" => ImageConfig { shell: Some(vec!["/bin/bash".into(), "-c".into()]), ..Default::default() },
            _ => return Ok(None),
        };
        Ok(Some(ResolvedImage { name: reference.into(), digest: "sha256:0".into(), config }))
    }
}

fn lint_with(text: &str, opts: &BuildOptions) -> Vec<String> {
    let report = check(text, opts, &Images).unwrap_or_else(|e| panic!("{text}\n{e}"));
    report.warnings.iter().map(|w| format!("{}: {}: {}", w.location.line, w.rule, w.message)).collect()
}

fn lint(text: &str) -> Vec<String> {
    lint_with(text, &BuildOptions::default())
}

/// `(Dockerfile, warnings)`: the warnings as `line: Rule: message`, in order.
fn table(cases: &[(&str, &[&str])]) {
    for (text, want) in cases {
        assert_eq!(lint(text), *want, "Dockerfile:\n{text}");
    }
}

#[test]
fn stage_names() {
    table(&[
        ("FROM scratch AS Builder\n", &["1: StageNameCasing: Stage name 'Builder' should be lowercase"]),
        ("FROM scratch AS builder\n", &[]),
        ("FROM scratch\n", &[]),
        (
            "FROM scratch AS a\nFROM scratch AS A\n",
            &[
                "2: StageNameCasing: Stage name 'A' should be lowercase",
                "2: DuplicateStageName: Duplicate stage name \"a\", stage names should be unique",
            ],
        ),
        ("FROM scratch AS a\nFROM scratch AS b\n", &[]),
        (
            "FROM busybox AS scratch\n",
            &["1: ReservedStageName: Stage name should not use the same name as reserved stage \"scratch\""],
        ),
        (
            "FROM busybox AS Context\n",
            &[
                "1: StageNameCasing: Stage name 'Context' should be lowercase",
                "1: ReservedStageName: Stage name should not use the same name as reserved stage \"context\"",
            ],
        ),
    ]);
}

#[test]
fn keyword_casing() {
    table(&[
        ("FROM scratch as builder\n", &["1: FromAsCasing: 'as' and 'FROM' keywords' casing do not match"]),
        ("from scratch AS builder\n", &["1: FromAsCasing: 'AS' and 'from' keywords' casing do not match"]),
        ("from scratch as builder\nfrom scratch AS b2\nFROM scratch AS b3\n", &["2: FromAsCasing: 'AS' and 'from' keywords' casing do not match", "3: ConsistentInstructionCasing: Command 'FROM' should match the case of the command majority (lowercase)"]),
        (
            "From scratch as b\n",
            &["1: ConsistentInstructionCasing: Command 'From' should match the case of the command majority (uppercase)"],
        ),
        (
            "FROM scratch\nrun echo\nCOPY a b\n",
            &["2: ConsistentInstructionCasing: Command 'run' should match the case of the command majority (uppercase)"],
        ),
        (
            "from scratch\nrun x\nCOPY a b\n",
            &["3: ConsistentInstructionCasing: Command 'COPY' should match the case of the command majority (lowercase)"],
        ),
        // A tie is uppercase; the ARGs before FROM do not count.
        (
            "arg A\narg B\nfrom scratch\nCOPY a b\n",
            &["3: ConsistentInstructionCasing: Command 'from' should match the case of the command majority (uppercase)"],
        ),
        ("FROM scratch\nRUN x\n", &[]),
        ("FROM busybox\nRUN a \\\n\n  b \\\n# note\n  c\nRUN d\n", &["6: NoEmptyContinuation: Empty continuation line"]),
        ("FROM busybox\nRUN a \\\n# note\n  c\n\nRUN d\n", &[]),
        ("FROM busybox\nRUN <<EOF\na\n\nb\nEOF\n", &[]),
        (
            "FROM busybox\nMAINTAINER me\n",
            &["2: MaintainerDeprecated: Maintainer instruction is deprecated in favor of using label"],
        ),
    ]);
}

#[test]
fn from_arguments() {
    table(&[
        (
            "FROM busybox:${VERSION}\n",
            &[
                "1: UndefinedArgInFrom: FROM argument 'VERSION' is not declared",
                "1: InvalidDefaultArgInFrom: Default value for ARG busybox:${VERSION} results in empty or invalid base image name",
            ],
        ),
        (
            "ARG VERSON=1\nFROM busybox${VERSION}\n",
            &["2: UndefinedArgInFrom: FROM argument 'VERSION' is not declared (did you mean VERSON?)"],
        ),
        ("ARG VERSION=1\nFROM busybox:${VERSION}\n", &[]),
        ("FROM --platform=$BUILDPLATFORM busybox\n", &[]),
        (
            "FROM --platform=$BUILDPLATFROM busybox\n",
            &["1: UndefinedArgInFrom: FROM argument 'BUILDPLATFROM' is not declared (did you mean BUILDPLATFORM?)"],
        ),
        (
            "ARG TAG\nFROM busybox:${TAG}\n",
            &["2: InvalidDefaultArgInFrom: Default value for ARG busybox:${TAG} results in empty or invalid base image name"],
        ),
        (
            "ARG IMAGE\nFROM $IMAGE\n",
            &["2: InvalidDefaultArgInFrom: Default value for ARG $IMAGE results in empty or invalid base image name"],
        ),
        ("ARG TAG=latest\nFROM busybox:${TAG}\n", &[]),
        ("ARG IMAGE\nFROM ${IMAGE:-busybox}\n", &[]),
        ("ARG A=busybox\nARG B=$A:1\nFROM $B\n", &[]),
    ]);
    let opts = BuildOptions { platform: Some("linux/arm64".into()), ..Default::default() };
    assert_eq!(lint_with("FROM --platform=$BUILDPLATFORM busybox:$TARGETARCH\n", &opts), Vec::<String>::new());
    // A build arg fills an undeclared-looking default in, but the defaults
    // alone are still judged.
    let opts = BuildOptions { build_args: [("TAG".into(), "1".into())].into(), ..Default::default() };
    assert_eq!(
        lint_with("ARG TAG\nFROM busybox:${TAG}\n", &opts),
        ["2: InvalidDefaultArgInFrom: Default value for ARG busybox:${TAG} results in empty or invalid base image name"]
    );
}

#[test]
fn commands() {
    table(&[
        (
            "FROM busybox\nCMD echo hi\nENTRYPOINT [\"x\"]\n",
            &["2: JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended behavior related to OS signals"],
        ),
        (
            "FROM busybox\nENTRYPOINT exec x\n",
            &["2: JSONArgsRecommended: JSON arguments recommended for ENTRYPOINT to prevent unintended behavior related to OS signals"],
        ),
        ("FROM busybox\nSHELL [\"/bin/sh\", \"-c\"]\nCMD echo hi\n", &[]),
        ("FROM shelly\nCMD echo hi\n", &[]),
        ("FROM busybox AS a\nSHELL [\"/bin/sh\", \"-c\"]\nFROM a\nCMD echo hi\n", &[]),
        (
            "FROM busybox\nCMD [\"a\"]\nCMD [\"b\"]\nHEALTHCHECK NONE\nHEALTHCHECK CMD [\"true\"]\nENTRYPOINT [\"e\"]\nFROM busybox\nCMD [\"c\"]\n",
            &[
                "2: MultipleInstructionsDisallowed: Multiple CMD instructions should not be used in the same stage because only the last one will be used",
                "4: MultipleInstructionsDisallowed: Multiple HEALTHCHECK instructions should not be used in the same stage because only the last one will be used",
            ],
        ),
        (
            "FROM busybox\nWORKDIR app\nWORKDIR /x\n",
            &["2: WorkdirRelativePath: Relative workdir \"app\" can have unexpected results if the base image changes"],
        ),
        ("FROM busybox\nWORKDIR /app\nWORKDIR sub\n", &[]),
        ("FROM busybox AS a\nWORKDIR /a\nFROM a\nWORKDIR rel\n", &[]),
        ("FROM busybox\nENV D=/d\nWORKDIR $D\n", &[]),
        (
            "FROM busybox\nENV A 1\nLABEL b c\n",
            &[
                "2: LegacyKeyValueFormat: \"ENV key=value\" should be used instead of legacy \"ENV key value\" format",
                "3: LegacyKeyValueFormat: \"LABEL key=value\" should be used instead of legacy \"LABEL key value\" format",
            ],
        ),
        (
            "FROM busybox\nARG API_KEY\nENV DB_PASSWORD=x PUBLIC_KEY=y KEY_FILE=/k NPM_TOKEN_VERSION=2\n",
            &[
                "2: SecretsUsedInArgOrEnv: Do not use ARG or ENV instructions for sensitive data (ARG \"API_KEY\")",
                "3: SecretsUsedInArgOrEnv: Do not use ARG or ENV instructions for sensitive data (ENV \"DB_PASSWORD\")",
            ],
        ),
    ]);
}

#[test]
fn undefined_variables() {
    table(&[
        (
            "FROM busybox\nENV PATH=$PATH:/x HOME2=$HOME\nCOPY $SRC /dst\nARG DECL\nRUN echo $NOT_CHECKED\nWORKDIR /w/$DECL\nLABEL l=$PATHH\n",
            &[
                "3: UndefinedVar: Usage of undefined variable '$SRC'",
                "7: UndefinedVar: Usage of undefined variable '$PATHH' (did you mean $PATH?)",
            ],
        ),
        // An ENV's values see the variables as they were before it.
        ("FROM busybox\nENV A=1 B=$A\n", &["2: UndefinedVar: Usage of undefined variable '$A'"]),
        ("FROM busybox\nENV A=1\nENV B=$A\n", &[]),
        // A base image nobody knows: nothing can be called undefined.
        ("FROM unknown\nCOPY $X /\n", &[]),
        ("FROM scratch\nCOPY $X /\n", &["2: UndefinedVar: Usage of undefined variable '$X'"]),
        ("FROM scratch\nCOPY ${PATH} /\n", &[]),
        ("FROM busybox AS a\nENV A=1\nARG B\nFROM a\nCOPY $A $B /\n", &[]),
        // Global ARGs reach a stage only when it declares them.
        ("ARG G=1\nFROM busybox\nCOPY $G /\n", &["3: UndefinedVar: Usage of undefined variable '$G'"]),
        ("ARG G=1\nFROM busybox\nARG G\nCOPY $G /\n", &[]),
        ("FROM busybox\nARG D=$NOPE\n", &["2: UndefinedVar: Usage of undefined variable '$NOPE' (did you mean $HOME?)"]),
        ("FROM busybox\nARG D=$NOTHING_LIKE_IT\n", &["2: UndefinedVar: Usage of undefined variable '$NOTHING_LIKE_IT'"]),
        ("FROM busybox\nCOPY --chown=$U:$G a /\n", &[
            "2: UndefinedVar: Usage of undefined variable '$G'",
            "2: UndefinedVar: Usage of undefined variable '$U'",
        ]),
        // RUN mounts' values expand (from= never does; the command is the shell's).
        ("FROM busybox\nARG ID=x\nRUN --mount=type=cache,id=$ID,target=$TARGT --mount=from=$S,target=/s echo $NO\n", &[
            "3: UndefinedVar: Usage of undefined variable '$TARGT'",
        ]),
    ]);
}

#[test]
fn platforms_and_ports() {
    let opts = BuildOptions { platform: Some("linux/amd64".into()), ..Default::default() };
    for (text, want) in [
        (
            "FROM --platform=$TARGETPLATFORM busybox\n",
            &["1: RedundantTargetPlatform: Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior"][..],
        ),
        ("FROM --platform=$BUILDPLATFORM busybox\n", &[]),
        (
            "FROM --platform=linux/amd64 busybox\n",
            &["1: FromPlatformFlagConstDisallowed: FROM --platform flag should not use constant value \"linux/amd64\""],
        ),
        ("FROM --platform=linux/amd64 busybox AS build-amd64\n", &[]),
        ("FROM --platform=linux/x86_64 busybox AS build-amd64\n", &[]),
        ("FROM --platform=linux/arm64 busybox AS linux-build\n", &[]),
        (
            "FROM busybox\nENV P=8080/UDP\nEXPOSE 80/TCP 443 $P\n",
            &[
                "3: ExposeProtoCasing: Defined protocol '80/TCP' in EXPOSE instruction should be lowercase",
                "3: ExposeProtoCasing: Defined protocol '8080/UDP' in EXPOSE instruction should be lowercase",
            ],
        ),
        (
            "FROM busybox\nEXPOSE 127.0.0.1:80:80 8080:80/tcp 80/tcp\n",
            &[
                "2: ExposeInvalidFormat: EXPOSE instruction should not define an IP address or host-port mapping, found '127.0.0.1:80:80'",
                "2: ExposeInvalidFormat: EXPOSE instruction should not define an IP address or host-port mapping, found '8080:80/tcp'",
            ],
        ),
    ] {
        assert_eq!(lint_with(text, &opts), want, "Dockerfile:\n{text}");
    }
}

#[test]
fn the_directive_chooses_rules_and_errors() {
    let text = "FROM busybox\nCMD echo hi\nWORKDIR app\n";
    assert_eq!(lint(text).len(), 2);
    assert_eq!(lint(&format!("# check=skip=JSONArgsRecommended\n{text}")).len(), 1);
    assert_eq!(lint(&format!("# check=skip=JSONArgsRecommended,WorkdirRelativePath\n{text}")), Vec::<String>::new());
    assert_eq!(lint(&format!("# check=skip=all\n{text}")), Vec::<String>::new());
    let opts = BuildOptions {
        build_args: [(directive::CHECK_BUILD_ARG.into(), "skip=all".into())].into(),
        ..Default::default()
    };
    assert_eq!(lint_with(&format!("# check=error=true\n{text}"), &opts), Vec::<String>::new());

    let report = check(&format!("# check=error=true\n{text}"), &BuildOptions::default(), &Images).unwrap();
    assert!(report.error_on_warning);
    assert_eq!(report.rules(), [Rule::JSONArgsRecommended, Rule::WorkdirRelativePath]);
    let e = report.violation().unwrap();
    assert_eq!(
        e.kind.to_string(),
        "lint violation found for rules: JSONArgsRecommended, WorkdirRelativePath: fix them, or skip them with # check=skip=JSONArgsRecommended,WorkdirRelativePath"
    );

    let e = check("# check=skip\nFROM busybox\n", &BuildOptions::default(), &Images).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Dockerfile:1:1: invalid check option \"skip\": write e.g. # check=skip=JSONArgsRecommended,StageNameCasing;error=true"
    );
}

#[test]
fn report_lines_name_file_place_rule_and_page() {
    let opts = BuildOptions { dockerfile_name: "ctx/Dockerfile.dev".into(), ..Default::default() };
    let report = check("FROM busybox\n  CMD echo hi\n", &opts, &Images).unwrap();
    assert_eq!(
        report.lines(),
        ["ctx/Dockerfile.dev:2:3: JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended behavior related to OS signals (https://docs.docker.com/go/dockerfile/rule/json-args-recommended/)"]
    );
}

#[test]
fn a_build_warns_about_the_stages_it_builds() {
    let text = "FROM busybox AS unused\nCMD echo unused\nFROM busybox\nCMD echo used\n";
    assert_eq!(lint(text).len(), 2);
    let graph = crate::build_graph(text, &BuildOptions::default(), &Images).unwrap();
    let lines: Vec<&str> = graph.warnings.iter().map(String::as_str).filter(|w| w.contains("JSONArgs")).collect();
    assert_eq!(lines.len(), 1, "{:?}", graph.warnings);
    assert!(lines[0].starts_with("Dockerfile:4:1: JSONArgsRecommended"), "{lines:?}");

    // A check with a target looks at the stages the target needs only.
    let opts = BuildOptions { target: Some("unused".into()), ..Default::default() };
    assert_eq!(lint_with(text, &opts), ["2: JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended behavior related to OS signals"]);

    let e = crate::build_graph(&format!("# check=error=true\n{text}"), &BuildOptions::default(), &Images).unwrap_err();
    assert!(e.to_string().starts_with("Dockerfile: lint violation found for rules: JSONArgsRecommended"), "{e}");
}
