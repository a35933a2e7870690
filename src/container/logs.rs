//! A container's logs, in docker's `json-file` format: one JSON object per
//! line, `{"log":"…\n","stream":"stdout","time":"…"}`, in
//! `containers/<id>/ctr.log`, rotated to `ctr.log.1`, `ctr.log.2`, … past
//! `max-size`, at most `max-file` files in all. The monitor writes them;
//! `kiln logs` reads them, following the live file across rotations.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::state::{io, now_ns};
use super::ContainerError;
use crate::sandbox::Stream;

const FILE: &str = "ctr.log";
/// A line longer than this is logged in pieces (docker's copier: 16 KiB).
const MAX_LINE: usize = 16 * 1024;

/// Rotation: `--log-opt max-size=…,max-file=…`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogOptions {
    /// Bytes of the live file past which it is rotated.
    pub max_size: u64,
    /// Files kept, the live one included.
    pub max_files: u32,
}

impl Default for LogOptions {
    /// docker's `local` driver's: 20 MB, five files. (json-file's is no
    /// limit at all, which lets a chatty container fill the disk.)
    fn default() -> Self {
        Self { max_size: 20 * 1024 * 1024, max_files: 5 }
    }
}

impl LogOptions {
    /// From `--log-opt KEY=VALUE` flags: `max-size` (`10k`, `20m`, `1g`) and `max-file`.
    pub fn parse(opts: &[String]) -> Result<Self, ContainerError> {
        let mut out = Self::default();
        let bad = |opt: &str, why: &str| ContainerError::LogOption(opt.to_owned(), why.to_owned());
        for opt in opts {
            let (key, value) = opt.split_once('=').ok_or_else(|| bad(opt, "expected KEY=VALUE"))?;
            match key {
                "max-size" => out.max_size = parse_size(value).ok_or_else(|| bad(opt, "a size such as 10m"))?,
                "max-file" => {
                    out.max_files =
                        value.parse().ok().filter(|n| *n >= 1).ok_or_else(|| bad(opt, "a count of 1 or more"))?
                }
                _ => return Err(bad(opt, "kiln's json-file logs take max-size and max-file")),
            }
        }
        Ok(out)
    }
}

fn parse_size(s: &str) -> Option<u64> {
    let s = s.to_ascii_lowercase();
    let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit: u64 = match &s[digits.len()..] {
        "" | "b" => 1,
        "k" | "kb" => 1 << 10,
        "m" | "mb" => 1 << 20,
        "g" | "gb" => 1 << 30,
        _ => return None,
    };
    digits.parse::<u64>().ok().filter(|n| *n > 0)?.checked_mul(unit)
}

/// One line of a container's output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The bytes, lossily UTF-8, with their newline (none for a piece of a
    /// longer line, or a last line without one).
    pub log: String,
    pub stream: Stream,
    /// RFC 3339 with nanoseconds, UTC.
    pub time: String,
}

/// Writes a container's output to its log, line by line.
pub struct LogWriter {
    inner: Mutex<Inner>,
}

struct Inner {
    dir: PathBuf,
    file: Option<File>,
    size: u64,
    options: LogOptions,
    /// Each stream's line so far.
    partial: [Vec<u8>; 2],
}

impl LogWriter {
    /// Append to the log in `dir` (a container started again keeps its log).
    pub fn open(dir: &Path, options: LogOptions) -> Result<Self, ContainerError> {
        let path = dir.join(FILE);
        let file = OpenOptions::new().create(true).append(true).open(&path).map_err(io("opening", &path))?;
        let size = file.metadata().map_err(io("reading", &path))?.len();
        let inner = Inner { dir: dir.to_owned(), file: Some(file), size, options, partial: [vec![], vec![]] };
        Ok(Self { inner: Mutex::new(inner) })
    }

    /// Log `bytes` the command wrote to `stream`. A failure to log (a full
    /// disk) never stops the container: the log stops instead.
    pub fn write(&self, stream: Stream, bytes: &[u8]) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let index = stream as usize;
        let mut rest = bytes;
        while !rest.is_empty() {
            let cut = match rest.iter().position(|b| *b == b'\n') {
                Some(nl) => nl + 1,
                None => rest.len(),
            };
            let (piece, after) = rest.split_at(cut);
            inner.partial[index].extend_from_slice(piece);
            rest = after;
            let line_done = piece.last() == Some(&b'\n');
            while inner.partial[index].len() >= MAX_LINE || (line_done && !inner.partial[index].is_empty()) {
                let take = inner.partial[index].len().min(MAX_LINE);
                let line: Vec<u8> = inner.partial[index].drain(..take).collect();
                inner.append(stream, &line);
            }
        }
    }

    /// Log what is left of unfinished lines: the command has ended.
    pub fn finish(&self) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        for stream in [Stream::Stdout, Stream::Stderr] {
            let line = std::mem::take(&mut inner.partial[stream as usize]);
            if !line.is_empty() {
                inner.append(stream, &line);
            }
        }
    }
}

