//! The rules about FROM's variables: UndefinedArgInFrom and InvalidDefaultArgInFrom.

use std::collections::{BTreeMap, BTreeSet};

use super::file::File;
use super::{reference, suggest, Rule, Warning};
use crate::options::BuildOptions;
use crate::shell::Lexer;

/// The ARGs BuildKit defines for FROM lines without a declaration.
pub(super) const PREDEFINED: &[&str] = &[
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDOSVERSION",
    "BUILDARCH",
    "BUILDVARIANT",
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETOSVERSION",
    "TARGETARCH",
    "TARGETVARIANT",
    "TARGETSTAGE",
];

pub(super) fn check(file: &File, lexer: &Lexer, opts: &BuildOptions, found: &mut Vec<Warning>) {
    undefined_args(file, lexer, opts, found);
    invalid_defaults(file, lexer, opts, found);
    platforms(file, lexer, opts, found);
}

/// The predefined ARGs' values: the platform's parts (empty without one),
/// build args overriding them, as BuildKit's defaultArgs.
pub(super) fn predefined(opts: &BuildOptions) -> BTreeMap<String, String> {
    let platform = opts.platform.clone().unwrap_or_default();
    let mut parts = platform.splitn(3, '/');
    let (os, arch, variant) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let target = opts.target.clone().unwrap_or_default();
    let mut env = BTreeMap::new();
    for side in ["BUILD", "TARGET"] {
        for (key, value) in
            [("PLATFORM", platform.as_str()), ("OS", os), ("OSVERSION", ""), ("ARCH", arch), ("VARIANT", variant)]
        {
            env.insert(format!("{side}{key}"), value.to_owned());
        }
    }
    env.insert("TARGETSTAGE".to_owned(), target);
    for name in PREDEFINED {
        if let Some(v) = opts.build_args.get(*name) {
            env.insert((*name).to_owned(), v.clone());
        }
    }
    env
}

/// The global ARGs' values, each default expanded with those before it;
/// `build_args` lets `--build-arg` values win. `None` if a default cannot
/// be expanded (the build reports that).
pub(super) fn global_env(
    file: &File,
    lexer: &Lexer,
    opts: &BuildOptions,
    build_args: bool,
) -> Option<BTreeMap<String, String>> {
    let mut env = predefined(opts);
    for (decl, _) in &file.global_args {
        let value = match (build_args.then(|| opts.build_args.get(&decl.name)).flatten(), &decl.default) {
            (Some(v), _) => Some(v.clone()),
            (None, Some(default)) => Some(lexer.expand(&default.raw, &|n| env.get(n).cloned()).ok()?),
            (None, None) => None,
        };
        if let Some(v) = value {
            env.insert(decl.name.clone(), v);
        }
    }
    Some(env)
}

/// A FROM (its image or `--platform`) using a variable no global ARG
/// declares and nothing predefines.
fn undefined_args(file: &File, lexer: &Lexer, opts: &BuildOptions, found: &mut Vec<Warning>) {
    let Some(env) = global_env(file, lexer, opts, true) else {
        return;
    };
    let known: BTreeSet<&str> =
        env.keys().map(String::as_str).chain(file.global_args.iter().map(|(d, _)| d.name.as_str())).collect();
    for stage in &file.stages {
        for word in std::iter::once(&stage.base).chain(stage.platform.as_ref()) {
            let Ok(expansion) = lexer.process(word, &|n| env.get(n).cloned()) else {
                continue;
            };
            for name in expansion.unmatched.iter().filter(|n| !known.contains(n.as_str())) {
                let hint = suggest::did_you_mean(name, "", known.iter().copied());
                let message = format!("FROM argument '{name}' is not declared{hint}");
                found.push(Warning { rule: Rule::UndefinedArgInFrom, message, location: stage.location });
            }
        }
    }
}

/// A FROM whose image, with every global ARG at its default (no build args),
/// is not a valid image name: the file only builds when given build args.
fn invalid_defaults(file: &File, lexer: &Lexer, opts: &BuildOptions, found: &mut Vec<Warning>) {
    let Some(env) = global_env(file, lexer, opts, false) else {
        return;
    };
    for stage in &file.stages {
        // As in BuildKit, an expansion error stops this rule (the build reports it).
        let Ok(name) = lexer.expand(&stage.base, &|n| env.get(n).cloned()) else {
            return;
        };
        if !reference::is_valid(&name) {
            let message = format!("Default value for ARG {} results in empty or invalid base image name", stage.base);
            found.push(Warning { rule: Rule::InvalidDefaultArgInFrom, message, location: stage.location });
        }
    }
}

/// RedundantTargetPlatform and FromPlatformFlagConstDisallowed: what FROM's
/// `--platform` says.
fn platforms(file: &File, lexer: &Lexer, opts: &BuildOptions, found: &mut Vec<Warning>) {
    let Some(env) = global_env(file, lexer, opts, true) else {
        return;
    };
    for stage in &file.stages {
        let Some(raw) = &stage.platform else {
            continue;
        };
        let Ok(expansion) = lexer.process(raw, &|n| env.get(n).cloned()) else {
            continue;
        };
        let only_target = expansion.unmatched.is_empty()
            && expansion.matched.len() == 1
            && expansion.matched.contains("TARGETPLATFORM");
        if only_target && env.get("TARGETPLATFORM") == Some(&expansion.text) {
            let message =
                format!("Setting platform to predefined {raw} in FROM is redundant as this is the default behavior");
            found.push(Warning { rule: Rule::RedundantTargetPlatform, message, location: stage.location });
        }
        if !expansion.matched.is_empty() || !expansion.unmatched.is_empty() {
            continue;
        }
        // A stage named for its platform (`AS build-arm64`) may pin it.
        let Some((os, arch)) = os_arch(&expansion.text) else {
            continue;
        };
        let name = stage.name().unwrap_or_default();
        if name.contains(&os) || name.contains(&arch) {
            continue;
        }
        let message = format!("FROM --platform flag should not use constant value {:?}", expansion.text);
        found.push(Warning { rule: Rule::FromPlatformFlagConstDisallowed, message, location: stage.location });
    }
}

/// `os/arch[/variant]`'s OS and architecture, normalised as containerd's
/// platforms package does for the common aliases.
fn os_arch(platform: &str) -> Option<(String, String)> {
    let mut parts = platform.split('/');
    let os = parts.next().filter(|s| !s.is_empty())?.to_lowercase();
    let arch = match parts.next()?.to_lowercase().as_str() {
        "x86_64" | "x86-64" => "amd64".to_owned(),
        "aarch64" => "arm64".to_owned(),
        "i386" => "386".to_owned(),
        "" => return None,
        other => other.to_owned(),
    };
    Some((os, arch))
}
