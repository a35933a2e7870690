//! What fed a step's cache key the last time it was built ([`StepRecord`]),
//! the files it read ([`Listing`]), and what differs between two of them
//! ([`diff`], [`Change`]).

use serde::{Deserialize, Serialize};

use kiln_solver::{CacheKey, Digest};

/// The record format this kiln writes; a record of another is ignored.
pub(crate) const RECORD_VERSION: u32 = 1;

/// At most this many files are listed for a step: past it, a change of its
/// files is reported without their names, so a huge context cannot make
/// every record megabytes.
pub(crate) const MAX_LISTED_FILES: usize = 100_000;

/// Hex digits kept of each listed file's digest: enough to tell a change,
/// a quarter of the bytes.
const FILE_DIGEST_HEX: usize = 16;

/// A value as recorded: in clear, or (for a secret-looking name) only a
/// digest of it, so the store never holds the value and a message never
/// shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Value {
    Plain(String),
    Hidden(String),
}

impl Value {
    /// `value` of the variable `name`, hidden when the name looks like a secret's.
    pub(crate) fn of(name: &str, value: &str) -> Self {
        match kiln_frontend::is_secret_name(name) {
            true => Value::Hidden(
                Digest::of(format!("kiln-explain-value\0{name}\0{value}").as_bytes()).hex()[..16].to_owned(),
            ),
            false => Value::Plain(value.to_owned()),
        }
    }

    fn shown(value: &Option<Value>) -> String {
        match value {
            None => "(unset)".to_owned(),
            Some(Value::Plain(v)) => format!("{v:?}"),
            Some(Value::Hidden(_)) => "(hidden)".to_owned(),
        }
    }
}

/// The base image an image step resolved to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Base {
    pub(crate) name: String,
    /// The manifest's digest, `sha256:…`.
    pub(crate) digest: String,
}

/// An input of a step: the slot of the step that made it (when it has one),
/// and its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Input {
    pub(crate) slot: Option<String>,
    pub(crate) key: CacheKey,
}

/// What fed a step's cache key when it was last built.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StepRecord {
    pub(crate) version: u32,
    pub(crate) key: CacheKey,
    /// The digest of the operation alone (not its inputs): the whole
    /// definition, for what no field below names.
    pub(crate) op: Digest,
    /// The instruction as written (URL passwords redacted).
    pub(crate) text: String,
    /// The ARGs in scope.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) args: Vec<(String, Value)>,
    /// A RUN's environment, but the ARGs (named in `args`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) env: Vec<(String, Value)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) base: Option<Base>,
    /// The checksum of the files it read (a COPY's from the context).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) content: Option<Digest>,
    pub(crate) inputs: Vec<Input>,
}

impl StepRecord {
    pub(crate) fn decode(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice::<Self>(bytes).ok().filter(|r| r.version == RECORD_VERSION)
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a step record serialises")
    }
}

/// The files a step read and a short digest of each, sorted by path; `None`
/// entries when there were more than [`MAX_LISTED_FILES`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Listing {
    pub(crate) content: Option<Digest>,
    pub(crate) files: Option<Vec<(String, String)>>,
}

impl Listing {
    /// The listing of `files` (path, digest), which the step's `content` checksum sums up.
    pub(crate) fn new(content: Option<Digest>, files: Vec<(String, Digest)>) -> Self {
        if files.len() > MAX_LISTED_FILES {
            return Listing { content, files: None };
        }
        let mut files: Vec<(String, String)> =
            files.into_iter().map(|(p, d)| (p, d.hex()[..FILE_DIGEST_HEX].to_owned())).collect();
        files.sort();
        Listing { content, files: Some(files) }
    }
}

