//! Which files a COPY reads.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{pattern, CopyError};
use crate::context::dockerignore::{DockerIgnore, MatchInfo};
use crate::fsutil::lexical;
use crate::fsutil::resolve_in_root;

/// Where COPY sources are looked up.
#[derive(Clone)]
pub enum SourceRoot {
    /// The build context, with its .dockerignore.
    Context { root: PathBuf, ignore: Arc<DockerIgnore> },
    /// Another filesystem (a stage or image), mounted at `root`.
    Fs { root: PathBuf },
}

impl SourceRoot {
    pub(super) fn root(&self) -> &Path {
        match self {
            SourceRoot::Context { root, .. } | SourceRoot::Fs { root } => root,
        }
    }
    /// Whether anything below the folder `host` (`rel` in the root) is sent.
    fn sends_below(&self, host: &Path, rel: &Path) -> bool {
        let SourceRoot::Context { ignore, .. } = self else { return true };
        !ignore.skips_dir(&rel.to_string_lossy())
            && walkdir::WalkDir::new(host)
                .min_depth(1)
                .into_iter()
                .filter_map(Result::ok)
                .any(|e| e.path().strip_prefix(host).is_ok_and(|below| !self.excluded(&rel.join(below))))
    }

    fn excluded(&self, rel: &Path) -> bool {
        match self {
            SourceRoot::Context { ignore, .. } => ignore.is_excluded(rel),
            SourceRoot::Fs { .. } => false,
        }
    }
}

/// One file or directory a COPY source names.
pub struct Selected {
    /// Its path on the host.
    pub host: PathBuf,
    /// Its path relative to the source root, symlinks resolved.
    pub rel: PathBuf,
    /// The name it is copied under into a directory: the last component of the
    /// source as written or matched, not of what a symlink there points to.
    pub name: std::ffi::OsString,
    /// Whether its contents (not itself) are copied.
    pub is_dir: bool,
    /// Its path relative to the source root as written or matched (symlinks
    /// not resolved): what `--parents` keeps.
    pub written: PathBuf,
    from: SourceRoot,
    /// `--exclude`'s patterns, matched against paths below it.
    exclude: Option<Arc<DockerIgnore>>,
}

impl Selected {
    /// Everything below a selected directory, sorted, without following symlinks,
    /// excluded paths left out: `(host path, path relative to the directory)`.
    ///
    /// One walk, as context/walk.rs does it: a folder .dockerignore excludes
    /// is still sent when something below it is (`dir` + `!dir/keep`), which
    /// is known once the walk has been below it, so the entries are gathered
    /// first and judged after.
    pub fn walk(&self) -> Result<Vec<(PathBuf, PathBuf)>, CopyError> {
        let info = match &self.from {
            SourceRoot::Context { ignore, .. } => ignore.judge(&self.rel).1,
            SourceRoot::Fs { .. } => MatchInfo::default(),
        };
        let mut found = Vec::new();
        self.walk_dir(&self.host, Path::new(""), &info, &mut found)?;
        // The folders with something below them .dockerignore does not exclude.
        let mut kept_below: HashSet<&Path> = HashSet::new();
        for f in found.iter().filter(|f| f.keeps) {
            for dir in f.rel.ancestors().skip(1).filter(|a| !a.as_os_str().is_empty()) {
                if !kept_below.insert(dir) {
                    break;
                }
            }
        }
        let sent: Vec<bool> = found
            .iter()
            .map(|f| f.listed && !f.excluded && (!f.ignored || (f.is_dir && kept_below.contains(f.rel.as_path()))))
            .collect();
        Ok(found.into_iter().zip(sent).filter(|(_, sent)| *sent).map(|(f, _)| (f.host, f.rel)).collect())
    }

