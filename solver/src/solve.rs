//! The [`Solver`]: runs the closure of a target through an [`Executor`], as
//! many vertices at once as the job limit allows, and reports [`Event`]s.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::schedule::Schedule;
use crate::{CacheKey, Digest, Graph, GraphError, Vertex};

/// What the engine implements so the solver can run its operations.
///
/// Every method is called on a blocking thread: implementations may do file and
/// process I/O freely.
pub trait Executor: Send + Sync + 'static {
    /// The operation type of the graph's vertices.
    type Op: Send + Sync + 'static;
    /// The result of a vertex, handed to the vertices that read it.
    type Output: Clone + Send + Sync + 'static;
    /// Why an operation failed.
    type Error: std::error::Error + Send + Sync + 'static;

    /// A checksum of what the operation reads beyond its definition and its
    /// inputs (for example the context files a COPY selects), or `None` when the
    /// definition says it all. It becomes part of the cache key.
    fn content_checksum(&self, op: &Self::Op) -> Result<Option<Digest>, Self::Error>;

    /// The stored result for `key`, if there is one. An engine that waits
    /// here (on another build running the same step, say) stops waiting
    /// once `cancellation` says the solve was cancelled.
    fn load(
        &self,
        key: &CacheKey,
        op: &Self::Op,
        cancellation: &Cancellation,
    ) -> Result<Option<Self::Output>, Self::Error>;

    /// Run the operation on its inputs' results (in the vertex's input order).
    fn execute(&self, ctx: &ExecContext, op: &Self::Op, inputs: &[Self::Output]) -> Result<Self::Output, Self::Error>;

    /// Remember `output` as the result for `key`.
    fn save(&self, key: &CacheKey, output: &Self::Output) -> Result<(), Self::Error>;

    /// Told how a vertex's cache lookup went, before it runs when it missed
    /// (and whether or not the solver was asked to use the cache): what an
    /// engine needs to say why a step missed. Called once per vertex of a
    /// solve, after every input's own call. It cannot fail the solve. By
    /// default it does nothing.
    fn looked_up(&self, _lookup: &Lookup<'_, Self::Op>) {}
}

/// A vertex's cache lookup, as [`Executor::looked_up`] is told it.
pub struct Lookup<'a, O> {
    /// 1-based position in the solve order: the [`Event::index`] of the vertex.
    pub index: usize,
    /// The vertex (its digest, operation, inputs and name).
    pub vertex: &'a Vertex<O>,
    /// The key derived for it.
    pub key: &'a CacheKey,
    /// Its inputs' keys, in the order of `vertex.inputs`.
    pub input_keys: &'a [CacheKey],
    /// The content checksum that went into `key`.
    pub content: Option<&'a Digest>,
    /// Whether a stored result was found (and will be used).
    pub cached: bool,
}

/// One thing that happened to one vertex.
#[derive(Debug, Clone)]
pub struct Event {
    /// 1-based position of the vertex in the solve order: the `#N` of plain progress.
    pub index: usize,
    /// How many vertices this solve runs (the target's closure): `index` of `total`.
    pub total: usize,
    /// The vertex's digest, which names it across solves (unlike `index`).
    pub digest: Digest,
    /// The vertex's display name.
    pub name: String,
    /// What happened.
    pub kind: EventKind,
}

/// The kinds of [`Event`].
#[derive(Debug, Clone)]
pub enum EventKind {
    /// The vertex's inputs are ready and it is being resolved.
    Started,
    /// A stored result was reused; nothing ran.
    Cached,
    /// A line of output from the running operation.
    Log(String),
    /// Bytes the running operation moved so far (a layer written, files
    /// copied), and how many it will move when it knows. Sent at most every
    /// [`BYTES_INTERVAL`], so an operation may report as often as it likes.
    Bytes {
        /// Bytes moved so far.
        done: u64,
        /// Bytes it will move in all, when known.
        total: Option<u64>,
    },
    /// The operation finished.
    Done(Duration),
    /// The operation failed after this long; the error and its causes on one
    /// line (the first line of each).
    Failed(Duration, String),
}

