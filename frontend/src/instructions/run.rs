//! RUN and its flags. `--mount`, `--network` and `--security` are checked
//! here, so a typo fails even in a stage that is never built; whether kiln can
//! run them is the lowering's business.

use super::{flag, flags, CommandLine, InstructionError, Word};
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

/// The fields of a `--mount` value, split on commas outside double quotes.
fn fields(value: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    for c in value.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(String::new()),
            c => out.last_mut().expect("never empty").push(c),
        }
    }
    out
}

/// BuildKit's `--mount` grammar: `type=bind|cache|tmpfs|secret|ssh` (bind by
/// default) and the keys each takes; a target for all but secret and ssh.
/// Values holding `$` expand later and are not checked here.
fn check_mount(value: &str) -> Result<(), String> {
    const KEYS: &[&str] = &[
        "type",
        "from",
        "source",
        "src",
        "target",
        "dst",
        "destination",
        "readonly",
        "ro",
        "rw",
        "readwrite",
        "id",
        "sharing",
        "mode",
        "uid",
        "gid",
        "required",
        "size",
        "env",
    ];
    let mut kind = "bind".to_owned();
    let mut target = false;
    for field in fields(value) {
        let (key, val) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.to_owned())),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        if key.is_empty() {
            return Err("an empty field: write key=value pairs separated by commas".to_owned());
        }
        if !KEYS.contains(&key.as_str()) {
            return Err(format!("unknown key \"{key}\" (type, source, target, from, id, …)"));
        }
        let val = val.unwrap_or_default();
        match key.as_str() {
            "type" => {
                if !["bind", "cache", "tmpfs", "secret", "ssh"].contains(&val.as_str()) {
                    return Err(format!("unknown mount type \"{val}\": use bind, cache, tmpfs, secret or ssh"));
                }
                kind = val;
            }
            "target" | "dst" | "destination" => target = !val.is_empty(),
            "sharing" if !val.contains('$') && !["shared", "private", "locked"].contains(&val.as_str()) => {
                return Err(format!("unknown sharing \"{val}\": use shared, private or locked"));
            }
            _ => {}
        }
    }
    if !target && !["secret", "ssh"].contains(&kind.as_str()) {
        return Err(format!("a {kind} mount needs a target, e.g. --mount=type={kind},target=/path"));
    }
    Ok(())
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
