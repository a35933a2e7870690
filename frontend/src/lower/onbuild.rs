//! ONBUILD triggers, run the way BuildKit runs them: those of the base (an
//! image's `OnBuild`, or the ONBUILD instructions of the stage built on) are
//! parsed as Dockerfile lines, in order, and dispatched right after FROM,
//! before the stage's own instructions; the new image's config starts
//! without them. A trigger's errors point at the FROM that pulled it in and
//! name the trigger, since it is written nowhere in this Dockerfile.

use crate::error::{Error, ErrorKind, Location};
use crate::instructions::{parse_trigger, Command};

/// Parse `triggers` (taken from the base's config), for the FROM at `at`
/// whose base is `base`.
pub(super) fn parse(triggers: Vec<String>, at: Location, base: &str) -> Result<Vec<Command>, Error> {
    triggers.into_iter().map(|text| parse_trigger(&text, at).map_err(|e| in_trigger(e, &text, base, at))).collect()
}

/// `e`, met while running `trigger`, as an error about that trigger at `at`.
pub(super) fn in_trigger(e: Error, trigger: &str, base: &str, at: Location) -> Error {
    let kind = ErrorKind::Trigger { trigger: trigger.to_owned(), base: base.to_owned(), error: Box::new(e.kind) };
    Error { file: e.file, location: Some(at), kind }
}
