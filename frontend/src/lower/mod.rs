//! Stages → a [`BuildGraph`]: one dispatch function per instruction, one file
//! per instruction family.
//!
//! Lowering starts at the target stage and pulls in the stages it needs
//! (through `FROM <stage>`, `COPY --from=<stage>` and RUN's
//! `--mount=from=<stage>`), each once, so a stage
//! nobody needs is never lowered and its base image never resolved. A stage can
//! only depend on earlier stages, so this always ends. The stages being lowered
//! wait on an explicit stack, not the call stack: a chain of thousands of
//! stages, each `FROM` the one before, must not overflow the thread's stack.
//!
//! * `mod.rs` (here): the driver — the stack of stages, dispatch, shared helpers;
//! * `stage`: FROM, and the state of the stage being lowered;
//! * `args`: ARG and build args, global and per stage (the scoping rules);
//! * `run`: RUN, the environment it sees, and SHELL's wrapping of shell form;
//! * `copy`: COPY and ADD, and `--from`; `add`: what ADD's sources are (local,
//!   URL, git); `chmod`: `--chmod`'s syntax;
//! * `meta`: the instructions that only change the image config (ENV, LABEL,
//!   WORKDIR, USER, EXPOSE, CMD, ENTRYPOINT); `image_config` the rest of them
//!   (SHELL, HEALTHCHECK, VOLUME, STOPSIGNAL, MAINTAINER, ONBUILD), `signal`
//!   STOPSIGNAL's names;
//! * `mount`: RUN's `--mount`s, with BuildKit's defaults, and their `from=`;
//! * `requirements`: what a graph's RUN steps ask of the build (secrets, ssh,
//!   `--allow`), for the engine to check before anything runs;
//! * `platform`: `FROM --platform`.

mod add;
mod args;
mod chmod;
mod copy;
mod go_fmt;
mod heredoc;
mod image_config;
mod meta;
mod mount;
mod onbuild;
mod platform;
mod requirements;
mod run;
mod signal;
mod stage;

use std::collections::{BTreeMap, BTreeSet};

use kiln_solver::{Digest, Graph};

use crate::config::ImageConfig;
use crate::error::{Error, ErrorKind, Location};
use crate::instructions::{Command, Dockerfile, Instruction, Word};
use crate::ops::Op;
use crate::options::{BuildOptions, ImageResolver, ResolvedImage};
use crate::shell::Lexer;
pub use requirements::{RequiredId, RunRequirements};
use stage::StageState;