impl Inner {
    fn append(&mut self, stream: Stream, line: &[u8]) {
        let entry = Entry { log: String::from_utf8_lossy(line).into_owned(), stream, time: rfc3339_nano(now_ns()) };
        let mut json = serde_json::to_vec(&entry).expect("a log entry serialises");
        json.push(b'\n');
        if self.size > 0 && self.size + json.len() as u64 > self.options.max_size {
            self.rotate();
        }
        let Some(file) = self.file.as_mut() else { return };
        if file.write_all(&json).is_err() {
            self.file = None;
            return;
        }
        self.size += json.len() as u64;
    }

    /// `ctr.log.N-1` → `ctr.log.N` …, `ctr.log` → `ctr.log.1`, then a new `ctr.log`.
    fn rotate(&mut self) {
        let path = |n: u32| if n == 0 { self.dir.join(FILE) } else { self.dir.join(format!("{FILE}.{n}")) };
        let keep = self.options.max_files.saturating_sub(1);
        if keep == 0 {
            let _ = fs::remove_file(path(0));
        } else {
            let _ = fs::remove_file(path(keep));
            for n in (0..keep).rev() {
                let _ = fs::rename(path(n), path(n + 1));
            }
        }
        self.file = OpenOptions::new().create(true).append(true).open(path(0)).ok();
        self.size = 0;
    }
}

/// What `kiln logs` shows.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadOptions {
    /// Only the last N lines (of what is there when it starts).
    pub tail: Option<usize>,
    /// Go on showing new lines until the container stops.
    pub follow: bool,
}

