//! The JSON (exec) form of an instruction's arguments.

use super::ParseError;

/// The array, if `rest` is a JSON array of strings. Like BuildKit, text that
/// only looks like JSON (`["echo", "no quote!]`, `["x"] # comment`, `[ -f x ]`)
/// is shell form; but a well-formed array holding anything but strings is an
/// error, since it can only be a mistake.
pub(crate) fn json_form(rest: &str) -> Result<Option<Vec<String>>, ParseError> {
    if !rest.starts_with('[') {
        return Ok(None);
    }
    match serde_json::from_str::<Vec<serde_json::Value>>(rest) {
        Ok(items) => items
            .into_iter()
            .map(|v| match v {
                serde_json::Value::String(s) => Ok(s),
                _ => Err(ParseError::NotStringArray(crate::shorten::Shortened::new(rest).to_string())),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Err(_) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let arr = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(json_form(r#"["a", "b c"]"#).unwrap(), arr(&["a", "b c"]));
        assert_eq!(json_form("[]").unwrap(), arr(&[]));
        assert_eq!(json_form("a").unwrap(), None);
        assert_eq!(json_form(r#"["echo", "no quote!]"#).unwrap(), None);
        assert_eq!(json_form(r#"["x"] # comment"#).unwrap(), None);
        assert_eq!(json_form("[ -f x ]").unwrap(), None);
        assert_eq!(json_form(r#"{"a": 1}"#).unwrap(), None);
        assert!(matches!(json_form(r#"["a", 1]"#), Err(ParseError::NotStringArray(_))));
    }
}
