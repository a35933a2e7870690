//! [`Node`]s → typed [`Instruction`]s, grouped into [`Stage`]s.
//!
//! Words stay raw (unexpanded) here, each with the place it was written: which
//! environment expands them is the lowering's business (`lower`). This module
//! only checks shape: argument counts, `name=value` pairs, stage names.

use crate::error::{Error, Location};
use crate::parser::Node;
use crate::shell::Lexer;

/// An instruction with the wrong arguments.
#[derive(Debug, thiserror::Error)]
pub enum InstructionError {
    /// The instruction (named) was given nothing to work on.
    #[error("{0} requires at least one argument")]
    NoArguments(&'static str),
    /// FROM with words other than `image [AS name]`.
    #[error("FROM takes an image and an optional \"AS name\", e.g. FROM alpine AS build")]
    FromSyntax,
    /// `AS name` with a name docker would refuse.
    #[error("invalid stage name \"{0}\": use letters, digits, '-', '_' and '.', starting with a letter")]
    StageName(String),
    /// Two stages share a name (compared case-insensitively).
    #[error("stage name \"{0}\" is already used by an earlier stage")]
    DuplicateStage(String),
    /// COPY with fewer than two words.
    #[error("COPY requires at least one source and a destination")]
    CopyArguments,
    /// A word without `=` in the `name=value` form of ENV or LABEL.
    #[error("{keyword} expects name=value, found \"{word}\"")]
    MissingEquals {
        /// ENV or LABEL.
        keyword: &'static str,
        /// The word as written.
        word: String,
    },
    /// The legacy `ENV name value` form without a value.
    #[error("ENV requires a name and a value")]
    EnvValue,
    /// `=value` with nothing before the `=` (in the named instruction).
    #[error("{0} names can not be blank")]
    BlankName(&'static str),
    /// An ARG name with characters docker does not allow.
    #[error("invalid ARG name \"{0}\"")]
    ArgName(String),
    /// An instruction other than ARG (named) before the first FROM.
    #[error("{0} before the first FROM: only ARG may come before it")]
    BeforeFrom(&'static str),
    /// The file has instructions but no FROM.
    #[error("no FROM instruction")]
    NoFrom,
}

/// A raw word and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Word {
    pub(crate) raw: String,
    pub(crate) location: Location,
}

/// A `name=value` pair of ENV or LABEL (both raw; both expand).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pair {
    pub(crate) key: Word,
    pub(crate) value: Word,
}

/// `ARG name[=default]`: the name never expands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ArgDecl {
    pub(crate) name: String,
    pub(crate) default: Option<Word>,
}

/// A COPY.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Copy {
    pub(crate) from: Option<Word>,
    pub(crate) chown: Option<Word>,
    pub(crate) chmod: Option<Word>,
    pub(crate) sources: Vec<Word>,
    pub(crate) dest: Word,
}

/// One typed instruction (FROM is [`Stage`]'s).
///
/// A whole file's instructions are held at once, so they are kept small: COPY,
/// the biggest, is boxed, and lists are boxed slices, exactly as long as
/// written (a collected `Vec` may keep room for four).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Instruction {
    Copy(Box<Copy>),
    /// The command, shell form already wrapped in `/bin/sh -c`; never expanded.
    Run(Vec<String>),
    Env(Box<[Pair]>),
    Arg(Box<[ArgDecl]>),
    Workdir(Word),
    User(Word),
    Label(Box<[Pair]>),
    /// Each word may expand to several ports.
    Expose(Vec<Word>),
    Cmd(Vec<String>),
    Entrypoint(Vec<String>),
}

impl Instruction {
    /// Whether it adds a vertex (and so a step to progress).
    pub(crate) fn is_step(&self) -> bool {
        matches!(self, Instruction::Copy(_) | Instruction::Run(_))
    }
}

/// An instruction with its place and its text as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Command {
    pub(crate) instruction: Instruction,
    pub(crate) location: Location,
    /// On one line, continuations joined: `RUN make && make install`.
    pub(crate) text: String,
}

/// `FROM base [AS name]` and the instructions up to the next FROM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stage {
    /// Lowercased, as stage names are case-insensitive.
    pub(crate) name: Option<String>,
    /// An image, an earlier stage's name or `scratch`; expands with the global ARGs.
    pub(crate) base: Word,
    /// Where the FROM is, and its text.
    pub(crate) location: Location,
    pub(crate) text: String,
    pub(crate) commands: Vec<Command>,
}

