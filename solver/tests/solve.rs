//! The solver with a fake executor that counts calls: dedup, caching, parallelism,
//! the job limit and failure.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kiln_solver::{CacheKey, Cancellation, Digest, EventKind, ExecContext, Executor, Graph, SolveError, Solver};

#[derive(Debug, thiserror::Error)]
#[error("op {0} failed")]
struct Failed(String);

/// Ops are names; "fail*" fails, "wait*" waits (up to 2 s) until another "wait*" runs too.
#[derive(Default)]
struct Fake {
    runs: Mutex<HashMap<String, usize>>,
    stored: Mutex<HashMap<CacheKey, String>>,
    running: AtomicUsize,
    max_running: AtomicUsize,
    content: Mutex<HashMap<String, Digest>>,
}

impl Fake {
    fn runs(&self, op: &str) -> usize {
        self.runs.lock().unwrap().get(op).copied().unwrap_or(0)
    }
    fn total_runs(&self) -> usize {
        self.runs.lock().unwrap().values().sum()
    }
}

impl Executor for Fake {
    type Op = String;
    type Output = String;
    type Error = Failed;

    fn content_checksum(&self, op: &String) -> Result<Option<Digest>, Failed> {
        Ok(self.content.lock().unwrap().get(op).cloned())
    }

    fn load(&self, key: &CacheKey, _op: &String, _: &Cancellation) -> Result<Option<String>, Failed> {
        Ok(self.stored.lock().unwrap().get(key).cloned())
    }

