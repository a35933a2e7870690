//! Build checks: BuildKit's Dockerfile linter rules (docs.docker.com/reference/build-checks),
//! same names, same messages, same conditions. Pure like the rest of the
//! frontend: base images are looked up through the caller's [`ImageResolver`].
//!
//! The rules run on the parsed file, before typing and lowering, so a file
//! the build would refuse (two stages of one name…) still gets its warnings.
//! `# check=skip=Rule1,Rule2;error=true` (or the `BUILDKIT_DOCKERFILE_CHECK`
//! build arg) chooses which run and whether they fail the build (`directive`).

mod directive;
mod dispatch;
mod file;
mod from;
mod names;
mod reference;
mod resolver;
mod suggest;

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::fmt;

use crate::error::{Error, Location};
use crate::options::{BuildOptions, ImageResolver};
use crate::parser;
use crate::shell::Lexer;
pub(crate) use directive::CHECK_BUILD_ARG;
pub use directive::{CheckConfig, DirectiveError};
pub use dispatch::is_secret_name;
pub(crate) use resolver::Remembered;

/// A check rule, named as BuildKit names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[allow(clippy::upper_case_acronyms)]
pub enum Rule {
    /// A stage name that is not lowercase.
    StageNameCasing,
    /// `FROM x as y` with `as` cased unlike `FROM`.
    FromAsCasing,
    /// An instruction cased unlike most of the file's.
    ConsistentInstructionCasing,
    /// Two stages of one name.
    DuplicateStageName,
    /// A stage named `scratch` or `context`.
    ReservedStageName,
    /// CMD or ENTRYPOINT in shell form.
    JSONArgsRecommended,
    /// MAINTAINER.
    MaintainerDeprecated,
    /// FROM using an ARG no global ARG declares.
    UndefinedArgInFrom,
    /// The first WORKDIR of a stage is relative.
    WorkdirRelativePath,
    /// A variable used before anything sets or declares it.
    UndefinedVar,
    /// Two CMDs, ENTRYPOINTs or HEALTHCHECKs in one stage.
    MultipleInstructionsDisallowed,
    /// `ENV key value` instead of `ENV key=value`.
    LegacyKeyValueFormat,
    /// An ARG or ENV whose name says it holds a secret.
    SecretsUsedInArgOrEnv,
    /// A FROM whose ARGs' defaults make no valid image name.
    InvalidDefaultArgInFrom,
    /// `FROM --platform=$TARGETPLATFORM`, which is the default anyway.
    RedundantTargetPlatform,
    /// `FROM --platform=linux/amd64`: a constant where an ARG belongs.
    FromPlatformFlagConstDisallowed,
    /// `EXPOSE 80/TCP`.
    ExposeProtoCasing,
    /// `EXPOSE 127.0.0.1:80:80`: EXPOSE publishes nothing.
    ExposeInvalidFormat,
    /// A blank line inside a continued instruction.
    NoEmptyContinuation,
}

impl Rule {
    /// Every rule kiln checks (BuildKit's, but its experimental ones and
    /// InvalidBaseImagePlatform).
    pub const ALL: &'static [Rule] = &[
        Rule::StageNameCasing,
        Rule::FromAsCasing,
        Rule::ConsistentInstructionCasing,
        Rule::DuplicateStageName,
        Rule::ReservedStageName,
        Rule::JSONArgsRecommended,
        Rule::MaintainerDeprecated,
        Rule::UndefinedArgInFrom,
        Rule::WorkdirRelativePath,
        Rule::UndefinedVar,
        Rule::MultipleInstructionsDisallowed,
        Rule::LegacyKeyValueFormat,
        Rule::SecretsUsedInArgOrEnv,
        Rule::InvalidDefaultArgInFrom,
        Rule::RedundantTargetPlatform,
        Rule::FromPlatformFlagConstDisallowed,
        Rule::ExposeProtoCasing,
        Rule::ExposeInvalidFormat,
        Rule::NoEmptyContinuation,
    ];

    /// The rule's name, as `# check=skip=` takes it.
    pub fn name(self) -> &'static str {
        self.names().0
    }

    /// Where the rule is documented.
    pub fn url(self) -> String {
        format!("https://docs.docker.com/go/dockerfile/rule/{}/", self.names().1)
    }

    fn names(self) -> (&'static str, &'static str) {
        match self {
            Rule::StageNameCasing => ("StageNameCasing", "stage-name-casing"),
            Rule::FromAsCasing => ("FromAsCasing", "from-as-casing"),
            Rule::ConsistentInstructionCasing => ("ConsistentInstructionCasing", "consistent-instruction-casing"),
            Rule::DuplicateStageName => ("DuplicateStageName", "duplicate-stage-name"),
            Rule::ReservedStageName => ("ReservedStageName", "reserved-stage-name"),
            Rule::JSONArgsRecommended => ("JSONArgsRecommended", "json-args-recommended"),
            Rule::MaintainerDeprecated => ("MaintainerDeprecated", "maintainer-deprecated"),
            Rule::UndefinedArgInFrom => ("UndefinedArgInFrom", "undefined-arg-in-from"),
            Rule::WorkdirRelativePath => ("WorkdirRelativePath", "workdir-relative-path"),
            Rule::UndefinedVar => ("UndefinedVar", "undefined-var"),
            Rule::MultipleInstructionsDisallowed => {
                ("MultipleInstructionsDisallowed", "multiple-instructions-disallowed")
            }
            Rule::LegacyKeyValueFormat => ("LegacyKeyValueFormat", "legacy-key-value-format"),
            Rule::SecretsUsedInArgOrEnv => ("SecretsUsedInArgOrEnv", "secrets-used-in-arg-or-env"),
            Rule::InvalidDefaultArgInFrom => ("InvalidDefaultArgInFrom", "invalid-default-arg-in-from"),
            Rule::RedundantTargetPlatform => ("RedundantTargetPlatform", "redundant-target-platform"),
            Rule::FromPlatformFlagConstDisallowed => {
                ("FromPlatformFlagConstDisallowed", "from-platform-flag-const-disallowed")
            }
            Rule::ExposeProtoCasing => ("ExposeProtoCasing", "expose-proto-casing"),
            Rule::ExposeInvalidFormat => ("ExposeInvalidFormat", "expose-invalid-format"),
            Rule::NoEmptyContinuation => ("NoEmptyContinuation", "no-empty-continuation"),
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One rule broken at one place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The rule.
    pub rule: Rule,
    /// BuildKit's message for it.
    pub message: String,
    /// The instruction it is about.
    pub location: Location,
}

/// What the checks found in one Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    /// The Dockerfile's name, as errors give it.
    pub file: String,
    /// In the order of the file.
    pub warnings: Vec<Warning>,
    /// `# check=error=true`: a warning fails the build.
    pub error_on_warning: bool,
}