/// The shortest time between two [`EventKind::Bytes`] of one vertex: a view
/// redraws about that often, and a copy of many small files must not send an
/// event per file.
pub const BYTES_INTERVAL: Duration = Duration::from_millis(100);

/// Whether the build was cancelled (another vertex failed), owned.
#[derive(Clone, Debug)]
pub struct Cancellation(Arc<AtomicBool>);

impl Cancellation {
    /// One that is never cancelled, for work outside a solve.
    pub fn never() -> Self {
        Cancellation(Arc::default())
    }

    /// See [`ExecContext::is_cancelled`].
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// What a running operation may use from the solver.
pub struct ExecContext {
    index: usize,
    total: usize,
    digest: Digest,
    name: String,
    key: CacheKey,
    content: Option<Digest>,
    cancelled: Arc<AtomicBool>,
    on_event: EventSink,
    bytes: ByteProgress,
}

impl ExecContext {
    /// Report a line of the operation's output.
    pub fn log(&self, line: impl Into<String>) {
        (self.on_event)(Event {
            index: self.index,
            total: self.total,
            digest: self.digest.clone(),
            name: self.name.clone(),
            kind: EventKind::Log(line.into()),
        });
    }

    /// Report how many bytes the operation moved so far (see [`EventKind::Bytes`]).
    pub fn bytes(&self, done: u64, total: Option<u64>) {
        self.bytes.report(done, total);
    }

    /// A handle to report bytes from a writer that outlives this borrow.
    pub fn byte_progress(&self) -> ByteProgress {
        self.bytes.clone()
    }

    /// Whether another vertex failed: a long operation should stop early.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    /// A handle to ask [`ExecContext::is_cancelled`] from a writer or a
    /// thread that outlives this borrow.
    pub fn cancellation(&self) -> Cancellation {
        Cancellation(self.cancelled.clone())
    }

    /// The cache key the result will be saved under.
    pub fn key(&self) -> &CacheKey {
        &self.key
    }

    /// The content checksum [`Executor::content_checksum`] gave for this
    /// operation, which is part of [`ExecContext::key`]. An operation that
    /// reads that content again must check it still has this checksum, or its
    /// result would not be what the key says.
    pub fn content_checksum(&self) -> Option<&Digest> {
        self.content.as_ref()
    }

    /// The vertex's display name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Reports [`EventKind::Bytes`] for one vertex, at most every
/// [`BYTES_INTERVAL`] (and always when `done` reaches a known `total`).
#[derive(Clone)]
pub struct ByteProgress {
    /// The vertex's event, its kind replaced by each report.
    event: Arc<Event>,
    on_event: EventSink,
    start: Instant,
    /// Milliseconds after `start` of the last event sent, plus one (0: none yet).
    last: Arc<AtomicU64>,
}

impl ByteProgress {
    /// Report `done` bytes of `total`.
    pub fn report(&self, done: u64, total: Option<u64>) {
        let now = self.start.elapsed().as_millis() as u64 + 1;
        let last = self.last.load(Ordering::Relaxed);
        let due = last == 0 || now >= last + BYTES_INTERVAL.as_millis() as u64 || Some(done) == total;
        // Of two threads racing, one sends: the other's count is a moment old anyway.
        if !due || self.last.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_err() {
            return;
        }
        let mut event = Event::clone(&self.event);
        event.kind = EventKind::Bytes { done, total };
        (self.on_event)(event);
    }
}

/// An error and its causes on one line: the first line of each, joined by `: `.
fn one_line(error: &dyn std::error::Error) -> String {
    let first = |e: &dyn std::error::Error| e.to_string().lines().next().unwrap_or_default().to_owned();
    let mut text = first(error);
    let mut cause = error.source();
    while let Some(c) = cause {
        text = format!("{text}: {}", first(c));
        cause = c.source();
    }
    text
}

/// Why a solve failed.
#[derive(Debug, thiserror::Error)]
pub enum SolveError<E: std::error::Error + 'static> {
    /// A vertex's operation failed (its cache lookup, run or save).
    #[error("{name}")]
    Vertex {
        /// The failing vertex.
        vertex: Digest,
        /// Its display name.
        name: String,
        /// The executor's error.
        #[source]
        source: E,
    },
    /// The target or an input is not in the graph.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// An executor call panicked; the text is the panic's.
    #[error("a build step panicked: {0}")]
    Panicked(String),
}

type EventSink = Arc<dyn Fn(Event) + Send + Sync>;

/// Runs a graph through an [`Executor`], as many vertices at once as the job limit allows.
pub struct Solver<E: Executor> {
    executor: Arc<E>,
    jobs: usize,
    use_cache: bool,
    /// Vertices that run even when a result is stored (and so does everything
    /// that reads them).
    skip_cache: HashSet<Digest>,
    salt: Option<Digest>,
    on_event: EventSink,
}

struct Done<O> {
    key: CacheKey,
    output: O,
    /// It ran while told to skip the cache: what reads it must run too, or it
    /// would be a stored result built on the output this run replaced.
    forced: bool,
}

impl<E: Executor> Solver<E> {
    /// A solver running at most `jobs` vertices at once (at least one).
    pub fn new(executor: Arc<E>, jobs: usize) -> Self {
        Self {
            executor,
            jobs: jobs.max(1),
            use_cache: true,
            skip_cache: HashSet::new(),
            salt: None,
            on_event: Arc::new(|_| {}),
        }
    }

