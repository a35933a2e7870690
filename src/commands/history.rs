//! `kiln history`: docker's columns — IMAGE, CREATED, CREATED BY, SIZE,
//! COMMENT — newest step first; or one JSON object per step.

use kiln::history::{history as image_history, human_duration, parse_rfc3339};
use kiln::store::Store;

use crate::cli::images::HistoryArgs;
use crate::cli::output::{escape, human_size};

/// How many characters of CREATED BY docker shows unless `--no-trunc`.
const CREATED_BY_WIDTH: usize = 45;

pub fn history(store: &Store, args: HistoryArgs) -> anyhow::Result<()> {
    let image = store.get(&args.image)?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let mut rows = vec![["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"].map(String::from)];
    for entry in image_history(store, &image)? {
        let id = match &entry.id {
            Some(id) if args.no_trunc => id.to_string(),
            Some(id) => id.hex()[..12].to_owned(),
            None => "<missing>".to_owned(),
        };
        let since = entry
            .created
            .as_deref()
            .and_then(parse_rfc3339)
            .map_or_else(|| "N/A".to_owned(), |t| format!("{} ago", human_duration(now - t)));
        let created_by = entry.created_by.replace('\t', " ");
        let created_by = if args.no_trunc { created_by } else { ellipsis(&created_by, CREATED_BY_WIDTH) };
        let size = human_size(entry.size);
        if args.format == "json" {
            let row = serde_json::json!({
                "Comment": entry.comment, "CreatedAt": entry.created.unwrap_or_default(), "CreatedBy": created_by,
                "CreatedSince": since, "ID": id, "Size": size,
            });
            crate::outln!("{row}")?;
        } else {
            rows.push([id, since, escape(&created_by), size, escape(&entry.comment)]);
        }
    }
    if args.format == "json" {
        return Ok(());
    }
    for line in table(&rows) {
        crate::outln!("{line}")?;
    }
    Ok(())
}

/// `s` cut to `max` characters, the last one an ellipsis when cut (docker's
/// `stringutils.Ellipsis`).
fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    s.chars().take(max - 1).chain(['…']).collect()
}

/// Rows as docker's tabwriter lays them out: each column but the last as wide
/// as its widest cell plus 3 spaces, and at least 10.
fn table<const N: usize>(rows: &[[String; N]]) -> Vec<String> {
    let mut widths = [0; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count() + 3).max(10);
        }
    }
    rows.iter()
        .map(|row| {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                line.push_str(cell);
                if i + 1 < N {
                    line.extend(std::iter::repeat_n(' ', widths[i] - cell.chars().count()));
                }
            }
            line.trim_end().to_owned()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_commands_are_cut_like_docker() {
        for (input, max, want) in
            [("short", 45, "short"), ("abcdef", 4, "abc…"), ("ééééé", 5, "ééééé"), ("ééééé", 3, "éé…")]
        {
            assert_eq!(ellipsis(input, max), want, "{input}");
        }
    }

    #[test]
    fn columns_line_up() {
        let rows = [["A", "BB"].map(String::from), ["long cell here", "x"].map(String::from)];
        assert_eq!(table(&rows), [format!("A{}BB", " ".repeat(16)), "long cell here   x".to_owned()]);
    }
}
