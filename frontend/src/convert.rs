//! Stages → a [`BuildGraph`]: one dispatch function per instruction.
//!
//! Lowering starts at the target stage and pulls in the stages it needs
//! (through `FROM <stage>` and `COPY --from=<stage>`), each once, so a stage
//! nobody needs is never lowered and its base image never resolved. A stage can
//! only depend on earlier stages, so this always ends. The stages being lowered
//! wait on an explicit stack, not the call stack: a chain of thousands of
//! stages, each `FROM` the one before, must not overflow the thread's stack.
//!
//! Variable scopes, as in Docker:
//! * global ARGs (before the first FROM) expand FROM lines only, unless a stage
//!   redeclares them (`ARG NAME` then takes the global value);
//! * `--build-arg` overrides an ARG's default; ENV overrides an ARG of the same
//!   name; ARGs reach RUN's environment but never the image config;
//! * the proxy ARGs (`HTTP_PROXY`, …) given as build args reach RUN without a
//!   declaration.

use std::collections::{BTreeMap, BTreeSet};

use kiln_solver::{Digest, Graph};

use crate::instructions::{Command, Copy, Dockerfile, Instruction, Pair, Word};
use crate::ops::{CopyFrom, CopyOp, ExecOp, Op};
use crate::shell::Lexer;
use crate::{
    BuildGraph, BuildOptions, Error, ErrorKind, History, ImageConfig, ImageResolver, Location, ResolvedImage, Shortened,
};

/// Build args every Dockerfile may use without declaring them.
const PROXY_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// Stages that cannot be lowered.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("target stage \"{0}\" not found")]
    TargetNotFound(String),
    #[error("base image \"{0}\" not found: build or load it first (kiln load / kiln import)")]
    ImageNotFound(String),
    #[error("cannot look up image \"{reference}\": {message}")]
    Resolve { reference: String, message: String },
    #[error("base image name \"{0}\" expands to nothing")]
    EmptyBase(String),
    #[error("FROM {0}: a stage cannot build on itself")]
    FromItself(String),
    #[error("FROM {0}: that stage comes later; a stage can only build on earlier ones")]
    FromLater(String),
    #[error("COPY --from={0}: no stage or image named \"{0}\"")]
    CopyFromNotFound(String),
    #[error("COPY --from={0}: a stage cannot copy from itself")]
    CopyFromItself(String),
    #[error("COPY --from={0}: that stage comes later; a stage can only copy from earlier ones")]
    CopyFromLater(String),
    #[error("COPY with more than one source needs a directory destination ending in \"/\", not \"{0}\"")]
    CopyDestNotDirectory(String),
    #[error("invalid --chmod={0}: expected an octal mode such as 0755")]
    Chmod(String),
    #[error("{0} expands to nothing")]
    EmptyValue(&'static str),
    #[error("invalid port \"{0}\": expected PORT[/tcp|udp|sctp] or a range such as 8000-8010/udp")]
    Port(String),
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
    };
    lowering.global_args()?;
    let target = match &opts.target {
        None => file.stages.len() - 1,
        Some(t) => lowering.find_stage(t).ok_or_else(|| Error::whole(ConvertError::TargetNotFound(t.clone())))?,
    };
    let built = lowering.lower(target)?;
    let warnings = opts
        .build_args
        .keys()
        .filter(|k| !lowering.consumed.contains(*k) && !PROXY_ARGS.contains(&k.as_str()))
        .map(|k| format!("build-arg {k} was not consumed: no ARG {k} in the stages built"))
        .collect();
    Ok(BuildGraph {
        graph: lowering.graph,
        target: built.vertex,
        config: built.config,
        warnings,
        sources: lowering.sources,
    })
}

/// A lowered stage: the vertex of its filesystem and its image config.
#[derive(Debug, Clone)]
struct Built {
    vertex: Digest,
    config: ImageConfig,
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
}

/// The state of the stage being lowered.
struct StageState {
    vertex: Digest,
    config: ImageConfig,
    /// ARGs in scope with a value, in declaration order.
    args: Vec<(String, String)>,
    /// Whether this stage set CMD (then ENTRYPOINT keeps it).
    cmd_set: bool,
    /// `[build ` / `[1 ` / `[`, for vertex names.
    prefix: String,
    step: usize,
    steps: usize,
}

