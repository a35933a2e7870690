//! The rules that follow each stage's state instruction by instruction, as
//! BuildKit's dispatch does: UndefinedVar, JSONArgsRecommended,
//! MultipleInstructionsDisallowed, WorkdirRelativePath, SecretsUsedInArgOrEnv,
//! LegacyKeyValueFormat, ExposeProtoCasing and ExposeInvalidFormat.

use std::collections::{BTreeMap, BTreeSet};

use super::file::{Command, File};
use super::{from, suggest, Rule, Scope, Warning};
use crate::config::DEFAULT_PATH;
use crate::error::Location;
use crate::instructions::{mount, CommandLine, Instruction, Word};
use crate::options::{BuildOptions, ImageResolver};
use crate::shell::Lexer;

/// What a stage has set so far that the rules look at; a stage built on
/// another starts from that one's.
#[derive(Debug, Clone, Default)]
struct State {
    /// ENV and ARG values, the base image's first. `None` when the base
    /// image is unknown: then nothing can be said to be undefined.
    env: Option<BTreeMap<String, String>>,
    /// Every ARG declared, with a value or not: using one is never undefined.
    declared: BTreeSet<String>,
    /// A SHELL is set (here or by the base image): shell form is then deliberate.
    shell: bool,
    /// A WORKDIR was given in this file (here or in the stage built on).
    workdir_set: bool,
}

pub(super) fn check(
    file: &File,
    lexer: &Lexer,
    opts: &BuildOptions,
    resolver: &dyn ImageResolver,
    scope: Scope,
    found: &mut Vec<Warning>,
) {
    let globals = from::global_env(file, lexer, opts, true).unwrap_or_default();
    let names: Vec<Option<String>> = file.stages.iter().map(|s| s.name()).collect();
    let bases: Vec<String> =
        file.stages.iter().map(|s| lexer.expand(&s.base, &|n| globals.get(n).cloned()).unwrap_or_default()).collect();
    let wanted = match scope {
        Scope::All => None,
        Scope::Target => wanted(file, &names, &bases, opts),
    };
    let mut done: Vec<Option<State>> = vec![None; file.stages.len()];
    for (i, stage) in file.stages.iter().enumerate() {
        let parent = earlier_stage(&names, i, &bases[i]);
        if wanted.as_ref().is_some_and(|w| !w.contains(&i)) {
            continue;
        }
        let state = match parent.and_then(|p| done[p].clone()) {
            Some(state) => state,
            None => base_state(&bases[i], resolver),
        };
        let mut walk = Walk { lexer, opts, globals: &globals, state, found: &mut *found, last: Default::default() };
        for command in &stage.commands {
            walk.command(command);
        }
        done[i] = Some(walk.state);
    }
}

/// The stage before `index` named `base` (`names` are the stages' names,
/// lowercased, as they compare case-insensitively).
fn earlier_stage(names: &[Option<String>], index: usize, base: &str) -> Option<usize> {
    let base = base.to_lowercase();
    names[..index].iter().rposition(|n| n.as_deref() == Some(base.as_str()))
}

/// A stage on an image: that image's environment and shell, if the resolver
/// knows it.
fn base_state(base: &str, resolver: &dyn ImageResolver) -> State {
    let config = if base.eq_ignore_ascii_case("scratch") {
        Some(Default::default())
    } else {
        resolver.resolve(base).ok().flatten().map(|image| image.config)
    };
    let Some(config) = config else {
        return State::default();
    };
    let mut env: BTreeMap<String, String> = config
        .env
        .iter()
        .map(|e| e.split_once('=').map_or((e.clone(), String::new()), |(k, v)| (k.to_owned(), v.to_owned())))
        .collect();
    env.entry("PATH".to_owned()).or_insert_with(|| DEFAULT_PATH.to_owned());
    State { env: Some(env), shell: config.shell.is_some_and(|s| !s.is_empty()), ..Default::default() }
}

/// The target and every stage it needs (FROM, `--from=`, RUN mounts'
/// `from=`), or `None` when the target is not found (the build says so).
fn wanted(file: &File, names: &[Option<String>], bases: &[String], opts: &BuildOptions) -> Option<BTreeSet<usize>> {
    let target = match &opts.target {
        None => file.stages.len().checked_sub(1)?,
        Some(t) => names.iter().position(|n| n.as_deref() == Some(t.to_lowercase().as_str()))?,
    };
    let by_name = |name: &str, before: usize| -> Option<usize> {
        match name.parse::<usize>() {
            Ok(index) => (index < file.stages.len()).then_some(index),
            Err(_) => earlier_stage(names, before, name),
        }
    };
    let mut wanted = BTreeSet::new();
    let mut todo = vec![target];
    while let Some(i) = todo.pop() {
        if !wanted.insert(i) {
            continue;
        }
        todo.extend(earlier_stage(names, i, &bases[i]));
        for command in &file.stages[i].commands {
            todo.extend(command.stage_refs.iter().filter_map(|r| by_name(r, i)));
        }
    }
    Some(wanted)
}

