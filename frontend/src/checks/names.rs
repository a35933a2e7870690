//! The rules about how things are written: stage names, keyword casing,
//! MAINTAINER, blank lines in continuations.

use std::collections::BTreeSet;

use super::file::File;
use super::{Rule, Warning};
use crate::error::Location;

/// Names BuildKit gives a meaning of its own.
const RESERVED_STAGE_NAMES: &[&str] = &["context", "scratch"];

pub(super) fn check(file: &File, found: &mut Vec<Warning>) {
    let mut warn = |rule, message: String, location| found.push(Warning { rule, message, location });
    let mut seen = BTreeSet::new();
    for stage in &file.stages {
        if let Some((as_word, name)) = &stage.alias {
            let lower = name.to_lowercase();
            if *name != lower {
                warn(Rule::StageNameCasing, format!("Stage name '{name}' should be lowercase"), stage.location);
            }
            if !cased_alike(&stage.keyword, as_word) {
                let message = format!("'{as_word}' and '{}' keywords' casing do not match", stage.keyword);
                warn(Rule::FromAsCasing, message, stage.location);
            }
            if RESERVED_STAGE_NAMES.contains(&lower.as_str()) {
                let message = format!("Stage name should not use the same name as reserved stage \"{lower}\"");
                warn(Rule::ReservedStageName, message, stage.location);
            }
            if !seen.insert(lower.clone()) {
                let message = format!("Duplicate stage name \"{lower}\", stage names should be unique");
                warn(Rule::DuplicateStageName, message, stage.location);
            }
        }
        for command in &stage.commands {
            if command.upper == "MAINTAINER" {
                let message = "Maintainer instruction is deprecated in favor of using label".to_owned();
                warn(Rule::MaintainerDeprecated, message, command.location);
            }
        }
    }
    casing(file, found);
    for location in &file.empty_continuations {
        let message = "Empty continuation line".to_owned();
        found.push(Warning { rule: Rule::NoEmptyContinuation, message, location: *location });
    }
}

/// `as` must follow FROM's casing when FROM is all lower or all upper case;
/// a mixed-case FROM is ConsistentInstructionCasing's business.
fn cased_alike(from: &str, as_word: &str) -> bool {
    if from == from.to_lowercase() {
        as_word == as_word.to_lowercase()
    } else if from == from.to_uppercase() {
        as_word == as_word.to_uppercase()
    } else {
        true
    }
}

/// ConsistentInstructionCasing: the stages' keywords (the global ARGs do not
/// count, as in BuildKit) against the casing most of them use; a tie is
/// uppercase.
fn casing(file: &File, found: &mut Vec<Warning>) {
    let keywords: Vec<(&str, Location)> = file
        .stages
        .iter()
        .flat_map(|s| {
            std::iter::once((s.keyword.as_str(), s.location))
                .chain(s.commands.iter().map(|c| (c.keyword.as_str(), c.location)))
        })
        .collect();
    let (mut lower, mut upper) = (0, 0);
    for (k, _) in &keywords {
        if *k == k.to_lowercase() {
            lower += 1;
        } else if *k == k.to_uppercase() {
            upper += 1;
        }
    }
    let majority_lower = lower > upper;
    for (k, location) in keywords {
        let casing = match majority_lower {
            true if k != k.to_lowercase() => "lowercase",
            false if k != k.to_uppercase() => "uppercase",
            _ => continue,
        };
        let message = format!("Command '{k}' should match the case of the command majority ({casing})");
        found.push(Warning { rule: Rule::ConsistentInstructionCasing, message, location });
    }
}