impl CheckReport {
    /// Each warning on one line: `Dockerfile:3:1: UndefinedVar: Usage of
    /// undefined variable '$X' (https://docs.docker.com/go/dockerfile/rule/undefined-var/)`.
    pub fn lines(&self) -> Vec<String> {
        self.warnings
            .iter()
            .map(|w| format!("{}:{}: {}: {} ({})", self.file, w.location, w.rule, w.message, w.rule.url()))
            .collect()
    }

    /// The rules broken, each once, in the order of [`Rule::ALL`].
    pub fn rules(&self) -> Vec<Rule> {
        self.warnings.iter().map(|w| w.rule).collect::<BTreeSet<_>>().into_iter().collect()
    }

    /// With `error=true` and something found: the error that fails the build.
    pub(crate) fn violation(&self) -> Option<Error> {
        if !self.error_on_warning || self.warnings.is_empty() {
            return None;
        }
        Some(Error::whole(DirectiveError::Violations(self.rules())))
    }
}

/// Which stages the per-instruction rules look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Every stage (`kiln build --check` without a target, like `docker build --check`).
    All,
    /// The target and the stages it needs (a build's warnings).
    Target,
}

/// Run the checks on `dockerfile`: every rule, on every stage, or with a
/// target, on the stages it needs (as `docker build --check` does). A file
/// that does not parse is an error; base images the resolver does not know
/// leave their stages' variables unchecked rather than reported.
pub fn check(dockerfile: &str, opts: &BuildOptions, resolver: &dyn ImageResolver) -> Result<CheckReport, Error> {
    let scope = if opts.target.is_some() { Scope::Target } else { Scope::All };
    run(dockerfile, opts, resolver, scope).map_err(|mut e| {
        e.file = file_name(opts);
        e
    })
}

pub(crate) fn file_name(opts: &BuildOptions) -> String {
    if opts.dockerfile_name.is_empty() {
        "Dockerfile".to_owned()
    } else {
        opts.dockerfile_name.clone()
    }
}

/// The checks, for [`check`] and for a build (`scope`).
pub(crate) fn run(
    dockerfile: &str,
    opts: &BuildOptions,
    resolver: &dyn ImageResolver,
    scope: Scope,
) -> Result<CheckReport, Error> {
    let parsed = parser::parse(dockerfile)?;
    let lexer = Lexer::new(parsed.escape);
    let config = CheckConfig::for_build(parsed.check.as_ref(), opts)?;
    let file = file::File::read(parsed.nodes, &lexer)?;
    let mut found = Vec::new();
    names::check(&file, &mut found);
    from::check(&file, &lexer, opts, &mut found);
    dispatch::check(&file, &lexer, opts, resolver, scope, &mut found);
    let mut warnings: Vec<Warning> = found.into_iter().filter(|w| config.enabled(w.rule)).collect();
    // Stable: warnings at one place keep the order the rules found them in.
    warnings.sort_by_key(|w| w.location);
    warnings.dedup();
    Ok(CheckReport { file: file_name(opts), warnings, error_on_warning: config.error })
}
