//! `RUN --mount=…`'s grammar, BuildKit's: the one place its keys, their
//! values and which mount type takes which are known. The parser runs it on
//! the raw value, so a typo fails even in a stage nobody builds (values that
//! hold a variable are left for later); the lowering runs it again on the
//! expanded values and applies the defaults (`lower/mount.rs`).

use crate::ops::Sharing;

/// `type=`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum MountType {
    #[default]
    Bind,
    Cache,
    Tmpfs,
    Secret,
    Ssh,
}

impl MountType {
    pub(crate) fn name(self) -> &'static str {
        match self {
            MountType::Bind => "bind",
            MountType::Cache => "cache",
            MountType::Tmpfs => "tmpfs",
            MountType::Secret => "secret",
            MountType::Ssh => "ssh",
        }
    }
}

/// One `--mount` value, each field typed, no default applied (`None`: not
/// given, or given as a variable the parser cannot know yet).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct MountSpec {
    pub(crate) kind: MountType,
    pub(crate) from: Option<String>,
    pub(crate) source: Option<String>,
    pub(crate) target: Option<String>,
    /// `ro`/`readonly` (true), `rw`/`readwrite` (false).
    pub(crate) readonly: Option<bool>,
    pub(crate) id: Option<String>,
    pub(crate) sharing: Option<Sharing>,
    pub(crate) required: bool,
    /// Bytes.
    pub(crate) size: Option<u64>,
    pub(crate) mode: Option<u32>,
    pub(crate) uid: Option<u32>,
    pub(crate) gid: Option<u32>,
    pub(crate) env: Option<String>,
}

/// One `key[=value]` field: the key lower-cased, the value as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Field {
    pub(crate) key: String,
    pub(crate) value: Option<String>,
}

const KEYS: &[&str] = &[
    "type",
    "from",
    "source",
    "src",
    "target",
    "dst",
    "destination",
    "readonly",
    "ro",
    "rw",
    "readwrite",
    "id",
    "sharing",
    "mode",
    "uid",
    "gid",
    "required",
    "size",
    "env",
];

/// One record of Go's `encoding/csv` (without LazyQuotes), the way BuildKit
/// reads `--mount` values and buildx reads `--secret` and `--ssh`: split on
/// commas; a field that starts with `"` is quoted up to its closing `"` (`""`
/// inside it is one `"`), so it can hold commas; a bare `"` elsewhere is an error.
pub fn csv_record(value: &str) -> Result<Vec<String>, String> {
    let mut raw = Vec::new();
    let mut chars = value.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => {
                        return Err("a quoted field has no closing \" (the quote at its start is not closed)".to_owned())
                    }
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                }
            }
            if !matches!(chars.peek(), None | Some(',')) {
                return Err(format!("text after the closing quote of \"{field}\": quote the whole field"));
            }
        } else {
            while let Some(&c) = chars.peek() {
                match c {
                    ',' => break,
                    '"' => {
                        return Err(format!(
                            "a \" inside the field \"{field}\": quote the whole field instead, e.g. \"target=/a,b\""
                        ))
                    }
                    c => field.push(c),
                }
                chars.next();
            }
        }
        raw.push(field);
        if chars.next().is_none() {
            return Ok(raw);
        }
    }
}

/// The fields of a `--mount` value: one CSV record ([`csv_record`]) of
/// `key=value` pairs.
pub(crate) fn fields(value: &str) -> Result<Vec<Field>, String> {
    let raw = csv_record(value)?;
    raw.into_iter()
        .map(|field| {
            let (key, value) = match field.split_once('=') {
                Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.to_owned())),
                None => (field.trim().to_ascii_lowercase(), None),
            };
            if key.is_empty() {
                return Err("an empty field: write key=value pairs separated by commas".to_owned());
            }
            if !KEYS.contains(&key.as_str()) {
                return Err(format!("unknown key \"{key}\" (type, source, target, from, id, …)"));
            }
            if value.is_none() && !["ro", "readonly", "rw", "readwrite", "required"].contains(&key.as_str()) {
                return Err(format!("\"{key}\" needs a value: write {key}=…"));
            }
            Ok(Field { key, value })
        })
        .collect()
}