/// A whole Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Dockerfile {
    /// The ARGs before the first FROM.
    pub(crate) global_args: Vec<Command>,
    pub(crate) stages: Vec<Stage>,
}

/// Type the nodes and group them into stages.
pub(crate) fn parse(nodes: impl Iterator<Item = Result<Node, Error>>, lexer: &Lexer) -> Result<Dockerfile, Error> {
    let mut file = Dockerfile { global_args: Vec::new(), stages: Vec::new() };
    for node in nodes {
        let node = &node?;
        if node.keyword == "FROM" {
            let stage = from(node, lexer)?;
            if let Some(name) = &stage.name {
                if file.stages.iter().any(|s| s.name.as_ref() == Some(name)) {
                    let e = InstructionError::DuplicateStage(name.clone());
                    return Err(Error::at(node.location, e));
                }
            }
            file.stages.push(stage);
            continue;
        }
        let command =
            Command { instruction: instruction(node, lexer)?, location: node.location, text: node.text.clone() };
        match file.stages.last_mut() {
            Some(stage) => stage.commands.push(command),
            None if matches!(command.instruction, Instruction::Arg(_)) => {
                file.global_args.push(command);
            }
            None => {
                let e = InstructionError::BeforeFrom(node.keyword);
                return Err(Error::at(node.location, e));
            }
        }
    }
    if file.stages.is_empty() {
        return Err(Error::whole(InstructionError::NoFrom));
    }
    Ok(file)
}

/// The words of a node's rest, each with its place.
fn words(node: &Node, lexer: &Lexer) -> Vec<Word> {
    lexer
        .split(&node.rest)
        .into_iter()
        .map(|(offset, raw)| Word { raw: raw.to_owned(), location: node.location_of(offset) })
        .collect()
}

fn from(node: &Node, lexer: &Lexer) -> Result<Stage, Error> {
    let mut words = words(node, lexer);
    let name = match words.len() {
        0 => return Err(Error::at(node.location, InstructionError::NoArguments("FROM"))),
        1 => None,
        3 if words[1].raw.eq_ignore_ascii_case("as") => {
            let w = words.pop().expect("three words");
            let name = w.raw.to_ascii_lowercase();
            let mut chars = name.chars();
            let valid = chars.next().is_some_and(|c| c.is_ascii_lowercase())
                && chars.all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            if !valid {
                return Err(Error::at(w.location, InstructionError::StageName(w.raw)));
            }
            Some(name)
        }
        _ => return Err(Error::at(node.location, InstructionError::FromSyntax)),
    };
    Ok(Stage {
        name,
        base: words.swap_remove(0),
        location: node.location,
        text: node.text.clone(),
        commands: Vec::new(),
    })
}

fn instruction(node: &Node, lexer: &Lexer) -> Result<Instruction, Error> {
    let keyword = node.keyword;
    if node.rest.is_empty() {
        return Err(Error::at(node.location, InstructionError::NoArguments(keyword)));
    }
    // Exec form as given, shell form through /bin/sh, never expanded.
    let command = || match &node.json {
        Some(args) => args.clone(),
        None => vec!["/bin/sh".to_owned(), "-c".to_owned(), node.rest.clone()],
    };
    let flag = |name: &str| {
        node.flags.iter().find(|f| f.name == name).map(|f| Word { raw: f.value.clone(), location: f.location })
    };
    Ok(match keyword {
        "RUN" => Instruction::Run(command()),
        "CMD" => Instruction::Cmd(command()),
        "ENTRYPOINT" => Instruction::Entrypoint(command()),
        "COPY" => {
            let mut args = match &node.json {
                // JSON words have no place of their own: use the instruction's.
                Some(array) => array.iter().map(|raw| Word { raw: raw.clone(), location: node.location }).collect(),
                None => words(node, lexer),
            };
            if args.len() < 2 {
                return Err(Error::at(node.location, InstructionError::CopyArguments));
            }
            let dest = args.pop().expect("two words");
            Instruction::Copy(Box::new(Copy {
                from: flag("from"),
                chown: flag("chown"),
                chmod: flag("chmod"),
                sources: args,
                dest,
            }))
        }
        "ENV" => Instruction::Env(pairs(node, lexer)?),
        "LABEL" => Instruction::Label(pairs(node, lexer)?),
        "ARG" => Instruction::Arg(args(node, lexer)?),
        "WORKDIR" => Instruction::Workdir(whole(node)),
        "USER" => Instruction::User(whole(node)),
        "EXPOSE" => Instruction::Expose(words(node, lexer)),
        other => unreachable!("the parser only lets supported instructions through, not {other}"),
    })
}