/// One stage's instructions, in order.
struct Walk<'a> {
    lexer: &'a Lexer,
    opts: &'a BuildOptions,
    globals: &'a BTreeMap<String, String>,
    state: State,
    found: &'a mut Vec<Warning>,
    /// Where the last CMD, ENTRYPOINT and HEALTHCHECK of the stage are.
    last: [Option<Location>; 3],
}

impl Walk<'_> {
    fn warn(&mut self, rule: Rule, message: String, location: Location) {
        self.found.push(Warning { rule, message, location });
    }

    fn command(&mut self, command: &Command) {
        let Some(instruction) = &command.instruction else {
            return;
        };
        let at = command.location;
        let name = command.keyword.as_str();
        match instruction {
            Instruction::Cmd(line) | Instruction::Entrypoint(line) => {
                self.once(if command.upper == "CMD" { 0 } else { 1 }, name, at);
                if matches!(line, CommandLine::Shell(_)) && !self.state.shell {
                    let message = format!(
                        "JSON arguments recommended for {name} to prevent unintended behavior related to OS signals"
                    );
                    self.warn(Rule::JSONArgsRecommended, message, at);
                }
            }
            Instruction::Healthcheck(_) => self.once(2, name, at),
            Instruction::Shell(_) => self.state.shell = true,
            Instruction::Env(pairs) | Instruction::Label(pairs) => {
                if command.legacy_pairs {
                    let message =
                        format!("\"{name} key=value\" should be used instead of legacy \"{name} key value\" format");
                    self.warn(Rule::LegacyKeyValueFormat, message, at);
                }
                let mut set = Vec::new();
                for pair in pairs.iter() {
                    let key = self.expand(&pair.key, at);
                    let value = self.expand(&pair.value, at);
                    set.push((key, value));
                }
                if command.upper == "ENV" {
                    for (key, value) in set {
                        self.secret("ENV", &key, at);
                        if let Some(env) = &mut self.state.env {
                            env.insert(key, value);
                        }
                    }
                }
            }
            Instruction::Arg(decls) => {
                for decl in decls.iter() {
                    self.secret("ARG", &decl.name, at);
                    let value = match (self.opts.build_args.get(&decl.name), &decl.default) {
                        (Some(v), _) => Some(v.clone()),
                        (None, Some(default)) => Some(self.expand(default, at)),
                        (None, None) => self.globals.get(&decl.name).cloned(),
                    };
                    self.state.declared.insert(decl.name.clone());
                    if let (Some(env), Some(value)) = (&mut self.state.env, value) {
                        env.insert(decl.name.clone(), value);
                    }
                }
            }
            Instruction::Workdir(word) => {
                let path = self.expand(word, at);
                // Only the first WORKDIR counts: fixing it fixes those after it.
                if !self.state.workdir_set && !path.starts_with('/') {
                    let message =
                        format!("Relative workdir {path:?} can have unexpected results if the base image changes");
                    self.warn(Rule::WorkdirRelativePath, message, at);
                }
                self.state.workdir_set = true;
            }
            Instruction::User(word) | Instruction::StopSignal(word) => {
                self.expand(word, at);
            }
            Instruction::Volume(words) => {
                for word in words.iter() {
                    self.expand(word, at);
                }
            }
            Instruction::Expose(words) => self.expose(words, at),
            Instruction::Copy(copy) => {
                let flags = [&copy.chown, &copy.chmod, &copy.checksum];
                for word in copy.sources.iter().chain([&copy.dest]).chain(flags.into_iter().flatten()) {
                    self.expand(word, at);
                }
            }
            // A mount's values expand like COPY's words (but from=, which
            // never does).
            Instruction::Run(run) => {
                for word in &run.mounts {
                    for field in mount::fields(&word.raw).unwrap_or_default() {
                        if let (Some(raw), false) = (field.value, field.key == "from") {
                            self.expand(&Word { raw, location: word.location }, at);
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// ExposeProtoCasing and ExposeInvalidFormat, on the ports as expanded.
    fn expose(&mut self, words: &[Word], at: Location) {
        for word in words {
            let env = self.state.env.clone().unwrap_or_default();
            let Ok(expansion) = self.lexer.process(&word.raw, &|n| env.get(n).cloned()) else {
                continue;
            };
            for port in expansion.words {
                let (mapping, proto) = match port.split_once('/') {
                    Some((mapping, proto)) => (mapping, proto),
                    None => (port.as_str(), ""),
                };
                if proto != proto.to_lowercase() {
                    let message = format!("Defined protocol '{port}' in EXPOSE instruction should be lowercase");
                    self.warn(Rule::ExposeProtoCasing, message, at);
                }
                if mapping.contains(':') {
                    let message = format!(
                        "EXPOSE instruction should not define an IP address or host-port mapping, found '{port}'"
                    );
                    self.warn(Rule::ExposeInvalidFormat, message, at);
                }
            }
        }
    }

    /// MultipleInstructionsDisallowed: the earlier one of a kind is the one
    /// ignored, so it is the one reported.
    fn once(&mut self, kind: usize, name: &str, at: Location) {
        if let Some(previous) = self.last[kind].replace(at) {
            let message =
                format!("Multiple {name} instructions should not be used in the same stage because only the last one will be used");
            self.warn(Rule::MultipleInstructionsDisallowed, message, previous);
        }
    }

    /// `word` expanded with the stage's variables; each variable it uses that
    /// nothing set or declared is an UndefinedVar.
    fn expand(&mut self, word: &Word, at: Location) -> String {
        let Some(env) = &self.state.env else {
            return self.lexer.expand(&word.raw, &|_| None).unwrap_or_default();
        };
        let Ok(expansion) = self.lexer.process(&word.raw, &|n| env.get(n).cloned()) else {
            return String::new();
        };
        for name in expansion.unmatched.iter().filter(|n| !self.state.declared.contains(*n)) {
            let hint = suggest::did_you_mean(name, "$", env.keys().map(String::as_str));
            let message = format!("Usage of undefined variable '${name}'{hint}");
            self.found.push(Warning { rule: Rule::UndefinedVar, message, location: at });
        }
        expansion.text
    }

    fn secret(&mut self, instruction: &str, name: &str, at: Location) {
        if is_secret_name(name) {
            let message = format!("Do not use ARG or ENV instructions for sensitive data ({instruction} {name:?})");
            self.warn(Rule::SecretsUsedInArgOrEnv, message, at);
        }
    }
}

/// A name with a word of a secret in it (`API_KEY`, `db_password`, `TOKEN`),
/// and no word saying it holds something else (`PUBLIC_KEY`, `KEY_FILE`, a
/// path; `TOKEN_VERSION`): BuildKit's two patterns (its allow list as of
/// moby/buildkit#6501), `(?i)(?:_|^)(?:word|…)(?:_|$)`, read as what they
/// match: a part of the name between underscores that is one of the words.
/// Compiling those case-insensitive patterns cost every build about 2 ms.
pub fn is_secret_name(name: &str) -> bool {
    const SECRETS: [&str; 10] =
        ["apikey", "auth", "credential", "credentials", "key", "password", "pword", "passwd", "secret", "token"];
    const ELSE: [&str; 3] = ["public", "file", "version"];
    let has = |words: &[&str]| name.split('_').any(|part| words.iter().any(|w| folds_to(part, w)));
    has(&SECRETS) && !has(&ELSE)
}

/// Whether `part` is `word` (ASCII lowercase) but for case, as the patterns'
/// `(?i)` has it: Unicode's simple case folding, under which the Kelvin sign
/// is a `k` and the long s an `s` too.
fn folds_to(part: &str, word: &str) -> bool {
    let mut chars = part.chars();
    let same = word.bytes().all(|w| {
        chars.next().is_some_and(|c| {
            c.to_ascii_lowercase() == char::from(w) || (c, w) == ('\u{212a}', b'k') || (c, w) == ('\u{17f}', b's')
        })
    });
    same && chars.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::is_secret_name;

    #[test]
    fn secret_names() {
        for name in
            ["API_KEY", "apikey", "DATABASE_PASSWORD", "GITHUB_TOKEN", "secret_MESSAGE", "AUTH", "aws_credentials"]
        {
            assert!(is_secret_name(name), "{name}");
        }
        for name in [
            "PUBLIC_KEY",
            "KEYBOARD",
            "MONKEY",
            "TOKENIZER",
            "VERSION",
            "AUTHOR",
            "public_api_token",
            "SESSION_SECRET_FILE",
            "key_file",
            "AUTH_MODULE_VERSION",
            "",
            "_",
            "KEYS",
            "A_KE",
        ] {
            assert!(!is_secret_name(name), "{name}");
        }
        // Words between any underscores, in any case, as the patterns match them.
        let pattern = |w: &str| regex::Regex::new(&format!("(?i)(?:_|^)(?:{w})(?:_|$)")).unwrap();
        let deny = pattern("apikey|auth|credential|credentials|key|password|pword|passwd|secret|token");
        let allow = pattern("public|file|version");
        let parts = ["", "KEY", "key", "Token", "FILE", "Auth", "x", "KEYS", "pUbLiC", "\u{212a}ey", "\u{17f}ecret"];
        for a in parts {
            for b in parts {
                for name in [format!("{a}_{b}"), format!("{a}{b}"), format!("_{a}__{b}_"), a.to_owned()] {
                    let buildkit = deny.is_match(&name) && !allow.is_match(&name);
                    assert_eq!(is_secret_name(&name), buildkit, "{name:?}");
                }
            }
        }
        for name in ["__KEY__", "My_Token_", "x_PassWD", "\u{212a}EY", "PAS\u{17f}WORD"] {
            assert!(is_secret_name(name), "{name}");
        }
    }
}
