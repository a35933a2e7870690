//! `kiln run`: an image's filesystem on a throw-away overlay, its command in the sandbox.

use anyhow::{bail, Context};

use crate::sandbox::{Sandbox, Spec, Stdio};
use crate::snapshot::Snapshotter;
use crate::store::Store;

#[derive(clap::Args)]
pub struct Args {
    /// Remove the container when it exits (always the case: kiln keeps no containers).
    #[arg(long)]
    rm: bool,
    /// Keep stdin open even when it is a terminal (it is passed on through a
    /// pipe, never as kiln's own descriptor). Without it, a terminal stdin is
    /// not passed on; piped input always is.
    #[arg(short = 'i', long)]
    interactive: bool,
    /// Set an environment variable, KEY=VALUE, or KEY to pass kiln's own (repeatable).
    #[arg(short = 'e', long = "env")]
    env: Vec<String>,
    /// Working directory inside the container.
    #[arg(short = 'w', long = "workdir")]
    workdir: Option<String>,
    /// user[:group] to run as.
    #[arg(short = 'u', long = "user")]
    user: Option<String>,
    /// Override the image's ENTRYPOINT.
    #[arg(long)]
    entrypoint: Option<String>,
    /// The image.
    image: String,
    /// The command and its arguments (replaces the image's CMD).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

pub fn run(store: &Store, args: Args) -> anyhow::Result<i32> {
    let _ = args.rm;
    let image = store.get(&args.image)?;
    let (_, config) = store.image_parts(&image)?;
    let c = config.config().clone().unwrap_or_default();
    // docker's rules: --entrypoint drops the image's CMD too; arguments replace CMD.
    let (entrypoint, cmd) = match &args.entrypoint {
        Some(ep) if ep.is_empty() => (vec![], args.command.clone()),
        Some(ep) => (vec![ep.clone()], args.command.clone()),
        None => {
            let cmd = if args.command.is_empty() { c.cmd().clone().unwrap_or_default() } else { args.command.clone() };
            (c.entrypoint().clone().unwrap_or_default(), cmd)
        }
    };
    let argv: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if argv.is_empty() {
        bail!("no command specified: the image {} has no CMD or ENTRYPOINT; give one after the image name", image.name);
    }
    let mut env = c.env().clone().unwrap_or_default();
    for e in &args.env {
        let (key, value) = match e.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => match std::env::var(e) {
                Ok(v) => (e.clone(), v),
                Err(_) => continue,
            },
        };
        env.retain(|x| x.split_once('=').map(|(k, _)| k) != Some(key.as_str()));
        env.push(format!("{key}={value}"));
    }
    let cwd = args.workdir.clone().or(c.working_dir().clone()).filter(|w| !w.is_empty()).unwrap_or_else(|| "/".into());
    if !cwd.starts_with('/') {
        bail!("the working directory {cwd:?} is not an absolute path");
    }
    let user = args.user.clone().or(c.user().clone()).unwrap_or_default();

    let (_, layers) = crate::image::read(store, &image.digest())?;
    let mount = Snapshotter::new(store).mount(&layers, true).context("preparing the container's filesystem")?;
    let exe = std::env::current_exe()?;
    let hostname: String = hex::encode(std::process::id().to_be_bytes()) + &image.digest().hex()[..4];
    let spec = Spec { rootfs: mount.root.clone(), args: argv, env, cwd, user, hostname };
    let stdin = args.interactive || !std::io::IsTerminal::is_terminal(&std::io::stdin());
    let code = Sandbox::new(&exe, &store.work_dir()).run(&spec, Stdio::Proxy { stdin }, &|| false)?;
    Ok(code)
}