/// Type `fields`. `later` says which values cannot be judged yet (the
/// parser's pass: those holding a variable); their checks are skipped, and a
/// `type` not known yet skips every check that depends on the type.
pub(crate) fn parse(fields: &[Field], later: &dyn Fn(&str) -> bool) -> Result<MountSpec, String> {
    let mut m = MountSpec::default();
    let mut kind_known = true;
    let mut given: Vec<&str> = Vec::new();
    for Field { key, value } in fields {
        let value = match value {
            Some(v) if later(v) => {
                kind_known &= key != "type";
                given.push(key);
                continue;
            }
            Some(v) => Some(v.as_str()),
            None => None,
        };
        given.push(key);
        let v = value.unwrap_or_default().to_owned();
        match key.as_str() {
            "type" => {
                m.kind = match v.to_ascii_lowercase().as_str() {
                    "bind" => MountType::Bind,
                    "cache" => MountType::Cache,
                    "tmpfs" => MountType::Tmpfs,
                    "secret" => MountType::Secret,
                    "ssh" => MountType::Ssh,
                    _ => return Err(format!("unknown mount type \"{v}\": use bind, cache, tmpfs, secret or ssh")),
                }
            }
            "from" => m.from = Some(v),
            "source" | "src" => m.source = Some(v),
            "target" | "dst" | "destination" => m.target = Some(v),
            "ro" | "readonly" => m.readonly = Some(boolean(key, value)?),
            "rw" | "readwrite" => m.readonly = Some(!boolean(key, value)?),
            "required" => m.required = boolean(key, value)?,
            "id" => m.id = Some(v),
            "env" => m.env = Some(v),
            "sharing" => {
                m.sharing = Some(match v.to_ascii_lowercase().as_str() {
                    "shared" => Sharing::Shared,
                    "private" => Sharing::Private,
                    "locked" => Sharing::Locked,
                    _ => return Err(format!("unknown sharing \"{v}\": use shared, private or locked")),
                })
            }
            "size" => {
                let bytes = ram_in_bytes(&v).ok_or_else(|| {
                    format!("invalid size \"{v}\": expected bytes or a number with a unit, such as 64m or 1g")
                })?;
                m.size = Some(bytes);
            }
            "mode" => {
                m.mode = Some(
                    u32::from_str_radix(&v, 8)
                        .ok()
                        .filter(|&mode| mode <= 0o7777 && !v.starts_with('+'))
                        .ok_or_else(|| format!("invalid mode \"{v}\": expected an octal mode such as 0755"))?,
                )
            }
            "uid" | "gid" => {
                // All ones means "leave unchanged" to chown: never an owner.
                let id = v
                    .parse::<u32>()
                    .ok()
                    .filter(|&id| id != u32::MAX && !v.starts_with('+'))
                    .ok_or_else(|| format!("invalid {key} \"{v}\": expected a number such as 1000"))?;
                if key == "uid" {
                    m.uid = Some(id);
                } else {
                    m.gid = Some(id);
                }
            }
            _ => unreachable!("fields() lets known keys only"),
        }
    }
    if kind_known {
        check_kind(&m, &given)?;
    }
    Ok(m)
}