    fn execute(&self, ctx: &ExecContext, op: &String, inputs: &[String]) -> Result<String, Failed> {
        *self.runs.lock().unwrap().entry(op.clone()).or_default() += 1;
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(now, Ordering::SeqCst);
        if op.starts_with("wait") {
            let start = Instant::now();
            while self.max_running.load(Ordering::SeqCst) < 2 && start.elapsed() < Duration::from_secs(2) {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        ctx.log(format!("running {op}"));
        if op.starts_with("bytes") {
            for done in 0..=10_000 {
                ctx.bytes(done, Some(10_000));
            }
        }
        self.running.fetch_sub(1, Ordering::SeqCst);
        if op.starts_with("fail") {
            return Err(Failed(op.clone()));
        }
        Ok(format!("{op}({})", inputs.join(",")))
    }

    fn save(&self, key: &CacheKey, output: &String) -> Result<(), Failed> {
        self.stored.lock().unwrap().insert(key.clone(), output.clone());
        Ok(())
    }
}

fn solve(fake: &Arc<Fake>, jobs: usize, graph: &Graph<String>, target: &Digest) -> Result<String, SolveError<Failed>> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    rt.block_on(Solver::new(fake.clone(), jobs).solve(graph, target))
}

/// base → (left, right) → top
fn diamond(left: &str, right: &str) -> (Graph<String>, Digest) {
    let mut g = Graph::new();
    let base = g.add("base".to_string(), vec![], "base").unwrap();
    let l = g.add(left.to_string(), vec![base.clone()], left).unwrap();
    let r = g.add(right.to_string(), vec![base], right).unwrap();
    let top = g.add("top".to_string(), vec![l, r], "top").unwrap();
    (g, top)
}

#[test]
fn every_vertex_runs_once_and_a_second_solve_runs_nothing() {
    let fake = Arc::new(Fake::default());
    let (g, top) = diamond("left", "right");
    let out = solve(&fake, 4, &g, &top).unwrap();
    assert_eq!(out, "top(left(base()),right(base()))");
    for op in ["base", "left", "right", "top"] {
        assert_eq!(fake.runs(op), 1, "{op}");
    }
    assert_eq!(solve(&fake, 4, &g, &top).unwrap(), out);
    assert_eq!(fake.total_runs(), 4, "the second solve came from the cache");
}

#[test]
fn a_content_change_reruns_the_vertex_and_what_depends_on_it() {
    let fake = Arc::new(Fake::default());
    let (g, top) = diamond("left", "right");
    solve(&fake, 4, &g, &top).unwrap();
    fake.content.lock().unwrap().insert("left".into(), Digest::of(b"new content"));
    solve(&fake, 4, &g, &top).unwrap();
    assert_eq!((fake.runs("base"), fake.runs("left"), fake.runs("right"), fake.runs("top")), (1, 2, 1, 2));
}

#[test]
fn without_cache_everything_runs_again() {
    let fake = Arc::new(Fake::default());
    let (g, top) = diamond("left", "right");
    solve(&fake, 4, &g, &top).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    rt.block_on(Solver::new(fake.clone(), 4).use_cache(false).solve(&g, &top)).unwrap();
    assert_eq!(fake.total_runs(), 8);
}

#[test]
fn independent_vertices_run_at_the_same_time() {
    let fake = Arc::new(Fake::default());
    let (g, top) = diamond("wait-left", "wait-right");
    solve(&fake, 2, &g, &top).unwrap();
    assert_eq!(fake.max_running.load(Ordering::SeqCst), 2);
}

#[test]
fn the_job_limit_holds() {
    let fake = Arc::new(Fake::default());
    let (g, top) = diamond("wait-left", "wait-right");
    solve(&fake, 1, &g, &top).unwrap();
    assert_eq!(fake.max_running.load(Ordering::SeqCst), 1);
}

#[test]
fn a_failure_stops_dependents_keeps_finished_work_and_names_the_vertex() {
    let fake = Arc::new(Fake::default());
    let (g, top) = diamond("fail-left", "right");
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    let err = rt
        .block_on(Solver::new(fake.clone(), 1).on_event(move |e| sink.lock().unwrap().push(e)).solve(&g, &top))
        .unwrap_err();
    assert!(matches!(&err, SolveError::Vertex { name, .. } if name == "fail-left"), "{err:?}");
    assert_eq!(fake.runs("top"), 0);
    assert_eq!(fake.stored.lock().unwrap().len(), fake.total_runs() - 1, "finished vertices stay saved");
    let events = events.lock().unwrap();
    let failed = |e: &&kiln_solver::Event| e.name == "fail-left" && matches!(e.kind, EventKind::Failed(..));
    let failed = events.iter().find(failed).expect("a Failed event");
    assert!(matches!(&failed.kind, EventKind::Failed(_, error) if error == "op fail-left failed"), "{failed:?}");
    assert!(events.iter().any(|e| matches!(&e.kind, EventKind::Log(l) if l == "running fail-left")));
}

#[test]
fn events_carry_the_vertex_digest_and_the_number_of_steps() {
    let fake = Arc::new(Fake::default());
    let (g, top) = diamond("left", "right");
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    rt.block_on(Solver::new(fake.clone(), 2).on_event(move |e| sink.lock().unwrap().push(e)).solve(&g, &top)).unwrap();
    let events = events.lock().unwrap();
    assert!(events.iter().all(|e| e.total == 4), "{events:?}");
    for e in events.iter() {
        assert_eq!(g.get(&e.digest).unwrap().name, e.name, "the digest names the event's vertex");
    }
    let top_events: Vec<_> = events.iter().filter(|e| e.digest == top).collect();
    assert!(top_events.iter().all(|e| e.index == 4), "the target is last: {top_events:?}");
    assert!(events.iter().any(|e| matches!(&e.kind, EventKind::Log(l) if l == "running left")));
}

/// A chain and many leaves, all read by one top vertex: every vertex runs once,
/// after its inputs (the scheduler's step count is checked in `schedule.rs`).
#[test]
fn a_wide_and_deep_graph_runs_every_vertex_once() {
    let mut g = Graph::new();
    let mut chain = g.add("c0".to_string(), vec![], "c0").unwrap();
    for i in 1..300 {
        chain = g.add(format!("c{i}"), vec![chain], format!("c{i}")).unwrap();
    }
    let mut inputs = vec![chain];
    for i in 0..300 {
        inputs.push(g.add(format!("leaf{i}"), vec![], format!("leaf{i}")).unwrap());
    }
    let top = g.add("top".to_string(), inputs, "top").unwrap();
    let fake = Arc::new(Fake::default());
    let out = solve(&fake, 8, &g, &top).unwrap();
    assert!(out.starts_with("top(c299(c298("), "{}", &out[..40]);
    assert_eq!(fake.total_runs(), 601);
    assert!(fake.runs.lock().unwrap().values().all(|&n| n == 1));
}

/// An operation may report bytes as often as it likes: the events are few,
/// the first and the last (done == total) always among them.
#[test]
fn byte_progress_is_sent_at_a_bounded_rate_and_ends_with_the_total() {
    let fake = Arc::new(Fake::default());
    let mut g = Graph::new();
    let top = g.add("bytes".to_owned(), vec![], "bytes").unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    let start = Instant::now();
    rt.block_on(Solver::new(fake, 1).on_event(move |e| sink.lock().unwrap().push(e)).solve(&g, &top)).unwrap();
    let bound = 2 + (start.elapsed().as_millis() / kiln_solver::BYTES_INTERVAL.as_millis()) as usize;
    let bytes: Vec<(u64, Option<u64>)> = events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::Bytes { done, total } => Some((done, total)),
            _ => None,
        })
        .collect();
    assert!(!bytes.is_empty() && bytes.len() <= bound, "{} events, at most {bound}: {bytes:?}", bytes.len());
    assert_eq!(bytes.first(), Some(&(0, Some(10_000))));
    assert_eq!(bytes.last(), Some(&(10_000, Some(10_000))));
}