/// Why a step's key is not what it was, or why it ran anyway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// This store never built this step before (or forgot it).
    New,
    /// `kiln build --no-cache`.
    NoCache,
    /// `--no-cache-filter` named the step's stage.
    NoCacheFilter(String),
    /// The instruction's text.
    Instruction { old: String, new: String },
    /// The base image behind the same name moved, or the name changed.
    Base { old: String, new: String, old_digest: String, new_digest: String },
    /// A build arg (an ARG in scope); `None` when it had no value.
    Arg { name: String, old: String, new: String },
    /// A variable of a RUN's environment (ENV).
    Env { name: String, old: String, new: String },
    /// The files it reads, by path.
    Files { added: Vec<String>, removed: Vec<String>, changed: Vec<String> },
    /// The files it reads changed, but which is not known (no listing kept).
    Content,
    /// An input made by another step changed; `index` is that step's `#N`.
    Input { index: usize, step: String, changes: Vec<Change> },
    /// Something the fields above do not name (a flag, USER, WORKDIR, SHELL…).
    Definition,
    /// Nothing changed, but the stored result is gone (pruned).
    Gone,
}

/// What differs between `old` and `new` in their own fields (not their
/// inputs, which the caller follows); empty when only inputs differ.
pub(crate) fn diff(old: &StepRecord, new: &StepRecord, files: Option<(&Listing, &Listing)>) -> Vec<Change> {
    let mut changes = Vec::new();
    if old.text != new.text {
        changes.push(Change::Instruction { old: old.text.clone(), new: new.text.clone() });
    }
    if let (Some(o), Some(n)) = (&old.base, &new.base) {
        if o != n {
            let (old_digest, new_digest) = (o.digest.clone(), n.digest.clone());
            changes.push(Change::Base { old: o.name.clone(), new: n.name.clone(), old_digest, new_digest });
        }
    }
    for (name, old, new) in variables(&old.args, &new.args) {
        changes.push(Change::Arg { name, old, new });
    }
    for (name, old, new) in variables(&old.env, &new.env) {
        changes.push(Change::Env { name, old, new });
    }
    if old.content != new.content {
        changes.push(match files {
            Some((Listing { files: Some(o), .. }, Listing { files: Some(n), .. })) => files_diff(o, n),
            _ => Change::Content,
        });
    }
    if changes.is_empty() && old.op != new.op {
        changes.push(Change::Definition);
    }
    changes
}

/// The variables whose value differs: (name, old shown, new shown).
fn variables(old: &[(String, Value)], new: &[(String, Value)]) -> Vec<(String, String, String)> {
    let get = |list: &[(String, Value)], name: &str| list.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    let mut names: Vec<&String> = old.iter().chain(new).map(|(n, _)| n).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter_map(|name| {
            let (o, n) = (get(old, name), get(new, name));
            (o != n).then(|| (name.clone(), Value::shown(&o), Value::shown(&n)))
        })
        .collect()
}

