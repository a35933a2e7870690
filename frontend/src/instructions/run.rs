//! RUN and its flags. `--mount` (with the grammar of `mount`), `--network`
//! and `--security` are checked here, so a typo fails even in a stage that is
//! never built; mount values holding a variable are judged by the lowering,
//! once expanded.

use super::{flag, flags, mount, CommandLine, InstructionError, Word};
use crate::error::Error;
use crate::parser::{Heredoc, Node};

/// A RUN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Run {
    /// Never expanded.
    pub(crate) command: CommandLine,
    /// Each `--mount=…`, raw, in order.
    pub(crate) mounts: Vec<Word>,
    pub(crate) network: Option<Word>,
    pub(crate) security: Option<Word>,
    /// The heredocs of a shell-form command, raw.
    pub(crate) heredocs: Vec<Heredoc>,
}

pub(super) fn run(node: &Node) -> Result<Run, Error> {
    let mounts = flags(node, "mount");
    for m in &mounts {
        check_mount(&m.raw).map_err(|expected| {
            let e = InstructionError::FlagValue { flag: "mount", value: m.raw.clone(), expected };
            Error::at(m.location, e)
        })?;
    }
    let network = flag(node, "network");
    let security = flag(node, "security");
    for (name, word, allowed) in
        [("network", &network, &["default", "none", "host"][..]), ("security", &security, &["sandbox", "insecure"])]
    {
        if let Some(w) = word {
            if !allowed.contains(&w.raw.as_str()) {
                let expected = format!("expected one of {}", allowed.join(", "));
                return Err(Error::at(
                    w.location,
                    InstructionError::FlagValue { flag: name, value: w.raw.clone(), expected },
                ));
            }
        }
    }
    let command = match &node.json {
        Some(args) => CommandLine::Exec(args.clone()),
        None => CommandLine::Shell(node.rest.clone()),
    };
    Ok(Run { command, mounts, network, security, heredocs: node.heredocs.clone() })
}

/// The `--mount` grammar on the value as written; values holding a variable
/// are judged once expanded, when the stage is lowered.
fn check_mount(value: &str) -> Result<(), String> {
    mount::parse(&mount::fields(value)?, &|v| v.contains('$')).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts() {
        for ok in [
            "type=cache,target=/root/.cache",
            "target=/x",
            "type=bind,from=build,source=/out,target=/in,ro",
            "type=secret,id=tok",
            "type=ssh",
            "type=tmpfs,dst=/t,size=10m",
            "type=cache,target=/c,sharing=locked,uid=1000",
            "type=bind,\"target=/a b\"",
        ] {
            assert_eq!(check_mount(ok), Ok(()), "{ok}");
        }
        for (bad, want) in [
            ("type=cache", "a cache mount needs a target"),
            ("type=volume,target=/x", "unknown mount type \"volume\""),
            ("target=/x,foo=1", "unknown key \"foo\""),
            ("target=/x,,ro", "an empty field"),
            ("type=cache,target=/c,sharing=all", "unknown sharing \"all\""),
        ] {
            let got = check_mount(bad).unwrap_err();
            assert!(got.starts_with(want), "{bad}: {got}");
        }
    }
}
