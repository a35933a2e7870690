//! Where `kiln build` finds its context and Dockerfile: a folder, or stdin
//! (`kiln build -` with a tar archive or a Dockerfile, `-f -`), as buildx
//! reads them.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use kiln::build::{Dockerfile, NamedContextSource};
use kiln::context::archive::{self, StdinContext};

use crate::cli::build::Args;

/// The context folder and Dockerfile of a build, and what must live as long
/// as the build: a folder unpacked from stdin, removed when this is dropped.
pub struct Inputs {
    pub context: PathBuf,
    pub dockerfile: Dockerfile,
    /// False for an archive: BuildKit applies no `.dockerignore` to one.
    pub dockerignore: bool,
    _stdin: Option<StdinContext>,
}

/// The name stdin's Dockerfile goes by in messages, as in BuildKit's.
const STDIN_NAME: &str = "Dockerfile";

pub fn inputs(args: &Args) -> anyhow::Result<Inputs> {
    let stdin_file = args.file.as_deref() == Some(Path::new("-"));
    if args.context != Path::new("-") {
        let dockerfile = match &args.file {
            None => Dockerfile::InContext,
            Some(_) if stdin_file => Dockerfile::Text { name: STDIN_NAME.to_owned(), text: read_stdin()? },
            Some(path) => Dockerfile::Path(path.clone()),
        };
        return Ok(Inputs { context: args.context.clone(), dockerfile, dockerignore: true, _stdin: None });
    }
    if stdin_file {
        anyhow::bail!("stdin cannot be both the build context and the Dockerfile: give a context folder, or -f FILE");
    }
    let stdin = archive::read(std::io::stdin().lock())?;
    let context = stdin.dir().to_owned();
    let dockerfile = match (&stdin, &args.file) {
        (StdinContext::Dockerfile { .. }, Some(file)) => anyhow::bail!(
            "stdin holds a Dockerfile, and -f {} names another: pipe a tar archive of the context to use -f",
            file.display()
        ),
        (StdinContext::Dockerfile { text, .. }, None) => {
            Dockerfile::Text { name: STDIN_NAME.to_owned(), text: text.clone() }
        }
        // Inside the archive, symlinks resolved within it: an archive cannot
        // name a host file as its Dockerfile. Messages name it as the archive does.
        (StdinContext::Archive(dir), file) => {
            let name = file.as_deref().unwrap_or(Path::new("Dockerfile"));
            let path = kiln::fsutil::resolve_in_root(dir.path(), name)?;
            let text = std::fs::read_to_string(&path).map_err(|e| {
                anyhow::Error::new(e).context(format!(
                    "the build context archive on stdin holds no Dockerfile {}: name it with -f PATH-IN-ARCHIVE",
                    name.display()
                ))
            })?;
            Dockerfile::Text { name: name.display().to_string(), text }
        }
    };
    let dockerignore = !matches!(stdin, StdinContext::Archive(_));
    Ok(Inputs { context, dockerfile, dockerignore, _stdin: Some(stdin) })
}

/// `--build-context` flags, each name once.
pub fn named_contexts(flags: &[String]) -> anyhow::Result<BTreeMap<String, NamedContextSource>> {
    let mut named = BTreeMap::new();
    for flag in flags {
        let (name, source) = NamedContextSource::parse_flag(flag)?;
        if named.insert(name.clone(), source).is_some() {
            anyhow::bail!("--build-context {name}=… is given twice: give each name once");
        }
    }
    Ok(named)
}

fn read_stdin() -> anyhow::Result<String> {
    let mut text = String::new();
    std::io::stdin()
        .lock()
        .read_to_string(&mut text)
        .map_err(|e| anyhow::Error::new(e).context("reading the Dockerfile from stdin"))?;
    Ok(text)
}
