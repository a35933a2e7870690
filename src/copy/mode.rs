//! `--chmod`: an octal mode, or (BuildKit ≥ 1.14) a symbolic one as chmod(1)
//! takes it (`u+x`, `go-w`, `a=rX`, `u=rw,g=r`), applied to each file and
//! folder copied. With no `ugoa` before the operator a clause is for all
//! three (no umask: BuildKit applies none).

/// A parsed `--chmod`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Chmod {
    /// The permission bits (and setuid, setgid, sticky) to set.
    Octal(u32),
    /// Clauses applied in order to each entry's own mode.
    Symbolic(Vec<Clause>),
}

/// One `who op perms` clause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Clause {
    /// The bits of `u`, `g`, `o` it touches (`0o7777`-style masks).
    who: u32,
    op: char,
    perms: Perms,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Perms {
    /// `rwxXst` letters.
    Letters { bits: u32, big_x: bool },
    /// `u`, `g` or `o`: a copy of that class's current bits.
    Copy(char),
}

const USER: u32 = 0o4700;
const GROUP: u32 = 0o2070;
const OTHER: u32 = 0o1007;

impl Chmod {
    /// Parse `spec`; `None` when it is neither octal nor symbolic.
    pub(super) fn parse(spec: &str) -> Option<Chmod> {
        if !spec.is_empty() && spec.bytes().all(|b| b.is_ascii_digit()) {
            return u32::from_str_radix(spec, 8).ok().filter(|m| *m <= 0o7777).map(Chmod::Octal);
        }
        spec.split(',').map(clauses).collect::<Option<Vec<_>>>().map(|c| Chmod::Symbolic(c.concat()))
    }

    /// `mode` (the entry's permission bits) after this chmod.
    pub(super) fn apply(&self, mode: u32, is_dir: bool) -> u32 {
        let clauses = match self {
            Chmod::Octal(m) => return *m,
            Chmod::Symbolic(c) => c,
        };
        let mut mode = mode & 0o7777;
        for c in clauses {
            let bits = match c.perms {
                Perms::Letters { bits, big_x } => {
                    let x = big_x && (is_dir || mode & 0o111 != 0);
                    bits | if x { 0o111 } else { 0 }
                }
                // The class's rwx bits, copied onto every class.
                Perms::Copy(from) => {
                    let rwx = match from {
                        'u' => (mode >> 6) & 7,
                        'g' => (mode >> 3) & 7,
                        _ => mode & 7,
                    };
                    rwx * 0o111
                }
            } & c.who;
            mode = match c.op {
                '+' => mode | bits,
                '-' => mode & !bits,
                // `=` clears the class's rwx (and its special bit, but a
                // folder's setgid, as chmod(1) keeps it) before setting.
                _ => {
                    let keep = if is_dir { 0o2000 } else { 0 };
                    (mode & !(c.who & !keep)) | bits
                }
            };
        }
        mode
    }
}

/// The clauses of one comma-separated part: `[ugoa]*([-+=][rwxXst]*|[-+=][ugo])+`.
fn clauses(part: &str) -> Option<Vec<Clause>> {
    let who_len = part.find(['+', '-', '='])?;
    let mut who = 0;
    for c in part[..who_len].chars() {
        who |= match c {
            'u' => USER,
            'g' => GROUP,
            'o' => OTHER,
            'a' => USER | GROUP | OTHER,
            _ => return None,
        };
    }
    if who == 0 {
        who = USER | GROUP | OTHER;
    }
    let mut out = Vec::new();
    let mut rest = &part[who_len..];
    while let Some(op) = rest.chars().next() {
        let end = rest[1..].find(['+', '-', '=']).map_or(rest.len(), |i| i + 1);
        let letters = &rest[1..end];
        let perms = match letters {
            "u" | "g" | "o" => Perms::Copy(letters.chars().next()?),
            _ => {
                let (mut bits, mut big_x) = (0, false);
                for l in letters.chars() {
                    bits |= match l {
                        'r' => 0o444,
                        'w' => 0o222,
                        'x' => 0o111,
                        'X' => {
                            big_x = true;
                            0
                        }
                        's' => 0o6000,
                        't' => 0o1000,
                        _ => return None,
                    };
                }
                Perms::Letters { bits, big_x }
            }
        };
        out.push(Clause { who, op, perms });
        rest = &rest[end..];
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_and_symbolic_modes() {
        for (spec, mode, is_dir, want) in [
            ("755", 0o600, false, 0o755),
            ("0640", 0o777, true, 0o640),
            ("4755", 0o644, false, 0o4755),
            ("u+x", 0o644, false, 0o744),
            ("+x", 0o644, false, 0o755),
            ("go-w", 0o666, false, 0o644),
            ("a=rX", 0o640, false, 0o444),
            ("a=rX", 0o740, false, 0o555),
            ("a=rX", 0o700, true, 0o555),
            ("u=rw,g=r", 0o777, false, 0o647),
            ("u=rwx,go=", 0o644, false, 0o700),
            ("o=u", 0o750, false, 0o757),
            ("g+s", 0o755, true, 0o2755),
            ("+t", 0o777, true, 0o1777),
            ("u-x+s", 0o755, false, 0o4655),
            ("a-rwx", 0o2775, true, 0o2000),
            ("a=", 0o2775, true, 0o2000),
            ("a=", 0o2775, false, 0),
        ] {
            let chmod = Chmod::parse(spec).unwrap_or_else(|| panic!("{spec}"));
            assert_eq!(
                chmod.apply(mode, is_dir),
                want,
                "{spec} on {mode:o} (dir: {is_dir}): got {:o}",
                chmod.apply(mode, is_dir)
            );
        }
        for bad in ["", "8", "77777", "u", "z+x", "u+q", "u+x,", "rwx", "-1"] {
            assert_eq!(Chmod::parse(bad), None, "{bad}");
        }
    }
}
