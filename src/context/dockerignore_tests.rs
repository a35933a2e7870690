//! Cases taken from moby/patternmatcher's own tests (TestMatches,
//! TestMatch, TestReadAll) and from fsutil's walk, which is how BuildKit
//! applies a `.dockerignore`.

use super::*;

fn ignore(patterns: &[&str]) -> DockerIgnore {
    let lines: Vec<Line> = patterns.iter().enumerate().map(|(i, p)| Line::new(i + 1, p)).collect();
    DockerIgnore::new(&lines, ".dockerignore").unwrap_or_else(|e| panic!("{patterns:?}: {e}"))
}

/// (pattern, path, matches the path itself, matches it or a parent).
const ONE_PATTERN: &[(&str, &str, bool, bool)] = &[
    ("**", "file", true, true),
    ("**", "file/", true, true),
    ("**/", "file", true, true),
    ("**", "/", true, true),
    ("**", "dir/file", true, true),
    ("**/**", "dir/file", true, true),
    ("dir/**", "dir/file", true, true),
    ("dir/**", "dir/dir2/file", true, true),
    ("**/dir", "dir", true, true),
    ("**/dir", "dir/file", false, true),
    ("**/dir2/*", "dir/dir2/file", true, true),
    ("**/dir2/*", "dir/dir2/file/x", false, true),
    ("**/dir2/**", "dir/dir2/dir3/file", true, true),
    ("**file", "file", true, true),
    ("**file", "dir/file", true, true),
    ("**file", "dir/xfile", true, true),
    ("**/file", "dir/xfile", false, false),
    ("**/file", "dir/dir/file", true, true),
    ("**/file*", "dir/dir/file.txt", true, true),
    ("**/file*txt", "dir/dir/file.txt", true, true),
    ("**/**/*.txt", "dir/dir/file.txt", true, true),
    ("**/**/*.txt2", "dir/dir/file.txt", false, false),
    ("**/*.txt", "file.txt", true, true),
    ("a**/*.txt", "a/file.txt", true, true),
    ("a**/*.txt", "a/dir/dir/file.txt", true, true),
    ("a/*.txt", "a/dir/file.txt", false, false),
    ("a/*.txt**", "a/file.txt", true, true),
    ("a[b-d]e", "ae", false, false),
    ("a[b-d]e", "ace", true, true),
    ("a[^b-d]e", "aze", true, true),
    (".*", ".foo", true, true),
    (".*", "foo", false, false),
    ("abc.def", "abcdef", false, false),
    ("abc.def", "abc.def", true, true),
    ("abc?def", "abcZdef", true, true),
    ("abc?def", "abcdef", false, false),
    ("**/foo/bar", "foo/bar", true, true),
    ("**/foo/bar", "dir/dir2/foo/bar", true, true),
    ("abc/**", "abc", false, false),
    ("abc/**", "abc/def/ghi", true, true),
    ("**/.foo", ".foo", true, true),
    ("**/.foo", "bar.foo", false, false),
    ("a(b)c/def", "a(b)c/def", true, true),
    ("a.|)$(}+{bc", "a.|)$(}+{bc", true, true),
    ("dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", true, true),
    (r"a\\", r"a\", true, true),
    (r"a\*b", "a*b", true, true),
    // Go's filepath.Match tests, through the matcher.
    ("*c", "abc", true, true),
    ("a*", "ab/c", false, true),
    ("a*/b", "a/c/b", false, false),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/f", true, true),
    ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false, false),
    ("a*b?c*x", "abxbbxdbxebxczzx", true, true),
    ("ab[^c]", "abc", false, false),
    ("ab[^e-g]", "abc", true, true),
    // One character, not one byte.
    ("a?b", "a☺b", true, true),
    ("a[^a]b", "a☺b", true, true),
    ("a???b", "a☺b", false, false),
    ("[a-ζ]*", "α", true, true),
    ("*[a-ζ]", "A", false, false),
    ("a?b", "a/b", false, false),
    // Escapes inside a class.
    (r"[\]a]", "]", true, true),
    (r"[\-]", "-", true, true),
    (r"[x\-]", "-", true, true),
    (r"[x\-]", "z", false, false),
    (r"[\-x]", "x", true, true),
    // `[!…]` is no negation to Go; `^` outside a class is a regex anchor
    // once anything makes the pattern a regex, and a plain `^` otherwise.
    ("[!a]", "!", true, true),
    ("[!a]", "b", false, false),
    ("a^b", "a^b", true, true),
    ("a^b*", "a^bc", false, false),
    // Go regexp escapes reach through `\`.
    (r"\d.txt", "7.txt", true, true),
    (r"\d.txt", "d.txt", false, false),
    // The root itself is never a path a walk judges.
    ("/", "a", false, false),
];

