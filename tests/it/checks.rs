//! The build checks from outside: `kiln build --check` reports without
//! building, a build prints its warnings, and `# check=` decides what runs
//! and whether a warning fails.

use super::harness::Kiln;

const UNTIDY: &str = "FROM busybox as base\nWORKDIR app\nCOPY $SRC/f .\nCMD echo hi\n";

#[test]
fn check_reports_the_rules_broken_and_builds_nothing() {
    let k = Kiln::with_busybox();
    k.write("Dockerfile", UNTIDY);
    let out = k.build(&["--check"]).ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    let ends = [
        "Dockerfile:1:1: FromAsCasing: 'as' and 'FROM' keywords' casing do not match (https://docs.docker.com/go/dockerfile/rule/from-as-casing/)",
        "Dockerfile:2:1: WorkdirRelativePath: Relative workdir \"app\" can have unexpected results if the base image changes (https://docs.docker.com/go/dockerfile/rule/workdir-relative-path/)",
        "Dockerfile:3:1: UndefinedVar: Usage of undefined variable '$SRC' (https://docs.docker.com/go/dockerfile/rule/undefined-var/)",
        "Dockerfile:4:1: JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended behavior related to OS signals (https://docs.docker.com/go/dockerfile/rule/json-args-recommended/)",
        "Check complete, 4 warnings have been found!",
    ];
    assert_eq!(lines.len(), ends.len(), "{}", out.stdout);
    for (line, end) in lines.iter().zip(ends) {
        assert!(line.ends_with(end), "{line:?} should end with {end:?}");
    }
    // Nothing was built: the store holds busybox only.
    assert_eq!(k.image_names(), ["busybox:latest"]);

    // Skipped rules are not run; skip=all runs none.
    k.write("Dockerfile", &format!("# check=skip=UndefinedVar,FromAsCasing\n{UNTIDY}"));
    let out = k.build(&["--check"]).ok();
    assert!(out.stdout.contains("WorkdirRelativePath") && !out.stdout.contains("UndefinedVar"), "{}", out.stdout);
    assert!(out.stdout.ends_with("Check complete, 2 warnings have been found!\n"), "{}", out.stdout);
    k.write("Dockerfile", &format!("# check=skip=all\n{UNTIDY}"));
    assert_eq!(k.build(&["--check"]).ok().stdout, "Check complete, no warnings found.\n");
    // The build arg overrides the directive, as in BuildKit.
    let out = k.build(&["--check", "--build-arg", "BUILDKIT_DOCKERFILE_CHECK=skip=JSONArgsRecommended"]).ok();
    assert!(out.stdout.contains("UndefinedVar") && !out.stdout.contains("JSONArgs"), "{}", out.stdout);
}

#[test]
fn check_fails_on_errors_and_on_warnings_when_asked() {
    let k = Kiln::with_busybox();
    k.write("Dockerfile", &format!("# check=error=true\n{UNTIDY}"));
    let out = k.build(&["--check"]).failed();
    assert!(out.stdout.contains("Check complete, 4 warnings have been found!"), "{}", out.stdout);
    assert!(
        out.stderr.contains(
            "lint violation found for rules: FromAsCasing, JSONArgsRecommended, WorkdirRelativePath, UndefinedVar"
        ),
        "{}",
        out.stderr
    );
    // A file that would not build fails the check, at its place.
    k.write("Dockerfile", "FROM busybox\nRUNN echo\n");
    let out = k.build(&["--check"]).failed();
    assert!(out.stderr.contains("Dockerfile:2:1: unknown instruction \"RUNN\""), "{}", out.stderr);
    k.write("Dockerfile", "# check=skip\nFROM busybox\n");
    let out = k.build(&["--check"]).failed();
    assert!(out.stderr.contains("Dockerfile:1:1: invalid check option \"skip\""), "{}", out.stderr);
}

#[test]
fn a_build_prints_its_warnings_and_fails_on_them_when_asked() {
    let k = Kiln::with_busybox();
    k.write("Dockerfile", "FROM busybox AS unused\nCMD echo unused\nFROM busybox\nCMD echo built\n");
    let out = k.build(&["-t", "checked:v1"]).ok();
    let warnings: Vec<&str> = out.stderr.lines().filter(|l| l.starts_with("warning: ")).collect();
    // Only the stages built are looked at.
    assert_eq!(warnings.len(), 1, "{}", out.stderr);
    assert!(
        warnings[0].contains("Dockerfile:4:1: JSONArgsRecommended: JSON arguments recommended for CMD"),
        "{}",
        warnings[0]
    );

    k.write("Dockerfile", "# check=error=true\nFROM busybox\nCMD echo built\n");
    let out = k.build(&["-t", "checked:v2"]).failed();
    assert!(out.stderr.contains("lint violation found for rules: JSONArgsRecommended"), "{}", out.stderr);
    assert!(!k.image_names().contains(&"checked:v2".to_owned()));
}

/// The issue's "`kiln build --check` warns on ARG/ENV names that look like
/// secrets": BuildKit's SecretsUsedInArgOrEnv, its allow list included.
#[test]
fn check_warns_on_arg_and_env_names_that_look_like_secrets() {
    let k = Kiln::with_busybox();
    k.write(
        "Dockerfile",
        "FROM busybox\nARG NPM_TOKEN PUBLIC_KEY\nENV DB_PASSWORD=x KEY_FILE=/run/secrets/k\nRUN --mount=type=secret,id=npm true\n",
    );
    let out = k.build(&["--check"]).ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    let ends = [
        "Dockerfile:2:1: SecretsUsedInArgOrEnv: Do not use ARG or ENV instructions for sensitive data (ARG \"NPM_TOKEN\") (https://docs.docker.com/go/dockerfile/rule/secrets-used-in-arg-or-env/)",
        "Dockerfile:3:1: SecretsUsedInArgOrEnv: Do not use ARG or ENV instructions for sensitive data (ENV \"DB_PASSWORD\") (https://docs.docker.com/go/dockerfile/rule/secrets-used-in-arg-or-env/)",
        "Check complete, 2 warnings have been found!",
    ];
    assert_eq!(lines.len(), ends.len(), "{}", out.stdout);
    for (line, end) in lines.iter().zip(ends) {
        assert!(line.ends_with(end), "{line:?} should end with {end:?}");
    }
}