/// Stages that cannot be lowered.
#[derive(Debug, thiserror::Error)]
pub enum LowerError {
    /// `--target` names no stage.
    #[error("target stage \"{0}\" not found: --target takes a stage name (FROM <image> AS <name>) or index")]
    TargetNotFound(String),
    /// FROM names neither an earlier stage nor an image the resolver knows.
    #[error("base image \"{0}\" not found: build or load it first (kiln load / kiln import)")]
    ImageNotFound(String),
    /// The resolver failed (as opposed to not knowing the image).
    #[error("cannot look up image \"{reference}\": {message}")]
    Resolve {
        /// The reference looked up, expanded.
        reference: String,
        /// The resolver's own message.
        message: String,
    },
    /// FROM's image expands to the empty string (an unset ARG).
    #[error(
        "base image name \"{0}\" expands to nothing: give its ARG a default before the first FROM, or pass --build-arg"
    )]
    EmptyBase(String),
    /// `COPY --from` names neither a stage nor an image the resolver knows.
    #[error("COPY --from={0}: no stage or image named \"{0}\"")]
    CopyFromNotFound(String),
    /// `COPY --from` names the stage it is in.
    #[error("COPY --from={0}: a stage cannot copy from itself")]
    CopyFromItself(String),
    /// `COPY --from` names a stage defined further down: BuildKit lowers
    /// stages in order and refuses it.
    #[error("COPY --from={0}: that stage comes later (of stages sharing a name, the last counts); a stage can only copy from earlier ones")]
    CopyFromLater(String),
    /// `COPY --from=$X`.
    #[error("COPY --from={0}: variables are not expanded in --from (BuildKit refuses them): name a stage instead, e.g. FROM {0} AS src (global ARGs expand there), then COPY --from=src")]
    FromVariable(String),
    /// A RUN mount's `from=` names neither a stage nor an image the resolver knows.
    #[error("RUN --mount from={0}: no stage or image named \"{0}\"")]
    MountFromNotFound(String),
    /// A RUN mount's `from=` names the stage it is in.
    #[error("RUN --mount from={0}: a stage cannot mount itself; name an earlier stage")]
    MountFromItself(String),
    /// A RUN mount's `from=` names a stage defined further down.
    #[error("RUN --mount from={0}: that stage comes later (of stages sharing a name, the last counts); a stage can only mount earlier ones")]
    MountFromLater(String),
    /// A RUN mount's `from=$X`.
    #[error("RUN --mount from={0}: variables are not expanded in from= (BuildKit refuses them): name a stage instead, e.g. FROM {0} AS src (global ARGs expand there), then from=src")]
    MountFromVariable(String),
    /// A RUN mount's `from=` that expands to nothing.
    #[error("RUN --mount from= names nothing: name a stage, an image or a build context, or leave from= out for the build context")]
    MountFromEmpty,
    /// A RUN mount's `from=<number>` beyond the stages.
    #[error("RUN --mount from={0}: invalid stage index, the Dockerfile has {1} stages (counted from 0)")]
    MountStageIndex(String, usize),
    /// A `--mount` value that is wrong once its variables are expanded.
    #[error("invalid --mount={value}: {problem}")]
    Mount {
        /// The value as written.
        value: String,
        /// What is wrong, and what to write.
        problem: String,
    },
    /// `COPY --from=<number>` beyond the stages.
    #[error("COPY --from={0}: invalid stage index, the Dockerfile has {1} stages (counted from 0)")]
    StageIndex(String, usize),
    /// `--chmod` is neither an octal nor a symbolic mode.
    #[error("invalid --chmod={0}: expected an octal mode such as 0755, or a symbolic one such as u+x,go-w")]
    Chmod(String),
    /// ADD `--checksum` that is no digest.
    #[error("invalid --checksum={0}: expected sha256:<64 hex digits> (or sha384:, sha512:)")]
    Checksum(String),
    /// ADD `--checksum` of a git source that is no commit id.
    #[error("invalid --checksum={0} for a git source: expected the commit id it must resolve to (hexadecimal, a prefix will do)")]
    GitChecksum(String),
    /// ADD `--checksum` with several sources.
    #[error("ADD --checksum can only be used with a single source: split the ADD")]
    ChecksumSources,
    /// COPY of a URL (BuildKit refuses it).
    #[error("COPY cannot download \"{0}\": use ADD for URLs")]
    CopyUrl(String),
    /// COPY of what reads as a git repository, `host:path` included (BuildKit refuses it).
    #[error("COPY cannot clone \"{0}\", which reads as a git repository: use ADD for those, or write ./{0} for a local path")]
    CopyGit(String),
    /// ADD `--checksum` of a source that is no URL.
    #[error("ADD --checksum can only be used with http(s) and git sources, not the local \"{0}\"")]
    ChecksumLocal(String),
    /// STOPSIGNAL of something that is no signal.
    #[error("invalid STOPSIGNAL \"{0}\": expected a signal name such as SIGTERM or a number such as 9")]
    Signal(String),
    /// `FROM --platform` other than the platform kiln builds for.
    #[error(
        "FROM --platform={requested}: kiln builds for {build} only; drop --platform or build on a {requested} host"
    )]
    Platform {
        /// The platform asked for, expanded.
        requested: String,
        /// The build platform.
        build: String,
    },
    /// Something Docker can do that kiln cannot yet; names it and what to do.
    #[error("{0}")]
    Unsupported(String),
    /// A value that must not be empty expands to nothing; names what it is.
    #[error(
        "{0} expands to nothing: check the variables it uses (declared with ARG or ENV, or passed with --build-arg)"
    )]
    EmptyValue(&'static str),
    /// EXPOSE of something that is not a port or a port range.
    #[error("invalid port \"{0}\": expected PORT[/tcp|udp|sctp] or a range such as 8000-8010/udp")]
    Port(String),
}

/// The result of lowering a Dockerfile.
#[derive(Debug, Clone)]
pub struct BuildGraph {
    /// Every vertex the target stage needs (and nothing else).
    pub graph: Graph<Op>,
    /// The vertex whose result is the image's filesystem.
    pub target: Digest,
    /// The image config of the target stage, history included.
    pub config: ImageConfig,
    /// Things worth telling the user that do not stop the build (unused build args…).
    pub warnings: Vec<String>,
    /// The Dockerfile instruction each vertex comes from, so a failing step can be
    /// named by its line.
    pub sources: BTreeMap<Digest, Location>,
    /// The `# check=` directive's value as written (`skip=…;error=true`), for
    /// the build checks.
    pub check_directive: Option<String>,
    /// The steps each vertex was made by, first place first (equal steps of
    /// two stages are one vertex with two places), for `--explain` and
    /// `--no-cache-filter`. A vertex a stage only reads (FROM an earlier
    /// stage, an image `COPY --from` names) has no place in that stage.
    pub places: BTreeMap<Digest, Vec<StepPlace>>,
    /// The name of every stage of the Dockerfile (lowered or not), by index.
    pub stage_names: Vec<Option<String>>,
}

