//! `Solver::skip_cache_for` and `Executor::looked_up`: what `--no-cache-filter`
//! and `kiln build --explain` stand on.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kiln_solver::{CacheKey, Cancellation, Digest, ExecContext, Executor, Graph, Lookup, Solver};

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

/// Ops are names; results are stored by key; every lookup is written down.
#[derive(Default)]
struct Fake {
    stored: Mutex<HashMap<CacheKey, String>>,
    runs: Mutex<Vec<String>>,
    lookups: Mutex<Vec<(usize, String, bool)>>,
}

impl Executor for Fake {
    type Op = String;
    type Output = String;
    type Error = Never;

    fn content_checksum(&self, _op: &String) -> Result<Option<Digest>, Never> {
        Ok(None)
    }

    fn load(&self, key: &CacheKey, _op: &String, _: &Cancellation) -> Result<Option<String>, Never> {
        Ok(self.stored.lock().unwrap().get(key).cloned())
    }

    fn execute(&self, _ctx: &ExecContext, op: &String, _inputs: &[String]) -> Result<String, Never> {
        self.runs.lock().unwrap().push(op.clone());
        Ok(op.clone())
    }

    fn save(&self, key: &CacheKey, output: &String) -> Result<(), Never> {
        self.stored.lock().unwrap().insert(key.clone(), output.clone());
        Ok(())
    }

    fn looked_up(&self, lookup: &Lookup<'_, String>) {
        self.lookups.lock().unwrap().push((lookup.index, lookup.vertex.op.clone(), lookup.cached));
    }
}

/// base → a → after_a, and base → b; `top` reads after_a and b.
fn graph() -> (Graph<String>, HashMap<&'static str, Digest>) {
    let mut g = Graph::new();
    let mut d = HashMap::new();
    d.insert("base", g.add("base".to_owned(), vec![], "base").unwrap());
    d.insert("a", g.add("a".to_owned(), vec![d["base"].clone()], "a").unwrap());
    d.insert("b", g.add("b".to_owned(), vec![d["base"].clone()], "b").unwrap());
    d.insert("after_a", g.add("after_a".to_owned(), vec![d["a"].clone()], "after_a").unwrap());
    d.insert("top", g.add("top".to_owned(), vec![d["after_a"].clone(), d["b"].clone()], "top").unwrap());
    (g, d)
}

fn solve(fake: &Arc<Fake>, skip: &[Digest], graph: &Graph<String>, target: &Digest) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let solver = Solver::new(fake.clone(), 2).skip_cache_for(skip.iter().cloned());
    runtime.block_on(solver.solve(graph, target)).unwrap();
}

#[test]
fn a_skipped_vertex_and_what_reads_it_run_again_and_nothing_else() {
    let fake = Arc::new(Fake::default());
    let (g, d) = graph();
    solve(&fake, &[], &g, &d["top"]);
    assert_eq!(fake.runs.lock().unwrap().len(), 5);
    fake.runs.lock().unwrap().clear();
    solve(&fake, &[d["a"].clone()], &g, &d["top"]);
    let mut runs = fake.runs.lock().unwrap().clone();
    runs.sort();
    assert_eq!(runs, ["a", "after_a", "top"]);
}

#[test]
fn every_vertex_is_looked_up_once_after_its_inputs() {
    let fake = Arc::new(Fake::default());
    let (g, d) = graph();
    solve(&fake, &[], &g, &d["top"]);
    solve(&fake, &[d["b"].clone()], &g, &d["top"]);
    let lookups = fake.lookups.lock().unwrap().clone();
    assert_eq!(lookups.len(), 10);
    let (first, second) = lookups.split_at(5);
    assert!(first.iter().all(|(_, _, cached)| !cached), "{first:?}");
    let cached: HashMap<&str, bool> = second.iter().map(|(_, op, c)| (op.as_str(), *c)).collect();
    let want = [("base", true), ("a", true), ("after_a", true), ("b", false), ("top", false)];
    assert_eq!(cached, want.into_iter().collect());
    // Inputs before readers: `top` last, `base` first.
    assert_eq!((second[0].1.as_str(), second[4].1.as_str()), ("base", "top"));
}