/// The rest as one word (WORKDIR, USER).
fn whole(node: &Node) -> Word {
    Word { raw: node.rest.clone(), location: node.location_of(0) }
}

/// `k=v k2="v 2"`, or the legacy `K value with spaces` (one pair).
fn pairs(node: &Node, lexer: &Lexer) -> Result<Box<[Pair]>, Error> {
    let keyword = node.keyword;
    let words = words(node, lexer);
    if !words[0].raw.contains('=') {
        // Legacy form: the first word is the name, all the rest is the value.
        let key = words[0].clone();
        let Some(value_start) = node.rest[key.raw.len()..].find(|c: char| !c.is_whitespace()) else {
            return Err(Error::at(key.location, InstructionError::EnvValue));
        };
        let offset = key.raw.len() + value_start;
        let value = Word { raw: node.rest[offset..].to_owned(), location: node.location_of(offset) };
        return Ok(Box::new([Pair { key, value }]));
    }
    words
        .into_iter()
        .map(|w| {
            let Some((key, value)) = w.raw.split_once('=') else {
                let word = w.raw.clone();
                let e = InstructionError::MissingEquals { keyword, word };
                return Err(Error::at(w.location, e));
            };
            if key.is_empty() {
                return Err(Error::at(w.location, InstructionError::BlankName(keyword)));
            }
            let value_location = Location { column: w.location.column + key.chars().count() + 1, ..w.location };
            Ok(Pair {
                key: Word { raw: key.to_owned(), location: w.location },
                value: Word { raw: value.to_owned(), location: value_location },
            })
        })
        .collect()
}

/// `ARG a b=1 c="x y"`.
fn args(node: &Node, lexer: &Lexer) -> Result<Box<[ArgDecl]>, Error> {
    words(node, lexer)
        .into_iter()
        .map(|w| {
            let (name, default) = match w.raw.split_once('=') {
                Some((name, value)) => {
                    let location = Location { column: w.location.column + name.chars().count() + 1, ..w.location };
                    let raw = value.to_owned();
                    (name, Some(Word { raw, location }))
                }
                None => (w.raw.as_str(), None),
            };
            if name.is_empty() {
                return Err(Error::at(w.location, InstructionError::BlankName("ARG")));
            }
            // A name with `$` expands in its stage (`ARG ${PREFIX}_VERSION`): checked there.
            if !name.contains('$') && !valid_arg_name(name) {
                let e = InstructionError::ArgName(name.to_owned());
                return Err(Error::at(w.location, e));
            }
            Ok(ArgDecl { name: name.to_owned(), default })
        })
        .collect()
}

