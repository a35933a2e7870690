//! Running an image, as `kiln run` does: the image's filesystem on a
//! throw-away overlay, its command in the sandbox, docker's rules for what
//! the command, environment, working directory and user are.

use std::path::PathBuf;

use crate::image::ImageError;
use crate::sandbox::{Sandbox, SandboxError, Spec, Stdio};
use crate::snapshot::{SnapshotError, Snapshotter};
use crate::store::{Store, StoreError};

/// Why a container could not be run (not: why its command failed).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no command specified: the image {0} has no CMD or ENTRYPOINT; give one after the image name")]
    NoCommand(String),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("preparing the container's filesystem")]
    Mount(#[source] SnapshotError),
    #[error("finding kiln's own binary")]
    Exe(#[source] std::io::Error),
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
}

/// What to run, and how: `kiln run`'s options.
#[derive(Debug, Clone, Default)]
pub struct RunRequest {
    /// The image: a name or an ID.
    pub image: String,
    /// The command and its arguments; empty for the image's CMD.
    pub command: Vec<String>,
    /// Replaces the image's ENTRYPOINT (and drops its CMD); `""` for none.
    pub entrypoint: Option<String>,
    /// `KEY=VALUE`, or `KEY` for this process's own value (left out when unset).
    pub env: Vec<String>,
    /// The working directory, instead of the image's.
    pub workdir: Option<String>,
    /// `user[:group]`, instead of the image's.
    pub user: Option<String>,
    /// Pass this process's stdin on (through a pipe); else /dev/null.
    pub stdin: bool,
    /// The kiln binary the sandbox re-executes; `None` for this process's own.
    pub sandbox_exe: Option<PathBuf>,
}

/// Run a container to completion with kiln's own standard streams copied to
/// and from it; its exit code (128+N for signal N).
pub fn run(store: &Store, request: &RunRequest) -> Result<i32, RunError> {
    let image = store.get(&request.image)?;
    let (_, config) = store.image_parts(&image)?;
    let c = config.config().clone().unwrap_or_default();
    // docker's rules: --entrypoint drops the image's CMD too; arguments replace CMD.
    let (entrypoint, cmd) = match &request.entrypoint {
        Some(ep) if ep.is_empty() => (vec![], request.command.clone()),
        Some(ep) => (vec![ep.clone()], request.command.clone()),
        None => {
            let cmd =
                if request.command.is_empty() { c.cmd().clone().unwrap_or_default() } else { request.command.clone() };
            (c.entrypoint().clone().unwrap_or_default(), cmd)
        }
    };
    let argv: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if argv.is_empty() {
        return Err(RunError::NoCommand(request.image.clone()));
    }
    let mut env = c.env().clone().unwrap_or_default();
    for e in &request.env {
        let Some((key, value)) = crate::flags::name_value(e, crate::flags::process_env) else { continue };
        env.retain(|x| x.split_once('=').map(|(k, _)| k) != Some(key));
        env.push(format!("{key}={value}"));
    }
    let cwd =
        request.workdir.clone().or(c.working_dir().clone()).filter(|w| !w.is_empty()).unwrap_or_else(|| "/".into());
    let user = request.user.clone().or(c.user().clone()).unwrap_or_default();

    let (_, layers) = crate::image::read(store, &image.digest())?;
    let mount = Snapshotter::new(store).mount(&layers, true).map_err(RunError::Mount)?;
    let exe = match &request.sandbox_exe {
        Some(exe) => exe.clone(),
        None => std::env::current_exe().map_err(RunError::Exe)?,
    };
    let hostname: String = hex::encode(std::process::id().to_be_bytes()) + &image.digest().hex()[..4];
    let spec = Spec { rootfs: mount.root.clone(), args: argv, env, cwd, user, hostname, ..Spec::default() };
    let exit = Sandbox::new(&exe, &store.work_dir()).run(&spec, Stdio::Proxy { stdin: request.stdin }, &|| false)?;
    Ok(exit.code)
}
