//! Sandboxes started before their step. Half of a short RUN is its start:
//! exec'ing `kiln __sandbox`, its namespaces, its cgroup (on v2 a move
//! that waits out an RCU grace period, 7-15 ms; see `cgroup::enter_v1` for
//! v1) and the network helper's start (about 7 ms). None of it depends on the step but its network and limits, so the
//! engine asks for a sandbox ahead ([`super::Sandbox::prewarm`]) while
//! earlier steps run, and the step takes it ready.
//!
//! The starts are made on one thread of their own, which lives as long as
//! the pool: a sandbox process gets SIGKILL when the thread that spawned it
//! ends (its parent-death signal), so a short-lived thread would kill what
//! it started. A sandbox no step took is killed with the pool.
//!
//! Such a sandbox makes its mount namespace only once it has its spec (see
//! `init::enter_namespaces`): a copy of kiln's as it is then, with the
//! step's root and mounts, which kiln mounted after the sandbox started.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use super::network::PortMap;
use super::started::{Started, Wiring};
use super::{Limits, NetworkMode};

/// What a started sandbox is for: its network, limits and streams.
type Kind = (NetworkMode, Limits, Wiring);

#[derive(Default)]
struct Pool {
    ready: Vec<Started>,
    /// Kinds being started, one entry per start.
    starting: Vec<Kind>,
}

#[derive(Default)]
struct Shared {
    pool: Mutex<Pool>,
    /// Told whenever a start ends, ready or failed.
    changed: Condvar,
}

impl Shared {
    fn pool(&self) -> MutexGuard<'_, Pool> {
        // A panic elsewhere leaves the pool as consistent as it was.
        self.pool.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct Starter {
    requests: Sender<Request>,
    thread: JoinHandle<()>,
}

struct Request {
    exe: PathBuf,
    scratch: PathBuf,
    kind: Kind,
    ports: Vec<PortMap>,
}

/// The sandboxes started ahead of their steps (none until the first
/// [`Warm::prewarm`], which starts the thread).
#[derive(Default)]
pub(crate) struct Warm {
    shared: Arc<Shared>,
    starter: Mutex<Option<Starter>>,
}

impl Warm {
    /// Have sandboxes of this kind started until `want` are ready or
    /// starting, each publishing `ports` (always its launcher's own).
    pub(crate) fn prewarm(&self, exe: &Path, scratch: &Path, kind: Kind, ports: &[PortMap], want: usize) {
        let more = {
            let mut pool = self.shared.pool();
            let have = pool.starting.iter().filter(|k| **k == kind).count()
                + pool.ready.iter().filter(|s| s.fits(&kind)).count();
            let more = want.saturating_sub(have);
            pool.starting.extend(std::iter::repeat_n(kind, more));
            more
        };
        if more == 0 {
            return;
        }
        let mut starter = self.starter.lock().unwrap_or_else(|e| e.into_inner());
        if starter.is_none() {
            *starter = self.spawn_starter();
        }
        for _ in 0..more {
            let request = Request { exe: exe.to_owned(), scratch: scratch.to_owned(), kind, ports: ports.to_vec() };
            // No thread, or it is gone: the step starts its sandbox itself.
            if starter.as_ref().is_none_or(|s| s.requests.send(request).is_err()) {
                finish(&self.shared, &kind, None);
            }
        }
    }

    /// A ready sandbox of this kind; one still starting is waited for
    /// (it is further along than a new one would be). None when there is
    /// neither, or its start failed: the caller starts one itself, and its
    /// error, if the start fails again, is the step's. One that died while
    /// it waited (killed from outside) is dropped, not handed out.
    pub(crate) fn take(&self, kind: Kind) -> Option<Started> {
        let mut pool = self.shared.pool();
        loop {
            if let Some(i) = pool.ready.iter().position(|s| s.fits(&kind)) {
                let mut started = pool.ready.swap_remove(i);
                if started.alive() {
                    return Some(started);
                }
                continue;
            }
            if !pool.starting.contains(&kind) {
                return None;
            }
            pool = self.shared.changed.wait(pool).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// The thread that starts sandboxes; none if it cannot be made.
    fn spawn_starter(&self) -> Option<Starter> {
        let (requests, received) = mpsc::channel::<Request>();
        let shared = self.shared.clone();
        let thread = std::thread::Builder::new()
            .name("sandbox-warm".into())
            .spawn(move || {
                for r in received {
                    let (network, limits, wiring) = r.kind;
                    let started = Started::start(&r.exe, &r.scratch, network, &limits, wiring, &r.ports).ok();
                    finish(&shared, &r.kind, started);
                }
            })
            .ok()?;
        Some(Starter { requests, thread })
    }
}

/// A start of `kind` has ended, with a sandbox or without.
fn finish(shared: &Shared, kind: &Kind, started: Option<Started>) {
    let mut pool = shared.pool();
    if let Some(i) = pool.starting.iter().position(|k| k == kind) {
        pool.starting.swap_remove(i);
    }
    pool.ready.extend(started);
    drop(pool);
    shared.changed.notify_all();
}

impl Drop for Warm {
    fn drop(&mut self) {
        let starter = self.starter.get_mut().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(Starter { requests, thread }) = starter {
            drop(requests);
            let _ = thread.join();
        }
        // Killed and reaped, their cgroups and network helpers gone.
        std::mem::take(&mut self.shared.pool().ready);
    }
}
