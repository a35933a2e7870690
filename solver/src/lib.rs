//! kiln's solver: runs a content-addressed DAG of build steps.
//!
//! Design, in brief (see docs/ARCHITECTURE.md for the whole path of a build):
//!
//! * A [`Graph`] holds [`Vertex`]es. A vertex is an operation of a type the solver
//!   does not know (`O`), the digests of its inputs, and a display name. Its
//!   [`Digest`] is the sha256 of a canonical encoding of the operation and of its
//!   inputs' digests, so two equal steps are one vertex, and the same definition
//!   has the same digest on any machine. The name is not part of the digest.
//! * A [`CacheKey`] is derived from the vertex digest, the cache keys of its inputs
//!   and an optional content checksum the executor computes (for instance the
//!   files a COPY selects). Equal keys mean an equal result: the solver asks the
//!   executor for a stored result before it runs anything.
//! * The [`Solver`] runs every vertex whose inputs are ready at once, bounded by a
//!   job limit, calling the [`Executor`] the engine implements on blocking
//!   threads. A ready set (`schedule`: counts of unfinished inputs, readers of
//!   each vertex) finds what may start in time linear in the graph. Progress is
//!   a stream of [`Event`]s, each naming its vertex by digest and position
//!   (`index` of `total`); rendering them is the caller's job.
//!
//! The solver knows nothing of Dockerfiles, images or Linux.

#![warn(missing_docs, unreachable_pub)]

mod digest;
mod graph;
mod schedule;
mod solve;

pub use digest::{CacheKey, Digest, DigestError};
pub use graph::{Graph, GraphError, Vertex};
pub use solve::{
    ByteProgress, Cancellation, Event, EventKind, ExecContext, Executor, Lookup, SolveError, Solver, BYTES_INTERVAL,
};