    /// When false, every vertex runs even if a result is stored (results are still saved).
    pub fn use_cache(mut self, yes: bool) -> Self {
        self.use_cache = yes;
        self
    }

    /// Run `vertices`, and every vertex that reads one of them, even if a
    /// result is stored (results are still saved): BuildKit's per-vertex
    /// ignore-cache, which `--no-cache-filter` asks for.
    pub fn skip_cache_for(mut self, vertices: impl IntoIterator<Item = Digest>) -> Self {
        self.skip_cache.extend(vertices);
        self
    }

    /// Mix `salt` into every cache key: an input that every result depends
    /// on beyond its vertex, inputs and content (kiln's `SOURCE_DATE_EPOCH`,
    /// which every layer's file times are clamped to), so a result made
    /// without it is never reused with it. `None`, the default, leaves the
    /// keys as they are.
    pub fn key_salt(mut self, salt: Option<Digest>) -> Self {
        self.salt = salt;
        self
    }

    /// Where progress events go.
    pub fn on_event(mut self, sink: impl Fn(Event) + Send + Sync + 'static) -> Self {
        self.on_event = Arc::new(sink);
        self
    }

    /// Resolve `target` and everything it needs; return its result.
    ///
    /// When a vertex fails no new vertex starts, the running ones are told to
    /// stop (see [`ExecContext::is_cancelled`]) and waited for, and the first
    /// failure is returned. Results that completed stay saved.
    pub async fn solve(&self, graph: &Graph<E::Op>, target: &Digest) -> Result<E::Output, SolveError<E::Error>>
    where
        E::Op: Clone,
    {
        let order: Vec<Arc<Vertex<E::Op>>> = graph.closure(target)?.into_iter().map(|v| Arc::new(v.clone())).collect();
        let index: HashMap<&Digest, usize> = order.iter().enumerate().map(|(i, v)| (&v.digest, i)).collect();
        let mut schedule = Schedule::new(order.iter().map(|v| v.inputs.iter().map(|d| index[d]).collect()).collect());
        let mut done: Vec<Option<Done<E::Output>>> = (0..order.len()).map(|_| None).collect();
        let cancelled = Arc::new(AtomicBool::new(false));
        let mut running = JoinSet::new();
        let mut failure: Option<SolveError<E::Error>> = None;

        loop {
            // Start ready vertices up to the job limit; after a failure, none.
            while failure.is_none() && running.len() < self.jobs {
                let Some(i) = schedule.next_ready() else { break };
                // Ready means every input is done, so these are all there.
                let inputs = order[i].inputs.iter().map(|d| done[index[d]].as_ref().expect("a ready vertex's inputs"));
                let mut forced = self.skip_cache.contains(&order[i].digest);
                let (input_keys, input_outputs): (Vec<CacheKey>, Vec<E::Output>) = inputs
                    .map(|d| {
                        forced |= d.forced;
                        (d.key.clone(), d.output.clone())
                    })
                    .unzip();
                let job = Job {
                    index: i,
                    total: order.len(),
                    vertex: order[i].clone(),
                    executor: self.executor.clone(),
                    use_cache: self.use_cache && !forced,
                    salt: self.salt.clone(),
                    cancelled: cancelled.clone(),
                    on_event: self.on_event.clone(),
                };
                running.spawn_blocking(move || (i, job.run(&input_keys, &input_outputs)));
            }
            let Some(joined) = running.join_next().await else {
                break;
            };
            match joined {
                Ok((i, Ok(d))) => {
                    done[i] = Some(d);
                    schedule.finished(i);
                }
                Ok((i, Err(source))) => {
                    cancelled.store(true, Ordering::Relaxed);
                    failure.get_or_insert(SolveError::Vertex {
                        vertex: order[i].digest.clone(),
                        name: order[i].name.clone(),
                        source,
                    });
                }
                Err(e) => {
                    cancelled.store(true, Ordering::Relaxed);
                    failure.get_or_insert(SolveError::Panicked(e.to_string()));
                }
            }
        }
        if let Some(f) = failure {
            return Err(f);
        }
        let last = done[index[target]].take();
        Ok(last.expect("the target is last in the closure and every vertex ran").output)
    }
}

struct Job<E: Executor> {
    /// 0-based position in the solve order.
    index: usize,
    total: usize,
    vertex: Arc<Vertex<E::Op>>,
    executor: Arc<E>,
    use_cache: bool,
    salt: Option<Digest>,
    cancelled: Arc<AtomicBool>,
    on_event: EventSink,
}

impl<E: Executor> Job<E> {
    fn emit(&self, kind: EventKind) {
        (self.on_event)(Event {
            index: self.index + 1,
            total: self.total,
            digest: self.vertex.digest.clone(),
            name: self.vertex.name.clone(),
            kind,
        });
    }

