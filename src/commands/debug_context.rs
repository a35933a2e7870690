//! `kiln debug ignore` and `kiln debug context`: the library's
//! `.dockerignore` reading and context walk, shown.

use anyhow::Context as _;
use kiln::context::dockerignore::{read_all, DockerIgnore};
use kiln::context::walk;

use crate::cli::debug_context::{ContextArgs, IgnoreCommand};

pub fn ignore(command: IgnoreCommand) -> anyhow::Result<()> {
    match command {
        IgnoreCommand::Match(args) => {
            let file_lines = match &args.file {
                Some(file) => read_all(&read(file)?),
                None => Vec::new(),
            };
            let mut flag_lines = Vec::new();
            for (n, pattern) in args.patterns.iter().enumerate() {
                // A flag is named by its place among the --pattern flags.
                flag_lines.extend(read_all(pattern).into_iter().map(|mut l| {
                    l.line = n + 1;
                    l
                }));
            }
            let name = args.file.as_ref().map(|f| f.display().to_string()).unwrap_or_default();
            DockerIgnore::new(&file_lines, &name)?;
            DockerIgnore::new(&flag_lines, "--pattern")?;
            let ignore = DockerIgnore::new(&[file_lines, flag_lines].concat(), &name)?;
            crate::outln!("{}", ignore.is_excluded(std::path::Path::new(&args.path)))?;
        }
        IgnoreCommand::Read(args) => {
            let patterns: Vec<String> = read_all(&read(&args.file)?).into_iter().map(|l| l.pattern).collect();
            crate::outln!("{}", serde_json::to_string(&patterns)?)?;
        }
    }
    Ok(())
}

pub fn context(args: ContextArgs) -> anyhow::Result<()> {
    if !args.dir.is_dir() {
        anyhow::bail!("build context {} is not a directory", args.dir.display());
    }
    let ignore = DockerIgnore::load(&args.dir, args.file.as_deref())?;
    for path in walk::list(&args.dir, &ignore)? {
        crate::outln!("{}", crate::cli::output::escape(&path))?;
    }
    Ok(())
}

fn read(file: &std::path::Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
