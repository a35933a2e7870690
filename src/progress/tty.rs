//! `--progress tty`: a live view drawn with indicatif, BuildKit's in spirit.
//!
//! ```text
//! => [build 1/4] FROM golang:1.22                                   0.0s
//! => CACHED [build 2/4] WORKDIR /src
//! [+] Building 4.2s (2/5)
//! => [build 3/4] COPY . .                    12.5 MiB 41.0 MiB/s    0.3s
//! => [stage-1 2/3] RUN make                                         3.9s
//!    cc -c main.c
//! ```
//!
//! Finished steps are printed above the live part and stay; each running step
//! has a line with its timer (and bytes and bytes per second while it writes
//! a layer) and, once it printed something, a second line with its last
//! line. A failed step's last lines are printed, so they stay on screen;
//! [`View::finish`] prints the summary line with the total time.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use kiln_solver::{Digest, Event, EventKind};

use super::{binary_size, escape, transfer_line, View};
use crate::build::Progress;
use crate::registry::Transfer;

/// How many of a failed step's last lines the view keeps on screen.
const FAILED_TAIL: usize = 10;

/// How often the timers are redrawn.
const TICK: Duration = Duration::from_millis(100);

/// The live view; safe to call from many threads.
pub struct Tty {
    multi: MultiProgress,
    header: ProgressBar,
    state: Arc<Mutex<State>>,
    start: Instant,
    /// Drawn on stderr: end the last line there (indicatif leaves the cursor on it).
    on_stderr: bool,
    explain: bool,
}

#[derive(Default)]
struct State {
    running: HashMap<usize, Step>,
    /// Steps finished, cached or failed.
    finished: usize,
    total: usize,
    /// The view was finished: the ticker stops.
    ended: bool,
}

struct Step {
    bar: ProgressBar,
    /// The line under it with its last line of output, once it printed one.
    log: Option<ProgressBar>,
    name: String,
    /// The last lines it printed, as the view shows them.
    tail: VecDeque<String>,
}

impl Tty {
    /// A view drawn on `target` (the command gives `ProgressDrawTarget::stderr()`).
    pub fn new(target: ProgressDrawTarget) -> Self {
        let multi = MultiProgress::with_draw_target(target);
        let header = multi.add(ProgressBar::new_spinner());
        header.set_style(style("[+] Building {secs} {msg}"));
        let state: Arc<Mutex<State>> = Arc::default();
        // The timers move while nothing happens: one thread ticks every bar
        // (indicatif's steady tick would take a thread per bar).
        let (ticked, header_ticked) = (state.clone(), header.clone());
        std::thread::spawn(move || loop {
            std::thread::sleep(TICK);
            let state = ticked.lock().unwrap_or_else(|p| p.into_inner());
            if state.ended {
                break;
            }
            header_ticked.tick();
            for step in state.running.values() {
                step.bar.tick();
            }
        });
        Self { multi, header, state, start: Instant::now(), on_stderr: false, explain: false }
    }

    /// The view on stderr, as `kiln build` shows it.
    pub fn stderr() -> Self {
        let mut view = Self::new(ProgressDrawTarget::stderr());
        view.on_stderr = true;
        view
    }

    /// Print every line of a cache miss's explanation (`--explain`).
    pub fn explain(mut self, on: bool) -> Self {
        self.explain = on;
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Print `line` above the live part, where it stays.
    fn print(&self, line: &str) {
        let _ = self.multi.println(line);
    }

    /// A step left the live part: its line printed above, for good.
    fn end(&self, state: &mut State, index: usize, line: impl FnOnce(&str) -> String) -> Option<Step> {
        let step = state.running.remove(&index)?;
        for bar in std::iter::once(&step.bar).chain(&step.log) {
            bar.finish_and_clear();
            self.multi.remove(bar);
        }
        state.finished += 1;
        self.print(&line(&step.name));
        Some(step)
    }
}

/// A style from a template kiln wrote (so it parses), with `{secs}` (the
/// bar's time, `3.2s`) and `{bytes}` (`12.5 MiB 41.0 MiB/s `, once any).
fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .expect("kiln's own template")
        .with_key("secs", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{:.1}s", s.elapsed().as_secs_f64());
        })
        .with_key("bytes", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            if s.pos() > 0 {
                let secs = s.elapsed().as_secs_f64().max(0.001);
                let _ = match s.len() {
                    Some(len) => write!(w, "{} / {} ", binary_size(s.pos() as f64), binary_size(len as f64)),
                    None => write!(w, "{} ", binary_size(s.pos() as f64)),
                };
                let _ = write!(w, "{}/s ", binary_size(s.pos() as f64 / secs));
            }
        })
}

