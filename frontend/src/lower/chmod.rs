//! `--chmod`'s syntax: an octal mode (`755`, `0644`) or a symbolic one as
//! chmod(1) writes it (`u+x`, `go-w`, `a=rX,u+s`). The engine applies it.

pub(super) fn is_valid(mode: &str) -> bool {
    if !mode.is_empty() && mode.len() <= 4 && mode.chars().all(|c| ('0'..='7').contains(&c)) {
        return true;
    }
    !mode.is_empty() && mode.split(',').all(clause)
}

/// `[ugoa]*` then one or more actions, each `[-+=]` then `[rwxXst]*` or one of `u`, `g`, `o`.
fn clause(text: &str) -> bool {
    let rest = text.trim_start_matches(['u', 'g', 'o', 'a']);
    let mut chars = rest.chars().peekable();
    let mut actions = 0;
    while let Some(op) = chars.next() {
        if !matches!(op, '+' | '-' | '=') {
            return false;
        }
        actions += 1;
        if chars.peek().is_some_and(|c| matches!(c, 'u' | 'g' | 'o')) {
            chars.next();
            continue;
        }
        while chars.peek().is_some_and(|c| "rwxXst".contains(*c)) {
            chars.next();
        }
    }
    actions > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        for ok in ["755", "0644", "7", "u+x", "go-w", "a=rX", "u+x,g-w", "+x", "=", "u=g", "ug+rw-x", "o="] {
            assert!(is_valid(ok), "{ok}");
        }
        for bad in ["", "8", "07555", "u", "x+u", "u+z", "u+x,", "a+ug", "0x1ff", "u+x g-w"] {
            assert!(!is_valid(bad), "{bad}");
        }
    }
}
