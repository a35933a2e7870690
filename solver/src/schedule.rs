//! Which vertex may start next: the solver's ready set.
//!
//! Each vertex keeps a count of its inputs that have not finished, and each
//! vertex knows the vertices that read it. When a vertex finishes, only its
//! readers' counts go down, and a reader whose count reaches zero joins the
//! ready set. So a whole solve costs steps in proportion to the vertices plus
//! the edges, where rescanning every vertex after each finished job costs
//! their square (a 4,000-step build: millions of checks on the solver's one
//! async task, while the jobs it should be starting wait).
//!
//! The ready set hands out the lowest solve-order index first, which is the
//! order the rescan used to start vertices in: with one job, the steps (and
//! so the progress lines) come in the same order as before.

use std::collections::BTreeSet;

/// The scheduling state of one solve, over vertices numbered in solve order
/// (inputs before the vertices that read them).
pub(crate) struct Schedule {
    /// For each vertex, how many of its input edges come from vertices that
    /// have not finished. An input listed twice counts twice, and is
    /// released twice when it finishes.
    waiting: Vec<usize>,
    /// For each vertex, the vertices that read it, once per edge.
    readers: Vec<Vec<usize>>,
    /// Vertices whose inputs have all finished and that have not started.
    ready: BTreeSet<usize>,
    /// Steps taken, for tests: the scheduler must stay linear in the graph.
    work: usize,
}

impl Schedule {
    /// The schedule of a graph given as each vertex's input indices.
    pub(crate) fn new(inputs: Vec<Vec<usize>>) -> Self {
        let mut readers = vec![Vec::new(); inputs.len()];
        let mut waiting = Vec::with_capacity(inputs.len());
        let mut ready = BTreeSet::new();
        let mut work = 0;
        for (i, ins) in inputs.iter().enumerate() {
            work += 1 + ins.len();
            for &input in ins {
                readers[input].push(i);
            }
            waiting.push(ins.len());
            if ins.is_empty() {
                ready.insert(i);
            }
        }
        Schedule { waiting, readers, ready, work }
    }

    /// Take the ready vertex with the lowest index, if any: the caller starts it.
    pub(crate) fn next_ready(&mut self) -> Option<usize> {
        self.work += 1;
        self.ready.pop_first()
    }

    /// Vertex `i` finished: the vertices that read it may become ready.
    pub(crate) fn finished(&mut self, i: usize) {
        for &reader in &self.readers[i] {
            self.work += 1;
            self.waiting[reader] -= 1;
            if self.waiting[reader] == 0 {
                self.ready.insert(reader);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A chain `depth` long and `width` leaves, all read by one top vertex:
    /// wide and deep, so a scheduler that rescans every vertex each time one
    /// finishes does about n² steps.
    fn wide_and_deep(width: usize, depth: usize) -> Vec<Vec<usize>> {
        let mut inputs: Vec<Vec<usize>> = Vec::new();
        for i in 0..depth {
            inputs.push(if i == 0 { vec![] } else { vec![i - 1] });
        }
        for _ in 0..width {
            inputs.push(vec![]);
        }
        inputs.push((depth - 1..depth + width).collect());
        inputs
    }

    #[test]
    fn inputs_listed_twice_are_waited_for_twice() {
        // 0 → 1, and 2 reads 0 twice and 1 once.
        let mut s = Schedule::new(vec![vec![], vec![0], vec![0, 0, 1]]);
        assert_eq!(s.next_ready(), Some(0));
        assert_eq!(s.next_ready(), None);
        s.finished(0);
        assert_eq!(s.next_ready(), Some(1));
        assert_eq!(s.next_ready(), None, "2 still waits for 1");
        s.finished(1);
        assert_eq!(s.next_ready(), Some(2));
    }

    #[test]
    fn lowest_index_first() {
        let mut s = Schedule::new(vec![vec![], vec![], vec![0], vec![]]);
        assert_eq!(s.next_ready(), Some(0));
        s.finished(0);
        assert_eq!((s.next_ready(), s.next_ready(), s.next_ready()), (Some(1), Some(2), Some(3)));
    }

    #[test]
    fn scheduling_work_is_linear_in_the_graph() {
        let inputs = wide_and_deep(2_000, 2_000);
        let (vertices, edges) = (inputs.len(), inputs.iter().map(Vec::len).sum::<usize>());
        let mut schedule = Schedule::new(inputs.clone());
        let mut finished = vec![false; vertices];
        // One job at a time: start what is ready, finish it, repeat.
        while let Some(i) = schedule.next_ready() {
            assert!(!finished[i] && inputs[i].iter().all(|&d| finished[d]), "vertex {i} started too early");
            finished[i] = true;
            schedule.finished(i);
        }
        assert!(finished.iter().all(|&f| f), "every vertex ran");
        assert!(
            schedule.work <= 4 * (vertices + edges),
            "{} steps for {vertices} vertices and {edges} edges",
            schedule.work
        );
    }
}