/// Both listings are sorted by path: one merge pass.
fn files_diff(old: &[(String, String)], new: &[(String, String)]) -> Change {
    let (mut added, mut removed, mut changed) = (Vec::new(), Vec::new(), Vec::new());
    let (mut o, mut n) = (old.iter().peekable(), new.iter().peekable());
    loop {
        match (o.peek(), n.peek()) {
            (None, None) => break,
            (Some((op, _)), None) => {
                removed.push(op.clone());
                o.next();
            }
            (None, Some((np, _))) => {
                added.push(np.clone());
                n.next();
            }
            (Some((op, od)), Some((np, nd))) => match op.cmp(np) {
                std::cmp::Ordering::Less => {
                    removed.push(op.clone());
                    o.next();
                }
                std::cmp::Ordering::Greater => {
                    added.push(np.clone());
                    n.next();
                }
                std::cmp::Ordering::Equal => {
                    if od != nd {
                        changed.push(np.clone());
                    }
                    o.next();
                    n.next();
                }
            },
        }
    }
    Change::Files { added, removed, changed }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(text: &str) -> StepRecord {
        StepRecord {
            version: RECORD_VERSION,
            key: CacheKey(Digest::of(text.as_bytes())),
            op: Digest::of(text.as_bytes()),
            text: text.to_owned(),
            args: Vec::new(),
            env: Vec::new(),
            base: None,
            content: None,
            inputs: Vec::new(),
        }
    }

    fn listing(content: &str, files: &[(&str, &str)]) -> Listing {
        let files = files.iter().map(|(p, c)| (p.to_string(), Digest::of(c.as_bytes()))).collect();
        Listing::new(Some(Digest::of(content.as_bytes())), files)
    }

    #[test]
    fn each_field_is_told_apart() {
        let base = |name: &str, d: &str| Some(Base { name: name.into(), digest: d.into() });
        let args = |v: &[(&str, &str)]| v.iter().map(|(n, v)| (n.to_string(), Value::of(n, v))).collect::<Vec<_>>();
        let old = record("RUN make");
        let cases: Vec<(StepRecord, Vec<Change>)> = vec![
            (old.clone(), vec![]),
            (
                StepRecord { text: "RUN make all".into(), ..old.clone() },
                vec![Change::Instruction { old: "RUN make".into(), new: "RUN make all".into() }],
            ),
            (
                StepRecord { args: args(&[("V", "2")]), ..old.clone() },
                vec![Change::Arg { name: "V".into(), old: "(unset)".into(), new: "\"2\"".into() }],
            ),
            (
                StepRecord { env: args(&[("API_TOKEN", "s3cret")]), ..old.clone() },
                vec![Change::Env { name: "API_TOKEN".into(), old: "(unset)".into(), new: "(hidden)".into() }],
            ),
            (StepRecord { op: Digest::of(b"other"), ..old.clone() }, vec![Change::Definition]),
            (StepRecord { content: Some(Digest::of(b"c")), ..old.clone() }, vec![Change::Content]),
        ];
        for (new, want) in cases {
            assert_eq!(diff(&old, &new, None), want, "{new:?}");
        }
        let (a, b) =
            (StepRecord { base: base("alpine", "1"), ..old.clone() }, StepRecord { base: base("alpine", "2"), ..old });
        assert_eq!(
            diff(&a, &b, None),
            [Change::Base {
                old: "alpine".into(),
                new: "alpine".into(),
                old_digest: "1".into(),
                new_digest: "2".into()
            }]
        );
    }

    #[test]
    fn a_secret_looking_value_is_never_kept_nor_shown() {
        let (a, b) = (Value::of("API_TOKEN", "one"), Value::of("API_TOKEN", "two"));
        assert_ne!(a, b);
        let stored = String::from_utf8(serde_json::to_vec(&(&a, &b)).unwrap()).unwrap();
        assert!(!stored.contains("one") && !stored.contains("two"), "{stored}");
        assert_eq!(Value::of("VERSION", "1"), Value::Plain("1".into()));
    }

    #[test]
    fn files_are_told_added_removed_and_changed() {
        let old = StepRecord { content: Some(Digest::of(b"1")), ..record("COPY . /app") };
        let new = StepRecord { content: Some(Digest::of(b"2")), ..old.clone() };
        let (lo, ln) =
            (listing("1", &[("a", "1"), ("b", "1"), ("c", "1")]), listing("2", &[("b", "2"), ("c", "1"), ("d", "1")]));
        assert_eq!(
            diff(&old, &new, Some((&lo, &ln))),
            [Change::Files { added: vec!["d".into()], removed: vec!["a".into()], changed: vec!["b".into()] }]
        );
        // Too many files to list: the change without names.
        let huge = Listing::new(None, vec![(String::new(), Digest::of(b"")); MAX_LISTED_FILES + 1]);
        assert_eq!(huge.files, None);
        assert_eq!(diff(&old, &new, Some((&lo, &huge))), [Change::Content]);
    }

    #[test]
    fn only_inputs_changed_is_no_own_change() {
        let old = record("RUN make");
        let input = |k: &str| Input { slot: Some("s".into()), key: CacheKey(Digest::of(k.as_bytes())) };
        let (a, b) = (
            StepRecord { inputs: vec![input("1")], ..old.clone() },
            StepRecord { inputs: vec![input("2")], key: CacheKey(Digest::of(b"k2")), ..old },
        );
        assert_eq!(diff(&a, &b, None), []);
    }
}