/// A step of a stage, as `kiln build --explain` names it across builds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepPlace {
    /// The stage's index in the Dockerfile, from 0.
    pub stage: usize,
    /// Which of the stage's steps (1 for FROM), as in `[build 2/4]`: unlike a
    /// line number, it stays when lines that are not steps are added above.
    pub step: usize,
    /// The instruction on one line, as written, URL passwords redacted.
    pub text: String,
    /// The ARGs in scope with a value, in declaration order.
    pub args: Vec<(String, String)>,
}

/// Lower the stages of `file` that the target needs.
pub(crate) fn lower(
    mut file: Dockerfile,
    lexer: &Lexer,
    opts: &BuildOptions,
    resolver: &dyn ImageResolver,
) -> Result<BuildGraph, Error> {
    // Each stage's commands are handed out once, when it is lowered, and each
    // is dropped once applied: a big Dockerfile's memory goes to the image
    // config it becomes instead of being held twice.
    let commands = file.stages.iter_mut().map(|s| std::mem::take(&mut s.commands)).collect();
    let file = &file;
    let mut lowering = Lowering {
        file,
        commands,
        lexer,
        opts,
        resolver,
        graph: Graph::new(),
        global_args: BTreeMap::new(),
        consumed: BTreeSet::new(),
        images: BTreeMap::new(),
        done: vec![None; file.stages.len()],
        sources: BTreeMap::new(),
        places: BTreeMap::new(),
    };
    lowering.global_args()?;
    let target = match &opts.target {
        None => file.stages.len() - 1,
        Some(t) => lowering.find_stage(t).ok_or_else(|| Error::whole(LowerError::TargetNotFound(t.clone())))?,
    };
    let built = lowering.lower(target)?;
    let warnings = lowering.unconsumed_warnings();
    Ok(BuildGraph {
        graph: lowering.graph,
        target: built.vertex,
        config: built.config,
        warnings,
        sources: lowering.sources,
        check_directive: None,
        places: lowering.places,
        stage_names: file.stages.iter().map(|s| s.name.clone()).collect(),
    })
}

/// A lowered stage: the vertex of its filesystem and its image config.
#[derive(Debug, Clone)]
struct Built {
    vertex: Digest,
    config: ImageConfig,
    /// Its ARGs in scope at its end: a stage built FROM it starts with them
    /// (BuildKit's rule; the legacy builder started empty).
    args: Vec<stage::ArgInScope>,
}

/// Why lowering a stage stopped before its end.
enum Halt {
    /// It needs stage `.0`, which is not lowered yet: lower that one, then
    /// resume this one at the same instruction (which changed nothing yet).
    Need(usize),
    Failed(Error),
}

impl From<Error> for Halt {
    fn from(e: Error) -> Self {
        Halt::Failed(e)
    }
}

/// A stage on the lowering stack.
struct Frame {
    index: usize,
    /// `None` until its FROM is lowered.
    state: Option<StageState>,
    /// The ONBUILD triggers of its base not applied yet (set with `state`).
    triggers: std::vec::IntoIter<Command>,
    /// Its commands not applied yet.
    commands: std::vec::IntoIter<Command>,
}

struct Lowering<'a> {
    /// The stages, without their commands.
    file: &'a Dockerfile,
    /// The commands of each stage not lowered yet (empty once it is).
    commands: Vec<Vec<Command>>,
    lexer: &'a Lexer,
    opts: &'a BuildOptions,
    resolver: &'a dyn ImageResolver,
    graph: Graph<Op>,
    /// Values of the global ARGs that have one.
    global_args: BTreeMap<String, String>,
    /// Build args some lowered ARG declared.
    consumed: BTreeSet<String>,
    /// Resolver answers, so each reference is looked up once per build.
    images: BTreeMap<String, Option<ResolvedImage>>,
    /// Stages lowered so far, by index.
    done: Vec<Option<Built>>,
    /// Where in the Dockerfile each vertex comes from.
    sources: BTreeMap<Digest, Location>,
    /// The steps that made each vertex.
    places: BTreeMap<Digest, Vec<StepPlace>>,
}