/// The keys each type takes, and what each type needs.
fn check_kind(m: &MountSpec, given: &[&str]) -> Result<(), String> {
    let kind = m.kind.name();
    let a = if m.kind == MountType::Ssh { "an" } else { "a" };
    let takes = |key: &str| -> bool {
        match key {
            "mode" | "uid" | "gid" => matches!(m.kind, MountType::Cache | MountType::Secret | MountType::Ssh),
            "required" => matches!(m.kind, MountType::Secret | MountType::Ssh),
            "size" => m.kind == MountType::Tmpfs,
            "sharing" => m.kind == MountType::Cache,
            "from" => m.kind != MountType::Secret && m.kind != MountType::Ssh,
            "source" | "src" => m.kind != MountType::Ssh,
            _ => true,
        }
    };
    if let Some(key) = given.iter().find(|k| !takes(k)) {
        return Err(format!("{a} {kind} mount does not take \"{key}\""));
    }
    let has = |keys: &[&str]| given.iter().any(|k| keys.contains(k));
    match m.kind {
        MountType::Bind | MountType::Cache | MountType::Tmpfs if !has(&["target", "dst", "destination"]) => {
            Err(format!("a {kind} mount needs a target, e.g. --mount=type={kind},target=/path"))
        }
        MountType::Secret if !has(&["id", "source", "src", "target", "dst", "destination"]) => {
            Err("a secret mount needs an id, e.g. --mount=type=secret,id=token (or a target to name it)".to_owned())
        }
        MountType::Secret if has(&["id"]) && has(&["source", "src"]) => {
            Err("a secret mount takes an id or a source (the same thing), not both".to_owned())
        }
        _ => Ok(()),
    }
}

