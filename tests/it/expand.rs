//! Word expansion seen from outside: `kiln debug expand` prints what the
//! frontend makes of a word, and a build expands its words the same way.

use super::harness::Kiln;

#[test]
fn debug_expand_prints_a_word_or_its_words() {
    let k = Kiln::empty();
    let word = |args: &[&str]| {
        let mut all = vec!["debug", "expand", "word"];
        all.extend_from_slice(args);
        k.cmd(&all)
    };
    let out =
        word(&["--env", "V=v1.2.3-rc1", "--env", "S=a  b", "--", "${V%%.*} ${V#v} ${V//./_} '$S' \"$S\" \\$S ${N:-d}"])
            .ok();
    assert_eq!(out.stdout, "v1 1.2.3-rc1 v1_2_3-rc1 $S a  b $S d\n");
    // A later --env wins; special parameters are empty; an input may start with '-'.
    assert_eq!(word(&["--env", "A=1", "--env", "A=2", "--", "-$A[$@$#$$]"]).ok().stdout, "-2[]\n");

    let out = k.cmd(&["debug", "expand", "words", "--env", "P=80  443", "--", "$P \"8 0\" ${Q:-x y} ''"]).ok();
    assert_eq!(out.stdout, "[\"80\",\"443\",\"8 0\",\"x\",\"y\"]\n");
    assert_eq!(k.cmd(&["debug", "expand", "words", "--", ""]).ok().stdout, "[]\n");

    // An expansion error: non-zero, the input quoted, the reason and the fix.
    let out = word(&["--", "x${NOPE:?needs a value}"]).failed();
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(out.stderr.contains("error: cannot expand \"x${NOPE:?needs a value}\""), "{}", out.stderr);
    assert!(out.stderr.contains("NOPE: needs a value") && out.stderr.contains("--build-arg"), "{}", out.stderr);
    let out = k.cmd(&["debug", "expand", "words", "--", "${A:=b}"]).failed();
    assert!(out.stderr.contains("unsupported modifier ':='"), "{}", out.stderr);
    let out = word(&["--", "'open"]).failed();
    assert!(out.stderr.contains("missing closing single quote"), "{}", out.stderr);
    let out = word(&["--env", "=x", "--", "a"]).failed();
    assert!(out.stderr.contains("--env =x: the name is empty"), "{}", out.stderr);
    // It needs no store: none was made.
    assert!(!k.root().exists());
}

#[test]
fn a_build_expands_patterns_like_buildkit() {
    let k = Kiln::with_busybox();
    k.write(
        "Dockerfile",
        "FROM busybox\n\
         ARG VERSION=v1.2.3-rc1\n\
         ENV MAJOR=${VERSION%%.*} BASE=${VERSION%-*} DOTS=${VERSION//./_} TAIL=${VERSION##*-}\n\
         ENV SPECIAL=\"[$@][$#][$1][${0:-zero}]\"\n\
         WORKDIR /w/${VERSION#v}\n\
         RUN pwd > /where\n",
    );
    k.build(&["-t", "expand:v1"]).ok();
    let config = &k.inspect("expand:v1")["Config"]["config"];
    let env: Vec<&str> = config["Env"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    for want in ["MAJOR=v1", "BASE=v1.2.3", "DOTS=v1_2_3-rc1", "TAIL=rc1", "SPECIAL=[][][][zero]"] {
        assert!(env.contains(&want), "{want} not in {env:?}");
    }
    assert_eq!(config["WorkingDir"], "/w/1.2.3-rc1");
    assert_eq!(k.file_in_top_layer("expand:v1", "where").as_deref(), Some("/w/1.2.3-rc1\n"));
}