    /// Add to `found` the entries of the folder `dir` (`rel` below the
    /// selected one, judged `info` by .dockerignore), each followed by what
    /// is below it, names sorted. Each entry is judged once, with its
    /// folder's judgement (not from the root down again), and its type is
    /// the folder listing's: no stat.
    fn walk_dir(&self, dir: &Path, rel: &Path, info: &MatchInfo, found: &mut Vec<Found>) -> Result<(), CopyError> {
        let read = |e| CopyError::Read(dir.to_owned(), e);
        let mut entries = Vec::new();
        for entry in fs::read_dir(dir).map_err(read)? {
            let entry = entry.map_err(read)?;
            let is_dir = entry.file_type().map_err(|e| CopyError::Read(entry.path(), e))?.is_dir();
            entries.push((entry.file_name(), is_dir));
        }
        entries.sort_unstable_by(|(a, _), (b, _)| a.cmp(b));
        let ignore = match &self.from {
            SourceRoot::Context { ignore, .. } => Some(ignore),
            SourceRoot::Fs { .. } => None,
        };
        for (name, is_dir) in entries {
            let (host, rel) = (dir.join(&name), rel.join(&name));
            let full =
                if self.rel.as_os_str().is_empty() { Cow::Borrowed(&rel) } else { Cow::Owned(self.rel.join(&rel)) };
            let (ignored, below) = match ignore {
                Some(ignore) => ignore.matches(&full.to_string_lossy(), info),
                None => (false, MatchInfo::default()),
            };
            // An excluded folder nothing below can come back from is skipped
            // whole, as BuildKit's walk skips it: by .dockerignore (see
            // `DockerIgnore::skips_dir`), or by --exclude without `!` rules.
            if is_dir && ignored && ignore.is_some_and(|i| i.skips_dir(&full.to_string_lossy())) {
                continue;
            }
            let excluded = self.exclude.as_ref().is_some_and(|x| x.is_excluded(&rel));
            if is_dir && excluded && self.exclude.as_ref().is_some_and(|x| !x.has_exceptions()) {
                // Not sent, but what .dockerignore keeps below it still
                // sends the folders above it.
                let keeps = !ignored || self.from.sends_below(&host, &full);
                drop(full);
                found.push(Found { host, rel, is_dir, ignored, excluded, listed: false, keeps });
                continue;
            }
            drop(full);
            if !is_dir {
                found.push(Found { host, rel, is_dir, ignored, excluded, listed: true, keeps: !ignored });
                continue;
            }
            let (host_below, rel_below) = (host.clone(), rel.clone());
            found.push(Found { host, rel, is_dir, ignored, excluded, listed: true, keeps: !ignored });
            self.walk_dir(&host_below, &rel_below, &below, found)?;
        }
        Ok(())
    }
}

/// An entry [`Selected::walk_dir`] found, before it is judged.
struct Found {
    host: PathBuf,
    /// Its path below the selected folder.
    rel: PathBuf,
    is_dir: bool,
    /// Excluded by .dockerignore.
    ignored: bool,
    /// Excluded by --exclude.
    excluded: bool,
    /// Listed: not a folder --exclude pruned.
    listed: bool,
    /// The folders above it are sent.
    keeps: bool,
}

