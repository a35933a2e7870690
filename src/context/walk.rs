//! What a build sends of a context folder, walked as BuildKit's fsutil walks
//! it: each entry judged with its parent's results, an excluded folder
//! skipped whole when nothing below it can come back, and an excluded folder
//! sent after all when something below it is (so `dir` + `!dir/keep` sends
//! `dir/` and `dir/keep`).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use super::dockerignore::{DockerIgnore, MatchInfo};
use super::ContextError;
use crate::fsutil::io_at;

/// Every path the build would see, relative to `root`, sorted; folders end
/// in `/`. Symlinks are listed, not followed.
pub fn list(root: &Path, ignore: &DockerIgnore) -> Result<Vec<String>, ContextError> {
    let mut sent: BTreeSet<(String, bool)> = BTreeSet::new();
    let mut folders: Vec<(PathBuf, String, MatchInfo)> = vec![(root.to_owned(), String::new(), MatchInfo::default())];
    while let Some((host, rel, info)) = folders.pop() {
        let entries = fs::read_dir(&host).map_err(io_at::<ContextError>("reading", &host))?;
        for entry in entries {
            let entry = entry.map_err(io_at::<ContextError>("reading", &host))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = if rel.is_empty() { name } else { format!("{rel}/{name}") };
            let is_dir = entry.file_type().map_err(io_at::<ContextError>("reading", &entry.path()))?.is_dir();
            let (excluded, child_info) = ignore.matches(&path, &info);
            if excluded {
                if is_dir && !ignore.skips_dir(&path) {
                    folders.push((entry.path(), path, child_info));
                }
                continue;
            }
            // Its folders are sent with it, excluded or not.
            let mut at = path.as_str();
            while let Some((parent, _)) = at.rsplit_once('/') {
                sent.insert((parent.to_owned(), true));
                at = parent;
            }
            if is_dir {
                folders.push((entry.path(), path.clone(), child_info));
            }
            sent.insert((path, is_dir));
        }
    }
    let mut out: Vec<String> =
        sent.into_iter().map(|(path, is_dir)| if is_dir { format!("{path}/") } else { path }).collect();
    out.sort();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_what_buildkit_would_send() {
        let dir = tempfile::tempdir().unwrap();
        for file in ["a.txt", "dir/keep", "dir/drop", "dir/sub/x", "logs/1.log", "src/main.rs", "src/b.tmp"] {
            let path = dir.path().join(file);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, "").unwrap();
        }
        let ignore = DockerIgnore::parse("dir\n!dir/keep\nlogs\n*.tmp\nsrc/*.tmp\n", ".dockerignore").unwrap();
        assert_eq!(list(dir.path(), &ignore).unwrap(), ["a.txt", "dir/", "dir/keep", "src/", "src/main.rs"]);
        let all = list(dir.path(), &DockerIgnore::none()).unwrap();
        assert_eq!(all.len(), 11, "{all:?}");
    }
}