/// A running step's line, and the line of its output under it.
fn step_styles() -> &'static [ProgressStyle; 2] {
    static STYLES: OnceLock<[ProgressStyle; 2]> = OnceLock::new();
    STYLES.get_or_init(|| [style("=> {wide_msg} {bytes}{secs:>6}"), style("   {wide_msg:.dim}")])
}

/// A line of a step's output as the view shows it: what a terminal would
/// leave of it (the text after its last `\r`, no colour sequences), escaped.
pub(super) fn shown(line: &str) -> String {
    static CSI: OnceLock<regex::Regex> = OnceLock::new();
    let csi = CSI.get_or_init(|| regex::Regex::new(r"\x1b\[[0-9;?]*[ -/]*[@-~]").expect("a valid regex"));
    let last = line.trim_end_matches('\r').rsplit('\r').next().unwrap_or_default();
    escape(&csi.replace_all(last, ""))
}

impl Progress for Tty {
    fn event(&self, e: &Event) {
        let mut state = self.lock();
        state.total = e.total;
        match &e.kind {
            EventKind::Started => {
                let name = escape(&e.name);
                let bar = self.multi.add(ProgressBar::new_spinner());
                bar.set_style(step_styles()[0].clone());
                bar.set_message(name.clone());
                let step = Step { bar, log: None, name, tail: VecDeque::new() };
                state.running.insert(e.index, step);
            }
            EventKind::Cached => {
                self.end(&mut state, e.index, |name| format!("=> CACHED {name}"));
            }
            EventKind::Log(text) => {
                if let Some(step) = state.running.get_mut(&e.index) {
                    let line = shown(text);
                    let log = step.log.get_or_insert_with(|| {
                        let log = self.multi.insert_after(&step.bar, ProgressBar::new_spinner());
                        log.set_style(step_styles()[1].clone());
                        log
                    });
                    log.set_message(line.clone());
                    if step.tail.len() == FAILED_TAIL {
                        step.tail.pop_front();
                    }
                    step.tail.push_back(line);
                }
            }
            EventKind::Bytes { done, total } => {
                if let Some(step) = state.running.get(&e.index) {
                    if let Some(total) = total {
                        step.bar.set_length(*total);
                    }
                    step.bar.set_position(*done);
                }
            }
            EventKind::Done(d) => {
                let secs = d.as_secs_f64();
                self.end(&mut state, e.index, |name| format!("=> {name} {secs:.1}s"));
            }
            EventKind::Failed(d, error) => {
                let secs = d.as_secs_f64();
                if let Some(step) = self.end(&mut state, e.index, |name| format!("=> ERROR {name} {secs:.1}s")) {
                    for line in &step.tail {
                        self.print(&format!("   | {line}"));
                    }
                }
                self.print(&format!("   {}", escape(error)));
            }
        }
        self.header.set_message(format!("({}/{})", state.finished, state.total));
    }

    fn warning(&self, message: &str) {
        self.print(&format!("warning: {}", escape(message)));
    }

    fn image_written(&self, id: &Digest) {
        self.print(&format!("=> writing image {id}"));
    }

    fn named(&self, name: &str) {
        self.print(&format!("=> naming to {name}"));
    }

    fn transfer(&self, event: &Transfer) {
        self.print(&format!("=> {}", transfer_line(event)));
    }

    fn cache_miss(&self, miss: &crate::explain::Miss) {
        for line in super::miss_lines(miss, self.explain) {
            self.print(&format!("=> #{} {}", miss.index, escape(&line)));
        }
    }
}

