//! HEALTHCHECK: `NONE`, or `CMD` and a command with its timing flags
//! (durations written as Go's `time.ParseDuration` reads them).

use super::{flag, CommandLine, InstructionError, Word};
use crate::error::Error;
use crate::parser::{json_form, Node};

/// A HEALTHCHECK; durations in nanoseconds, 0 when not given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Health {
    /// `None` for `HEALTHCHECK NONE`.
    pub(crate) test: Option<CommandLine>,
    pub(crate) interval: u64,
    pub(crate) timeout: u64,
    pub(crate) start_period: u64,
    pub(crate) start_interval: u64,
    pub(crate) retries: u64,
}

pub(super) fn healthcheck(node: &Node) -> Result<Health, Error> {
    let rest = node.rest.as_str();
    let type_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    let kind = rest[..type_end].to_ascii_uppercase();
    let command_start = type_end + (rest[type_end..].len() - rest[type_end..].trim_start().len());
    let command = &rest[command_start..];
    let none = Health { test: None, interval: 0, timeout: 0, start_period: 0, start_interval: 0, retries: 0 };
    match kind.as_str() {
        "NONE" if command.is_empty() => return Ok(none),
        "NONE" => return Err(Error::at(node.location_of(command_start), InstructionError::HealthcheckNoneArgs)),
        "CMD" => {}
        _ => {
            let e = InstructionError::HealthcheckType(rest[..type_end].to_owned());
            return Err(Error::at(node.location_of(0), e));
        }
    }
    let test = match json_form(command).map_err(|e| Error::at(node.location_of(command_start), e))? {
        Some(args) if args.is_empty() => None,
        Some(args) => Some(CommandLine::Exec(args)),
        None if command.is_empty() => None,
        None => Some(CommandLine::Shell(command.to_owned())),
    };
    let Some(test) = test else {
        return Err(Error::at(node.location, InstructionError::HealthcheckCommand));
    };
    let duration = |name: &'static str| flag(node, name).map_or(Ok(0), |w| interval(name, &w));
    let retries = match flag(node, "retries") {
        None => 0,
        Some(w) => w.raw.parse::<i32>().ok().and_then(|n| u64::try_from(n).ok()).ok_or_else(|| {
            let e = InstructionError::Duration {
                flag: "retries",
                value: w.raw.clone(),
                reason: "expected a count, 0 or more",
            };
            Error::at(w.location, e)
        })?,
    };
    Ok(Health {
        test: Some(test),
        interval: duration("interval")?,
        timeout: duration("timeout")?,
        start_period: duration("start-period")?,
        start_interval: duration("start-interval")?,
        retries,
    })
}

/// A duration flag as docker checks it: 0 means the default; anything else
/// must be at least a millisecond.
fn interval(name: &'static str, w: &Word) -> Result<u64, Error> {
    let refuse =
        |reason| Error::at(w.location, InstructionError::Duration { flag: name, value: w.raw.clone(), reason });
    match parse_duration(&w.raw) {
        None => Err(refuse("expected a duration such as 30s, 1m30s or 500ms")),
        Some(0) => Ok(0),
        Some(d) if d < 1_000_000 => Err(refuse("it cannot be less than 1ms")),
        Some(d) => u64::try_from(d).map_err(|_| refuse("it is out of range")),
    }
}

/// Go's `time.ParseDuration`: `[-+]?([0-9]*(\.[0-9]*)?unit)+` or a bare `0`,
/// in nanoseconds; `None` when malformed or beyond ±2^63 ns.
pub fn parse_duration(text: &str) -> Option<i128> {
    let (negative, mut s) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if s == "0" {
        return Some(0);
    }
    if s.is_empty() {
        return None;
    }
    let mut total: i128 = 0;
    while !s.is_empty() {
        let int_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (int, after) = s.split_at(int_end);
        let (frac, after) = match after.strip_prefix('.') {
            Some(a) => a.split_at(a.find(|c: char| !c.is_ascii_digit()).unwrap_or(a.len())),
            None => ("", after),
        };
        if int.is_empty() && frac.is_empty() {
            return None;
        }
        let unit_end = after.find(|c: char| c == '.' || c.is_ascii_digit()).unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_end);
        let scale: i128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        let whole: i128 = if int.is_empty() { 0 } else { int.parse().ok()? };
        let mut part = whole.checked_mul(scale)?;
        if !frac.is_empty() {
            // Digits past nanosecond precision do not change the result.
            let digits = &frac[..frac.len().min(20)];
            let f: i128 = digits.parse().ok()?;
            part += f * scale / 10i128.pow(u32::try_from(digits.len()).ok()?);
        }
        total = total.checked_add(part)?;
        if total > i128::from(i64::MAX) + i128::from(negative) {
            return None;
        }
        s = next;
    }
    Some(if negative { -total } else { total })
}

/// Go's `time.Duration.String()`: `1h2m3.5s`, `500ms`, `0s`.
pub(crate) fn format_duration(ns: u64) -> String {
    if ns == 0 {
        return "0s".to_owned();
    }
    let frac = |value: u64, unit: u64| {
        let (whole, rest) = (value / unit, value % unit);
        if rest == 0 {
            whole.to_string()
        } else {
            let width = unit.ilog10() as usize;
            let digits = format!("{rest:0width$}");
            format!("{whole}.{}", digits.trim_end_matches('0'))
        }
    };
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    if ns < 1_000_000 {
        return format!("{}µs", frac(ns, 1_000));
    }
    if ns < 1_000_000_000 {
        return format!("{}ms", frac(ns, 1_000_000));
    }
    let secs = ns % 60_000_000_000;
    let mins = ns / 60_000_000_000;
    let mut out = String::new();
    if mins >= 60 {
        out += &format!("{}h", mins / 60);
    }
    if mins > 0 {
        out += &format!("{}m", mins % 60);
    }
    out + &format!("{}s", frac(secs, 1_000_000_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        for (text, want) in [
            ("0", Some(0)),
            ("30s", Some(30_000_000_000)),
            ("1m30s", Some(90_000_000_000)),
            ("1.5h", Some(5_400_000_000_000)),
            ("500ms", Some(500_000_000)),
            ("2us", Some(2_000)),
            ("2µs", Some(2_000)),
            (".5s", Some(500_000_000)),
            ("1.s", Some(1_000_000_000)),
            ("-3s", Some(-3_000_000_000)),
            ("+1ns", Some(1)),
            ("", None),
            ("5", None),
            ("s", None),
            (".s", None),
            ("1d", None),
            ("1s 2s", None),
            ("3000000h", None),
        ] {
            assert_eq!(parse_duration(text), want, "{text:?}");
        }
    }

    #[test]
    fn formats() {
        for (ns, want) in [
            (0, "0s"),
            (30_000_000_000, "30s"),
            (90_000_000_000, "1m30s"),
            (3_600_000_000_000, "1h0m0s"),
            (1_500_000_000, "1.5s"),
            (500_000_000, "500ms"),
            (1_500, "1.5µs"),
            (7, "7ns"),
        ] {
            assert_eq!(format_duration(ns), want, "{ns}");
        }
    }
}