/// Hand the log in `dir` to `out`, entry by entry, oldest first; with
/// `follow`, go on until `alive` says no and everything written before
/// that was handed over.
pub fn read(
    dir: &Path,
    options: ReadOptions,
    alive: &dyn Fn() -> bool,
    out: &mut dyn FnMut(&Entry) -> std::io::Result<()>,
) -> Result<(), ContainerError> {
    let live = dir.join(FILE);
    let mut files: Vec<PathBuf> =
        (1..100).map(|n| dir.join(format!("{FILE}.{n}"))).take_while(|p| p.exists()).collect();
    files.reverse();
    // The live file is opened before the rotated ones are read: a rotation
    // meanwhile leaves this handle on what became `ctr.log.1`, read to its
    // end before the new file is opened.
    let mut current = match File::open(&live) {
        Ok(f) => Some(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io("opening", &live)(e)),
    };
    let mut tail: Option<VecDeque<Entry>> = options.tail.map(|n| VecDeque::with_capacity(n.min(4096)));
    let mut emit = |entry: Entry| -> Result<(), ContainerError> {
        match (&mut tail, options.tail) {
            (Some(kept), Some(n)) => {
                if n > 0 {
                    if kept.len() == n {
                        kept.pop_front();
                    }
                    kept.push_back(entry);
                }
                Ok(())
            }
            _ => out(&entry).map_err(ContainerError::Output),
        }
    };
    for path in &files {
        let Ok(file) = File::open(path) else { continue };
        read_entries(&mut BufReader::new(file), &mut emit)?;
    }
    let mut reader = current.take().map(BufReader::new);
    if let Some(reader) = reader.as_mut() {
        read_entries(reader, &mut emit)?;
    }
    if let Some(kept) = tail.take() {
        for entry in kept {
            out(&entry).map_err(ContainerError::Output)?;
        }
    }
    if !options.follow {
        return Ok(());
    }
    let mut emit = |entry: Entry| out(&entry).map_err(ContainerError::Output);
    loop {
        let was_alive = alive();
        if let Some(r) = reader.as_mut() {
            read_entries(r, &mut emit)?;
        }
        // Rotated: the new live file is another inode.
        let ours = reader.as_ref().and_then(|r| r.get_ref().metadata().ok()).map(|m| m.ino());
        let theirs = fs::metadata(&live).ok().map(|m| m.ino());
        if theirs.is_some() && theirs != ours {
            if let Some(r) = reader.as_mut() {
                read_entries(r, &mut emit)?;
            }
            reader = File::open(&live).ok().map(BufReader::new);
            continue;
        }
        if !was_alive {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every whole line from where `reader` is; a line still being written is
/// left for the next call.
fn read_entries(
    reader: &mut BufReader<File>,
    emit: &mut dyn FnMut(Entry) -> Result<(), ContainerError>,
) -> Result<(), ContainerError> {
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).map_err(ContainerError::Output)?;
        if n == 0 {
            return Ok(());
        }
        if line.last() != Some(&b'\n') {
            let back = -(n as i64);
            reader.seek(SeekFrom::Current(back)).map_err(ContainerError::Output)?;
            return Ok(());
        }
        // A line that is not an entry (a torn write at a crash) is skipped.
        if let Ok(entry) = serde_json::from_slice::<Entry>(&line) {
            emit(entry)?;
        }
    }
}

/// Nanoseconds since the epoch as RFC 3339 with nine decimals, UTC.
pub fn rfc3339_nano(ns: u64) -> String {
    let whole = crate::image::rfc3339(ns / 1_000_000_000);
    format!("{}.{:09}Z", whole.trim_end_matches('Z'), ns % 1_000_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(dir: &Path, options: ReadOptions) -> Vec<Entry> {
        let mut got = vec![];
        read(dir, options, &|| false, &mut |e| {
            got.push(e.clone());
            Ok(())
        })
        .unwrap();
        got
    }

    #[test]
    fn lines_are_logged_whole_per_stream_and_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let log = LogWriter::open(dir.path(), LogOptions::default()).unwrap();
        log.write(Stream::Stdout, b"one\ntw");
        log.write(Stream::Stderr, b"err\n");
        log.write(Stream::Stdout, b"o\nthree");
        log.finish();
        let got: Vec<_> = all(dir.path(), ReadOptions::default()).into_iter().map(|e| (e.stream, e.log)).collect();
        assert_eq!(
            got,
            [
                (Stream::Stdout, "one\n".to_owned()),
                (Stream::Stderr, "err\n".to_owned()),
                (Stream::Stdout, "two\n".to_owned()),
                (Stream::Stdout, "three".to_owned()),
            ]
        );
        let tail: Vec<_> =
            all(dir.path(), ReadOptions { tail: Some(2), follow: false }).into_iter().map(|e| e.log).collect();
        assert_eq!(tail, ["two\n", "three"]);
        assert!(all(dir.path(), ReadOptions { tail: Some(0), follow: false }).is_empty());
    }

    #[test]
    fn the_log_rotates_past_its_size_and_keeps_its_file_count() {
        let dir = tempfile::tempdir().unwrap();
        let log = LogWriter::open(dir.path(), LogOptions { max_size: 300, max_files: 3 }).unwrap();
        for n in 0..40 {
            log.write(Stream::Stdout, format!("line {n}\n").as_bytes());
        }
        assert!(dir.path().join("ctr.log.2").exists());
        assert!(!dir.path().join("ctr.log.3").exists());
        for f in ["ctr.log", "ctr.log.1", "ctr.log.2"] {
            assert!(fs::metadata(dir.path().join(f)).unwrap().len() <= 300, "{f}");
        }
        let got: Vec<_> = all(dir.path(), ReadOptions::default()).into_iter().map(|e| e.log).collect();
        assert_eq!(got.last().map(String::as_str), Some("line 39\n"));
        // What is kept is the newest lines, in order, none lost between files.
        let first: usize = got[0].trim_start_matches("line ").trim().parse().unwrap();
        let expected: Vec<_> = (first..40).map(|n| format!("line {n}\n")).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn a_long_line_is_logged_in_pieces_and_options_parse() {
        let dir = tempfile::tempdir().unwrap();
        let log = LogWriter::open(dir.path(), LogOptions::default()).unwrap();
        log.write(Stream::Stdout, &vec![b'x'; MAX_LINE + 10]);
        log.write(Stream::Stdout, b"\n");
        let got: Vec<_> = all(dir.path(), ReadOptions::default()).into_iter().map(|e| e.log.len()).collect();
        assert_eq!(got, [MAX_LINE, 11]);
        let opts = LogOptions::parse(&["max-size=10k".into(), "max-file=2".into()]).unwrap();
        assert_eq!(opts, LogOptions { max_size: 10 * 1024, max_files: 2 });
        for bad in ["max-size=ten", "max-file=0", "mode=non-blocking", "max-size"] {
            assert!(LogOptions::parse(&[bad.into()]).is_err(), "{bad}");
        }
        assert_eq!(rfc3339_nano(1_000_000_000_123), "1970-01-01T00:16:40.000000123Z");
    }
}