impl Lowering<'_> {
    /// Lower the stage `target` and every stage it needs, each once.
    fn lower(&mut self, target: usize) -> Result<Built, Error> {
        let mut stack = vec![self.frame(target)];
        loop {
            let depth = stack.len();
            let frame = stack.last_mut().expect("the target stays on the stack until it is lowered");
            match self.resume(frame) {
                // The target is never kept in `done`: no other stage needs it
                // (stages depend on earlier ones only), and its config can be big.
                Ok(built) if depth == 1 => return Ok(built),
                Ok(built) => {
                    self.done[frame.index] = Some(built);
                    stack.pop();
                }
                // Needed stages come earlier, so none of them is on the stack yet.
                Err(Halt::Need(index)) => stack.push(self.frame(index)),
                Err(Halt::Failed(e)) => return Err(e),
            }
        }
    }

    /// A frame to lower stage `index`, handed that stage's commands.
    fn frame(&mut self, index: usize) -> Frame {
        let mut commands = std::mem::take(&mut self.commands[index]);
        // A stage a named context overrides is that context alone (see `lower_from`).
        if self.file.stages[index].name.as_deref().and_then(|n| self.named_context(n)).is_some() {
            commands.clear();
        }
        Frame { index, state: None, triggers: Vec::new().into_iter(), commands: commands.into_iter() }
    }

    /// Lower the rest of a stage, from where it halted last.
    fn resume(&mut self, frame: &mut Frame) -> Result<Built, Halt> {
        let st = match &mut frame.state {
            Some(st) => st,
            None => {
                let (st, triggers) = self.lower_from(frame.index, frame.commands.as_slice())?;
                frame.triggers = triggers.into_iter();
                frame.state.insert(st)
            }
        };
        while let Some(trigger) = frame.triggers.as_slice().first() {
            let before = st.vertex.clone();
            self.dispatch(frame.index, st, trigger).map_err(|halt| match halt {
                Halt::Failed(e) => {
                    let at = self.file.stages[frame.index].location;
                    Halt::Failed(onbuild::in_trigger(e, &trigger.text, &st.base, at))
                }
                need => need,
            })?;
            if st.vertex != before {
                self.place(frame.index, st, &trigger.text);
            }
            frame.triggers.next();
        }
        while let Some(command) = frame.commands.as_slice().first() {
            let before = st.vertex.clone();
            self.dispatch(frame.index, st, command)?;
            if st.vertex != before {
                self.place(frame.index, st, &command.text);
            }
            frame.commands.next(); // applied: dropped
        }
        let st = frame.state.take().expect("set above");
        Ok(Built { vertex: st.vertex, config: st.config, args: st.args })
    }

    /// Apply one instruction. It halts, if it must, before it changes anything,
    /// so it can be dispatched again once the stage it needs is lowered.
    fn dispatch(&mut self, index: usize, st: &mut StageState, cmd: &Command) -> Result<(), Halt> {
        match &cmd.instruction {
            Instruction::Copy(copy) => self.copy(index, st, cmd, copy),
            Instruction::Run(run) => self.run(index, st, cmd, run),
            Instruction::Arg(decls) => Ok(self.arg(st, decls)?),
            Instruction::Env(pairs) => Ok(self.env(st, pairs)?),
            Instruction::Label(pairs) => Ok(self.label(st, pairs)?),
            Instruction::Workdir(word) => Ok(self.workdir(st, cmd, word)?),
            Instruction::User(word) => Ok(self.user(st, word)?),
            Instruction::Expose(words) => Ok(self.expose(st, words)?),
            Instruction::Cmd(line) => {
                let args = run::wrap(&st.config, line);
                meta::cmd(st, &args);
                Ok(())
            }
            Instruction::Entrypoint(line) => {
                let args = run::wrap(&st.config, line);
                meta::entrypoint(st, &args);
                Ok(())
            }
            Instruction::Shell(shell) => {
                image_config::shell(st, shell);
                Ok(())
            }
            Instruction::Healthcheck(health) => {
                image_config::healthcheck(st, health);
                Ok(())
            }
            Instruction::Volume(words) => Ok(self.volume(st, words)?),
            Instruction::StopSignal(word) => Ok(self.stop_signal(st, word)?),
            Instruction::Maintainer(name) => {
                image_config::maintainer(st, name);
                Ok(())
            }
            Instruction::Onbuild(trigger) => {
                image_config::onbuild(st, trigger);
                Ok(())
            }
        }
    }

    /// Add a vertex made by the instruction at `at` (the first place wins when
    /// equal steps dedupe into one vertex).
    fn add(&mut self, op: Op, inputs: Vec<Digest>, name: String, at: Location) -> Result<Digest, Error> {
        let digest = self.graph.add(op, inputs, name).map_err(|e| Error::whole(ErrorKind::Graph(e)))?;
        self.sources.entry(digest.clone()).or_insert(at);
        Ok(digest)
    }

    /// Note that stage `stage`'s current step made `st.vertex`.
    fn place(&mut self, stage: usize, st: &StageState, text: &str) {
        let args = st.args.iter().filter_map(|a| Some((a.name.clone(), a.value.clone()?))).collect();
        let place = StepPlace { stage, step: st.step(), text: crate::redact::credentials(text), args };
        let places = self.places.entry(st.vertex.clone()).or_default();
        if !places.contains(&place) {
            places.push(place);
        }
    }

    fn expand(&self, word: &Word, get: &dyn Fn(&str) -> Option<String>) -> Result<String, Error> {
        self.lexer.expand(&word.raw, get).map_err(|e| Error::at(word.location, e))
    }

    /// A stage by name (case-insensitive; the last of that name, as BuildKit
    /// keeps it) or index.
    fn find_stage(&self, name: &str) -> Option<usize> {
        let lower = name.to_ascii_lowercase();
        self.file
            .stages
            .iter()
            .rposition(|s| s.name.as_deref() == Some(lower.as_str()))
            .or_else(|| name.parse().ok().filter(|&i| i < self.file.stages.len()))
    }

    /// The stage a FROM in stage `index` builds on: the nearest earlier one of
    /// that name (BuildKit compares with the lower-cased stage names as written,
    /// so `FROM Build` names an image), or none.
    fn base_stage(&self, base: &str, index: usize) -> Option<usize> {
        self.file.stages[..index].iter().rposition(|s| s.name.as_deref() == Some(base))
    }

    /// Look an image up once per build.
    fn resolve(&mut self, reference: &str, at: Location) -> Result<Option<ResolvedImage>, Error> {
        if let Some(known) = self.images.get(reference) {
            return Ok(known.clone());
        }
        let image = self.resolver.resolve(reference).map_err(|message| {
            let reference = reference.to_owned();
            Error::at(at, LowerError::Resolve { reference, message })
        })?;
        self.images.insert(reference.to_owned(), image.clone());
        Ok(image)
    }

    /// The stage `index` if it is lowered already; else halt to lower it first.
    fn stage(&self, index: usize) -> Result<&Built, Halt> {
        self.done[index].as_ref().ok_or(Halt::Need(index))
    }
}