impl StageState {
    /// A variable as expansion sees it: ENV first, then ARG.
    fn get(&self, name: &str) -> Option<String> {
        env_get(&self.config.env, name)
            .or_else(|| self.args.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()))
            .map(str::to_owned)
    }

    fn workdir(&self) -> String {
        match self.config.working_dir.as_str() {
            "" => "/".to_owned(),
            wd => wd.to_owned(),
        }
    }

    /// The next vertex name: `[build 2/4] RUN make`.
    fn name(&mut self, text: &str) -> String {
        self.step += 1;
        // Shortened: the name is shown on every progress line and error about
        // the step, and copied into each of its events.
        format!("{}{}/{}] {}", self.prefix, self.step, self.steps, Shortened::new(text))
    }

    fn history(&mut self, created_by: String, empty_layer: bool) {
        self.config.history.push(History { created: None, created_by, comment: None, empty_layer });
    }
}

/// The PATH docker gives a stage whose base image sets none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

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

impl Lowering<'_> {
    /// Add a vertex made by the instruction at `at` (the first place wins when
    /// equal steps dedupe into one vertex).
    fn add(&mut self, op: Op, inputs: Vec<Digest>, name: String, at: Location) -> Result<Digest, Error> {
        let digest = self.graph.add(op, inputs, name).map_err(|e| Error::whole(ErrorKind::Graph(e)))?;
        self.sources.entry(digest.clone()).or_insert(at);
        Ok(digest)
    }

    fn expand(&self, word: &Word, get: &dyn Fn(&str) -> Option<String>) -> Result<String, Error> {
        self.lexer.expand(&word.raw, get).map_err(|e| Error::at(word.location, e))
    }

    /// A build arg's value, noting that it was consumed.
    fn build_arg(&mut self, name: &str) -> Option<String> {
        let value = self.opts.build_args.get(name).cloned();
        if value.is_some() {
            self.consumed.insert(name.to_owned());
        }
        value
    }

    fn global_args(&mut self) -> Result<(), Error> {
        // BuildKit's automatic platform ARGs: in scope for FROM lines, and in a
        // stage once it declares them (`ARG TARGETARCH`).
        if let Some(platform) = &self.opts.platform {
            let mut parts = platform.splitn(3, '/');
            let (os, arch, variant) =
                (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            for side in ["TARGET", "BUILD"] {
                for (key, value) in [("PLATFORM", platform.as_str()), ("OS", os), ("ARCH", arch), ("VARIANT", variant)]
                {
                    self.global_args.insert(format!("{side}{key}"), value.to_owned());
                }
            }
        }
        for command in &self.file.global_args {
            let Instruction::Arg(decls) = &command.instruction else {
                continue;
            };
            for decl in decls {
                let value = match (self.build_arg(&decl.name), &decl.default) {
                    (Some(v), _) => Some(v),
                    (None, Some(default)) => {
                        let globals = &self.global_args;
                        Some(self.expand(default, &|n| globals.get(n).cloned())?)
                    }
                    (None, None) => None,
                };
                if let Some(v) = value {
                    self.global_args.insert(decl.name.clone(), v);
                }
            }
        }
        Ok(())
    }

    /// A stage by name (case-insensitive) or index.
    fn find_stage(&self, name: &str) -> Option<usize> {
        let lower = name.to_ascii_lowercase();
        self.file
            .stages
            .iter()
            .position(|s| s.name.as_deref() == Some(lower.as_str()))
            .or_else(|| name.parse().ok().filter(|&i| i < self.file.stages.len()))
    }

    /// Look an image up once per build.
    fn resolve(&mut self, reference: &str, at: Location) -> Result<Option<ResolvedImage>, Error> {
        if let Some(known) = self.images.get(reference) {
            return Ok(known.clone());
        }
        let image = self.resolver.resolve(reference).map_err(|message| {
            let reference = reference.to_owned();
            Error::at(at, ConvertError::Resolve { reference, message })
        })?;
        self.images.insert(reference.to_owned(), image.clone());
        Ok(image)
    }

    /// The stage `index` if it is lowered already; else halt to lower it first.
    fn stage(&self, index: usize) -> Result<&Built, Halt> {
        self.done[index].as_ref().ok_or(Halt::Need(index))
    }

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
        Frame { index, state: None, commands: std::mem::take(&mut self.commands[index]).into_iter() }
    }

    /// Lower the rest of a stage, from where it halted last.
    fn resume(&mut self, frame: &mut Frame) -> Result<Built, Halt> {
        let st = match &mut frame.state {
            Some(st) => st,
            None => frame.state.insert(self.lower_from(frame.index, frame.commands.as_slice())?),
        };
        while let Some(command) = frame.commands.as_slice().first() {
            self.dispatch(frame.index, st, command)?;
            frame.commands.next(); // applied: dropped
        }
        let st = frame.state.take().expect("set above");
        Ok(Built { vertex: st.vertex, config: st.config })
    }

    /// The state of stage `index`, whose commands are `commands`, after its FROM.
    fn lower_from(&mut self, index: usize, commands: &[Command]) -> Result<StageState, Halt> {
        let file = self.file;
        let stage = &file.stages[index];
        let prefix = match (&stage.name, self.file.stages.len()) {
            (Some(name), _) => format!("[{name} "),
            (None, 1) => "[".to_owned(),
            (None, _) => format!("[{index} "),
        };
        let mut state = StageState {
            vertex: Digest::of(b""),
            config: ImageConfig::default(),
            args: Vec::new(),
            cmd_set: false,
            prefix,
            step: 0,
            steps: 1 + commands.iter().filter(|c| c.instruction.is_step()).count(),
        };
        let name = state.name(&stage.text);

        // FROM: expanded with the global ARGs only.
        let globals = &self.global_args;
        let base = self.expand(&stage.base, &|n| globals.get(n).cloned())?;
        let at = stage.base.location;
        if base.is_empty() {
            return Err(Error::at(at, ConvertError::EmptyBase(stage.base.raw.clone())).into());
        }
        let earlier =
            self.file.stages.iter().position(|s| s.name.as_deref() == Some(base.to_ascii_lowercase().as_str()));
        (state.vertex, state.config) = match earlier {
            Some(i) if i == index => return Err(Error::at(at, ConvertError::FromItself(base)).into()),
            Some(i) if i > index => return Err(Error::at(at, ConvertError::FromLater(base)).into()),
            Some(i) => {
                let built = self.stage(i)?;
                (built.vertex.clone(), built.config.clone())
            }
            None if base == "scratch" => (self.add(Op::Scratch, vec![], name, at)?, ImageConfig::default()),
            None => {
                let image =
                    self.resolve(&base, at)?.ok_or_else(|| Error::at(at, ConvertError::ImageNotFound(base.clone())))?;
                let op = Op::Image { name: image.name, digest: image.digest };
                (self.add(op, vec![], name, at)?, image.config)
            }
        };
        // Like BuildKit: a stage whose base sets no PATH gets the default one, so
        // `ENV PATH=$PATH:/x` and every runtime see a usable PATH.
        if env_get(&state.config.env, "PATH").is_none() {
            state.config.env.insert(0, format!("PATH={DEFAULT_PATH}"));
        }
        Ok(state)
    }

    /// Apply one instruction. It halts, if it must, before it changes anything,
    /// so it can be dispatched again once the stage it needs is lowered.
    fn dispatch(&mut self, index: usize, st: &mut StageState, cmd: &Command) -> Result<(), Halt> {
        match &cmd.instruction {
            Instruction::Copy(copy) => self.copy(index, st, cmd, copy),
            Instruction::Run(args) => Ok(self.run(st, cmd, args)?),
            Instruction::Env(pairs) => {
                // Every value expands with the environment before this line.
                let pairs = self.pairs(st, pairs)?;
                for (k, v) in &pairs {
                    env_set(&mut st.config.env, k, v);
                }
                st.history(format!("ENV {}", join_pairs(&pairs)), true);
                Ok(())
            }
            Instruction::Label(pairs) => {
                let pairs = self.pairs(st, pairs)?;
                for (k, v) in &pairs {
                    st.config.labels.insert(k.clone(), v.clone());
                }
                st.history(format!("LABEL {}", join_pairs(&pairs)), true);
                Ok(())
            }
            Instruction::Arg(decls) => {
                let mut shown = Vec::new();
                for decl in decls {
                    let default = match &decl.default {
                        Some(w) => Some(self.expand(w, &|n| st.get(n))?),
                        None => None,
                    };
                    shown.push(match &default {
                        Some(d) => format!("{}={d}", decl.name),
                        None => decl.name.clone(),
                    });
                    let value =
                        self.build_arg(&decl.name).or(default).or_else(|| self.global_args.get(&decl.name).cloned());
                    if let Some(v) = value {
                        match st.args.iter_mut().find(|(k, _)| *k == decl.name) {
                            Some(arg) => arg.1 = v,
                            None => st.args.push((decl.name.clone(), v)),
                        }
                    }
                }
                st.history(format!("ARG {}", shown.join(" ")), true);
                Ok(())
            }
            Instruction::Workdir(word) => {
                let dir = self.expand(word, &|n| st.get(n))?;
                if dir.is_empty() {
                    return Err(Error::at(word.location, ConvertError::EmptyValue("WORKDIR")).into());
                }
                st.config.working_dir = clean(&join(&st.workdir(), &dir));
                st.history(format!("WORKDIR {}", st.config.working_dir), true);
                Ok(())
            }
            Instruction::User(word) => {
                let user = self.expand(word, &|n| st.get(n))?;
                if user.is_empty() {
                    return Err(Error::at(word.location, ConvertError::EmptyValue("USER")).into());
                }
                st.history(format!("USER {user}"), true);
                st.config.user = user;
                Ok(())
            }
            Instruction::Expose(words) => {
                let mut ports = Vec::new();
                for word in words {
                    let expanded =
                        self.lexer.expand_words(&word.raw, &|n| st.get(n)).map_err(|e| Error::at(word.location, e))?;
                    for port in expanded {
                        let expanded =
                            normalize_port(&port).ok_or_else(|| Error::at(word.location, ConvertError::Port(port)))?;
                        for port in expanded {
                            st.config.exposed_ports.insert(port.clone());
                            ports.push(port);
                        }
                    }
                }
                st.history(format!("EXPOSE {}", ports.join(" ")), true);
                Ok(())
            }
            Instruction::Cmd(args) => {
                st.config.cmd = Some(args.clone());
                st.cmd_set = true;
                st.history(format!("CMD {}", json(args)), true);
                Ok(())
            }
            Instruction::Entrypoint(args) => {
                st.config.entrypoint = Some(args.clone());
                // Docker: a new ENTRYPOINT drops a CMD this stage did not set.
                if !st.cmd_set {
                    st.config.cmd = None;
                }
                st.history(format!("ENTRYPOINT {}", json(args)), true);
                Ok(())
            }
        }
    }

    fn pairs(&self, st: &StageState, pairs: &[Pair]) -> Result<Vec<(String, String)>, Error> {
        pairs
            .iter()
            .map(|p| {
                let get = |n: &str| st.get(n);
                Ok((self.expand(&p.key, &get)?, self.expand(&p.value, &get)?))
            })
            .collect()
    }

    fn run(&mut self, st: &mut StageState, cmd: &Command, args: &[String]) -> Result<(), Error> {
        // The image env, then ARGs ENV does not shadow, then undeclared proxies.
        let mut env = st.config.env.clone();
        let mut shown_args = Vec::new();
        for (k, v) in &st.args {
            if env_get(&st.config.env, k).is_none() {
                env.push(format!("{k}={v}"));
                shown_args.push(format!("{k}={v}"));
            }
        }
        for &proxy in PROXY_ARGS {
            let declared = st.args.iter().any(|(k, _)| k == proxy);
            if let Some(v) = self.opts.build_args.get(proxy) {
                if !declared && env_get(&st.config.env, proxy).is_none() {
                    env.push(format!("{proxy}={v}"));
                }
            }
        }
        let op = Op::Exec(ExecOp { args: args.to_vec(), env, cwd: st.workdir(), user: st.config.user.clone() });
        let name = st.name(&cmd.text);
        st.vertex = self.add(op, vec![st.vertex.clone()], name, cmd.location)?;
        // Like docker: `RUN |2 A=1 B=2 /bin/sh -c make` when ARGs are in scope.
        let args_note = match shown_args.len() {
            0 => String::new(),
            n => format!("|{n} {} ", shown_args.join(" ")),
        };
        st.history(format!("RUN {args_note}{}", args.join(" ")), false);
        Ok(())
    }

    fn copy(&mut self, index: usize, st: &mut StageState, cmd: &Command, copy: &Copy) -> Result<(), Halt> {
        let get = |n: &str| st.get(n);
        let flag = |w: &Option<Word>| w.as_ref().map(|w| self.expand(w, &get)).transpose();
        let (from, chown, chmod) = (flag(&copy.from)?, flag(&copy.chown)?, flag(&copy.chmod)?);
        if let Some(mode) = &chmod {
            let octal = !mode.is_empty() && mode.len() <= 4 && mode.chars().all(|c| ('0'..='7').contains(&c));
            if !octal {
                let at = copy.chmod.as_ref().map_or(cmd.location, |w| w.location);
                return Err(Error::at(at, ConvertError::Chmod(mode.clone())).into());
            }
        }
        let sources = copy.sources.iter().map(|w| self.expand(w, &get)).collect::<Result<Vec<_>, _>>()?;
        let dest = self.expand(&copy.dest, &get)?;
        for (word, value) in copy.sources.iter().zip(&sources).chain([(&copy.dest, &dest)]) {
            if value.is_empty() {
                let what = if word == &copy.dest { "COPY destination" } else { "COPY source" };
                return Err(Error::at(word.location, ConvertError::EmptyValue(what)).into());
            }
        }
        let is_dir = dest.ends_with('/') || dest == "." || dest.ends_with("/.");
        if sources.len() > 1 && !is_dir {
            return Err(Error::at(copy.dest.location, ConvertError::CopyDestNotDirectory(dest)).into());
        }
        let mut abs = clean(&join(&st.workdir(), &dest));
        if is_dir && abs != "/" {
            abs.push('/');
        }

        let mut inputs = vec![st.vertex.clone()];
        if let Some(from) = &from {
            inputs.push(self.copy_source(index, from, cmd.location)?);
        }
        let mut shown = String::from("COPY ");
        for (flag, value) in [("from", &from), ("chown", &chown), ("chmod", &chmod)] {
            if let Some(v) = value {
                shown += &format!("--{flag}={v} ");
            }
        }
        shown += &format!("{} {dest}", sources.join(" "));
        let op = Op::Copy(CopyOp {
            from: if from.is_some() { CopyFrom::Input } else { CopyFrom::Context },
            sources,
            dest: abs,
            chown,
            chmod,
        });
        let name = st.name(&cmd.text);
        st.vertex = self.add(op, inputs, name, cmd.location)?;
        st.history(shown, false);
        Ok(())
    }

    /// The vertex `COPY --from=<from>` reads: an earlier stage (by name or index)
    /// or an image.
    fn copy_source(&mut self, index: usize, from: &str, at: Location) -> Result<Digest, Halt> {
        match self.find_stage(from) {
            Some(i) if i == index => Err(Error::at(at, ConvertError::CopyFromItself(from.to_owned())).into()),
            Some(i) if i > index => Err(Error::at(at, ConvertError::CopyFromLater(from.to_owned())).into()),
            Some(i) => Ok(self.stage(i)?.vertex.clone()),
            None => {
                let image = self
                    .resolve(from, at)?
                    .ok_or_else(|| Error::at(at, ConvertError::CopyFromNotFound(from.to_owned())))?;
                let name = format!("image {}", image.name);
                let op = Op::Image { name: image.name, digest: image.digest };
                Ok(self.add(op, vec![], name, at)?)
            }
        }
    }
}

