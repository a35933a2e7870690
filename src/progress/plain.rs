//! Plain lines, BuildKit's `--progress=plain`: stable and greppable, one
//! write per line so the lines of steps running at once never mix.
//!
//! ```text
//! #5 [build 2/4] RUN make
//! #5 0.123 cc -c main.c
//! #5 DONE 3.2s
//! #6 CACHED
//! #7 ERROR: process "/bin/sh -c make" did not complete successfully: exit code: 2
//! ```

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::Instant;

use kiln_solver::{Digest, Event, EventKind};

use super::{escape, miss_lines, transfer_line, View};
use crate::build::Progress;
use crate::explain::Miss;
use crate::registry::Transfer;

/// Prints events as they come; safe to call from many threads.
pub struct Plain {
    out: Mutex<Box<dyn Write + Send>>,
    started: Mutex<HashMap<usize, Instant>>,
    explain: bool,
}

impl Plain {
    /// Lines written to `out` (the command gives stderr).
    pub fn new(out: impl Write + Send + 'static) -> Self {
        Self { out: Mutex::new(Box::new(out)), started: Mutex::default(), explain: false }
    }

    /// Print every line of a cache miss's explanation (`--explain`).
    pub fn explain(mut self, on: bool) -> Self {
        self.explain = on;
        self
    }

    /// The line an event prints, if any.
    pub fn line(&self, e: &Event) -> Option<String> {
        let mut started = self.started.lock().unwrap_or_else(|p| p.into_inner());
        Some(match &e.kind {
            EventKind::Started => {
                started.insert(e.index, Instant::now());
                format!("#{} {}", e.index, escape(&e.name))
            }
            EventKind::Cached => format!("#{} CACHED", e.index),
            EventKind::Log(text) => {
                let t = started.get(&e.index).map(|s| s.elapsed().as_secs_f64()).unwrap_or(0.0);
                format!("#{} {t:.3} {text}", e.index)
            }
            // Counts are for the live view; plain lines would only repeat them.
            EventKind::Bytes { .. } => return None,
            EventKind::Done(d) => format!("#{} DONE {:.1}s", e.index, d.as_secs_f64()),
            EventKind::Failed(_, error) => format!("#{} ERROR: {}", e.index, escape(error)),
        })
    }

    fn print(&self, line: &str) {
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        // One write per line keeps lines from concurrent steps whole.
        let _ = out.write_all(format!("{line}\n").as_bytes());
        let _ = out.flush();
    }
}

impl Progress for Plain {
    fn event(&self, e: &Event) {
        if let Some(line) = self.line(e) {
            self.print(&line);
        }
    }

    fn warning(&self, message: &str) {
        self.print(&format!("warning: {}", escape(message)));
    }

    fn image_written(&self, id: &Digest) {
        self.print(&format!("writing image {id}"));
    }

    fn named(&self, name: &str) {
        self.print(&format!("naming to {name}"));
    }

    fn transfer(&self, event: &Transfer) {
        self.print(&transfer_line(event));
    }

    fn cache_miss(&self, miss: &Miss) {
        let lines = miss_lines(miss, self.explain);
        if !lines.is_empty() {
            // One write: the lines stay together among other steps' output.
            let text: Vec<String> = lines.iter().map(|l| format!("#{} {}", miss.index, escape(l))).collect();
            self.print(&text.join("\n"));
        }
    }
}

impl View for Plain {}

#[cfg(test)]
pub(super) mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    /// A writer the test can read back.
    #[derive(Clone, Default)]
    pub(crate) struct Shared(pub(crate) Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    pub(crate) fn event(index: usize, name: &str, kind: EventKind) -> Event {
        Event { index, total: 3, digest: Digest::of(name.as_bytes()), name: name.to_owned(), kind }
    }

    #[test]
    fn each_event_is_one_line_in_buildkits_words() {
        let out = Shared::default();
        let plain = Plain::new(out.clone());
        for e in [
            event(2, "[build 2/4] RUN make", EventKind::Started),
            event(2, "[build 2/4] RUN make", EventKind::Log("cc -c main.c".into())),
            event(2, "[build 2/4] RUN make", EventKind::Bytes { done: 10, total: None }),
            event(2, "[build 2/4] RUN make", EventKind::Done(Duration::from_millis(3240))),
            event(3, "[build 3/4] COPY . .", EventKind::Started),
            event(3, "[build 3/4] COPY . .", EventKind::Cached),
            event(4, "[stage-1 1/2] RUN \x1b[2J", EventKind::Started),
            event(4, "[stage-1 1/2] RUN \x1b[2J", EventKind::Failed(Duration::ZERO, "exit code: 2".into())),
        ] {
            plain.event(&e);
        }
        plain.warning("bad\rword");
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "#2 [build 2/4] RUN make");
        assert!(regex::Regex::new(r"^#2 \d+\.\d{3} cc -c main\.c$").unwrap().is_match(lines[1]), "{}", lines[1]);
        assert_eq!(
            &lines[2..],
            [
                "#2 DONE 3.2s",
                "#3 [build 3/4] COPY . .",
                "#3 CACHED",
                "#4 [stage-1 1/2] RUN \\x1b[2J",
                "#4 ERROR: exit code: 2",
                "warning: bad\\rword"
            ]
        );
    }
}