fn env_get<'e>(env: &'e [String], name: &str) -> Option<&'e str> {
    env.iter().find_map(|e| e.strip_prefix(name).and_then(|rest| rest.strip_prefix('=')))
}

/// Set `name=value`, in place when the name is already there.
fn env_set(env: &mut Vec<String>, name: &str, value: &str) {
    let entry = format!("{name}={value}");
    match env.iter_mut().find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == name) {
        Some(e) => *e = entry,
        None => env.push(entry),
    }
}

/// `path` made absolute against `dir`.
fn join(dir: &str, path: &str) -> String {
    if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("{dir}/{path}")
    }
}

/// An absolute path with `.`, `..` and repeated `/` resolved (Go's `path.Clean`);
/// no trailing `/` except for the root.
fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        for (dir, path, want) in [
            ("/", "a", "/a"),
            ("/app", "src/../lib", "/app/lib"),
            ("/app", "/abs//x/", "/abs/x"),
            ("/app", ".", "/app"),
            ("/a/b", "../../..", "/"),
            ("/", "./x/./y", "/x/y"),
        ] {
            assert_eq!(clean(&join(dir, path)), want, "{dir} {path}");
        }
    }

    #[test]
    fn env_entries_replace_in_place() {
        let mut env = vec!["A=1".to_owned(), "AB=2".to_owned()];
        env_set(&mut env, "A", "3");
        env_set(&mut env, "C", "4");
        env_set(&mut env, "AB", "");
        assert_eq!(env, ["A=3", "AB=", "C=4"]);
        assert_eq!(env_get(&env, "A"), Some("3"));
        assert_eq!(env_get(&env, "AB"), Some(""));
        assert_eq!(env_get(&env, "B"), None);
    }
}
