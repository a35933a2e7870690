//! `kiln debug expand`: a word expanded by the frontend's own expansion, to
//! check what a Dockerfile line will become.

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use kiln::flags::{name_value, process_env};
use kiln_frontend::{expand_word, expand_words, Shortened};

use crate::cli::debug_expand::{ExpandArgs, ExpandInput, ExpandMode};
use crate::cli::output::escape;
use crate::outln;

pub fn expand(args: ExpandArgs) -> anyhow::Result<()> {
    match args.mode {
        ExpandMode::Word(input) => {
            let env = variables(&input)?;
            let word = expand_word(&input.input, &env).with_context(|| failed(&input.input))?;
            outln!("{word}")
        }
        ExpandMode::Words(input) => {
            let env = variables(&input)?;
            let words = expand_words(&input.input, &env).with_context(|| failed(&input.input))?;
            outln!("{}", serde_json::to_string(&words)?)
        }
    }
}

fn failed(input: &str) -> String {
    format!("cannot expand {}", escape(&Shortened::new(input).quoted()))
}

/// The `--env` flags as the variables in scope; a later flag wins, as a later
/// ENV does.
fn variables(input: &ExpandInput) -> anyhow::Result<BTreeMap<String, String>> {
    let mut env = BTreeMap::new();
    for flag in &input.env {
        let Some((name, value)) = name_value(flag, process_env) else {
            continue;
        };
        if name.is_empty() {
            bail!("--env {}: the name is empty; write --env NAME=VALUE", escape(flag));
        }
        env.insert(name.to_owned(), value);
    }
    Ok(env)
}