/// Resolve the COPY sources against `from`: wildcards expanded, .dockerignore
/// and `exclude` (`--exclude`, matched against a wildcard match's path below
/// the folder searched, and against paths below a selected folder) applied.
pub fn select(from: &SourceRoot, sources: &[String], exclude: &[String]) -> Result<Vec<Selected>, CopyError> {
    if sources.is_empty() {
        return Err(CopyError::NoSources);
    }
    let exclude = match exclude {
        [] => None,
        patterns => Some(Arc::new(
            DockerIgnore::parse(&patterns.join("\n"), "--exclude").map_err(|e| CopyError::Exclude(e.to_string()))?,
        )),
    };
    let root = from.root();
    let in_context = matches!(from, SourceRoot::Context { .. });
    let missing =
        |s: &str| if in_context { CopyError::NotInContext(s.to_owned()) } else { CopyError::NotInSource(s.to_owned()) };
    let mut out = Vec::new();
    for source in sources {
        if in_context && crate::fsutil::lexical(Path::new(source.trim_start_matches('/'))).climbs > 0 {
            return Err(CopyError::Outside(source.clone()));
        }
        let cleaned = format!("/{}", lexical(Path::new(source)).clamped().to_string_lossy());
        if let (dir, Some(pattern)) = pattern::split(&cleaned) {
            // BuildKit searches the folder before the first wildcard (a
            // missing one is an error) and matches paths below it; a wildcard
            // that matches nothing copies nothing, and is no error.
            let dir_host = resolve_in_root(root, Path::new(dir)).map_err(|_| missing(source))?;
            if !fs::metadata(&dir_host).is_ok_and(|m| m.is_dir()) {
                return Err(missing(source));
            }
            let dir_rel = dir_host.strip_prefix(root).unwrap_or(Path::new("")).to_owned();
            // BuildKit never sees a folder .dockerignore leaves out (unless a
            // `!` rule keeps something below it): searching it is searching a
            // missing folder, an error, not an empty copy.
            if from.excluded(&dir_rel) && !from.sends_below(&dir_host, &dir_rel) {
                return Err(missing(source));
            }
            let mut walk = walkdir::WalkDir::new(&dir_host).min_depth(1).sort_by_file_name().into_iter();
            while let Some(e) = walk.next() {
                let e = e.map_err(|err| CopyError::Read(dir_host.clone(), err.into()))?;
                let below = e.path().strip_prefix(&dir_host).unwrap_or(e.path());
                if !pattern::matches(pattern, &below.to_string_lossy()) {
                    continue;
                }
                // A matched folder is copied whole: nothing below it is matched again.
                if e.file_type().is_dir() {
                    walk.skip_current_dir();
                }
                let rel = dir_rel.join(below);
                let ignored = from.excluded(&rel) && !(e.file_type().is_dir() && from.sends_below(e.path(), &rel));
                if ignored || exclude.as_ref().is_some_and(|x| x.is_excluded(below)) {
                    continue;
                }
                let written = Path::new(dir.trim_start_matches('/')).join(below);
                // Matches are followed like named sources are (BuildKit does the same).
                let host = resolve_in_root(root, &rel).map_err(|e| CopyError::Read(rel.clone(), e))?;
                let rel = host.strip_prefix(root).unwrap_or(Path::new("")).to_owned();
                let is_dir = fs::metadata(&host).map_err(|e| CopyError::Read(host.clone(), e))?.is_dir();
                let name = e.file_name().to_owned();
                out.push(Selected { host, rel, name, is_dir, written, from: from.clone(), exclude: exclude.clone() });
            }
        } else {
            let host = resolve_in_root(root, Path::new(source)).map_err(|_| missing(source))?;
            let rel = host.strip_prefix(root).unwrap_or(Path::new("")).to_owned();
            let meta = fs::metadata(&host).map_err(|_| missing(source))?;
            // An excluded folder is still sent when something below it is
            // (`dir` + `!dir/keep`), as BuildKit's walk sends it.
            if !rel.as_os_str().is_empty() && from.excluded(&rel) && !(meta.is_dir() && from.sends_below(&host, &rel)) {
                return Err(missing(source));
            }
            let written = lexical(Path::new(source)).clamped();
            let name = written.file_name().map(|n| n.to_owned()).unwrap_or_default();
            let is_dir = meta.is_dir();
            out.push(Selected { host, rel, name, is_dir, written, from: from.clone(), exclude: exclude.clone() });
        }
    }
    Ok(out)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(in crate::copy) fn context(files: &[(&str, &str)], ignore: &str) -> (tempfile::TempDir, SourceRoot) {
        let dir = tempfile::tempdir().unwrap();
        for (path, body) in files {
            let p = dir.path().join(path);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, body).unwrap();
        }
        let ignore = Arc::new(DockerIgnore::parse(ignore, ".dockerignore").unwrap());
        let root = SourceRoot::Context { root: dir.path().to_owned(), ignore };
        (dir, root)
    }

    #[test]
    fn selects_with_wildcards_and_ignore_rules() {
        let (_d, ctx) = context(&[("a.txt", "a"), ("b.txt", "b"), ("c.md", "c"), ("sub/x.txt", "x")], "b.txt");
        let names = |s: &[&str]| -> Vec<String> {
            select(&ctx, &s.iter().map(|x| x.to_string()).collect::<Vec<_>>(), &[])
                .unwrap()
                .iter()
                .map(|s| s.rel.display().to_string())
                .collect()
        };
        assert_eq!(names(&["*.txt"]), ["a.txt"]);
        // A wildcard that matches nothing selects nothing, as in BuildKit.
        assert_eq!(names(&["*.rs", "c.md"]), ["c.md"]);
        assert_eq!(names(&["s?b"]), ["sub"]);
        assert_eq!(names(&["*/x.txt"]), ["sub/x.txt"]);
        assert_eq!(names(&["sub/*.txt", "c.md"]), ["sub/x.txt", "c.md"]);
        assert_eq!(names(&["."]), [""]);
        for (bad, outside) in
            [("b.txt", false), ("nope", false), ("nodir/*.rs", false), ("../x", true), ("sub/../../x", true)]
        {
            let err = select(&ctx, &[bad.to_string()], &[]).err().unwrap();
            assert_eq!(matches!(err, CopyError::Outside(_)), outside, "{bad}: {err}");
        }
    }

    /// `COPY . ` reads exactly what the context walk says a build sends, for
    /// rules that skip folders whole and rules that bring things back.
    #[test]
    fn a_folder_walk_sends_what_the_context_walk_sends() {
        let files = [
            ("a.txt", ""),
            ("dir/keep", ""),
            ("dir/drop", ""),
            ("dir/sub/x", ""),
            ("dir/sub/deep/keep", ""),
            ("logs/1.log", ""),
            ("src/main.rs", ""),
            ("src/b.tmp", ""),
            ("src/gen/c.tmp", ""),
        ];
        for ignore in [
            "",
            "dir\n!dir/keep\nlogs\n*.tmp\nsrc/*.tmp\n",
            "dir\n!dir/sub/deep/keep\n",
            "dir\n!**/keep\n",
            "*\n!src\n",
            "src\n!src/gen/*.tmp\n",
        ] {
            let (d, ctx) = context(&files, ignore);
            let sel = select(&ctx, &[".".into()], &[]).unwrap();
            let mut got: Vec<String> = sel[0]
                .walk()
                .unwrap()
                .into_iter()
                .map(|(host, rel)| {
                    let rel = rel.to_string_lossy().into_owned();
                    if host.is_dir() {
                        format!("{rel}/")
                    } else {
                        rel
                    }
                })
                .collect();
            got.sort();
            let SourceRoot::Context { ignore: rules, .. } = &ctx else { unreachable!() };
            let want = crate::context::walk::list(d.path(), rules).unwrap();
            assert_eq!(got, want, "{ignore:?}");
        }
        // --exclude prunes its folder, but what .dockerignore keeps below
        // it still sends the excluded-by-.dockerignore folder above.
        let (_d, ctx) = context(&files, "dir\n!dir/sub/deep/keep\n");
        let sel = select(&ctx, &[".".into()], &["dir/sub".into()]).unwrap();
        let got: Vec<String> = sel[0].walk().unwrap().into_iter().map(|(_, r)| r.display().to_string()).collect();
        assert_eq!(
            got,
            ["a.txt", "dir", "logs", "logs/1.log", "src", "src/b.tmp", "src/gen", "src/gen/c.tmp", "src/main.rs"]
        );
    }

    #[test]
    fn a_search_folder_left_out_is_missing() {
        let files = [("gone/a.txt", "a"), ("kept/a.txt", "a"), ("kept/b.txt", "b"), ("d/e/f.txt", "f")];
        let (_d, ctx) = context(&files, "gone\nkept\n!kept/b.txt\n");
        let rels = |s: &str| -> Result<Vec<String>, String> {
            match select(&ctx, &[s.to_owned()], &[]) {
                Ok(sel) => Ok(sel.iter().map(|s| s.rel.display().to_string()).collect()),
                Err(e) => Err(e.to_string()),
            }
        };
        let missing = "COPY failed: file not found in build context or excluded by .dockerignore: gone/*.txt";
        assert_eq!(rels("gone/*.txt"), Err(missing.to_owned()));
        // A `!` rule keeps the folder: what it keeps is found, nothing else.
        assert_eq!(rels("kept/*.txt"), Ok(vec!["kept/b.txt".to_owned()]));
        assert_eq!(rels("**/f.txt"), Ok(vec!["d/e/f.txt".to_owned()]));
        assert_eq!(rels("d/**/*.txt"), Ok(vec!["d/e/f.txt".to_owned()]));
    }
}
