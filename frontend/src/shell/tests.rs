use std::collections::BTreeMap;

use super::*;

const ENV: &[(&str, &str)] = &[
    ("PWD", "/home"),
    ("SHELL", "bash"),
    ("KOREAN", "한국어"),
    ("NULL", ""),
    ("SPACED", " a  b "),
    ("XY", "xxyy"),
    ("Q", "???y"),
    ("STARS", "a***yy*"),
    ("DSTARS", "xx**"),
    ("SPECIAL", "()[]{}^$.*?|\\x"),
    ("FILE", "/foo*/*/*.txt"),
    ("NEEDLE", "\\*/"),
    ("TMP", "/tmp/tmp/bar.txt"),
    ("SLASHTMP", "/tmp"),
    ("ABC", "/a/foo/b/c.txt"),
    ("SLASHQ", "/?/"),
    ("SL", "/"),
    ("URL", "http://google.de"),
    ("VERSION", "v1.2.3"),
    ("TARGETOS", "linux"),
    ("TARGETARCH", "arm"),
    ("TARGETVARIANT", "v7"),
];

fn env(name: &str) -> Option<String> {
    ENV.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned())
}

/// The variant's name, for tables that expect an error.
fn kind(e: &ShellError) -> &'static str {
    match e {
        ShellError::UnterminatedQuote { .. } => "UnterminatedQuote",
        ShellError::MissingClose { .. } => "MissingClose",
        ShellError::BadSubstitution { .. } => "BadSubstitution",
        ShellError::UnsupportedModifier { .. } => "UnsupportedModifier",
        ShellError::Unset { .. } => "Unset",
        ShellError::Pattern { .. } => "Pattern",
        ShellError::TooDeep => "TooDeep",
        ShellError::TooLong { .. } => "TooLong",
    }
}

/// `«text»` → `text` (spaces kept); anything else trimmed.
fn unquote(s: &str) -> String {
    let s = s.trim();
    s.strip_prefix('«').and_then(|s| s.strip_suffix('»')).unwrap_or(s).to_owned()
}

/// The `input | expected` lines of a table, comments and blanks skipped.
fn table(text: &str) -> impl Iterator<Item = (String, String)> + '_ {
    text.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')).map(|line| {
        let (input, want) = line.rsplit_once('|').unwrap_or_else(|| panic!("no '|' in {line:?}"));
        (input.trim().to_owned(), unquote(want))
    })
}

fn check(lexer: Lexer, cases: &str) {
    let mut count = 0;
    let mut failures = Vec::new();
    for (input, want) in table(cases) {
        let got = match lexer.expand(&input, &env) {
            Ok(s) => s,
            Err(e) => format!("error: {}", kind(&e)),
        };
        if got != want {
            failures.push(format!("{input:?}: want {want:?}, got {got:?}"));
        }
        count += 1;
    }
    assert!(failures.is_empty(), "{} of {count} cases fail:\n{}", failures.len(), failures.join("\n"));
    assert!(count > 10, "the table has only {count} cases");
}

#[test]
fn expands() {
    check(Lexer::new('\\'), include_str!("testdata/expand.txt"));
}

