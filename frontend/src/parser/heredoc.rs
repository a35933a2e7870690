//! Heredocs (`RUN <<EOF`, `COPY <<A /a <<B /b`): which words of an
//! instruction line are heredoc markers, and the body lines that follow it.
//!
//! As in BuildKit: a marker is a word `[digits]<<[-]WORD` (no further `<`);
//! WORD without its quotes is the name and the terminator line; a quote
//! anywhere in it turns expansion off; `<<-` strips leading tabs from the
//! terminator line here, and from each body line when the body is used
//! (`chomp`). Bodies are kept raw, one per marker in order.

use crate::shell::Lexer;

/// One heredoc of an instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Heredoc {
    /// The delimiter word, unquoted.
    pub(crate) name: String,
    /// The body as written, each line ending in `\n`, leading tabs kept.
    pub(crate) content: String,
    /// False when the delimiter was quoted: no variable expansion.
    pub(crate) expand: bool,
    /// `<<-`: leading tabs go.
    pub(crate) chomp: bool,
}

impl Heredoc {
    /// The body as the instruction uses it: leading tabs stripped under `<<-`.
    pub(crate) fn body(&self) -> String {
        if self.chomp {
            chomp(&self.content)
        } else {
            self.content.clone()
        }
    }
}

/// Each line without its leading tabs.
pub(crate) fn chomp(content: &str) -> String {
    content.split_inclusive('\n').map(|l| l.trim_start_matches('\t')).collect()
}

/// The heredoc `word` is a marker of, with an empty body; `None` if it is none.
pub(crate) fn marker(word: &str) -> Option<Heredoc> {
    let rest = word.trim_start_matches(|c: char| c.is_ascii_digit()).strip_prefix("<<")?;
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    if rest.is_empty() || rest.contains('<') {
        return None;
    }
    let (name, quoted) = unquote(rest)?;
    Some(Heredoc { name, content: String::new(), expand: !quoted, chomp })
}

/// The markers among the words of an instruction line, in order.
pub(crate) fn markers(line: &str) -> Vec<Heredoc> {
    if !line.contains("<<") {
        return Vec::new();
    }
    // BuildKit splits with the default escape, whatever the file's.
    let lexer = Lexer::new('\\');
    lexer.split(line).into_iter().filter_map(|(_, word)| marker(word)).collect()
}

/// A shell word with its quotes and escapes removed, and whether it had
/// quotes; `None` when it is several words or a quote is left open.
fn unquote(text: &str) -> Option<(String, bool)> {
    let mut out = String::new();
    let mut quoted = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                quoted = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => out.push(c),
                    }
                }
            }
            '"' => {
                quoted = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => match chars.next()? {
                            c @ ('"' | '\\' | '$' | '`') => out.push(c),
                            c => {
                                out.push('\\');
                                out.push(c);
                            }
                        },
                        c => out.push(c),
                    }
                }
            }
            '\\' => out.push(chars.next()?),
            c if c.is_whitespace() => return None,
            c => out.push(c),
        }
    }
    Some((out, quoted))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(word: &str) -> Option<(String, bool, bool)> {
        marker(word).map(|h| (h.name, h.expand, h.chomp))
    }

    #[test]
    fn markers_of_words() {
        let some = |n: &str, e, c| Some((n.to_owned(), e, c));
        assert_eq!(m("<<EOF"), some("EOF", true, false));
        assert_eq!(m("<<-EOF"), some("EOF", true, true));
        assert_eq!(m("<<'EOF'"), some("EOF", false, false));
        assert_eq!(m("<<-\"E O\""), some("E O", false, true));
        assert_eq!(m("<<E'O'F"), some("EOF", false, false));
        assert_eq!(m("<<\\EOF"), some("EOF", true, false));
        assert_eq!(m("3<<EOF"), some("EOF", true, false));
        assert_eq!(m("<<"), None);
        assert_eq!(m("<<-"), None);
        assert_eq!(m("<<<EOF"), None);
        assert_eq!(m("$((1<<2))"), None);
        assert_eq!(m("a<<EOF"), None);
        assert_eq!(m("<<'EOF"), None);
        assert_eq!(m("<<EOF cat"), None);
    }

    #[test]
    fn markers_of_lines() {
        let names = |l: &str| markers(l).into_iter().map(|h| h.name).collect::<Vec<_>>();
        assert_eq!(names("RUN <<A <<-'B' cat"), ["A", "B"]);
        assert_eq!(names("COPY <<a.txt /a <<\"b c\" /b"), ["a.txt", "b c"]);
        assert_eq!(names("RUN echo '<<X' $((1<<2))"), Vec::<String>::new());
        assert_eq!(names("RUN python3 <<EOF > out"), ["EOF"]);
    }

    #[test]
    fn chomps() {
        assert_eq!(chomp("\t\ta\n\tb\t\n c\n"), "a\nb\t\n c\n");
    }
}
