//! The differences between kiln's image and docker's, one readable line each.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::archive::{Image, Kind, Node};

/// The config fields issue 8 names, and the ones any image has: compared
/// whether or not a case sets them, so a default kiln adds shows up too.
const TOP_LEVEL: &[&str] = &["architecture", "os", "variant", "author"];

/// `with_history` is false when docker built a stand-in Dockerfile, whose
/// history rows are its own.
pub fn differences(kiln: &Image, docker: &Image, mtime_paths: &BTreeSet<String>, with_history: bool) -> Vec<String> {
    let mut out = Vec::new();
    for key in TOP_LEVEL {
        same(&mut out, &format!("config {key}"), &kiln.config[key], &docker.config[key]);
    }
    let (kc, dc) = (normal(&kiln.config["config"]), normal(&docker.config["config"]));
    let keys: BTreeSet<&String> = object_keys(&kc).chain(object_keys(&dc)).collect();
    for key in keys {
        same(&mut out, &format!("config.{key}"), &kc[key.as_str()], &dc[key.as_str()]);
    }
    if with_history {
        history(&mut out, &kiln.config, &docker.config);
    }
    filesystem(&mut out, &kiln.fs, &docker.fs, mtime_paths);
    out
}

fn object_keys(value: &Value) -> impl Iterator<Item = &String> {
    value.as_object().into_iter().flat_map(|o| o.keys())
}

/// Go's `omitempty` drops null, empty lists and empty maps, so docker never
/// writes them: for a container, absent and empty are the same.
fn normal(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            Value::Object(map.iter().filter(|(_, v)| !is_empty(v)).map(|(k, v)| (k.clone(), normal(v))).collect())
        }
        other => other.clone(),
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

fn same(out: &mut Vec<String>, what: &str, kiln: &Value, docker: &Value) {
    if normal(kiln) != normal(docker) {
        out.push(format!("{what}:\n    kiln:   {kiln}\n    docker: {docker}"));
    }
}

fn history(out: &mut Vec<String>, kiln: &Value, docker: &Value) {
    let rows = |config: &Value| -> Vec<String> {
        config["history"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|h| {
                let empty = if h["empty_layer"].as_bool().unwrap_or(false) { " (empty layer)" } else { "" };
                format!("{}{empty}", h["created_by"].as_str().unwrap_or(""))
            })
            .collect()
    };
    let (k, d) = (rows(kiln), rows(docker));
    // BuildKit ends the row of every step that ran LLB with this marker: one
    // systematic difference, told once so the others stand out.
    let marked_only = |i: usize| match (k.get(i), d.get(i)) {
        (Some(kr), Some(dr)) => dr.strip_suffix(BUILDKIT_MARK) == Some(kr.as_str()),
        _ => false,
    };
    let rows_count = k.len().max(d.len());
    let marked: Vec<String> = (0..rows_count).filter(|&i| marked_only(i)).map(|i| i.to_string()).collect();
    if !marked.is_empty() {
        out.push(format!("history rows [{}]: docker's end with \"{BUILDKIT_MARK}\", kiln's do not", marked.join(",")));
    }
    if (0..rows_count).any(|i| !marked_only(i) && k.get(i) != d.get(i)) {
        let mut text = String::from("history (created_by, empty_layer):");
        for i in 0..rows_count {
            let (kr, dr) = (k.get(i).map_or("-", |s| s), d.get(i).map_or("-", |s| s));
            if kr == dr || marked_only(i) {
                text.push_str(&format!("\n    [{i}] same:   {kr}"));
            } else {
                text.push_str(&format!("\n    [{i}] kiln:   {kr}\n    [{i}] docker: {dr}"));
            }
        }
        out.push(text);
    }
}

const BUILDKIT_MARK: &str = " # buildkit";

fn filesystem(
    out: &mut Vec<String>,
    kiln: &BTreeMap<String, Node>,
    docker: &BTreeMap<String, Node>,
    mtime_paths: &BTreeSet<String>,
) {
    let paths: BTreeSet<&String> = kiln.keys().chain(docker.keys()).collect();
    for path in paths {
        match (kiln.get(path), docker.get(path)) {
            (Some(k), None) => out.push(format!("fs {path}: only in kiln's image ({})", describe(k))),
            (None, Some(d)) => out.push(format!("fs {path}: only in docker's image ({})", describe(d))),
            (Some(k), Some(d)) => {
                let (kd, dd) = (describe(k), describe(d));
                if kd != dd {
                    out.push(format!("fs {path}:\n    kiln:   {kd}\n    docker: {dd}"));
                }
                if mtime_paths.contains(path) && k.mtime != d.mtime {
                    out.push(format!("fs {path}: mtime kiln {} docker {}", k.mtime, d.mtime));
                }
            }
            (None, None) => unreachable!("the path came from one of the two"),
        }
    }
}

fn describe(node: &Node) -> String {
    let what = match &node.kind {
        Kind::File { sha256, size, text: Some(text) } => {
            format!("file {size} bytes sha256:{} {text:?}", &sha256[..12])
        }
        Kind::File { sha256, size, text: None } => format!("file {size} bytes sha256:{}", &sha256[..12]),
        Kind::Dir => "dir".to_string(),
        Kind::Symlink(target) => format!("symlink -> {target}"),
        Kind::Special(s) => s.clone(),
    };
    format!("{what} mode {:04o} owner {}:{}", node.mode, node.uid, node.gid)
}
