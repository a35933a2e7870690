//! [`Node`]s → typed [`Instruction`]s, grouped into [`Stage`]s.
//!
//! Words stay raw (unexpanded) here, each with the place it was written: which
//! environment expands them is the lowering's business (`lower`). This module
//! only checks shape: argument counts, `name=value` pairs, stage names, the
//! syntax of flags (`copy`: COPY and ADD; `run`: RUN's `--mount`, `--network`,
//! `--security`; `health`: HEALTHCHECK and its durations). Shell-form command
//! lines stay unwrapped: the SHELL in effect is only known when lowering.

mod copy;
pub(crate) mod health;
pub(crate) mod mount;
mod run;

use crate::error::{Error, Location};
use crate::parser::{Flag, Node};
use crate::shell::{Lexer, ShellError};

pub(crate) use copy::Copy;
pub(crate) use health::{format_duration, Health};
pub(crate) use run::Run;

/// An instruction with the wrong arguments.
#[derive(Debug, thiserror::Error)]
pub enum InstructionError {
    /// The instruction (named) was given nothing to work on.
    #[error("{keyword} requires at least one argument, e.g. {example}", keyword = .0, example = usage(.0))]
    NoArguments(&'static str),
    /// FROM with words other than `image [AS name]`.
    #[error("FROM takes an image and an optional \"AS name\", not \"{0}\": e.g. FROM alpine AS build")]
    FromSyntax(String),
    /// `AS name` with a name docker would refuse.
    #[error("invalid stage name \"{0}\": use letters, digits, '-', '_' and '.', starting with a letter")]
    StageName(String),
    /// COPY or ADD (named) with fewer than two words.
    #[error("{keyword} requires at least one source and a destination, e.g. {example}", keyword = .0, example = usage(.0))]
    CopyArguments(&'static str),
    /// `COPY <<EOF <<DEST`.
    #[error("{0} cannot take a heredoc as its destination: name a path")]
    HeredocDest(&'static str),
    /// A boolean flag with a value other than true or false.
    #[error("--{flag} takes true or false, not \"{value}\"")]
    BoolFlag {
        /// The flag's name.
        flag: String,
        /// The value as written.
        value: String,
    },
    /// A flag value that is not one of the allowed ones.
    #[error("invalid --{flag}={value}: {expected}")]
    FlagValue {
        /// The flag's name.
        flag: &'static str,
        /// The value as written.
        value: String,
        /// What would be accepted.
        expected: String,
    },
    /// SHELL in shell form.
    #[error("SHELL requires the arguments to be in JSON form, e.g. SHELL [\"/bin/bash\", \"-c\"]")]
    ShellNotJson,
    /// SHELL [].
    #[error("SHELL requires at least one argument, e.g. SHELL [\"/bin/bash\", \"-c\"]")]
    ShellEmpty,
    /// A shell-form word with a quote left open (`COPY "a b" /c`).
    #[error(
        "{keyword} splits its arguments at blanks, even inside quotes, so `{word}` leaves a quote open: \
         for a path with blanks use the JSON form, e.g. {}",
        json_example(keyword)
    )]
    SplitQuote {
        /// COPY, ADD or VOLUME.
        keyword: &'static str,
        /// The word as written.
        word: String,
    },
    /// VOLUME "" (or a JSON element that is blank).
    #[error("VOLUME specified can not be an empty string: give each volume a path, e.g. VOLUME /data")]
    EmptyVolume,
    /// HEALTHCHECK with a first word other than CMD or NONE.
    #[error("unknown type \"{0}\" in HEALTHCHECK (try CMD, or NONE)")]
    HealthcheckType(String),
    /// HEALTHCHECK NONE followed by something.
    #[error("HEALTHCHECK NONE takes no arguments")]
    HealthcheckNoneArgs,
    /// HEALTHCHECK CMD without a command.
    #[error("missing command after HEALTHCHECK CMD, e.g. HEALTHCHECK CMD wget -q --spider http://localhost/")]
    HealthcheckCommand,
    /// A HEALTHCHECK duration that does not parse or is out of range.
    #[error("invalid --{flag}={value}: {reason}")]
    Duration {
        /// The flag's name.
        flag: &'static str,
        /// The value as written.
        value: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A word without `=` in the `name=value` form of ENV or LABEL.
    #[error("{keyword} expects name=value, found \"{word}\"")]
    MissingEquals {
        /// ENV or LABEL.
        keyword: &'static str,
        /// The word as written.
        word: String,
    },
    /// The legacy `ENV name value` form (or LABEL's) without a value.
    #[error("{keyword} {name} has no value: write {keyword} {name}=value (or {keyword} {name}= for an empty one)")]
    MissingValue {
        /// ENV or LABEL.
        keyword: &'static str,
        /// The name as written.
        name: String,
    },
    /// `=value` with nothing before the `=` (in the named instruction).
    #[error("{0} names can not be blank")]
    BlankName(&'static str),
    /// An instruction other than ARG (named) before the first FROM.
    #[error("{0} before the first FROM: only ARG may come before it")]
    BeforeFrom(&'static str),
    /// The file has instructions but no FROM.
    #[error("no FROM instruction: start the first stage with FROM <image> (only ARG may come before it)")]
    NoFrom,
}

/// A short example of `keyword` with arguments, for the error of one without.
fn usage(keyword: &str) -> &'static str {
    match keyword {
        "FROM" => "FROM alpine:3.20",
        "RUN" => "RUN make install",
        "CMD" => r#"CMD ["app", "--serve"]"#,
        "ENTRYPOINT" => r#"ENTRYPOINT ["app"]"#,
        "COPY" => "COPY src/ /app/",
        "ADD" => "ADD app.tar.gz /opt/",
        "ENV" => "ENV NAME=value",
        "ARG" => "ARG VERSION=1.0",
        "LABEL" => "LABEL version=1.0",
        "WORKDIR" => "WORKDIR /app",
        "USER" => "USER app:app",
        "EXPOSE" => "EXPOSE 8080/tcp",
        "VOLUME" => "VOLUME /data",
        "STOPSIGNAL" => "STOPSIGNAL SIGTERM",
        "HEALTHCHECK" => "HEALTHCHECK CMD wget -q --spider http://localhost/",
        "SHELL" => r#"SHELL ["/bin/bash", "-c"]"#,
        "ONBUILD" => "ONBUILD RUN make",
        _ => "MAINTAINER Jane Doe <jane@example.com>",
    }
}

/// The JSON form of `keyword` with a path that holds a blank.
fn json_example(keyword: &str) -> String {
    match keyword {
        "VOLUME" => r#"VOLUME ["/my data"]"#.to_owned(),
        _ => format!(r#"{keyword} ["my file", "/dest/"]"#),
    }
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

/// A command in exec form (as given) or shell form (raw: wrapped in the
/// stage's SHELL at lowering, never expanded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CommandLine {
    Exec(Vec<String>),
    Shell(String),
}

/// One typed instruction (FROM is [`Stage`]'s).
///
/// A whole file's instructions are held at once, so they are kept small: COPY,
/// the biggest, is boxed, and lists are boxed slices, exactly as long as
/// written (a collected `Vec` may keep room for four).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Instruction {
    /// COPY and ADD.
    Copy(Box<Copy>),
    Run(Box<Run>),
    Env(Box<[Pair]>),
    Arg(Box<[ArgDecl]>),
    Workdir(Word),
    User(Word),
    Label(Box<[Pair]>),
    /// Each word may expand to several ports.
    Expose(Vec<Word>),
    Cmd(CommandLine),
    Entrypoint(CommandLine),
    /// JSON form only; never expanded.
    Shell(Box<[String]>),
    Healthcheck(Box<Health>),
    /// Each word expands to one path.
    Volume(Box<[Word]>),
    StopSignal(Word),
    /// Never expanded.
    Maintainer(Box<str>),
    /// The trigger as written after ONBUILD; checked by the parser, run by
    /// the stages built on this image.
    Onbuild(Box<str>),
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
    /// `--platform=`, raw; expands with the global ARGs.
    pub(crate) platform: Option<Word>,
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
            // A name used twice is no error (the DuplicateStageName check
            // warns): as in BuildKit, a later FROM builds on the nearest
            // earlier stage of that name, --from and --target take the last.
            file.stages.push(from(node)?);
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

/// The words of a node's rest split at blanks only, as BuildKit splits FROM,
/// EXPOSE, COPY, ADD and VOLUME: quotes are removed later, word by word, as
/// each expands.
fn fields(node: &Node) -> Vec<Word> {
    crate::parser::fields(&node.rest)
        .into_iter()
        .map(|(offset, raw)| Word { raw: raw.to_owned(), location: node.location_of(offset) })
        .collect()
}

/// A shell-form word of `keyword` whose quote is left open: one half of a
/// quoted path with blanks, which BuildKit splits in two and then refuses.
fn split_quote(keyword: &'static str, words: &[Word], lexer: &Lexer) -> Result<(), Error> {
    let unset = |_: &str| None;
    match words.iter().find(|w| matches!(lexer.expand(&w.raw, &unset), Err(ShellError::UnterminatedQuote { .. }))) {
        Some(w) => Err(Error::at(w.location, InstructionError::SplitQuote { keyword, word: w.raw.clone() })),
        None => Ok(()),
    }
}

fn from(node: &Node) -> Result<Stage, Error> {
    let mut words = fields(node);
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
        _ => return Err(Error::at(node.location, InstructionError::FromSyntax(node.rest.clone()))),
    };
    Ok(Stage {
        name,
        platform: flag(node, "platform"),
        base: words.swap_remove(0),
        location: node.location,
        text: node.text.clone(),
        commands: Vec::new(),
    })
}

/// Type one ONBUILD trigger (the text after ONBUILD, as stored in an image's
/// config) for the stage that runs it; its errors point at `at` (the FROM
/// that pulls the trigger in). Like BuildKit, triggers are read with the
/// default escape character, whatever the file that runs them uses.
pub(crate) fn parse_trigger(text: &str, at: Location) -> Result<Command, Error> {
    let escape = crate::parser::DEFAULT_ESCAPE;
    let lexer = &Lexer::new(escape);
    let node = crate::parser::parse_line(text, at)?;
    match node.keyword {
        "ONBUILD" => return Err(Error::at(at, crate::parser::ParseError::OnbuildChain)),
        k @ ("FROM" | "MAINTAINER") => return Err(Error::at(at, crate::parser::ParseError::OnbuildTrigger(k))),
        _ => {}
    }
    Ok(Command { instruction: instruction(&node, lexer)?, location: at, text: node.text })
}

/// Type one node (any but FROM).
pub(crate) fn instruction(node: &Node, lexer: &Lexer) -> Result<Instruction, Error> {
    let keyword = node.keyword;
    if node.rest.is_empty() {
        return Err(Error::at(node.location, InstructionError::NoArguments(keyword)));
    }
    Ok(match keyword {
        "RUN" => Instruction::Run(Box::new(run::run(node)?)),
        "CMD" => Instruction::Cmd(command_line(node)),
        "ENTRYPOINT" => Instruction::Entrypoint(command_line(node)),
        "COPY" | "ADD" => Instruction::Copy(Box::new(copy::copy(node, lexer)?)),
        "ENV" => Instruction::Env(pairs(node, lexer)?),
        "LABEL" => Instruction::Label(pairs(node, lexer)?),
        "ARG" => Instruction::Arg(args(node, lexer)?),
        "WORKDIR" => Instruction::Workdir(whole(node)),
        "USER" => Instruction::User(whole(node)),
        "EXPOSE" => Instruction::Expose(fields(node)),
        "STOPSIGNAL" => Instruction::StopSignal(whole(node)),
        "MAINTAINER" => Instruction::Maintainer(node.rest.clone().into()),
        "SHELL" => match &node.json {
            Some(a) if a.is_empty() => return Err(Error::at(node.location, InstructionError::ShellEmpty)),
            Some(a) => Instruction::Shell(a.clone().into()),
            None => return Err(Error::at(node.location_of(0), InstructionError::ShellNotJson)),
        },
        "VOLUME" => {
            let volumes = json_or_fields(node);
            if node.json.is_none() {
                split_quote("VOLUME", &volumes, lexer)?;
            }
            if let Some(blank) = volumes.iter().find(|w| w.raw.trim().is_empty()) {
                return Err(Error::at(blank.location, InstructionError::EmptyVolume));
            }
            Instruction::Volume(volumes.into())
        }
        "HEALTHCHECK" => Instruction::Healthcheck(Box::new(health::healthcheck(node)?)),
        "ONBUILD" => {
            // As BuildKit stores it: the trigger as written (blanks at its end
            // kept), its heredocs after it.
            let mut trigger = node.rest_untrimmed().to_owned();
            for doc in node.nested.iter().flat_map(|n| &n.heredocs) {
                trigger += &format!("\n{}{}", doc.content, doc.name);
            }
            Instruction::Onbuild(trigger.into())
        }
        other => unreachable!("the parser knows no instruction {other}"),
    })
}

/// CMD's or ENTRYPOINT's command line.
fn command_line(node: &Node) -> CommandLine {
    match &node.json {
        Some(args) => CommandLine::Exec(args.clone()),
        None => CommandLine::Shell(node.rest.clone()),
    }
}

/// The JSON array's elements (which have no place of their own: the
/// instruction's is used), else the blank-separated [`fields`].
fn json_or_fields(node: &Node) -> Vec<Word> {
    match &node.json {
        Some(array) => array.iter().map(|raw| Word { raw: raw.clone(), location: node.location }).collect(),
        None => fields(node),
    }
}

/// A flag's value as a word (`None` when the flag is not given, or given
/// empty: `--chown=` is no chown, as in BuildKit).
fn flag(node: &Node, name: &str) -> Option<Word> {
    node.flags
        .iter()
        .find(|f| f.name == name)
        .and_then(|f| f.value.clone().filter(|v| !v.is_empty()).map(|raw| Word { raw, location: f.location }))
}

/// Every value of a repeatable flag, in order.
fn flags(node: &Node, name: &str) -> Vec<Word> {
    node.flags
        .iter()
        .filter(|f| f.name == name)
        .map(|f| Word { raw: f.value.clone().unwrap_or_default(), location: f.location })
        .collect()
}

/// A boolean flag: absent → `None`; `--x` → true; `--x=true|false` (any case).
fn bool_flag(node: &Node, name: &str) -> Result<Option<bool>, Error> {
    let Some(f) = node.flags.iter().find(|f| f.name == name) else {
        return Ok(None);
    };
    bool_value(f).map(Some)
}

fn bool_value(f: &Flag) -> Result<bool, Error> {
    match f.value.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(_) => {
            let e = InstructionError::BoolFlag { flag: f.name.clone(), value: f.value.clone().unwrap_or_default() };
            Err(Error::at(f.location, e))
        }
    }
}

/// The rest as one word (WORKDIR, USER).
fn whole(node: &Node) -> Word {
    Word { raw: node.rest.clone(), location: node.location_of(0) }
}

/// ENV's or LABEL's pairs as BuildKit's parser leaves them: raw key, raw
/// value, and the separator (`=`, or empty for the legacy `K value` form).
pub(crate) fn raw_pairs(node: &Node, lexer: &Lexer) -> Result<Vec<(String, String, &'static str)>, Error> {
    let legacy = !words(node, lexer).first().is_some_and(|w| w.raw.contains('='));
    let sep = if legacy { "" } else { "=" };
    Ok(pairs(node, lexer)?.iter().map(|p| (p.key.raw.clone(), p.value.raw.clone(), sep)).collect())
}

/// `k=v k2="v 2"`, or the legacy `K value with spaces` (one pair).
fn pairs(node: &Node, lexer: &Lexer) -> Result<Box<[Pair]>, Error> {
    let keyword = node.keyword;
    let words = words(node, lexer);
    if !words[0].raw.contains('=') {
        // Legacy form: the first word is the name, all the rest is the value.
        let key = words[0].clone();
        let Some(value_start) = node.rest[key.raw.len()..].find(|c: char| !c.is_whitespace()) else {
            return Err(Error::at(key.location, InstructionError::MissingValue { keyword, name: key.raw }));
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
            // Any other name is BuildKit's too (`ARG a/b=1` is set in RUN's
            // environment and overridable by --build-arg): it checks none.
            Ok(ArgDecl { name: name.to_owned(), default })
        })
        .collect()
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
                "{} from={:?} chown={:?} chmod={:?} {} -> {}",
                if c.add { "ADD" } else { "COPY" },
                c.from.as_ref().map(w),
                c.chown.as_ref().map(w),
                c.chmod.as_ref().map(w),
                ws(&c.sources),
                w(&c.dest)
            ),
            Instruction::Run(r) => format!("RUN {:?}", r.command),
            Instruction::Cmd(a) => format!("CMD {a:?}"),
            Instruction::Entrypoint(a) => format!("ENTRYPOINT {a:?}"),
            Instruction::Shell(a) => format!("SHELL {a:?}"),
            Instruction::Healthcheck(h) => format!("HEALTHCHECK {h:?}"),
            Instruction::Volume(v) => format!("VOLUME {}", ws(v)),
            Instruction::StopSignal(x) => format!("STOPSIGNAL {}", w(x)),
            Instruction::Maintainer(x) => format!("MAINTAINER {x}"),
            Instruction::Onbuild(x) => format!("ONBUILD {x}"),
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
            ("RUN echo $HOME", r#"RUN Shell("echo $HOME")"#),
            (r#"RUN ["echo", "$HOME"]"#, r#"RUN Exec(["echo", "$HOME"])"#),
            ("CMD  x  y", r#"CMD Shell("x  y")"#),
            (r#"ENTRYPOINT ["a"]"#, r#"ENTRYPOINT Exec(["a"])"#),
            (r#"CMD ["echo", "no quote!]"#, r#"CMD Shell("[\"echo\", \"no quote!]")"#),
            (r#"ENTRYPOINT ["x"] # c"#, r#"ENTRYPOINT Shell("[\"x\"] # c")"#),
            ("ADD --chown=a a.tgz http://x/y /d/", r#"ADD from=None chown=Some("a@2:5") chmod=None a.tgz@2:15 http://x/y@2:21 -> /d/@2:32"#),
            (r#"SHELL ["/bin/bash", "-c"]"#, r#"SHELL ["/bin/bash", "-c"]"#),
            ("VOLUME /a $B", "VOLUME /a@2:8 $B@2:11"),
            (r#"VOLUME ["/a", "/b"]"#, "VOLUME /a@2:1 /b@2:1"),
            ("STOPSIGNAL SIGKILL", "STOPSIGNAL SIGKILL@2:12"),
            ("MAINTAINER Jo <jo@x>", "MAINTAINER Jo <jo@x>"),
            ("ONBUILD  RUN  make \\\n  all\t ", "ONBUILD RUN  make   all\t "),
            ("HEALTHCHECK NONE", "HEALTHCHECK Health { test: None, interval: 0, timeout: 0, start_period: 0, start_interval: 0, retries: 0 }"),
            (
                "HEALTHCHECK --interval=1m30s --retries=3 CMD curl -f x",
                r#"HEALTHCHECK Health { test: Some(Shell("curl -f x")), interval: 90000000000, timeout: 0, start_period: 0, start_interval: 0, retries: 3 }"#,
            ),
            (
                r#"HEALTHCHECK --timeout=500ms cmd ["true"]"#,
                r#"HEALTHCHECK Health { test: Some(Exec(["true"])), interval: 0, timeout: 500000000, start_period: 0, start_interval: 0, retries: 0 }"#,
            ),
            ("COPY a b /c/", "COPY from=None chown=None chmod=None a@2:6 b@2:8 -> /c/@2:10"),
            (
                "COPY --from=b --chown=u:g --chmod=600 \"a\"'b' .",
                r#"COPY from=Some("b@2:6") chown=Some("u:g@2:15") chmod=Some("600@2:27") "a"'b'@2:39 -> .@2:46"#,
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
            ("EXPOSE 80/tcp\t8000-8010/udp  $P", "EXPOSE 80/tcp@2:8 8000-8010/udp@2:15 $P@2:30"),
            // Blanks split these even inside quotes, as in BuildKit; quotes
            // without blanks are removed when the word expands.
            ("VOLUME \"/a\"\t/b\\ c", "VOLUME \"/a\"@2:8 /b\\@2:13 c@2:17"),
            ("COPY a\\ b /c/", "COPY from=None chown=None chmod=None a\\@2:6 b@2:9 -> /c/@2:11"),
        ];
        for (line, want) in cases {
            assert_eq!(one(line), *want, "line: {line}");
        }
    }

    #[test]
    fn errors() {
        let cases: &[(&str, &str)] = &[
            ("RUN", "Dockerfile:2:1: RUN requires at least one argument, e.g. RUN make install"),
            ("ONBUILD", "Dockerfile:2:1: ONBUILD requires at least one argument, e.g. ONBUILD RUN make"),
            ("MAINTAINER  ", "Dockerfile:2:1: MAINTAINER requires at least one argument, e.g. MAINTAINER Jane Doe <jane@example.com>"),
            ("STOPSIGNAL", "Dockerfile:2:1: STOPSIGNAL requires at least one argument, e.g. STOPSIGNAL SIGTERM"),
            ("COPY a", "Dockerfile:2:1: COPY requires at least one source and a destination, e.g. COPY src/ /app/"),
            (r#"COPY ["a"]"#, "Dockerfile:2:1: COPY requires at least one source and a destination, e.g. COPY src/ /app/"),
            ("ENV A", "Dockerfile:2:5: ENV A has no value: write ENV A=value (or ENV A= for an empty one)"),
            ("LABEL a ", "Dockerfile:2:7: LABEL a has no value: write LABEL a=value (or LABEL a= for an empty one)"),
            ("ENV A=1 B", "Dockerfile:2:9: ENV expects name=value, found \"B\""),
            ("LABEL =x", "Dockerfile:2:7: LABEL names can not be blank"),
            ("ARG =x", "Dockerfile:2:5: ARG names can not be blank"),
            ("ADD a", "Dockerfile:2:1: ADD requires at least one source and a destination, e.g. ADD app.tar.gz /opt/"),
            (
                "COPY \"a b\" /c",
                "Dockerfile:2:6: COPY splits its arguments at blanks, even inside quotes, so `\"a` leaves a quote open: \
                 for a path with blanks use the JSON form, e.g. COPY [\"my file\", \"/dest/\"]",
            ),
            ("ADD x 'my dir/'", "Dockerfile:2:7: ADD splits its arguments at blanks, even inside quotes, so `'my` leaves a quote open: for a path with blanks use the JSON form, e.g. ADD [\"my file\", \"/dest/\"]"),
            ("VOLUME \"/my data\"", "Dockerfile:2:8: VOLUME splits its arguments at blanks, even inside quotes, so `\"/my` leaves a quote open: for a path with blanks use the JSON form, e.g. VOLUME [\"/my data\"]"),
            ("SHELL /bin/bash -c", "Dockerfile:2:7: SHELL requires the arguments to be in JSON form, e.g. SHELL [\"/bin/bash\", \"-c\"]"),
            ("SHELL []", "Dockerfile:2:1: SHELL requires at least one argument, e.g. SHELL [\"/bin/bash\", \"-c\"]"),
            (r#"VOLUME ["/a", " "]"#, "Dockerfile:2:1: VOLUME specified can not be an empty string: give each volume a path, e.g. VOLUME /data"),
            ("HEALTHCHECK NONE x", "Dockerfile:2:18: HEALTHCHECK NONE takes no arguments"),
            ("HEALTHCHECK CMD", "Dockerfile:2:1: missing command after HEALTHCHECK CMD, e.g. HEALTHCHECK CMD wget -q --spider http://localhost/"),
            ("HEALTHCHECK CMD []", "Dockerfile:2:1: missing command after HEALTHCHECK CMD, e.g. HEALTHCHECK CMD wget -q --spider http://localhost/"),
            ("HEALTHCHECK RUN x", "Dockerfile:2:13: unknown type \"RUN\" in HEALTHCHECK (try CMD, or NONE)"),
            ("HEALTHCHECK --interval=5 CMD x", "Dockerfile:2:13: invalid --interval=5: expected a duration such as 30s, 1m30s or 500ms"),
            ("HEALTHCHECK --timeout=1us CMD x", "Dockerfile:2:13: invalid --timeout=1us: it cannot be less than 1ms"),
            ("HEALTHCHECK --retries=-1 CMD x", "Dockerfile:2:13: invalid --retries=-1: expected a count, 0 or more"),
            ("COPY --link=maybe a b", "Dockerfile:2:6: --link takes true or false, not \"maybe\""),
            ("RUN --network=bridge x", "Dockerfile:2:5: invalid --network=bridge: expected one of default, none, host"),
            ("RUN --security=x y", "Dockerfile:2:5: invalid --security=x: expected one of sandbox, insecure"),
            ("RUN --mount=type=cache x", "Dockerfile:2:5: invalid --mount=type=cache: a cache mount needs a target, e.g. --mount=type=cache,target=/path"),
        ];
        for (line, want) in cases {
            assert_eq!(one(line), *want, "line: {line}");
        }
    }

    #[test]
    fn triggers() {
        let at = Location { line: 7, column: 1 };
        let c = parse_trigger("  COPY --chown=1 a /b ", at).unwrap();
        assert_eq!((c.text.as_str(), c.location), ("COPY --chown=1 a /b", at));
        let Instruction::Copy(copy) = &c.instruction else { panic!("{c:?}") };
        assert_eq!((copy.sources[0].raw.as_str(), copy.dest.raw.as_str()), ("a", "/b"));
        assert_eq!(copy.chown.as_ref().map(|w| w.location.line), Some(7));
        let c = parse_trigger("RUN <<EOF\necho hi\nEOF", at).unwrap();
        let Instruction::Run(run) = &c.instruction else { panic!("{c:?}") };
        assert_eq!(run.heredocs.iter().map(|h| h.content.as_str()).collect::<Vec<_>>(), ["echo hi\n"]);
        for (bad, want) in [
            ("FROM x", "7:1: FROM is not allowed as an ONBUILD trigger"),
            ("onbuild RUN x", "7:1: chaining ONBUILD via ONBUILD ONBUILD is not allowed"),
            ("FROBNICATE x", "7:1: unknown instruction \"FROBNICATE\""),
            ("COPY a", "7:1: COPY requires at least one source and a destination"),
            ("RUN a\nRUN b", "7:1: an ONBUILD trigger must be a single instruction"),
            ("RUN <<EOF\nnever ends", "7:1: unterminated heredoc <<EOF"),
        ] {
            let e = parse_trigger(bad, at).unwrap_err().to_string();
            assert!(e.contains(want), "{bad}: {e}");
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
