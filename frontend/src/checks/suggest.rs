//! "did you mean": the closest name, as BuildKit's `suggest` picks it.

/// Names longer than this get no suggestion.
const MAX_LEN: usize = 128;

/// The option within Levenshtein distance 2 of `name` (the closest, the
/// first of equals), unless `name` is one of them.
pub(super) fn closest<'o>(name: &str, options: impl IntoIterator<Item = &'o str>) -> Option<&'o str> {
    if name.len() > MAX_LEN {
        return None;
    }
    let mut best: Option<(usize, &str)> = None;
    for option in options {
        if option == name {
            return None;
        }
        // Within distance 2 only if the lengths are; and no typo is that
        // long: bounds the work a hostile file can ask for.
        if name.len().abs_diff(option.len()) > 2 || option.len() > MAX_LEN {
            continue;
        }
        let distance = strsim::levenshtein(name, option);
        if distance < best.map_or(3, |(d, _)| d) {
            best = Some((distance, option));
        }
    }
    best.map(|(_, o)| o)
}

/// ` (did you mean $X?)` style suffix: `prefix` goes before the name.
pub(super) fn did_you_mean<'o>(name: &str, prefix: &str, options: impl IntoIterator<Item = &'o str>) -> String {
    closest(name, options).map(|o| format!(" (did you mean {prefix}{o}?)")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let options = ["VERSION", "TARGETARCH", "PATH", "HOME"];
        assert_eq!(closest("VERSOIN", options), Some("VERSION"));
        assert_eq!(closest("VERSON", options), Some("VERSION"));
        assert_eq!(closest("PTH", options), Some("PATH"));
        assert_eq!(closest("NOTHING_ALIKE", options), None);
        assert_eq!(closest("PATH", options), None);
        assert_eq!(closest("HOMER", ["HOME", "HOMED"]), Some("HOME"));
        assert_eq!(did_you_mean("PTH", "$", options), " (did you mean $PATH?)");
        assert_eq!(did_you_mean("ZZZZZ", "$", options), "");
        let long = "A".repeat(MAX_LEN + 1);
        assert_eq!(closest(&long, [&long[1..]]), None);
    }
}
