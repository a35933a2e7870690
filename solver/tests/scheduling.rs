//! The solver's scheduling, with a fake executor that counts what it is asked
//! to do and records when each operation started and ended, as positions in
//! one sequence (never wall-clock time, so the assertions hold on a loaded
//! machine): dedup, caching, cancellation, parallel start under the job limit,
//! and the order of the ready set.
//!
//! An operation is a name with a behaviour prefix:
//! - `fail…` fails at once;
//! - `gate…` waits until `Fake::gate` operations run at the same time (or 10 s
//!   pass: a solver that never starts them together fails the test, it does not
//!   hang it), then 30 ms more;
//! - `hold…` runs until the solve is cancelled (or 10 s pass), then says so;
//! - `finish…` waits until the solve is cancelled, then succeeds anyway;
//! - anything else succeeds at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kiln_solver::{CacheKey, Cancellation, Digest, Event, EventKind, ExecContext, Executor, Graph, SolveError, Solver};

#[derive(Debug, thiserror::Error)]
enum Failed {
    #[error("op {0} failed")]
    Op(String),
    #[error("op {0} was cancelled")]
    Cancelled(String),
}

/// When one execution started and ended, as positions in the fake's sequence.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
}

#[derive(Default)]
struct Fake {
    /// How many `gate…` operations must run at once before they go on.
    gate: usize,
    seq: AtomicUsize,
    running: AtomicUsize,
    max_running: AtomicUsize,
    spans: Mutex<HashMap<String, Vec<Span>>>,
    loads: AtomicUsize,
    stored: Mutex<HashMap<CacheKey, String>>,
    /// Operations that saw `is_cancelled` while they ran.
    saw_cancel: Mutex<Vec<String>>,
}

const PATIENCE: Duration = Duration::from_secs(10);

