//! `SOURCE_DATE_EPOCH`: the time a reproducible build says it was made. With
//! it, every layer's file times are clamped to it, the image config's
//! `created` and the build's history entries are it, and git sources get
//! their commit's time — so two builds of the same input, on two machines,
//! give the same image ID.

use std::collections::BTreeMap;

use kiln_solver::Digest;

use super::BuildError;

/// The name of the build arg and of the environment variable.
pub(crate) const NAME: &str = "SOURCE_DATE_EPOCH";

/// The epoch a build uses: the build arg `SOURCE_DATE_EPOCH`, else the
/// environment variable of that name (as buildx passes it); an empty value
/// is none, as for BuildKit.
pub(crate) fn source_date_epoch(
    build_args: &BTreeMap<String, String>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<u64>, BuildError> {
    let Some(text) = build_args.get(NAME).cloned().or_else(|| env(NAME)) else {
        return Ok(None);
    };
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    trimmed.parse::<u64>().map(Some).map_err(|_| BuildError::SourceDateEpoch(text))
}

/// What goes into every cache key of a build with this epoch: its layers
/// depend on it, so results made without it (or with another) are not reused.
pub(crate) fn key_salt(epoch: Option<u64>) -> Option<Digest> {
    epoch.map(|e| Digest::of(format!("{NAME}={e}").as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_build_arg_wins_over_the_environment_and_bad_values_are_errors() {
        let args = |v: Option<&str>| v.map(|v| BTreeMap::from([(NAME.to_owned(), v.to_owned())])).unwrap_or_default();
        // (build arg, environment) → the epoch, or an error.
        type Case = (Option<&'static str>, Option<&'static str>, Result<Option<u64>, ()>);
        let cases: [Case; 7] = [
            (None, None, Ok(None)),
            (None, Some("1700000000"), Ok(Some(1_700_000_000))),
            (Some("5"), Some("1700000000"), Ok(Some(5))),
            (Some(""), None, Ok(None)),
            (Some(" 7 "), None, Ok(Some(7))),
            (Some("-1"), None, Err(())),
            (None, Some("yesterday"), Err(())),
        ];
        for (arg, env, want) in cases {
            let got = source_date_epoch(&args(arg), |_| env.map(str::to_owned));
            assert_eq!(got.as_ref().map_err(|_| ()).copied(), want, "{arg:?} {env:?}");
            if let Err(e) = got {
                assert!(e.to_string().contains("SOURCE_DATE_EPOCH"), "{e}");
            }
        }
    }
}