/// The characters docker allows in an ARG name.
pub(crate) fn valid_arg_name(name: &str) -> bool {
    name.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == '.')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser;

    fn typed(text: &str) -> Result<Dockerfile, String> {
        let parsed = parser::parse(text).map_err(|e| e.to_string())?;
        let lexer = Lexer::new(parsed.escape);
        parse(parsed.nodes, &lexer).map_err(|mut e| {
            e.file = "Dockerfile".into();
            e.to_string()
        })
    }

    /// A compact rendering of the one instruction after `FROM x`.
    fn one(line: &str) -> String {
        let file = match typed(&format!("FROM x\n{line}")) {
            Ok(f) => f,
            Err(e) => return e,
        };
        let w = |w: &Word| format!("{}@{}", w.raw, w.location);
        let ws = |v: &[Word]| v.iter().map(w).collect::<Vec<_>>().join(" ");
        let p = |v: &[Pair]| {
            let v: Vec<_> = v.iter().map(|p| format!("{}={}", w(&p.key), w(&p.value))).collect();
            v.join(" ")
        };
        match &file.stages[0].commands[0].instruction {
            Instruction::Copy(c) => format!(
                "COPY from={:?} chown={:?} chmod={:?} {} -> {}",
                c.from.as_ref().map(w),
                c.chown.as_ref().map(w),
                c.chmod.as_ref().map(w),
                ws(&c.sources),
                w(&c.dest)
            ),
            Instruction::Run(a) => format!("RUN {a:?}"),
            Instruction::Cmd(a) => format!("CMD {a:?}"),
            Instruction::Entrypoint(a) => format!("ENTRYPOINT {a:?}"),
            Instruction::Env(v) => format!("ENV {}", p(v)),
            Instruction::Label(v) => format!("LABEL {}", p(v)),
            Instruction::Arg(v) => {
                let v: Vec<_> = v
                    .iter()
                    .map(|a| {
                        format!("{}{}", a.name, a.default.as_ref().map(|d| format!("={}", w(d))).unwrap_or_default())
                    })
                    .collect();
                format!("ARG {}", v.join(" "))
            }
            Instruction::Workdir(x) => format!("WORKDIR {}", w(x)),
            Instruction::User(x) => format!("USER {}", w(x)),
            Instruction::Expose(v) => format!("EXPOSE {}", ws(v)),
        }
    }

    #[test]
    fn instructions() {
        let cases: &[(&str, &str)] = &[
            ("RUN echo $HOME", r#"RUN ["/bin/sh", "-c", "echo $HOME"]"#),
            (r#"RUN ["echo", "$HOME"]"#, r#"RUN ["echo", "$HOME"]"#),
            ("CMD  x  y", r#"CMD ["/bin/sh", "-c", "x  y"]"#),
            (r#"ENTRYPOINT ["a"]"#, r#"ENTRYPOINT ["a"]"#),
            ("COPY a b /c/", "COPY from=None chown=None chmod=None a@2:6 b@2:8 -> /c/@2:10"),
            (
                "COPY --from=b --chown=u:g --chmod=600 \"a b\" .",
                r#"COPY from=Some("b@2:6") chown=Some("u:g@2:15") chmod=Some("600@2:27") "a b"@2:39 -> .@2:45"#,
            ),
            (r#"COPY ["a", "/b"]"#, "COPY from=None chown=None chmod=None a@2:1 -> /b@2:1"),
            ("ENV A=1 B=\"x y\"", "ENV A@2:5=1@2:7 B@2:9=\"x y\"@2:11"),
            ("ENV A  x y ", "ENV A@2:5=x y@2:8"),
            ("ENV A=", "ENV A@2:5=@2:7"),
            ("LABEL a.b=c \"d\"=e", "LABEL a.b@2:7=c@2:11 \"d\"@2:13=e@2:17"),
            ("ARG A B=2 C=", "ARG A B=2@2:9 C=@2:13"),
            ("WORKDIR  /a b ", "WORKDIR /a b@2:10"),
            ("USER $U:g", "USER $U:g@2:6"),
            ("EXPOSE 80 53/udp $P", "EXPOSE 80@2:8 53/udp@2:11 $P@2:18"),
        ];
        for (line, want) in cases {
            assert_eq!(one(line), *want, "line: {line}");
        }
    }

    #[test]
    fn errors() {
        let cases: &[(&str, &str)] = &[
            ("RUN", "Dockerfile:2:1: RUN requires at least one argument"),
            ("COPY a", "Dockerfile:2:1: COPY requires at least one source and a destination"),
            (r#"COPY ["a"]"#, "Dockerfile:2:1: COPY requires at least one source and a destination"),
            ("ENV A", "Dockerfile:2:5: ENV requires a name and a value"),
            ("ENV A=1 B", "Dockerfile:2:9: ENV expects name=value, found \"B\""),
            ("LABEL =x", "Dockerfile:2:7: LABEL names can not be blank"),
            ("ARG =x", "Dockerfile:2:5: ARG names can not be blank"),
            ("ARG a/b", "Dockerfile:2:5: invalid ARG name \"a/b\""),
        ];
        for (line, want) in cases {
            assert_eq!(one(line), *want, "line: {line}");
        }
    }

    #[test]
    fn stages() {
        let file = typed("ARG V=1\nFROM a:$V AS Build\nRUN x\nFROM build\nCMD y").unwrap();
        assert_eq!(file.global_args.len(), 1);
        let names: Vec<_> =
            file.stages.iter().map(|s| (s.name.clone(), s.base.raw.clone(), s.commands.len())).collect();
        assert_eq!(names, [(Some("build".into()), "a:$V".into(), 1), (None, "build".into(), 1)]);
        assert_eq!(file.stages[0].text, "FROM a:$V AS Build");
        assert_eq!(file.stages[0].base.location, Location { line: 2, column: 6 });
    }
}
