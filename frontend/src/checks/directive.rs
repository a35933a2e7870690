//! `# check=skip=Rule1,Rule2;error=true`: which rules run and whether a
//! warning fails the build. The `BUILDKIT_DOCKERFILE_CHECK` build arg, when
//! given, replaces the directive, as in BuildKit.

use std::collections::BTreeSet;

use super::Rule;
use crate::error::Error;
use crate::options::BuildOptions;
use crate::parser::Directive;

/// The build arg that overrides the `check` directive.
pub(crate) const CHECK_BUILD_ARG: &str = "BUILDKIT_DOCKERFILE_CHECK";

/// A `check` directive that cannot be read, or the checks failing a build.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectiveError {
    /// A part without `=`, or a key other than skip, error and experimental.
    #[error("invalid check option \"{0}\": write e.g. # check=skip=JSONArgsRecommended,StageNameCasing;error=true")]
    Option(String),
    /// `error=` with something other than a boolean.
    #[error("invalid check option \"{0}\": error= takes true or false")]
    Bool(String),
    /// `error=true` and the checks found something.
    #[error(
        "lint violation found for rules: {}: fix them, or skip them with # check=skip={}",
        names(.0, ", "), names(.0, ",")
    )]
    Violations(Vec<Rule>),
}

fn names(rules: &[Rule], separator: &str) -> String {
    rules.iter().map(|r| r.name()).collect::<Vec<_>>().join(separator)
}

/// The rules to run and what a warning means.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckConfig {
    /// `skip=all`.
    pub skip_all: bool,
    /// `skip=A,B`: rule names as written (unknown ones are ignored, as in BuildKit).
    pub skip: BTreeSet<String>,
    /// `error=true`.
    pub error: bool,
}

impl CheckConfig {
    /// Read a directive's value (`skip=…;error=…`).
    pub fn parse(value: &str) -> Result<Self, DirectiveError> {
        let mut config = CheckConfig::default();
        let value = value.trim();
        if value.is_empty() {
            return Ok(config);
        }
        for part in value.split(';') {
            let Some((key, v)) = part.split_once('=') else {
                return Err(DirectiveError::Option(part.to_owned()));
            };
            let v = v.trim();
            match key.trim() {
                "skip" if v == "all" => config.skip_all = true,
                "skip" => config.skip.extend(v.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())),
                "error" => config.error = parse_bool(v).ok_or_else(|| DirectiveError::Bool(part.to_owned()))?,
                // Experimental rules are not implemented: nothing to turn on.
                "experimental" => {}
                _ => return Err(DirectiveError::Option(key.trim().to_owned())),
            }
        }
        Ok(config)
    }

    /// The build arg if given, else the file's directive (`at` its place).
    pub(crate) fn for_build(directive: Option<&Directive>, opts: &BuildOptions) -> Result<Self, Error> {
        if let Some(value) = opts.build_args.get(CHECK_BUILD_ARG) {
            return CheckConfig::parse(value).map_err(Error::whole);
        }
        match directive {
            Some(d) => CheckConfig::parse(&d.value).map_err(|e| Error::at(d.location, e)),
            None => Ok(CheckConfig::default()),
        }
    }

    /// Whether `rule` runs.
    pub fn enabled(&self, rule: Rule) -> bool {
        !self.skip_all && !self.skip.contains(rule.name())
    }
}

/// Go's strconv.ParseBool, which BuildKit uses.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_like_buildkit() {
        let c = CheckConfig::parse("skip=JSONArgsRecommended, StageNameCasing;error=true").unwrap();
        assert!(c.error && !c.skip_all);
        assert!(!c.enabled(Rule::JSONArgsRecommended) && !c.enabled(Rule::StageNameCasing));
        assert!(c.enabled(Rule::UndefinedVar));
        let c = CheckConfig::parse(" skip=all ").unwrap();
        assert!(Rule::ALL.iter().all(|r| !c.enabled(*r)) && !c.error);
        assert!(CheckConfig::parse("error=1").unwrap().error);
        assert_eq!(CheckConfig::parse("").unwrap(), CheckConfig::default());
        assert_eq!(CheckConfig::parse("experimental=all").unwrap(), CheckConfig::default());
        for (bad, want) in [
            ("skip", DirectiveError::Option("skip".into())),
            ("skpi=x", DirectiveError::Option("skpi".into())),
            ("error=yes", DirectiveError::Bool("error=yes".into())),
        ] {
            assert_eq!(CheckConfig::parse(bad), Err(want), "{bad}");
        }
    }
}
