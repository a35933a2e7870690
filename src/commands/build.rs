//! `kiln build`: [`kiln::build()`], with progress as plain lines on stderr.

use std::sync::Arc;

use kiln::build::{build_args_from_flags, BuildRequest, Dockerfile, Progress};
use kiln::image_io::{AtomicFile, Output};
use kiln::progress::Plain;
use kiln::store::Store;
use kiln_solver::{Digest, Event};

use crate::cli::build::Args;
use crate::cli::output::escape;

/// Plain progress, and what the build says besides its steps, on stderr.
#[derive(Default)]
struct Stderr(Plain);

impl Progress for Stderr {
    fn event(&self, event: &Event) {
        self.0.event(event);
    }

    fn warning(&self, message: &str) {
        eprintln!("warning: {}", escape(message));
    }

    fn image_written(&self, id: &Digest) {
        eprintln!("writing image {id}");
    }

    fn named(&self, name: &str) {
        eprintln!("naming to {name}");
    }
}

pub fn build(store: &Store, args: Args) -> anyhow::Result<()> {
    let mut request = BuildRequest::new(args.context);
    request.dockerfile = args.file.map_or(Dockerfile::InContext, Dockerfile::Path);
    request.build_args = build_args_from_flags(&args.build_args, |name| std::env::var(name).ok())?;
    request.target = args.target;
    request.tags = args.tags;
    request.no_cache = args.no_cache;
    request.jobs = args.jobs;
    request.progress = Arc::new(Stderr::default());
    if !args.outputs.is_empty() {
        request.outputs = args.outputs.iter().map(|o| Output::parse(o)).collect::<Result<_, _>>()?;
    }
    let built = kiln::build(store, request)?;
    if let Some(path) = &args.iidfile {
        write_file(path, built.id.as_str().as_bytes())?;
    }
    if let Some(path) = &args.metadata_file {
        write_file(path, &serde_json::to_vec_pretty(&built.metadata())?)?;
    }
    crate::outln!("{}", built.id)
}

/// Write a small file whole, atomically.
fn write_file(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut file = AtomicFile::create(path)?;
    file.write_all(bytes).map_err(|e| anyhow::Error::new(e).context(format!("writing {}", path.display())))?;
    Ok(file.commit()?)
}