#[test]
fn backtick_escape() {
    check(
        Lexer::new('`'),
        r#"
        c:\dir                  | c:\dir
        a`$PWD                  | a$PWD
        he`$PWD$PWD             | he$PWD/home
        "a`"b"                  | a"b
        "a\b"                   | a\b
        "a``b"                  | a`b
        ``                      | `
        'a`b'                   | a`b
        a`                      | a
        a\\b                    | a\\b
        ${XY#`x}                | xxyy
        ${XY#\*}                | xxyy
        ${XY#\x}                | error: Pattern
        ${XY:-`}}               | xxyy
        ${XXX:-`}}              | }
        "#,
    );
}

#[test]
fn words() {
    let lexer = Lexer::new('\\');
    let env = |name: &str| match name {
        "hi" => Some("hi".to_owned()),
        "space" => Some("abc  def".to_owned()),
        "leading" => Some("  ab c".to_owned()),
        "trailing" => Some("ab c   ".to_owned()),
        "SPACED" => Some(" a  b ".to_owned()),
        "EMPTY" => Some(String::new()),
        _ => None,
    };
    // Like BuildKit's shell/wordsTest: the words joined with ','.
    for (input, want) in table(
        r#"
        hello                     | hello
        hello${hi}bye             | hellohibye
        hello${nope}bye           | hellobye
        hello${space}bye          | helloabc,defbye
        hello"${space}"bye        | helloabc  defbye
        hello "${space}"bye       | hello,abc  defbye
        hello${leading}def        | hello,ab,cdef
        hello"${leading}" def     | «hello  ab c,def»
        hello"${leading}"         | «hello  ab c»
        hello${leading}           | hello,ab,c
        hello${trailing}          | helloab,c
        hello${trailing}d         | helloab,c,d
        hello"${trailing}"d       | «helloab c   d»
        hel"lo${trailing}"        | «helloab c   »
        hello" there  "           | «hello there  »
        hello there               | hello,there
        hello\ there              | hello there
        hello" there              | error
        hello\" there             | hello",there
        hello"\\there"            | hello\there
        hello"\there"             | hello\there
        hello'\\there'            | hello\\there
        hello'\there'             | hello\there
        hello'$there'             | hello$there
        80 $SPACED                | 80,a,b
        x$SPACED                  | x,a,b
        'a b' c\ d                | a b,c d
        a "" b                    | a,b
        ""                        |
        $EMPTY                    |
        ${nope:-"a b"} c          | a,b,c
        "${nope:-a b}" c          | a b,c
        "#,
    ) {
        let got = match lexer.expand_words(&input, &env) {
            Ok(words) => words.join(","),
            Err(_) => "error".to_owned(),
        };
        assert_eq!(got, want, "input: {input}");
    }
    assert_eq!(lexer.expand_words("", &env).unwrap(), Vec::<String>::new());
}

#[test]
fn reports_unset_names() {
    let lexer = Lexer::new('\\');
    for (input, want) in [
        ("x", vec![]),
        ("x ${UNUSED}", vec!["UNUSED"]),
        ("$PWD ${NULL}", vec![]),
        ("${FOO-aaa} ${XY-bbb} ${BAZ:-ccc}", vec!["BAZ", "FOO"]),
        ("${XXX:+$YYY} '$ZZZ' \\$WWW \"$VVV\"", vec!["VVV", "XXX", "YYY"]),
        ("${PWD:+$YYY}", vec!["YYY"]),
        ("${XY#$P1} ${XY/$P2/$P3}", vec!["P1", "P2", "P3"]),
    ] {
        let got = lexer.process(input, &env).unwrap().unmatched;
        assert_eq!(got.iter().map(String::as_str).collect::<Vec<_>>(), want, "input: {input}");
    }
}

#[test]
fn errors_quote_the_text_and_say_what_to_do() {
    let lexer = Lexer::new('\\');
    for (input, want) in [
        ("a \"b c", "missing closing double quote: \"\\\"b c\" never ends; close it, or escape the opening quote"),
        ("x${PWD:-y", "missing '}' in \"${PWD:-y\": end the substitution with '}'"),
        ("${XY/a}", "missing '/' in \"${XY/a}\": end the substitution with '/'"),
        ("a${}b", "bad substitution \"${}\": a variable name must follow '${', as in ${NAME}"),
        ("${NOPE:?must be set}", "NOPE: must be set (required by \"${NOPE:?must be set}\"): give NOPE a value with ARG, ENV or --build-arg"),
        ("${NULL:?}", "NULL: is not allowed to be empty (required by \"${NULL:?}\"): give NULL a value with ARG, ENV or --build-arg"),
        ("${NOPE?}", "NOPE: is not allowed to be unset (required by \"${NOPE?}\"): give NOPE a value with ARG, ENV or --build-arg"),
        ("${XY#\\q}", "bad pattern in \"${XY#\\\\q}\": invalid escape '\\q': in a pattern only \\*, \\?, \\\\, \\/ and \\} are escapes"),
    ] {
        assert_eq!(lexer.expand(input, &env).unwrap_err().to_string(), want, "input: {input}");
    }
    let e = lexer.expand("${PWD:=x}", &env).unwrap_err().to_string();
    assert!(e.starts_with("unsupported modifier ':=' in \"${PWD:=\": a Dockerfile knows ${NAME:-word}"), "{e}");
    // A long word is cut in the message.
    let long = format!("\"{}", "x".repeat(1000));
    let e = lexer.expand(&long, &env).unwrap_err().to_string();
    assert!(e.contains("(1001 characters)") && e.len() < 400, "{e}");
}

#[test]
fn nesting_is_bounded() {
    let lexer = Lexer::new('\\');
    let nested = |n: usize| format!("{}x{}", "${NOPE:-".repeat(n), "}".repeat(n));
    for (depth, want) in [
        (1, Ok("x".to_owned())),
        (MAX_NESTING, Ok("x".to_owned())),
        (MAX_NESTING + 1, Err(ShellError::TooDeep)),
        // Deep enough to overflow the stack if nothing stopped it.
        (20_000, Err(ShellError::TooDeep)),
    ] {
        assert_eq!(lexer.expand(&nested(depth), &env), want, "depth {depth}");
        assert_eq!(lexer.expand_words(&nested(depth), &env).map(|w| w.join(" ")), want, "depth {depth}");
    }
    // Inside double quotes and patterns too, and siblings do not add up.
    let quoted = format!("\"{}\"", nested(MAX_NESTING + 1));
    assert_eq!(lexer.expand(&quoted, &env), Err(ShellError::TooDeep));
    let patterns = format!("{}x{}", "${XY#".repeat(MAX_NESTING + 1), "}".repeat(MAX_NESTING + 1));
    assert_eq!(lexer.expand(&patterns, &env), Err(ShellError::TooDeep));
    let siblings = nested(MAX_NESTING).repeat(3);
    assert_eq!(lexer.expand(&siblings, &env).unwrap(), "xxx");
}

#[test]
fn expansion_is_bounded() {
    let lexer = Lexer::new('\\');
    let big = "x".repeat(MAX_EXPANSION / 2 + 64);
    let vars = |name: &str| (name == "a").then(|| big.clone());
    // Up to the cap a value may grow…
    assert_eq!(lexer.expand("$a", &vars).map(|s| s.len()), Ok(big.len()));
    // …past it, it is an error, whichever way it grows: concatenation,
    // quotes, or a replacement (itself expanded) for every character.
    for word in ["$a$a", "\"$a$a\"", "${a}\"${a}\"", "${a//?/$a}", "${a//?/xx}", "${a/x/$a}", "${x:-$a$a}"] {
        let got = lexer.expand(word, &vars);
        assert!(matches!(got, Err(ShellError::TooLong { .. })), "{word}: {:?}", got.map(|s| s.len()));
    }
    // The limit is beyond the text written: a long literal never trips it.
    let literal = "y".repeat(2 * MAX_EXPANSION);
    assert_eq!(lexer.expand(&literal, &vars).map(|s| s.len()), Ok(literal.len()));
}

#[test]
fn public_functions_use_the_map() {
    let env = BTreeMap::from([("A".to_owned(), "1 2".to_owned())]);
    assert_eq!(expand_word("x$A${B:-3}", &env).unwrap(), "x1 23");
    assert_eq!(expand_words("x$A ${B:-3}", &env).unwrap(), ["x1", "2", "3"]);
    assert!(matches!(expand_word("${B:?}", &env), Err(ShellError::Unset { .. })));
}

#[test]
fn splits() {
    let lexer = Lexer::new('\\');
    for (input, want) in [
        ("a=b c=d", vec![(0, "a=b"), (4, "c=d")]),
        ("  A=\"x y\"   B='1 2' ", vec![(2, "A=\"x y\""), (12, "B='1 2'")]),
        ("a\\ b c", vec![(0, "a\\ b"), (5, "c")]),
        ("a=\"q\\\" x\" y", vec![(0, "a=\"q\\\" x\""), (10, "y")]),
        ("'a\\' b", vec![(0, "'a\\'"), (5, "b")]),
        ("\"open x", vec![(0, "\"open x")]),
        ("", vec![]),
    ] {
        assert_eq!(lexer.split(input), want, "input: {input}");
    }
}