fn join_pairs(pairs: &[(String, String)]) -> String {
    let v: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    v.join(" ")
}

fn json(args: &[String]) -> String {
    serde_json::to_string(args).unwrap_or_default()
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

/// `80` → `80/tcp`; `53/UDP` → `53/udp`; `None` when it is no port.
/// EXPOSE's `port[/proto]` as docker's port parser reads it: a range stands for
/// each of its ports, and of `host:container` only the container port counts
/// (publishing is `docker run`'s business).
fn normalize_port(port: &str) -> Option<Vec<String>> {
    let (number, proto) = port.split_once('/').unwrap_or((port, "tcp"));
    let number = number.rsplit(':').next().unwrap_or(number);
    let proto = proto.to_ascii_lowercase();
    if !["tcp", "udp", "sctp"].contains(&proto.as_str()) {
        return None;
    }
    let parse = |p: &str| p.parse::<u16>().ok().filter(|n| *n > 0);
    let (first, last) = match number.split_once('-') {
        Some((a, b)) => (parse(a)?, parse(b)?),
        None => (parse(number)?, parse(number)?),
    };
    (first <= last).then(|| (first..=last).map(|n| format!("{n}/{proto}")).collect())
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
    fn ports() {
        for (input, want) in [
            ("80", Some(vec!["80/tcp"])),
            ("53/UDP", Some(vec!["53/udp"])),
            ("8000-8002/sctp", Some(vec!["8000/sctp", "8001/sctp", "8002/sctp"])),
            ("8080:80", Some(vec!["80/tcp"])),
            ("127.0.0.1:8080:80/udp", Some(vec!["80/udp"])),
            ("9-8", None),
            ("0", None),
            ("http", None),
            ("80/icmp", None),
            ("70000", None),
        ] {
            let want = want.map(|w| w.into_iter().map(str::to_owned).collect::<Vec<_>>());
            assert_eq!(normalize_port(input), want, "{input}");
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
