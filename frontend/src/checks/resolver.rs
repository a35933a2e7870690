//! A build resolves base images once: the lowering asks the caller's
//! resolver, the checks that follow only look at what it found (a stage the
//! target does not need is never looked up, and nothing is pulled twice).

use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::options::{ImageResolver, ResolvedImage};

type Answer = Result<Option<ResolvedImage>, String>;

/// The caller's resolver, its answers remembered.
pub(crate) struct Remembered<'r> {
    inner: &'r dyn ImageResolver,
    answers: RefCell<BTreeMap<String, Answer>>,
}

impl<'r> Remembered<'r> {
    pub(crate) fn new(inner: &'r dyn ImageResolver) -> Self {
        Remembered { inner, answers: RefCell::new(BTreeMap::new()) }
    }

    /// A resolver that knows only what was already asked.
    pub(crate) fn asked(&self) -> Asked<'_, 'r> {
        Asked(self)
    }
}

impl ImageResolver for Remembered<'_> {
    fn resolve(&self, reference: &str) -> Answer {
        if let Some(answer) = self.answers.borrow().get(reference) {
            return answer.clone();
        }
        let answer = self.inner.resolve(reference);
        self.answers.borrow_mut().insert(reference.to_owned(), answer.clone());
        answer
    }
}

/// See [`Remembered::asked`].
pub(crate) struct Asked<'a, 'r>(&'a Remembered<'r>);

impl ImageResolver for Asked<'_, '_> {
    fn resolve(&self, reference: &str) -> Answer {
        self.0.answers.borrow().get(reference).cloned().unwrap_or(Ok(None))
    }
}