impl Fake {
    fn with_gate(gate: usize) -> Arc<Self> {
        Arc::new(Self { gate, ..Self::default() })
    }
    fn runs(&self, op: &str) -> usize {
        self.spans.lock().unwrap().get(op).map_or(0, Vec::len)
    }
    fn span(&self, op: &str) -> Span {
        self.spans.lock().unwrap()[op][0]
    }
    fn total_runs(&self) -> usize {
        self.spans.lock().unwrap().values().map(Vec::len).sum()
    }
    /// Wait until `done`, at most [`PATIENCE`]; whether it came.
    fn wait_for(done: impl Fn() -> bool) -> bool {
        let start = Instant::now();
        while !done() {
            if start.elapsed() > PATIENCE {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        true
    }
}

impl Executor for Fake {
    type Op = String;
    type Output = String;
    type Error = Failed;

    fn content_checksum(&self, _op: &String) -> Result<Option<Digest>, Failed> {
        Ok(None)
    }

    fn load(&self, key: &CacheKey, _op: &String, _: &Cancellation) -> Result<Option<String>, Failed> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        Ok(self.stored.lock().unwrap().get(key).cloned())
    }

    fn execute(&self, ctx: &ExecContext, op: &String, inputs: &[String]) -> Result<String, Failed> {
        let start = self.seq.fetch_add(1, Ordering::SeqCst);
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(now, Ordering::SeqCst);
        let result = if op.starts_with("fail") {
            Err(Failed::Op(op.clone()))
        } else if op.starts_with("gate") {
            Self::wait_for(|| self.max_running.load(Ordering::SeqCst) >= self.gate);
            // Stay a moment longer, so that a vertex started past the job
            // limit, if any, runs beside them and shows in the counter.
            std::thread::sleep(Duration::from_millis(30));
            Ok(())
        } else if op.starts_with("hold") || op.starts_with("finish") {
            if Self::wait_for(|| ctx.is_cancelled()) {
                self.saw_cancel.lock().unwrap().push(op.clone());
            }
            // Still running for a while after the cancellation: the solver
            // must wait for it, not return while it runs.
            std::thread::sleep(Duration::from_millis(50));
            match op.starts_with("hold") {
                true => Err(Failed::Cancelled(op.clone())),
                false => Ok(()),
            }
        } else {
            Ok(())
        };
        self.running.fetch_sub(1, Ordering::SeqCst);
        let end = self.seq.fetch_add(1, Ordering::SeqCst);
        self.spans.lock().unwrap().entry(op.clone()).or_default().push(Span { start, end });
        result.map(|()| format!("{op}({})", inputs.join(",")))
    }

    fn save(&self, key: &CacheKey, output: &String) -> Result<(), Failed> {
        self.stored.lock().unwrap().insert(key.clone(), output.clone());
        Ok(())
    }
}

type Events = Arc<Mutex<Vec<Event>>>;

/// Solve `target` with `jobs`, on a runtime of two workers (as kiln's), and
/// return the result with the events.
fn solve(
    fake: &Arc<Fake>,
    jobs: usize,
    use_cache: bool,
    graph: &Graph<String>,
    target: &Digest,
) -> (Result<String, SolveError<Failed>>, Vec<Event>) {
    let events: Events = Arc::default();
    let sink = events.clone();
    let solver = Solver::new(fake.clone(), jobs).use_cache(use_cache).on_event(move |e| sink.lock().unwrap().push(e));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    let result = rt.block_on(solver.solve(graph, target));
    let events = events.lock().unwrap().clone();
    (result, events)
}

/// `base`, then each of `leaves` on it, all read by `top`.
fn fan(leaves: &[&str]) -> (Graph<String>, Digest) {
    let mut g = Graph::new();
    let base = g.add("base".to_owned(), vec![], "base").unwrap();
    let leaves = leaves.iter().map(|l| g.add(l.to_string(), vec![base.clone()], *l).unwrap()).collect();
    let top = g.add("top".to_owned(), leaves, "top").unwrap();
    (g, top)
}

#[test]
fn identical_steps_of_two_stages_are_one_vertex_and_run_once() {
    let mut g = Graph::new();
    // Two stages that start the same way (`FROM base` + `RUN apt`), then differ.
    let base = g.add("base".to_owned(), vec![], "[a 1/3] FROM base").unwrap();
    let apt_a = g.add("apt".to_owned(), vec![base.clone()], "[a 2/3] RUN apt").unwrap();
    let a = g.add("make a".to_owned(), vec![apt_a.clone()], "[a 3/3] RUN make a").unwrap();
    let base_b = g.add("base".to_owned(), vec![], "[b 1/3] FROM base").unwrap();
    let apt_b = g.add("apt".to_owned(), vec![base_b.clone()], "[b 2/3] RUN apt").unwrap();
    let b = g.add("make b".to_owned(), vec![apt_b.clone()], "[b 3/3] RUN make b").unwrap();
    let top = g.add("top".to_owned(), vec![a, b], "top").unwrap();
    assert_eq!((base, apt_a.clone()), (base_b, apt_b), "equal definitions, equal digests");
    assert_eq!(g.len(), 5);

    let fake = Fake::with_gate(1);
    let (out, events) = solve(&fake, 4, true, &g, &top);
    assert_eq!(out.unwrap(), "top(make a(apt(base())),make b(apt(base())))");
    assert_eq!((fake.runs("base"), fake.runs("apt")), (1, 1));
    assert_eq!(fake.total_runs(), 5);
    let started = events.iter().filter(|e| matches!(e.kind, EventKind::Started) && e.digest == apt_a).count();
    assert_eq!(started, 1, "one vertex, one step in the progress: {events:?}");
    assert!(events.iter().all(|e| e.total == 5), "the total counts vertices, not stage steps");
}

#[test]
fn a_saved_result_is_loaded_not_run_and_without_the_cache_everything_runs() {
    let fake = Fake::with_gate(1);
    let (g, top) = fan(&["left", "right"]);
    let (first, _) = solve(&fake, 4, true, &g, &top);
    assert_eq!((fake.total_runs(), fake.stored.lock().unwrap().len()), (4, 4));

    let (again, events) = solve(&fake, 4, true, &g, &top);
    assert_eq!(again.unwrap(), first.unwrap());
    assert_eq!(fake.total_runs(), 4, "nothing ran");
    assert_eq!(fake.loads.load(Ordering::SeqCst), 8, "every vertex looked its result up, both times");
    assert_eq!(events.iter().filter(|e| matches!(e.kind, EventKind::Cached)).count(), 4, "{events:?}");
    assert!(!events.iter().any(|e| matches!(e.kind, EventKind::Done(_))), "{events:?}");

    let loads = fake.loads.load(Ordering::SeqCst);
    let (fresh, events) = solve(&fake, 4, false, &g, &top);
    fresh.unwrap();
    assert_eq!(fake.total_runs(), 8, "use_cache(false) runs every vertex");
    assert_eq!(fake.loads.load(Ordering::SeqCst), loads, "and looks nothing up");
    assert!(!events.iter().any(|e| matches!(e.kind, EventKind::Cached)), "{events:?}");
}

#[test]
fn independent_vertices_start_together_up_to_the_job_limit_and_never_more() {
    for jobs in [1, 2, 3, 5] {
        let fake = Fake::with_gate(jobs);
        let (g, top) = fan(&["gate1", "gate2", "gate3", "gate4", "gate5", "gate6"]);
        let (out, _) = solve(&fake, jobs, true, &g, &top);
        out.unwrap();
        // Each gate waits until `jobs` of them run at once: reaching it proves
        // they started together, and the counter proves no more ever did.
        assert_eq!(fake.max_running.load(Ordering::SeqCst), jobs, "jobs = {jobs}");
        assert_eq!(fake.total_runs(), 8);
    }
}

#[test]
fn a_vertex_starts_only_after_all_its_inputs_ended() {
    let mut g = Graph::new();
    let a = g.add("a".to_owned(), vec![], "a").unwrap();
    let b = g.add("b".to_owned(), vec![a.clone()], "b").unwrap();
    let c = g.add("c".to_owned(), vec![], "c").unwrap();
    let d = g.add("d".to_owned(), vec![b, c.clone()], "d").unwrap();
    let top = g.add("top".to_owned(), vec![d, a, c], "top").unwrap();
    let fake = Fake::with_gate(1);
    solve(&fake, 8, true, &g, &top).0.unwrap();
    for (input, reader) in [("a", "b"), ("b", "d"), ("c", "d"), ("d", "top"), ("a", "top"), ("c", "top")] {
        let (input_span, reader_span) = (fake.span(input), fake.span(reader));
        assert!(input_span.end < reader_span.start, "{reader} {reader_span:?} started before {input} {input_span:?}");
    }
}

#[test]
fn with_one_job_steps_start_in_solve_order_one_at_a_time() {
    let (g, top) = fan(&["l1", "l2", "l3", "l4"]);
    let fake = Fake::with_gate(1);
    let (out, events) = solve(&fake, 1, true, &g, &top);
    out.unwrap();
    let started: Vec<usize> = events.iter().filter(|e| matches!(e.kind, EventKind::Started)).map(|e| e.index).collect();
    assert_eq!(started, [1, 2, 3, 4, 5, 6], "the `#N` of each step is the order it started in");
    let mut spans: Vec<Span> = ["base", "l1", "l2", "l3", "l4", "top"].iter().map(|op| fake.span(op)).collect();
    spans.sort_by_key(|s| s.start);
    assert!(spans.windows(2).all(|w| w[0].end < w[1].start), "one at a time: {spans:?}");
}

#[test]
fn a_failure_cancels_running_siblings_waits_for_them_and_starts_nothing_new() {
    // Three jobs: `fail`, `hold` and `finish` start together after `base`.
    // `finish` succeeds once cancelled, which makes `later` ready: it must
    // not start.
    let mut g = Graph::new();
    let base = g.add("base".to_owned(), vec![], "base").unwrap();
    let fail = g.add("fail".to_owned(), vec![base.clone()], "fail").unwrap();
    let hold = g.add("hold".to_owned(), vec![base.clone()], "hold").unwrap();
    let finish = g.add("finish".to_owned(), vec![base], "finish").unwrap();
    let later = g.add("later".to_owned(), vec![finish], "later").unwrap();
    let top = g.add("top".to_owned(), vec![fail, hold, later], "top").unwrap();
    let fake = Fake::with_gate(1);
    let (out, events) = solve(&fake, 3, true, &g, &top);

    let err = out.unwrap_err();
    assert!(matches!(&err, SolveError::Vertex { name, source: Failed::Op(_), .. } if name == "fail"), "{err:?}");
    assert_eq!((fake.runs("later"), fake.runs("top")), (0, 0), "no vertex starts after a failure");
    let mut saw = fake.saw_cancel.lock().unwrap().clone();
    saw.sort();
    assert_eq!(saw, ["finish", "hold"], "the running siblings were told");
    // The solve returned only once they had ended.
    assert_eq!(fake.running.load(Ordering::SeqCst), 0, "a sibling still ran when solve returned");
    let failed: Vec<&str> =
        events.iter().filter(|e| matches!(e.kind, EventKind::Failed(..))).map(|e| e.name.as_str()).collect();
    assert!(failed.contains(&"fail") && failed.contains(&"hold"), "{failed:?}");

    // What finished, before the failure or while cancelled, is saved: the
    // next solve loads it and runs the rest.
    assert_eq!(fake.stored.lock().unwrap().len(), 2, "base and finish");
    let (out, events) = solve(&fake, 3, true, &g, &top);
    assert!(out.is_err());
    let cached: Vec<&str> =
        events.iter().filter(|e| matches!(e.kind, EventKind::Cached)).map(|e| e.name.as_str()).collect();
    assert_eq!((cached.contains(&"base"), cached.contains(&"finish")), (true, true), "{cached:?}");
    assert_eq!((fake.runs("base"), fake.runs("finish"), fake.runs("fail")), (1, 1, 2));
}

#[test]
fn a_failure_while_others_wait_for_a_job_starts_none_of_them() {
    // One job: whatever order the ready leaves come in, none starts once
    // `fail` has failed.
    let (g, top) = fan(&["x1", "x2", "fail", "x3", "x4"]);
    let fake = Fake::with_gate(1);
    let (out, events) = solve(&fake, 1, true, &g, &top);
    assert!(out.is_err());
    let failed_at = events.iter().position(|e| matches!(e.kind, EventKind::Failed(..))).expect("a Failed event");
    let late: Vec<&Event> = events[failed_at..].iter().filter(|e| matches!(e.kind, EventKind::Started)).collect();
    assert!(late.is_empty(), "started after the failure: {late:?}");
    assert_eq!(fake.runs("top"), 0);
    assert!(fake.total_runs() < 6, "{} ran", fake.total_runs());
}

#[test]
fn a_key_salt_keeps_results_made_without_it_or_with_another_apart() {
    let (g, top) = fan(&["left", "right"]);
    let fake = Fake::with_gate(1);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    let run = |salt: Option<&[u8]>| {
        let solver = Solver::new(fake.clone(), 2).key_salt(salt.map(Digest::of));
        rt.block_on(solver.solve(&g, &top)).unwrap();
        fake.total_runs()
    };
    assert_eq!(run(None), 4);
    assert_eq!(run(Some(b"epoch 1")), 8, "made without the salt: not reused");
    assert_eq!(run(Some(b"epoch 1")), 8, "the same salt: reused");
    assert_eq!(run(Some(b"epoch 2")), 12, "another salt: not reused");
    assert_eq!(run(None), 12, "no salt: the keys of before");
}