    fn run(self, input_keys: &[CacheKey], inputs: &[E::Output]) -> Result<Done<E::Output>, E::Error> {
        let op = &self.vertex.op;
        self.emit(EventKind::Started);
        let start = Instant::now();
        let result = (|| {
            let content = self.executor.content_checksum(op)?;
            let mut key = CacheKey::derive(&self.vertex.digest, input_keys, content.as_ref());
            if let Some(salt) = &self.salt {
                key = key.salted(salt);
            }
            let found = match self.use_cache {
                true => self.executor.load(&key, op, &Cancellation(self.cancelled.clone()))?,
                false => None,
            };
            self.executor.looked_up(&Lookup {
                index: self.index + 1,
                vertex: &self.vertex,
                key: &key,
                input_keys,
                content: content.as_ref(),
                cached: found.is_some(),
            });
            if let Some(output) = found {
                return Ok((true, Done { key, output, forced: false }));
            }
            let bytes = ByteProgress {
                event: Arc::new(Event {
                    index: self.index + 1,
                    total: self.total,
                    digest: self.vertex.digest.clone(),
                    name: self.vertex.name.clone(),
                    kind: EventKind::Started,
                }),
                on_event: self.on_event.clone(),
                start: Instant::now(),
                last: Arc::new(AtomicU64::new(0)),
            };
            let ctx = ExecContext {
                index: self.index + 1,
                total: self.total,
                digest: self.vertex.digest.clone(),
                name: self.vertex.name.clone(),
                key: key.clone(),
                content,
                cancelled: self.cancelled.clone(),
                on_event: self.on_event.clone(),
                bytes,
            };
            let output = self.executor.execute(&ctx, op, inputs)?;
            self.executor.save(&key, &output)?;
            Ok((false, Done { key, output, forced: !self.use_cache }))
        })();
        match result {
            Ok((true, d)) => {
                self.emit(EventKind::Cached);
                Ok(d)
            }
            Ok((false, d)) => {
                self.emit(EventKind::Done(start.elapsed()));
                Ok(d)
            }
            Err(e) => {
                self.emit(EventKind::Failed(start.elapsed(), one_line(&e)));
                Err(e)
            }
        }
    }
}
