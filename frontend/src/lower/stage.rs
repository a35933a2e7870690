//! FROM, and the state of the stage being lowered: its current vertex, its
//! image config, its ARGs in scope and the step counter that names vertices.

use kiln_solver::Digest;

use super::{env_get, onbuild, Built, Halt, LowerError, Lowering};
use crate::config::{History, ImageConfig, DEFAULT_PATH};
use crate::error::Error;
use crate::instructions::{Command, Instruction};
use crate::ops::{CopyFrom, CopyOp, Op};
use crate::options::{NamedContext, ResolvedImage};
use crate::shorten::Shortened;

/// The comment BuildKit's Dockerfile frontend puts on each history row it writes.
const HISTORY_COMMENT: &str = "buildkit.dockerfile.v0";

/// An ARG declared in a stage (or in the stage it is built on).
#[derive(Debug, Clone)]
pub(super) struct ArgInScope {
    pub(super) name: String,
    /// `None` when declared without a value (no default, build arg or global).
    pub(super) value: Option<String>,
    /// BuildKit adds an ARG's value to the steps' environment, after what ENV
    /// set there: so of an ENV and an ARG of one name, the later one is what
    /// RUN and expansion see (the image config keeps the ENV's).
    pub(super) over_env: bool,
}

/// The state of the stage being lowered.
pub(super) struct StageState {
    /// The vertex of the stage's filesystem so far.
    pub(super) vertex: Digest,
    pub(super) config: ImageConfig,
    /// ARGs in scope, in declaration order (a redeclared one keeps its place).
    pub(super) args: Vec<ArgInScope>,
    /// Whether this stage set CMD (then ENTRYPOINT keeps it).
    pub(super) cmd_set: bool,
    /// What its FROM names, expanded: a stage, `scratch` or an image.
    pub(super) base: String,
    /// `[build ` / `[1 ` / `[`, for vertex names.
    prefix: String,
    step: usize,
    steps: usize,
}

impl StageState {
    /// A variable as expansion and RUN see it: ENV, unless an ARG of the
    /// name came later; then an ARG's value.
    pub(super) fn get(&self, name: &str) -> Option<String> {
        let arg = self.args.iter().find(|a| a.name == name);
        if let Some(ArgInScope { value: Some(v), over_env: true, .. }) = arg {
            return Some(v.clone());
        }
        env_get(&self.config.env, name).map(str::to_owned).or_else(|| arg.and_then(|a| a.value.clone()))
    }

    /// The working directory, `/` when none is set.
    pub(super) fn workdir(&self) -> String {
        match self.config.working_dir.as_str() {
            "" => "/".to_owned(),
            wd => wd.to_owned(),
        }
    }

    /// The next vertex name: `[build 2/4] RUN make`.
    pub(super) fn name(&mut self, text: &str) -> String {
        self.step += 1;
        // Shortened: the name is shown on every progress line and error about
        // the step, and copied into each of its events.
        format!("{}{}/{}] {}", self.prefix, self.step, self.steps, Shortened::new(text))
    }

    /// How many of the stage's steps are lowered, FROM included.
    pub(super) fn step(&self) -> usize {
        self.step
    }

    /// A history row for a step that only changes the config (or WORKDIR's
    /// folder): BuildKit marks every row its Dockerfile frontend writes with
    /// its comment, which tools read to tell BuildKit images apart.
    pub(super) fn history(&mut self, created_by: String, empty_layer: bool) {
        let comment = Some(HISTORY_COMMENT.to_owned());
        self.config.history.push(History { created: None, created_by, comment, empty_layer });
    }

    /// A history row for a step that ran as a build op with its own layer
    /// (RUN, COPY, ADD): BuildKit's commitToHistory ends those with
    /// ` # buildkit`, which `docker history` shows.
    pub(super) fn history_of_op(&mut self, created_by: String) {
        self.history(format!("{created_by} # buildkit"), false);
    }
}

