//! An image's history as `kiln history` shows it: one entry per step, newest
//! first, each with the size of the layer it made (none for a step that
//! changed only metadata, docker's `empty_layer`).

use kiln_solver::Digest;

use crate::image::ImageError;
use crate::store::{Store, StoredImage};

/// One step of an image's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The image ID, on the newest entry only (docker shows `<missing>` for
    /// the others: they are not images of their own).
    pub id: Option<Digest>,
    /// When, as the config says (RFC 3339).
    pub created: Option<String>,
    /// The instruction.
    pub created_by: String,
    /// The bytes the step's layer holds, uncompressed; 0 for an empty layer.
    pub size: u64,
    /// The comment.
    pub comment: String,
}

/// The history of `image`, newest first. A history entry that is not an
/// `empty_layer` made the next layer of the manifest, in order.
pub fn history(store: &Store, image: &StoredImage) -> Result<Vec<Entry>, ImageError> {
    let (config, layers) = crate::image::read(store, &image.digest())?;
    let id = store.image_id(image)?;
    let mut layers = layers.iter();
    let mut out = Vec::with_capacity(config.history().len());
    for h in config.history() {
        let size = match h.empty_layer() {
            Some(true) => 0,
            _ => match layers.next() {
                Some(layer) => content_size(store, &layer.digest)?,
                None => 0,
            },
        };
        out.push(Entry {
            id: None,
            created: h.created().clone(),
            created_by: h.created_by().clone().unwrap_or_default(),
            size,
            comment: h.comment().clone().unwrap_or_default(),
        });
    }
    out.reverse();
    if let Some(newest) = out.first_mut() {
        newest.id = Some(id);
    }
    Ok(out)
}

/// What a layer holds, as docker's layer size counts it: the sizes of its
/// files (a hard link's data once), and its symlinks' targets.
fn content_size(store: &Store, layer: &Digest) -> Result<u64, ImageError> {
    let path = store.blob_path(layer);
    let io_err = |e| ImageError::Store(crate::store::io_err("reading", &path)(e));
    let file = std::fs::File::open(&path).map_err(io_err)?;
    let reader = crate::layer::compress::tar_stream(std::io::BufReader::new(file)).map_err(io_err)?;
    let mut total = 0;
    // Bounded: a pulled layer's long name record would be read whole.
    for entry in tar::Archive::new(crate::layer::bounded::Bounded::new(reader)).entries().map_err(io_err)? {
        let entry = entry.map_err(io_err)?;
        total += match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => entry.size(),
            tar::EntryType::Symlink => entry.link_name_bytes().map_or(0, |l| l.len() as u64),
            _ => 0,
        };
    }
    Ok(total)
}

/// Seconds since the epoch of an RFC 3339 time (`2001-02-03T04:05:06Z`,
/// `…06.123+02:00`), or `None` when it is not one.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if s.as_bytes().get(4) != Some(&b'-') || !matches!(s.as_bytes().get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        rest = frac.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (oh, om) = (rest.get(1..3)?.parse::<i64>().ok()?, rest.get(4..6)?.parse::<i64>().ok()?);
            sign * (oh * 3600 + om * 60)
        }
    };
    // Days from the civil date, after Howard Hinnant's algorithm.
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if mo > 2 { mo - 3 } else { mo + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86400 + h * 3600 + mi * 60 + sec - offset)
}

/// A duration as docker says how long ago something was (go-units'
/// `HumanDuration`): "3 seconds", "About an hour", "2 weeks".
pub fn human_duration(secs: i64) -> String {
    let hours_rounded = (secs as f64 / 3600.0 + 0.5) as i64;
    match secs {
        s if s < 1 => "Less than a second".to_owned(),
        1 => "1 second".to_owned(),
        s if s < 60 => format!("{s} seconds"),
        s if s / 60 == 1 => "About a minute".to_owned(),
        s if s / 60 < 60 => format!("{} minutes", s / 60),
        _ if hours_rounded == 1 => "About an hour".to_owned(),
        _ if hours_rounded < 48 => format!("{hours_rounded} hours"),
        _ if hours_rounded < 24 * 7 * 2 => format!("{} days", hours_rounded / 24),
        _ if hours_rounded < 24 * 30 * 2 => format!("{} weeks", hours_rounded / 24 / 7),
        _ if hours_rounded < 24 * 365 * 2 => format!("{} months", hours_rounded / 24 / 30),
        s => format!("{} years", s / 3600 / 24 / 365),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times_parse() {
        for (input, want) in [
            ("1970-01-01T00:00:00Z", Some(0)),
            ("2000-02-29T00:00:00Z", Some(951_782_400)),
            ("2026-11-23T02:13:20Z", Some(1_795_400_000)),
            ("2026-11-23T02:13:20.123456789Z", Some(1_795_400_000)),
            ("2026-11-23T04:13:20+02:00", Some(1_795_400_000)),
            ("2026-11-23T01:13:20-01:00", Some(1_795_400_000)),
            ("2026-11-23", None),
            ("yesterday", None),
            ("2026-11-23T02:13:20", None),
        ] {
            assert_eq!(parse_rfc3339(input), want, "{input}");
        }
    }

    #[test]
    fn durations_read_like_docker() {
        for (secs, want) in [
            (0, "Less than a second"),
            (1, "1 second"),
            (59, "59 seconds"),
            (60, "About a minute"),
            (119, "About a minute"),
            (120, "2 minutes"),
            (3599, "59 minutes"),
            (3600, "About an hour"),
            (5399, "About an hour"),
            (5400, "2 hours"),
            (47 * 3600, "47 hours"),
            (48 * 3600, "2 days"),
            (14 * 86400, "2 weeks"),
            (60 * 86400, "2 months"),
            (730 * 86400, "2 years"),
        ] {
            assert_eq!(human_duration(secs), want, "{secs}");
        }
    }
}
