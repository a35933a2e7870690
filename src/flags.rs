//! Docker's rule for `NAME=VALUE` flags (`--build-arg`, `run -e`): `NAME=VALUE`
//! sets the value, and a bare `NAME` takes it from kiln's own environment, or
//! is left out when that has none.

/// `flag` as a name and its value, the value looked up with `env` for a bare
/// name. `None` for a bare name `env` does not know. The name may be empty
/// (`=x`): callers refuse that in their own words.
pub fn name_value(flag: &str, env: impl Fn(&str) -> Option<String>) -> Option<(&str, String)> {
    match flag.split_once('=') {
        Some((name, value)) => Some((name, value.to_owned())),
        None => env(flag).map(|value| (flag, value)),
    }
}

/// The process environment, as [`name_value`] wants it.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

#[cfg(test)]
mod tests {
    use super::name_value;

    #[test]
    fn flags_read_like_docker() {
        let env = |name: &str| (name == "SET").then(|| "from env".to_owned());
        for (flag, want) in [
            ("A=1", Some(("A", "1"))),
            ("A=", Some(("A", ""))),
            ("A=b=c", Some(("A", "b=c"))),
            ("=x", Some(("", "x"))),
            ("SET", Some(("SET", "from env"))),
            ("UNSET", None),
        ] {
            let got = name_value(flag, env);
            assert_eq!(got.as_ref().map(|(n, v)| (*n, v.as_str())), want, "{flag}");
        }
    }
}
