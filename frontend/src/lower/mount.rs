//! `RUN --mount=…` → [`RunMount`]s, with BuildKit's defaults: each value
//! expanded with the stage's ARGs and ENVs, the grammar checked again on what
//! it expands to (`instructions::mount`), targets made absolute against the
//! WORKDIR, and `from=` read the way `COPY --from` reads it (a stage or an
//! image becomes one more input of the Exec vertex).

use kiln_solver::Digest;

use super::copy::Reader;
use super::stage::StageState;
use super::{clean, join, Halt, LowerError, Lowering};
use crate::error::Error;
use crate::instructions::mount::{self, Field, MountSpec, MountType};
use crate::instructions::{Run, Word};
use crate::ops::{MountFrom, RunMount};
use crate::options::NamedContext;

/// The most `--mount` flags one RUN takes.
const MAX_MOUNTS: usize = 64;

impl Lowering<'_> {
    /// The mounts of `run`, in the order written. The vertices they read
    /// are appended to `inputs` (input 0, the root filesystem, is there
    /// already), each once. Halts when a `from=` stage is not lowered yet,
    /// before the stage's state is touched.
    pub(super) fn mounts(
        &mut self,
        index: usize,
        st: &StageState,
        run: &Run,
        inputs: &mut Vec<Digest>,
    ) -> Result<Vec<RunMount>, Halt> {
        // Each mount is a lock, a staged copy or an overlay the engine makes
        // before the step runs: a bound keeps one line from asking for thousands.
        if let Some(word) = run.mounts.get(MAX_MOUNTS) {
            let problem = format!(
                "a RUN takes at most {MAX_MOUNTS} --mount flags and this one has {}: split the step, or mount a \
                 common parent folder once",
                run.mounts.len()
            );
            return Err(Error::at(word.location, LowerError::Mount { value: word.raw.clone(), problem }).into());
        }
        let mut mounts = Vec::new();
        let mut ssh_count = 0;
        for word in &run.mounts {
            let spec = self.mount_spec(st, word)?;
            let invalid =
                |problem: String| Error::at(word.location, LowerError::Mount { value: word.raw.clone(), problem });
            let target = match spec.target.as_deref().filter(|t| !t.is_empty()) {
                Some(t) => {
                    let abs = clean(&join(&st.workdir(), t));
                    if abs == "/" {
                        return Err(invalid(format!("target \"{t}\" is the root: mount somewhere below it")).into());
                    }
                    // A mount there could hide the kernel knobs the sandbox
                    // makes read-only or masks (BuildKit allows it; kiln not).
                    if let Some(fs) =
                        ["/proc", "/sys"].into_iter().find(|fs| abs == *fs || abs.starts_with(&format!("{fs}/")))
                    {
                        let problem =
                            format!("target \"{t}\" is in {fs}, which the sandbox provides: mount somewhere else");
                        return Err(invalid(problem).into());
                    }
                    Some(abs)
                }
                None => None,
            };
            let needs_target = || invalid(format!("a {} mount needs a target that is not empty", spec.kind.name()));
            let source = clean(&format!("/{}", spec.source.as_deref().unwrap_or_default()))[1..].to_owned();
            // A tmpfs starts empty whatever its from= says (BuildKit mounts
            // scratch): nothing to read, so nothing to lower for it.
            let from = match spec.from.as_deref().filter(|_| spec.kind != MountType::Tmpfs) {
                Some(from) => Some(self.mount_source(index, from, word, inputs)?),
                None => None,
            };
            let mount = match spec.kind {
                MountType::Bind => RunMount::Bind {
                    target: target.ok_or_else(needs_target)?,
                    from: from.unwrap_or_default(),
                    source,
                    rw: !spec.readonly.unwrap_or(true),
                },
                MountType::Cache => {
                    let target = target.ok_or_else(needs_target)?;
                    let id = match spec.id.filter(|id| !id.is_empty()) {
                        Some(id) if id.contains('/') => {
                            let problem = format!(
                                "cache id \"{id}\" holds a path separator: name the cache without '/', e.g. id=go-build"
                            );
                            return Err(invalid(problem).into());
                        }
                        Some(id) => id,
                        // BuildKit's default: the target as written, cleaned.
                        None => go_clean(spec.target.as_deref().unwrap_or_default()),
                    };
                    RunMount::Cache {
                        target,
                        id,
                        readonly: spec.readonly.unwrap_or(false),
                        sharing: spec.sharing.unwrap_or_default(),
                        from,
                        source,
                        mode: spec.mode.unwrap_or(0o755),
                        uid: spec.uid.unwrap_or(0),
                        gid: spec.gid.unwrap_or(0),
                    }
                }
                MountType::Tmpfs => {
                    RunMount::Tmpfs { target: target.ok_or_else(needs_target)?, size: spec.size.filter(|&s| s > 0) }
                }
                MountType::Secret => {
                    // BuildKit: `source` is another name for the id; without
                    // either, the target's base name is the id.
                    let id = [&spec.id, &spec.source]
                        .into_iter()
                        .flatten()
                        .find(|id| !id.is_empty())
                        .cloned()
                        .or_else(|| spec.target.as_deref().filter(|t| !t.is_empty()).map(base_name))
                        .ok_or_else(|| invalid("a secret mount needs an id that is not empty".to_owned()))?;
                    let env = match spec.env {
                        Some(env) if env.is_empty() || env.contains(['=', '\0']) => {
                            let problem = format!("env=\"{env}\" is no variable name: write env=NAME, e.g. env=TOKEN");
                            return Err(invalid(problem).into());
                        }
                        env => env,
                    };
                    // With env= and no target, the secret is only in the
                    // variable (BuildKit ≥ 0.13): no file is mounted.
                    let target = match (target, &env) {
                        (Some(t), _) => Some(t),
                        (None, Some(_)) => None,
                        (None, None) => {
                            let target = clean(&format!("/run/secrets/{}", base_name(&id)));
                            if !target.starts_with("/run/secrets/") {
                                let problem = format!(
                                    "secret id \"{id}\" names no file: give a target, or an id such as id=token"
                                );
                                return Err(invalid(problem).into());
                            }
                            Some(target)
                        }
                    };
                    RunMount::Secret {
                        id,
                        target,
                        env,
                        required: spec.required,
                        mode: spec.mode.unwrap_or(0o400),
                        uid: spec.uid.unwrap_or(0),
                        gid: spec.gid.unwrap_or(0),
                    }
                }
                MountType::Ssh => {
                    let target = target.unwrap_or_else(|| format!("/run/buildkit/ssh_agent.{ssh_count}"));
                    ssh_count += 1;
                    RunMount::Ssh {
                        id: spec.id.filter(|id| !id.is_empty()).unwrap_or_else(|| "default".to_owned()),
                        target,
                        required: spec.required,
                        mode: spec.mode.unwrap_or(0o600),
                        uid: spec.uid.unwrap_or(0),
                        gid: spec.gid.unwrap_or(0),
                    }
                }
            };
            mounts.push(mount);
        }
        Ok(mounts)
    }

    /// One `--mount` value, its values expanded (but `from=`, which BuildKit
    /// never expands), typed.
    fn mount_spec(&self, st: &StageState, word: &Word) -> Result<MountSpec, Error> {
        let invalid =
            |problem: String| Error::at(word.location, LowerError::Mount { value: word.raw.clone(), problem });
        let mut fields = mount::fields(&word.raw).map_err(invalid)?;
        let get = |n: &str| st.get(n);
        for Field { key, value } in &mut fields {
            let Some(v) = value else { continue };
            if key == "from" {
                if v.contains('$') {
                    return Err(Error::at(word.location, LowerError::MountFromVariable(v.clone())));
                }
                continue;
            }
            *v = self.expand(&Word { raw: v.clone(), location: word.location }, &get)?;
        }
        mount::parse(&fields, &|_| false).map_err(invalid)
    }

    /// What `from=` names, as `COPY --from` reads it: a named context first,
    /// then a stage, then an image. A vertex becomes an input of the step.
    fn mount_source(
        &mut self,
        index: usize,
        from: &str,
        word: &Word,
        inputs: &mut Vec<Digest>,
    ) -> Result<MountFrom, Halt> {
        let at = word.location;
        if from.is_empty() {
            return Err(Error::at(at, LowerError::MountFromEmpty).into());
        }
        let vertex = match self.named_context(from) {
            Some((key, NamedContext::Directory)) => return Ok(MountFrom::NamedContext(key)),
            Some((_, NamedContext::Image(reference))) => self.image_source(&reference, at, Reader::Mount)?,
            None => self.stage_source(index, from, at, Reader::Mount)?,
        };
        // Input 0 is the root filesystem the step writes to: even a mount of
        // the very same vertex reads it as an input of its own.
        let n = match inputs.iter().skip(1).position(|d| *d == vertex) {
            Some(i) => i + 1,
            None => {
                inputs.push(vertex);
                inputs.len() - 1
            }
        };
        Ok(MountFrom::Input(n))
    }
}

/// Go's `path.Base`: the last element, trailing slashes ignored.
fn base_name(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    match trimmed.rsplit('/').next() {
        _ if path.is_empty() => ".".to_owned(),
        _ if trimmed.is_empty() => "/".to_owned(),
        Some(last) => last.to_owned(),
        None => trimmed.to_owned(),
    }
}

/// Go's `path.Clean`, relative paths kept relative.
fn go_clean(path: &str) -> String {
    if path.starts_with('/') {
        return clean(path);
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        ".".to_owned()
    } else {
        parts.join("/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_paths() {
        for (path, base, cleaned) in [
            ("/run/secrets/tok", "tok", "/run/secrets/tok"),
            ("tok", "tok", "tok"),
            ("a/b/", "b", "a/b"),
            ("./x/../y", "y", "y"),
            ("../up", "up", "../up"),
            ("/", "/", "/"),
            ("", ".", "."),
        ] {
            assert_eq!(base_name(path), base, "base {path:?}");
            assert_eq!(go_clean(path), cleaned, "clean {path:?}");
        }
    }
}
