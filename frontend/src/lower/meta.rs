//! The instructions that only change the image config: ENV, LABEL, WORKDIR,
//! USER, EXPOSE, CMD, ENTRYPOINT. Each also adds a history entry, written the
//! way docker writes it; all are empty-layer but WORKDIR's (see `workdir`).

use super::stage::StageState;
use super::{clean, env_set, go_fmt, join, LowerError, Lowering};
use crate::error::Error;
use crate::instructions::{Command, Pair, Word};
use crate::ops::{MkdirOp, Op};

impl Lowering<'_> {
    /// ENV: every value expands with the environment before this line.
    pub(super) fn env(&self, st: &mut StageState, pairs: &[Pair]) -> Result<(), Error> {
        let pairs = self.pairs(st, pairs)?;
        for (k, v) in &pairs {
            env_set(&mut st.config.env, k, v);
            // Later than any ARG of the name now, in RUN too.
            if let Some(arg) = st.args.iter_mut().find(|a| a.name == *k) {
                arg.over_env = false;
            }
        }
        st.history(format!("ENV {}", join_pairs(&pairs)), true);
        Ok(())
    }

    pub(super) fn label(&self, st: &mut StageState, pairs: &[Pair]) -> Result<(), Error> {
        let pairs = self.pairs(st, pairs)?;
        for (k, v) in &pairs {
            st.config.labels.insert(k.clone(), v.clone());
        }
        st.history(format!("LABEL {}", join_pairs(&pairs)), true);
        Ok(())
    }

    /// WORKDIR: relative to the current one, cleaned; made (`mkdir -p`, owned
    /// by the current USER) as BuildKit does, so it exists in the image even
    /// when no later step writes there. That step adds a layer, empty when the
    /// directory was there already; `WORKDIR /` adds none.
    pub(super) fn workdir(&mut self, st: &mut StageState, cmd: &Command, word: &Word) -> Result<(), Error> {
        let dir = self.expand(word, &|n| st.get(n))?;
        if dir.is_empty() {
            return Err(Error::at(word.location, LowerError::EmptyValue("WORKDIR")));
        }
        let path = clean(&join(&st.workdir(), &dir));
        st.config.working_dir = path.clone();
        let with_layer = path != "/";
        if with_layer {
            let op = Op::Mkdir(MkdirOp { path: path.clone(), user: st.config.user.clone() });
            let name = st.name(&cmd.text);
            st.vertex = self.add(op, vec![st.vertex.clone()], name, cmd.location)?;
        }
        st.history(format!("WORKDIR {path}"), !with_layer);
        Ok(())
    }

    pub(super) fn user(&self, st: &mut StageState, word: &Word) -> Result<(), Error> {
        let user = self.expand(word, &|n| st.get(n))?;
        if user.is_empty() {
            return Err(Error::at(word.location, LowerError::EmptyValue("USER")));
        }
        st.history(format!("USER {user}"), true);
        st.config.user = user;
        Ok(())
    }

    /// EXPOSE: each word expands to words (`EXPOSE $PORTS`), each a port or a range.
    pub(super) fn expose(&self, st: &mut StageState, words: &[Word]) -> Result<(), Error> {
        let mut ports = Vec::new();
        for word in words {
            let expanded =
                self.lexer.expand_words(&word.raw, &|n| st.get(n)).map_err(|e| Error::at(word.location, e))?;
            for port in expanded {
                let expanded = normalize_port(&port).ok_or_else(|| Error::at(word.location, LowerError::Port(port)))?;
                for port in expanded {
                    st.config.exposed_ports.insert(port.clone());
                    ports.push(port);
                }
            }
        }
        // BuildKit writes Go's `%v` of its port set: `map[53/udp:{} 80/tcp:{}]`.
        let set: std::collections::BTreeSet<&String> = ports.iter().collect();
        let shown: Vec<String> = set.into_iter().map(|p| format!("{p}:{{}}")).collect();
        st.history(format!("EXPOSE map[{}]", shown.join(" ")), true);
        Ok(())
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
}

pub(super) fn cmd(st: &mut StageState, args: &[String]) {
    st.config.cmd = Some(args.to_vec());
    // BuildKit's dispatchCmd sets it; its dispatchEntrypoint does not.
    st.config.args_escaped = true;
    st.cmd_set = true;
    st.history(format!("CMD {}", go_fmt::quote_list(args)), true);
}

pub(super) fn entrypoint(st: &mut StageState, args: &[String]) {
    st.config.entrypoint = Some(args.to_vec());
    // Docker: a new ENTRYPOINT drops a CMD this stage did not set.
    if !st.cmd_set {
        st.config.cmd = None;
    }
    st.history(format!("ENTRYPOINT {}", go_fmt::quote_list(args)), true);
}

fn join_pairs(pairs: &[(String, String)]) -> String {
    let v: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    v.join(" ")
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
}