/// Go's `strconv.ParseBool`, or true for a bare key.
fn boolean(key: &str, value: Option<&str>) -> Result<bool, String> {
    match value {
        None => Ok(true),
        Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(true),
        Some("0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(false),
        Some(v) => Err(format!("invalid {key}=\"{v}\": expected true or false")),
    }
}

/// go-units' `RAMInBytes`: `1024`, `64m`, `1.5g`, `10 MiB`, units of 1024.
pub fn ram_in_bytes(text: &str) -> Option<u64> {
    let digits = text.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(text.len());
    let (number, rest) = text.split_at(digits);
    if number.is_empty() || number.starts_with('.') || number.ends_with('.') || number.matches('.').count() > 1 {
        return None;
    }
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    let mut chars = rest.chars().peekable();
    let power = match chars.peek().map(|c| c.to_ascii_lowercase()) {
        Some(c @ ('k' | 'm' | 'g' | 't' | 'p')) => {
            chars.next();
            1 + "kmgtp".find(c).expect("one of them")
        }
        _ => 0,
    };
    if chars.peek().is_some_and(|c| c.eq_ignore_ascii_case(&'i')) {
        chars.next();
    }
    if chars.peek().is_some_and(|c| c.eq_ignore_ascii_case(&'b')) {
        chars.next();
    }
    if chars.next().is_some() {
        return None;
    }
    let size = number.parse::<f64>().ok()? * 1024f64.powi(power as i32);
    // Go converts with int64(): a size past it is no size.
    (size < 9.2e18).then_some(size as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(value: &str) -> Result<MountSpec, String> {
        parse(&fields(value)?, &|v| v.contains('$'))
    }

    #[test]
    fn good_values() {
        for ok in [
            "type=cache,target=/root/.cache",
            "target=/x",
            "type=bind,from=build,source=/out,target=/in,ro",
            "type=secret,id=tok",
            "type=secret,target=/run/secrets/tok,env=TOK,required=true",
            "type=ssh",
            "type=ssh,id=gh,required,mode=0600,uid=1,gid=2",
            "type=tmpfs,dst=/t,size=10m",
            "type=cache,target=/c,sharing=locked,uid=1000",
            "type=bind,\"target=/a b\"",
            "type=$T,size=1g,target=/x",
            "type=cache,target=/c,mode=$MODE",
            "TYPE=Cache,Target=/c,SHARING=Private",
        ] {
            assert!(typed(ok).is_ok(), "{ok}: {:?}", typed(ok));
        }
    }

    #[test]
    fn bad_values() {
        for (bad, want) in [
            ("type=cache", "a cache mount needs a target"),
            ("type=volume,target=/x", "unknown mount type \"volume\""),
            ("target=/x,foo=1", "unknown key \"foo\""),
            ("target=/x,,ro", "an empty field"),
            ("type=cache,target=/c,sharing=all", "unknown sharing \"all\""),
            ("target=/x,ro=yes", "invalid ro=\"yes\""),
            ("type=tmpfs,target=/t,size=big", "invalid size \"big\""),
            ("type=cache,target=/c,mode=0999", "invalid mode \"0999\""),
            ("type=cache,target=/c,mode=17777", "invalid mode \"17777\""),
            ("type=cache,target=/c,uid=-1", "invalid uid \"-1\""),
            ("type=cache,target=/c,gid=4294967295", "invalid gid \"4294967295\""),
            ("type=bind,target=/x,mode=0644", "a bind mount does not take \"mode\""),
            ("type=tmpfs,target=/x,uid=1", "a tmpfs mount does not take \"uid\""),
            ("type=cache,target=/x,required", "a cache mount does not take \"required\""),
            ("type=cache,target=/x,size=1m", "a cache mount does not take \"size\""),
            ("type=bind,target=/x,sharing=locked", "a bind mount does not take \"sharing\""),
            ("type=secret,id=a,from=build", "a secret mount does not take \"from\""),
            ("type=ssh,source=/x", "an ssh mount does not take \"source\""),
            ("type=secret", "a secret mount needs an id"),
            ("type=secret,env=TOKEN", "a secret mount needs an id"),
            ("type=secret,id=a,source=b", "a secret mount takes an id or a source"),
            ("target", "\"target\" needs a value"),
            ("\"target=/a", "a quoted field has no closing"),
            ("target=/a\"b", "a \" inside the field"),
            ("\"target=/a\"x", "text after the closing quote"),
        ] {
            let got = typed(bad).unwrap_err();
            assert!(got.starts_with(want), "{bad}: {got}");
        }
    }

    #[test]
    fn fields_are_csv() {
        let f = fields("type=bind,\"target=/a,b\",\"src=say \"\"hi\"\"\",ro").unwrap();
        let got: Vec<(&str, Option<&str>)> = f.iter().map(|f| (f.key.as_str(), f.value.as_deref())).collect();
        assert_eq!(got, [("type", Some("bind")), ("target", Some("/a,b")), ("src", Some("say \"hi\"")), ("ro", None)]);
    }

    #[test]
    fn typed_fields() {
        let m = typed("type=cache,id=go,target=/c,ro=false,sharing=locked,mode=0700,uid=1000,gid=100").unwrap();
        assert_eq!(
            m,
            MountSpec {
                kind: MountType::Cache,
                id: Some("go".to_owned()),
                target: Some("/c".to_owned()),
                readonly: Some(false),
                sharing: Some(Sharing::Locked),
                mode: Some(0o700),
                uid: Some(1000),
                gid: Some(100),
                ..MountSpec::default()
            }
        );
        assert_eq!(typed("target=/x,rw").unwrap().readonly, Some(false));
        assert_eq!(typed("target=/x,readwrite=0").unwrap().readonly, Some(true));
        assert!(typed("type=secret,id=x,required=True").unwrap().required);
    }

    #[test]
    fn sizes() {
        for (text, want) in [
            ("1024", Some(1024)),
            ("64m", Some(64 << 20)),
            ("64M", Some(64 << 20)),
            ("1g", Some(1 << 30)),
            ("1.5k", Some(1536)),
            ("10 MiB", Some(10 << 20)),
            ("2kb", Some(2048)),
            ("7b", Some(7)),
            ("", None),
            ("m", None),
            ("-1", None),
            ("1.2.3k", None),
            ("1x", None),
            ("1mm", None),
            ("99999999999p", None),
        ] {
            assert_eq!(ram_in_bytes(text), want, "{text:?}");
        }
    }
}