impl Lowering<'_> {
    /// The state of stage `index`, whose commands are `commands`, after its
    /// FROM; and the ONBUILD triggers of its base, to run first.
    pub(super) fn lower_from(
        &mut self,
        index: usize,
        commands: &[Command],
    ) -> Result<(StageState, Vec<Command>), Halt> {
        let file = self.file;
        let stage = &file.stages[index];
        // BuildKit's step names: `[build 2/4]`, `[stage-1 2/4]` for a stage
        // without a name, `[2/4]` when there is only one.
        let prefix = match (&stage.name, self.file.stages.len()) {
            (Some(name), _) => format!("[{name} "),
            (None, 1) => "[".to_owned(),
            (None, _) => format!("[stage-{index} "),
        };
        if let Some(platform) = &stage.platform {
            self.check_platform(platform)?;
        }

        // FROM: expanded with the global ARGs only.
        let globals = &self.global_args;
        let base = self.expand(&stage.base, &|n| globals.get(n).cloned())?;
        let at = stage.base.location;
        if base.is_empty() {
            return Err(Error::at(at, LowerError::EmptyBase(stage.base.raw.clone())).into());
        }
        // A named context comes before stages and images (BuildKit: it
        // overrides a stage of the same name). A stage of the context's own
        // name is replaced by it whole (it matters when that stage is the
        // target: nothing else reaches it): no commands (see `frame`), no
        // ONBUILD triggers either (BuildKit's `noinit`).
        let own = stage.name.as_deref().and_then(|n| self.named_context(n));
        let overridden = own.is_some();
        let from = match own.or_else(|| self.named_context(&base)) {
            Some((key, NamedContext::Directory)) => From::Context(key),
            Some((_, NamedContext::Image(reference))) => From::Image(
                self.resolve(&reference, at)?
                    .ok_or_else(|| Error::at(at, LowerError::ImageNotFound(reference.clone())))?,
            ),
            None => match self.base_stage(&base, index) {
                Some(i) => From::Stage(self.stage(i)?.clone()),
                None if base == "scratch" => From::Scratch,
                None => From::Image(
                    self.resolve(&base, at)?.ok_or_else(|| Error::at(at, LowerError::ImageNotFound(base.clone())))?,
                ),
            },
        };
        let (mut config, args) = match &from {
            From::Stage(built) => (built.config.clone(), built.args.clone()),
            From::Scratch => (ImageConfig::default(), Vec::new()),
            From::Image(image) => (image.config.clone(), Vec::new()),
            From::Context(key) => {
                // Its one layer needs a history entry, as a base image's layers have.
                let created_by = format!("context {key}");
                let history = vec![History { created: None, created_by, comment: None, empty_layer: false }];
                (ImageConfig { history, ..ImageConfig::default() }, Vec::new())
            }
        };
        let triggers = if overridden {
            Vec::new()
        } else {
            onbuild::parse(std::mem::take(&mut config.on_build), stage.location, &base)?
        };
        // WORKDIR is a step too (its mkdir), but for `WORKDIR /`; one that
        // only expands to `/` is counted, and n/m then stops short of m.
        let is_step = |c: &Command| {
            c.instruction.is_step() || matches!(&c.instruction, Instruction::Workdir(w) if w.raw.trim() != "/")
        };
        let mut state = StageState {
            vertex: Digest::of(b""),
            config,
            args,
            cmd_set: false,
            base: base.clone(),
            prefix,
            step: 0,
            steps: 1 + triggers.iter().chain(commands).filter(|c| is_step(c)).count(),
        };
        let name = state.name(&stage.text);
        // FROM an earlier stage makes no vertex: that stage's steps are its own.
        let made_here = !matches!(from, From::Stage(_));
        state.vertex = match from {
            From::Stage(built) => built.vertex,
            From::Scratch => self.add(Op::Scratch, vec![], name, at)?,
            From::Image(image) => self.add(Op::Image { name: image.name, digest: image.digest }, vec![], name, at)?,
            From::Context(key) => {
                // The directory's files are the whole filesystem: scratch,
                // then a copy of the directory onto it.
                let scratch = self.add(Op::Scratch, vec![], "FROM scratch".to_owned(), at)?;
                let copy = CopyOp {
                    from: CopyFrom::NamedContext(key),
                    sources: vec![".".to_owned()],
                    dest: "/".to_owned(),
                    ..CopyOp::default()
                };
                self.add(Op::Copy(copy), vec![scratch], name, at)?
            }
        };
        if made_here {
            self.place(index, &state, &stage.text);
        }
        // Like BuildKit: a stage whose base sets no PATH gets the default one, so
        // `ENV PATH=$PATH:/x` and every runtime see a usable PATH.
        if env_get(&state.config.env, "PATH").is_none() {
            state.config.env.insert(0, format!("PATH={DEFAULT_PATH}"));
        }
        Ok((state, triggers))
    }

    /// The `--build-context` that `name` (as written in FROM or `--from`)
    /// stands for, and its key: BuildKit matches `NAME` and `NAME:latest` alike.
    pub(super) fn named_context(&self, name: &str) -> Option<(String, NamedContext)> {
        let contexts = &self.opts.named_contexts;
        let short = name.strip_suffix(":latest").unwrap_or(name);
        [name, short].into_iter().find_map(|k| contexts.get_key_value(k)).map(|(k, v)| (k.clone(), v.clone()))
    }
}

/// What a FROM builds on.
enum From {
    Stage(Built),
    Scratch,
    Image(ResolvedImage),
    /// A directory given as a named context (its key).
    Context(String),
}