impl View for Tty {
    fn finish(&self, ok: bool) {
        let mut state = self.lock();
        state.ended = true;
        for step in state.running.values() {
            for bar in std::iter::once(&step.bar).chain(&step.log) {
                bar.finish_and_clear();
            }
        }
        let end = if ok { "FINISHED" } else { "FAILED" };
        let secs = self.start.elapsed().as_secs_f64();
        // Printed, not drawn: it stays when the view is gone.
        self.header.finish_and_clear();
        self.print(&format!("[+] Building {secs:.1}s ({}/{}) {end}", state.finished, state.total));
        if self.on_stderr {
            eprintln!();
        }
    }
}

impl Drop for Tty {
    /// A view never finished (a library caller's) still stops its ticker.
    fn drop(&mut self) {
        self.lock().ended = true;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use indicatif::InMemoryTerm;

    use super::super::plain::tests::event;
    use super::*;

    fn view() -> (Tty, InMemoryTerm) {
        let term = InMemoryTerm::new(20, 80);
        (Tty::new(ProgressDrawTarget::term_like(Box::new(term.clone()))), term)
    }

    #[test]
    fn running_steps_show_their_last_line_and_bytes_and_finished_ones_stay() {
        let (tty, term) = view();
        tty.event(&event(1, "[1/3] FROM busybox", EventKind::Started));
        tty.event(&event(1, "[1/3] FROM busybox", EventKind::Cached));
        tty.event(&event(2, "[2/3] COPY . /ctx/", EventKind::Started));
        tty.event(&event(2, "[2/3] COPY . /ctx/", EventKind::Bytes { done: 5 << 20, total: None }));
        tty.event(&event(3, "[3/3] RUN make", EventKind::Started));
        tty.event(&event(3, "[3/3] RUN make", EventKind::Log("first".into())));
        tty.event(&event(3, "[3/3] RUN make", EventKind::Log("\x1b[32mcc\x1b[0m -c 50%\r100% main.c".into())));
        // Updates are drawn at the view's rate: wait for the next draws.
        std::thread::sleep(Duration::from_millis(500));
        let screen = term.contents();
        assert!(screen.contains("=> CACHED [1/3] FROM busybox"), "{screen}");
        assert!(screen.contains("[+] Building") && screen.contains("(1/3)"), "{screen}");
        assert!(screen.contains("=> [2/3] COPY . /ctx/") && screen.contains("5.0 MiB"), "{screen}");
        assert!(regex::Regex::new(r"5\.0 MiB \d+\.\d [KMGT]?i?B/s").unwrap().is_match(&screen), "{screen}");
        assert!(screen.contains("   100% main.c"), "the last line under its step: {screen}");
        assert!(screen.contains("=> [3/3] RUN make"), "{screen}");
        tty.event(&event(2, "[2/3] COPY . /ctx/", EventKind::Done(Duration::from_millis(1200))));
        tty.event(&event(3, "[3/3] RUN make", EventKind::Failed(Duration::from_secs(2), "exit code: 2".into())));
        tty.finish(false);
        let screen = term.contents();
        assert!(screen.contains("=> [2/3] COPY . /ctx/ 1.2s"), "{screen}");
        assert!(screen.contains("=> ERROR [3/3] RUN make 2.0s"), "{screen}");
        assert!(screen.contains("   | 100% main.c\n"), "the failed step's last lines stay: {screen}");
        assert!(screen.contains("   | first\n"), "{screen}");
        assert!(screen.contains("exit code: 2"), "{screen}");
        assert!(regex::Regex::new(r"\[\+\] Building \d+\.\ds \(3/3\) FAILED").unwrap().is_match(&screen), "{screen}");
    }

    #[test]
    fn a_line_shows_what_a_terminal_would_leave_of_it() {
        for (line, want) in [
            ("plain", "plain"),
            ("\x1b[1;31mred\x1b[0m", "red"),
            ("10%\r50%\r100%", "100%"),
            ("done\r", "done"),
            ("bell\x07", "bell\\x07"),
        ] {
            assert_eq!(shown(line), want, "{line:?}");
        }
    }
}