#[test]
fn one_pattern_as_patternmatcher() {
    let mut failures = Vec::new();
    for &(pattern, path, exact, with_parents) in ONE_PATTERN {
        let ig = ignore(&[pattern]);
        let got = ig.patterns[0].matcher.is_match(path);
        if got != exact {
            failures.push(format!("{pattern:?} on {path:?} alone: want {exact}"));
        }
        if path.ends_with('/') {
            continue;
        }
        if ig.is_excluded(Path::new(path)) != with_parents {
            failures.push(format!("{pattern:?} on {path:?} with parents: want {with_parents}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// (ignore file, path, excluded?).
const FILES: &[(&str, &str, bool)] = &[
    ("node_modules", "node_modules/x/y.js", true),
    ("node_modules", "src/node_modules", false),
    ("**/node_modules", "src/node_modules/x.js", true),
    ("docs", "docs/a/b", true),
    ("docs", "docsx", false),
    ("docs/", "docs/a", true),
    ("/abs", "abs/file", true),
    ("/abs", "x/abs", false),
    ("./abs", "abs", true),
    ("a/../b", "b", true),
    ("a/../b", "a", false),
    ("../x", "x", false),
    ("*.md\n!README.md", "README.md", false),
    ("!README.md\n*.md", "README.md", true),
    ("dir\n!dir/keep", "dir/keep", false),
    ("dir\n!dir/keep", "dir/other", true),
    ("dir\n!dir/keep", "dir", true),
    ("dir\n!dir/keep\ndir/keep", "dir/keep", true),
    ("dir/*\n!dir/sub", "dir/sub/deep/file", false),
    ("*\n!src\nsrc/*.tmp", "src/a.tmp", true),
    ("*\n!src\nsrc/*.tmp", "src/a.rs", false),
    ("**\n!util/docker/web", "util/docker/web/foo", false),
    ("**\n!util/docker/web\nutil/docker/web/foo", "util/docker/web/foo", true),
    ("**\n!dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", false),
    // fsutil judges a child with its parent's results: an exception that
    // was not consulted for `dir` (nothing was excluded yet) is tried on
    // `dir/f` alone, so it does not re-include it.
    ("dir/f\n!dir", "dir/f", true),
    ("d/dir\n!d", "d/dir/x", true),
    // comments, blanks, whitespace, BOM
    ("# node_modules", "node_modules", false),
    ("# comment\n\n  target  \n", "target/debug", true),
    ("  #target", "#target", true),
    ("\u{feff}bom", "bom", true),
    ("! keep\n*", "keep", true),
    ("*\n! keep", "keep", false),
    ("a/b", "./a/b", true),
    ("a/b", "/a/b/c", true),
    ("anything", "", false),
];

#[test]
fn files_as_buildkit_sends_them() {
    let mut failures = Vec::new();
    for (rules, path, want) in FILES {
        let ig = DockerIgnore::parse(rules, ".dockerignore").unwrap();
        if ig.is_excluded(Path::new(path)) != *want {
            failures.push(format!("{rules:?} on {path:?}: want excluded={want}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn read_all_cleans_like_ignorefile() {
    let text = "test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n!\n! \n\
                /\n./a/../b/\n  # not a comment\n!/\n..\n";
    let got: Vec<String> = read_all(text).into_iter().map(|l| l.pattern).collect();
    assert_eq!(
        got,
        [
            "test1",
            "test2",
            "a/file/here",
            "lastfile",
            "!inverted/abs/path",
            "!",
            "!",
            "/",
            "b",
            "# not a comment",
            "!/",
            ".."
        ]
    );
    assert_eq!(read_all("a\n\n#c\n  b ")[1], Line { line: 4, pattern: "b".into(), text: "  b ".into() });
}

#[test]
fn malformed_patterns_name_file_and_line() {
    for (text, place) in [
        ("a\n\n[unclosed\n", "3:1"),
        ("[a-b-c]", "1:5"),
        ("ok\n  ends\\", "2:7"),
        ("[]", "1:2"),
        ("x[^", "1:2"),
        ("! /a/../[z-a]", "1:9"),
        (r"\q", "1:1"),
    ] {
        let err = DockerIgnore::parse(text, "ctx/.dockerignore").expect_err(text);
        let message = err.to_string();
        assert!(message.starts_with(&format!("ctx/.dockerignore:{place}: ")), "{text:?}: {message}");
    }
    let err = DockerIgnore::parse("ok\\\\", "i").map(|_| ());
    assert!(err.is_ok(), "an escaped backslash is fine: {err:?}");
    for lone in ["# c\n!\n", "# c\n! \n", "# c\n!/\n", "# c\n  !\n"] {
        let err = DockerIgnore::parse(lone, ".dockerignore").unwrap_err();
        let column = lone.lines().nth(1).unwrap().find('!').unwrap() + 1;
        assert!(
            matches!(err, ContextError::LoneExclusion { line: 2, column: c, .. } if c == column),
            "{lone:?}: {err}"
        );
    }
}

#[test]
fn go_clean_as_filepath_clean() {
    for (path, want) in [
        ("", "."),
        (".", "."),
        ("/", "/"),
        ("/..", "/"),
        ("a/./b/", "a/b"),
        ("a/../..", ".."),
        ("../../a", "../../a"),
        ("//a//b", "/a/b"),
        ("!a/../b", "b"),
        ("!/", "!"),
    ] {
        assert_eq!(go_clean(path), want, "{path:?}");
    }
}

#[test]
fn skipping_a_folder_as_fsutil_does() {
    assert!(ignore(&["dir"]).skips_dir("dir"));
    assert!(!ignore(&["dir", "!dir/keep"]).skips_dir("dir"));
    assert!(ignore(&["dir", "!other/keep"]).skips_dir("dir"));
    assert!(!ignore(&["dir", "!**/keep"]).skips_dir("dir"));
    assert!(!ignore(&["dir", "!dir/keep/**"]).skips_dir("dir"));
}

#[test]
fn load_prefers_the_dockerfile_specific_file() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path();
    let dockerfile = ctx.join("app.Dockerfile");
    fs::write(ctx.join(FILE_NAME), "general\n").unwrap();
    let ig = DockerIgnore::load(ctx, Some(&dockerfile)).unwrap();
    assert!(ig.is_excluded(Path::new("general")));
    fs::write(ctx.join("app.Dockerfile.dockerignore"), "specific\n").unwrap();
    let ig = DockerIgnore::load(ctx, Some(&dockerfile)).unwrap();
    assert!(ig.is_excluded(Path::new("specific")));
    assert!(!ig.is_excluded(Path::new("general")));
    let ig = DockerIgnore::load(ctx, None).unwrap();
    assert!(ig.is_excluded(Path::new("general")));
    let empty = tempfile::tempdir().unwrap();
    let ig = DockerIgnore::load(empty.path(), Some(&empty.path().join("Dockerfile"))).unwrap();
    assert!(!ig.is_excluded(Path::new("x")));
}
