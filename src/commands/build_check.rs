//! `kiln build --check`: the build checks' findings, one a line on stdout, as
//! `FILE:LINE:COLUMN: Rule: message (page)`, then a count.

use anyhow::bail;
use kiln::build::BuildRequest;
use kiln::store::Store;

use crate::cli::output::escape;
use crate::outln;

pub fn check(store: &Store, request: &BuildRequest) -> anyhow::Result<()> {
    let outcome = kiln::build::check(store, request)?;
    let report = &outcome.report;
    for line in report.lines() {
        outln!("{}", escape(&line))?;
    }
    match report.warnings.len() {
        0 => outln!("Check complete, no warnings found.")?,
        1 => outln!("Check complete, 1 warning has been found!")?,
        n => outln!("Check complete, {n} warnings have been found!")?,
    }
    if let Some(e) = outcome.error {
        return Err(e.into());
    }
    if report.error_on_warning && !report.warnings.is_empty() {
        let rules: Vec<&str> = report.rules().iter().map(|r| r.name()).collect();
        bail!("lint violation found for rules: {} (the Dockerfile says # check=error=true)", rules.join(", "));
    }
    Ok(())
}
