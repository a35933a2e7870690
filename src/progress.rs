//! Rendering solver events as plain, stable lines on stderr, like BuildKit's
//! `--progress=plain`: `#3 [2/5] RUN make`, its output, then `#3 DONE 1.2s`.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::Instant;

use kiln_solver::{Event, EventKind};

/// Prints events as they come; safe to call from many threads.
#[derive(Default)]
pub struct Plain {
    started: Mutex<HashMap<usize, Instant>>,
}

impl Plain {
    pub fn event(&self, e: &Event) {
        let mut started = self.started.lock().unwrap_or_else(|p| p.into_inner());
        let line = match &e.kind {
            EventKind::Started => {
                started.insert(e.index, Instant::now());
                format!("#{} {}", e.index, e.name)
            }
            EventKind::Cached => format!("#{} CACHED", e.index),
            EventKind::Log(text) => {
                let t = started.get(&e.index).map(|s| s.elapsed().as_secs_f64()).unwrap_or(0.0);
                format!("#{} {t:.3} {text}", e.index)
            }
            EventKind::Done(d) => format!("#{} DONE {:.1}s", e.index, d.as_secs_f64()),
            EventKind::Failed(d) => format!("#{} ERROR after {:.1}s", e.index, d.as_secs_f64()),
        };
        // One write per line keeps lines from concurrent steps whole.
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }
}
