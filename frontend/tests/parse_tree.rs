//! Golden parse trees (`kiln debug parse`): one folder per case under
//! `tests/parse_tree/`, holding a `Dockerfile` and the expected `tree.json`
//! (or `error` when it must not parse). Re-bless after a deliberate change:
//!
//! ```text
//! KILN_BLESS=1 cargo test -p kiln-frontend --test parse_tree
//! ```

use std::fs;
use std::path::{Path, PathBuf};

use kiln_frontend::parse_tree;

#[test]
fn parse_trees() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/parse_tree");
    let bless = std::env::var_os("KILN_BLESS").is_some_and(|v| v != "0");
    let mut cases: Vec<PathBuf> =
        fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    cases.sort();
    assert!(cases.len() >= 5, "expected the parse tree cases in {}", root.display());
    let mut failures = Vec::new();
    for case in &cases {
        let text = fs::read_to_string(case.join("Dockerfile")).unwrap();
        let (file, actual) = match parse_tree(&text) {
            Ok(tree) => ("tree.json", serde_json::to_string_pretty(&tree).unwrap() + "\n"),
            Err(mut e) => {
                e.file = "Dockerfile".into();
                ("error", format!("{e}\n"))
            }
        };
        let other = case.join(if file == "error" { "tree.json" } else { "error" });
        if bless {
            fs::write(case.join(file), &actual).unwrap();
            let _ = fs::remove_file(&other);
            continue;
        }
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        match fs::read_to_string(case.join(file)) {
            Ok(_) if other.exists() => failures.push(format!("{name}: both tree.json and error exist")),
            Ok(expected) if expected == actual => {}
            Ok(expected) => failures.push(format!("{name}/{file}:\nexpected:\n{expected}\nactual:\n{actual}")),
            Err(_) => failures.push(format!("{name}: no {file}; got:\n{actual}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} parse trees differ (KILN_BLESS=1 to re-bless):\n\n{}",
        failures.len(),
        failures.join("\n")
    );
}
