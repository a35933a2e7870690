//! ARG and build args. The scopes, as in Docker:
//! * global ARGs (before the first FROM) expand FROM lines only, unless a stage
//!   redeclares them (`ARG NAME` then takes the global value);
//! * `--build-arg` overrides an ARG's default; of an ENV and an ARG of one
//!   name, the later one is what RUN and expansion see; ARGs reach RUN's
//!   environment but never the image config;
//! * the proxy ARGs (`HTTP_PROXY`, …) given as build args reach RUN without a
//!   declaration, outside its digest and history (see `run`);
//! * with a platform, BuildKit's TARGET* and BUILD* ARGs are predefined globals;
//! * a stage built FROM another stage starts with that stage's ARGs in scope
//!   (BuildKit; `ARG NAME="$NAME-dev"` sees the base stage's NAME).

use super::stage::{ArgInScope, StageState};
use super::Lowering;
use crate::error::Error;
use crate::instructions::{ArgDecl, Instruction};

/// The proxy build args every Dockerfile gets without declaring them, named
/// in any case (BuildKit compares them case-insensitively).
pub(super) const PROXY_KINDS: [&str; 5] = ["HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY"];

fn is_proxy(name: &str) -> bool {
    PROXY_KINDS.iter().any(|k| k.eq_ignore_ascii_case(name))
}

impl Lowering<'_> {
    /// A build arg's value, noting that it was consumed.
    fn build_arg(&mut self, name: &str) -> Option<String> {
        let value = self.opts.build_args.get(name).cloned();
        if value.is_some() {
            self.consumed.insert(name.to_owned());
        }
        value
    }

    /// Evaluate the ARGs before the first FROM (and the platform ARGs).
    pub(super) fn global_args(&mut self) -> Result<(), Error> {
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

    /// ARG inside a stage: the build arg, else the default, else the global value.
    /// The name is taken as written: BuildKit expands an ARG's default but,
    /// since Dockerfile 1.7, no longer its name.
    pub(super) fn arg(&mut self, st: &mut StageState, decls: &[ArgDecl]) -> Result<(), Error> {
        let mut shown = Vec::new();
        for decl in decls {
            let default = match &decl.default {
                Some(w) => Some(self.expand(w, &|n| st.get(n))?),
                None => None,
            };
            let value = self.build_arg(&decl.name).or(default).or_else(|| self.global_args.get(&decl.name).cloned());
            // Like BuildKit, the history shows the value the ARG ends up with
            // (a build arg's, not the default's).
            shown.push(match &value {
                Some(v) => format!("{}={v}", decl.name),
                None => decl.name.clone(),
            });
            // Declared without a value, an ARG still shows in RUN's history
            // (BuildKit lists every ARG there), but changes no value.
            let over_env = value.is_some();
            match st.args.iter_mut().find(|a| a.name == decl.name) {
                Some(arg) if value.is_some() => {
                    arg.value = value;
                    arg.over_env = true;
                }
                Some(_) => {}
                None => st.args.push(ArgInScope { name: decl.name.clone(), value, over_env }),
            }
        }
        st.history(format!("ARG {}", shown.join(" ")), true);
        Ok(())
    }

    /// The legacy builder's one warning (BuildKit has none) naming the build
    /// args no lowered ARG declared, proxies excepted.
    pub(super) fn unconsumed_warnings(&self) -> Vec<String> {
        let unused: Vec<&str> = self
            .opts
            .build_args
            .keys()
            .filter(|k| !self.consumed.contains(*k) && !is_proxy(k))
            // Read by the build checks, not by an ARG.
            .filter(|k| k.as_str() != crate::checks::CHECK_BUILD_ARG)
            // Read by the builder: the time of a reproducible build.
            .filter(|k| k.as_str() != "SOURCE_DATE_EPOCH")
            .map(String::as_str)
            .collect();
        if unused.is_empty() {
            return Vec::new();
        }
        vec![format!("One or more build-args [{}] were not consumed", unused.join(" "))]
    }
}
