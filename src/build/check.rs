//! `kiln build --check`: a Dockerfile's build checks, and whether it would
//! lower at all, without building anything.

use kiln_frontend::{CheckReport, ErrorKind};

use super::{frontend_options, read_dockerfile, resolver, BuildError, BuildRequest};
use crate::store::Store;

/// What checking a Dockerfile found.
#[derive(Debug)]
pub struct CheckOutcome {
    /// The rules broken (every stage's, as `docker build --check` looks at all).
    pub report: CheckReport,
    /// Why the build would fail, if it would (an unknown instruction, a
    /// missing base image, …): the checks alone do not say.
    pub error: Option<kiln_frontend::Error>,
}

/// Run the build checks of `request`'s Dockerfile. Base images are looked up
/// (and pulled) as a build would; nothing else happens.
pub fn check(store: &Store, request: &BuildRequest) -> Result<CheckOutcome, BuildError> {
    let (_, text, name) = read_dockerfile(request)?;
    let opts = frontend_options(request, name);
    let resolver = resolver::StoreResolver {
        store,
        pull: request.pull,
        registry: &request.registry,
        progress: request.progress.clone(),
    };
    let report = kiln_frontend::check(&text, &opts, &resolver)?;
    let error = match kiln_frontend::build_graph(&text, &opts, &resolver) {
        // error=true failing the build is the report's to tell.
        Err(e) if matches!(e.kind, ErrorKind::Check(_)) => None,
        Err(e) => Some(e),
        Ok(_) => None,
    };
    Ok(CheckOutcome { report, error })
}
