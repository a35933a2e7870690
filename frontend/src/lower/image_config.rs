//! The instructions that only set image config fields kiln did not have
//! before: SHELL, HEALTHCHECK, VOLUME, STOPSIGNAL, MAINTAINER, ONBUILD. Each
//! adds an empty-layer history entry worded as BuildKit words it (Go's `%v`
//! and `%q` of the values, hence the odd brackets).

use super::signal::is_signal;
use super::stage::StageState;
use super::{go_fmt, LowerError, Lowering};
use crate::config::Healthcheck;
use crate::error::Error;
use crate::instructions::{CommandLine, Health, Word};

impl Lowering<'_> {
    /// VOLUME: each word expands to one path (a JSON element too).
    pub(super) fn volume(&self, st: &mut StageState, words: &[Word]) -> Result<(), Error> {
        let mut paths = Vec::new();
        for word in words {
            let path = self.expand(word, &|n| st.get(n))?;
            if path.trim().is_empty() {
                return Err(Error::at(word.location, crate::instructions::InstructionError::EmptyVolume));
            }
            let path = path.trim().to_owned();
            st.config.volumes.insert(path.clone());
            paths.push(path);
        }
        st.history(format!("VOLUME [{}]", paths.join(" ")), true);
        Ok(())
    }

    /// STOPSIGNAL: expands, and must name a signal (`SIGKILL`, `KILL`, `9`).
    pub(super) fn stop_signal(&self, st: &mut StageState, word: &Word) -> Result<(), Error> {
        let signal = self.expand(word, &|n| st.get(n))?;
        if !is_signal(&signal) {
            return Err(Error::at(word.location, LowerError::Signal(signal)));
        }
        st.history(format!("STOPSIGNAL {signal}"), true);
        st.config.stop_signal = Some(signal);
        Ok(())
    }
}

pub(super) fn shell(st: &mut StageState, shell: &[String]) {
    st.config.shell = Some(shell.to_vec());
    st.history(format!("SHELL [{}]", shell.join(" ")), true);
}

pub(super) fn maintainer(st: &mut StageState, name: &str) {
    st.config.author = Some(name.to_owned());
    st.history(format!("MAINTAINER {name}"), true);
}

/// ONBUILD: no history entry, as in BuildKit.
pub(super) fn onbuild(st: &mut StageState, trigger: &str) {
    st.config.on_build.push(trigger.to_owned());
}

/// HEALTHCHECK: `NONE` is kept as `["NONE"]` (it turns an inherited check off);
/// a shell-form test is `CMD-SHELL` and run by the runtime's shell, not SHELL.
pub(super) fn healthcheck(st: &mut StageState, health: &Health) {
    let test = match &health.test {
        None => vec!["NONE".to_owned()],
        Some(CommandLine::Exec(args)) => std::iter::once("CMD".to_owned()).chain(args.iter().cloned()).collect(),
        Some(CommandLine::Shell(text)) => vec!["CMD-SHELL".to_owned(), text.clone()],
    };
    let check = Healthcheck {
        test,
        interval: health.interval,
        timeout: health.timeout,
        start_period: health.start_period,
        start_interval: health.start_interval,
        retries: health.retries,
    };
    st.history(format!("HEALTHCHECK {}", go_quoted(&check)), true);
    st.config.healthcheck = Some(check);
}

/// Go's `fmt.Sprintf("%q", &HealthcheckConfig{…})`, which BuildKit writes in
/// the history: `&{["CMD-SHELL" "curl x"] "30s" "0s" "0s" "0s" '\x03'}`.
fn go_quoted(h: &Healthcheck) -> String {
    use crate::instructions::format_duration as d;
    let test = go_fmt::quote_list(&h.test);
    let retries = go_fmt::quote_rune(h.retries);
    format!(
        "&{{{test} \"{}\" \"{}\" \"{}\" \"{}\" {retries}}}",
        d(h.interval),
        d(h.timeout),
        d(h.start_period),
        d(h.start_interval)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthcheck_history() {
        let h = Healthcheck {
            test: vec!["CMD-SHELL".into(), "curl -f \"x\"".into()],
            interval: 30_000_000_000,
            timeout: 0,
            start_period: 90_000_000_000,
            start_interval: 0,
            retries: 3,
        };
        assert_eq!(go_quoted(&h), r#"&{["CMD-SHELL" "curl -f \"x\""] "30s" "0s" "1m30s" "0s" '\x03'}"#);
        let h = Healthcheck { test: vec!["NONE".into()], retries: 65, ..Healthcheck::default() };
        assert_eq!(go_quoted(&h), r#"&{["NONE"] "0s" "0s" "0s" "0s" 'A'}"#);
    }
}
