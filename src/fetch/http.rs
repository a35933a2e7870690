//! `ADD <url>`: files fetched over HTTP(S), as BuildKit's HTTP source does.
//!
//! Downloads are kept in `<store>/downloads/`: each content under its
//! digest (`blobs/<hex>`), and what each URL last answered (`urls/<hash of the
//! URL>.json`: ETag, digest, Last-Modified), so the next build asks with
//! `If-None-Match` and a `304` costs no download. A download is written
//! beside its final name and renamed there only once complete and checked
//! against `--checksum`: a failed one leaves nothing behind.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::{io_err, FetchError};
use crate::store::{temp_prefix, Store};

/// The name BuildKit's Dockerfile frontend gives a URL's file: the last
/// segment of its (decoded) path, or `__unnamed__`.
pub fn file_name(url: &str) -> String {
    let path = reqwest::Url::parse(url).map(|u| u.path().to_owned()).unwrap_or_default();
    let decoded = percent_encoding::percent_decode_str(&path).decode_utf8_lossy().into_owned();
    match decoded.trim_end_matches('/').rsplit('/').next() {
        Some(name) if !name.is_empty() && name != "." && name != ".." && !name.contains('\0') => name.to_owned(),
        _ => "__unnamed__".to_owned(),
    }
}

/// `--checksum=<algorithm>:<hex>` made canonical (lowercase), or why it is
/// not one. BuildKit takes sha256, sha384 and sha512.
pub fn parse_checksum(checksum: &str) -> Result<String, FetchError> {
    let bad = || FetchError::BadChecksum(checksum.to_owned());
    let (algorithm, hex) = checksum.split_once(':').ok_or_else(bad)?;
    let len = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err(bad()),
    };
    if hex.len() != len || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    Ok(format!("{algorithm}:{}", hex.to_ascii_lowercase()))
}

/// A hasher for a canonical checksum's algorithm.
fn hasher_for(checksum: &str) -> Box<dyn sha2::digest::DynDigest + Send> {
    match checksum.split_once(':').map(|(a, _)| a) {
        Some("sha384") => Box::new(sha2::Sha384::new()),
        Some("sha512") => Box::new(sha2::Sha512::new()),
        _ => Box::new(Sha256::new()),
    }
}

/// One fetched URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// Its content, in the downloads folder.
    pub path: PathBuf,
    /// `sha256:<hex>` of the content.
    pub digest: String,
    /// The file's mtime: the response's Last-Modified, else the epoch (as
    /// BuildKit does), in seconds.
    pub mtime: i64,
}

/// What a URL answered last time. Not the URL itself: it may carry a
/// password or a presigned token, and the file's name (its hash) already
/// ties the record to it.
#[derive(Debug, Serialize, Deserialize)]
struct UrlRecord {
    #[serde(default)]
    etag: Option<String>,
    digest: String,
    #[serde(default)]
    mtime: i64,
    /// A `--checksum` of another algorithm the content was checked against.
    #[serde(default)]
    checked: Option<String>,
}

/// The downloads folder of a store.
#[derive(Debug, Clone)]
pub struct Downloads {
    dir: PathBuf,
    work: PathBuf,
}

impl Downloads {
    pub fn new(store: &Store) -> Self {
        Downloads { dir: store.root().join("downloads"), work: store.work_dir() }
    }

    fn blob(&self, digest: &str) -> PathBuf {
        self.dir.join("blobs").join(digest.trim_start_matches("sha256:"))
    }

    fn record_path(&self, url: &str) -> PathBuf {
        self.dir.join("urls").join(format!("{}.json", hex::encode(Sha256::digest(url.as_bytes()))))
    }

    fn record(&self, url: &str) -> Option<UrlRecord> {
        let record: UrlRecord = serde_json::from_slice(&fs::read(self.record_path(url)).ok()?).ok()?;
        self.blob(&record.digest).is_file().then_some(record)
    }

    /// The content of `url` fetched before, when it is `digest`: no request.
    pub fn cached(&self, url: &str, digest: &str) -> Option<Fetched> {
        let record = self.record(url).filter(|r| r.digest == digest || r.checked.as_deref() == Some(digest))?;
        Some(Fetched { path: self.blob(&record.digest), digest: record.digest, mtime: record.mtime })
    }

    /// Fetch `url`: a conditional request when an earlier answer carried an
    /// ETag. With `expected` (a canonical `sha256:…`), content that differs
    /// is refused and not kept.
    pub fn fetch(&self, url: &str, expected: Option<&str>) -> Result<Fetched, FetchError> {
        // Read here, on the caller's thread (tests set theirs).
        let limits = Limits::from_env();
        let url_owned = url.to_owned();
        let expected = expected.map(str::to_owned);
        let this = self.clone();
        crate::registry::block_on(async move { this.fetch_async(&url_owned, expected.as_deref(), limits).await })
            .map_err(FetchError::Runtime)?
    }

    async fn fetch_async(&self, url: &str, expected: Option<&str>, limits: Limits) -> Result<Fetched, FetchError> {
        // Errors show the URL without a password, and reqwest's without the URL.
        let shown = super::redact(url);
        let request_err = |source: reqwest::Error| {
            if source.is_timeout() {
                return FetchError::ReadTimeout { url: shown.clone(), secs: limits.read_timeout.as_secs() };
            }
            FetchError::Request { url: shown.clone(), source: source.without_url() }
        };
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| FetchError::BadUrl { url: shown.clone(), why: format!("not a valid URL: {e}") })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(FetchError::BadUrl {
                url: shown.clone(),
                why: "only http and https URLs can be fetched".into(),
            });
        }
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(limits.read_timeout)
            .user_agent(concat!("kiln/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(request_err)?;
        // Content that must match a checksum is asked for whole (the caller
        // looked for a matching download already).
        let known = self.record(url).filter(|_| expected.is_none());
        let mut request = client.get(parsed);
        if let Some(etag) = known.as_ref().and_then(|r| r.etag.as_deref()) {
            request = request.header(reqwest::header::IF_NONE_MATCH, etag);
        }
        let mut response = request.send().await.map_err(request_err)?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_MODIFIED {
            if let Some(r) = known {
                return Ok(Fetched { path: self.blob(&r.digest), digest: r.digest, mtime: r.mtime });
            }
        }
        if !status.is_success() {
            return Err(FetchError::Status { url: shown, status: status.to_string() });
        }
        let header = |name| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let etag = header(reqwest::header::ETAG).map(|e| e.trim_start_matches("W/").to_owned());
        let mtime = header(reqwest::header::LAST_MODIFIED).and_then(|d| parse_http_date(&d)).unwrap_or(0);

        for sub in ["blobs", "urls"] {
            let dir = self.dir.join(sub);
            fs::create_dir_all(&dir).map_err(io_err("creating", &dir))?;
        }
        // Written in the store's scratch folder first: a download cut short,
        // or refused, never reaches `blobs/`.
        let mut temp = tempfile::Builder::new()
            .prefix(&temp_prefix("download"))
            .tempfile_in(&self.work)
            .map_err(io_err("creating a download file in", &self.work))?;
        let mut hasher = Sha256::new();
        let mut other = expected.filter(|e| !e.starts_with("sha256:")).map(|e| (e, hasher_for(e)));
        let too_large = || FetchError::TooLarge { url: shown.clone(), max: limits.max_bytes };
        if response.content_length().is_some_and(|n| n > limits.max_bytes) {
            return Err(too_large());
        }
        let mut size: u64 = 0;
        while let Some(chunk) = response.chunk().await.map_err(request_err)? {
            size += chunk.len() as u64;
            if size > limits.max_bytes {
                // The temporary file goes with `temp`.
                return Err(too_large());
            }
            hasher.update(&chunk);
            if let Some((_, h)) = other.as_mut() {
                h.update(&chunk);
            }
            temp.write_all(&chunk).map_err(io_err("writing", temp.path()))?;
        }
        temp.as_file().sync_all().map_err(io_err("writing", temp.path()))?;
        let digest = format!("sha256:{}", hex::encode(hasher.finalize()));
        let checked =
            other.map(|(e, h)| (e, format!("{}:{}", e.split(':').next().unwrap_or(""), hex::encode(h.finalize()))));
        let actual = checked.as_ref().map_or(digest.as_str(), |(_, d)| d.as_str());
        if let Some(expected) = expected.filter(|e| *e != actual) {
            return Err(FetchError::Checksum { url: shown, expected: expected.to_owned(), actual: actual.to_owned() });
        }
        let checked = checked.map(|(e, _)| e.to_owned());
        let blob = self.blob(&digest);
        temp.persist(&blob).map_err(|e| FetchError::Io { what: "storing", path: blob.clone(), source: e.error })?;
        let record = UrlRecord { etag, digest: digest.clone(), mtime, checked };
        let record_path = self.record_path(url);
        let json = serde_json::to_vec(&record).unwrap_or_default();
        // The record only saves a later request; failing to keep it fails nothing.
        let _ = tempfile::NamedTempFile::new_in(self.dir.join("urls"))
            .and_then(|mut t| t.write_all(&json).map(|()| t))
            .and_then(|t| t.persist(&record_path).map_err(|e| e.error));
        Ok(Fetched { path: blob, digest, mtime })
    }
}

/// Bounds of one download, so a server that stalls or never stops sending
/// can neither hang the build nor fill the disk.
#[derive(Debug, Clone, Copy)]
struct Limits {
    /// Longest wait for the next bytes (`KILN_FETCH_READ_TIMEOUT`, seconds;
    /// 5 minutes by default: far beyond a slow link's pauses).
    read_timeout: Duration,
    /// Largest download (`KILN_FETCH_MAX_BYTES`; 16 GiB by default: above
    /// the largest toolchains and model files people ADD, below what fills
    /// a typical build disk unnoticed).
    max_bytes: u64,
}

impl Limits {
    fn from_env() -> Limits {
        #[cfg(test)]
        if let Some(limits) = TEST_LIMITS.with(std::cell::Cell::get) {
            return limits;
        }
        let var = |name| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
        Limits {
            read_timeout: Duration::from_secs(var("KILN_FETCH_READ_TIMEOUT").unwrap_or(300)),
            max_bytes: var("KILN_FETCH_MAX_BYTES").unwrap_or(16 << 30),
        }
    }
}

#[cfg(test)]
thread_local! {
    /// Small limits for this thread's fetches, so tests run fast.
    static TEST_LIMITS: std::cell::Cell<Option<Limits>> = const { std::cell::Cell::new(None) };
}

/// Seconds since the epoch of an HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`,
/// RFC 9110's preferred form, the one servers send).
fn parse_http_date(date: &str) -> Option<i64> {
    let rest = date.trim().split_once(", ")?.1;
    let mut parts = rest.split_ascii_whitespace();
    let day: i64 = parts.next()?.parse().ok()?;
    let month_name = parts.next()?;
    let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let month = months.iter().position(|m| *m == month_name)? as i64 + 1;
    let year: i64 = parts.next()?.parse().ok()?;
    let mut hms = parts.next()?.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    if parts.next()? != "GMT" || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86400 + h * 3600 + m * 60 + s)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// Where a fetched file is kept while its layer is written: a copy, so its
/// mode and mtime can be set without touching the download.
pub fn stage(fetched: &Fetched, dir: &Path, name: &str) -> Result<PathBuf, FetchError> {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    fs::copy(&fetched.path, &path).map_err(io_err("copying the download to", &path))?;
    // BuildKit's HTTP source writes the file 0600.
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).map_err(io_err("setting the mode of", &path))?;
    super::set_mtime(&path, fetched.mtime)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_url_path() {
        for (url, name) in [
            ("https://example.com/a/b/tool.tar.gz", "tool.tar.gz"),
            ("https://example.com/a/b/tool.tar.gz?x=1#frag", "tool.tar.gz"),
            ("https://example.com/dir/", "dir"),
            ("https://example.com/a%20b.txt", "a b.txt"),
            ("https://example.com", "__unnamed__"),
            ("https://example.com/", "__unnamed__"),
            ("https://example.com/..", "__unnamed__"),
        ] {
            assert_eq!(file_name(url), name, "{url}");
        }
    }

    #[test]
    fn checksums_are_sha256_hex() {
        let hex = "ab".repeat(32);
        assert_eq!(parse_checksum(&format!("sha256:{}", hex.to_uppercase())).unwrap(), format!("sha256:{hex}"));
        let long = "c".repeat(128);
        assert_eq!(parse_checksum(&format!("sha512:{long}")).unwrap(), format!("sha512:{long}"));
        for bad in ["", "sha256:", "md5:abc", &format!("sha512:{hex}"), &format!("sha256:{hex}0"), &hex] {
            assert!(matches!(parse_checksum(bad), Err(FetchError::BadChecksum(_))), "{bad}");
        }
    }

    fn downloads() -> (tempfile::TempDir, Downloads) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        let downloads = Downloads::new(&store);
        (dir, downloads)
    }

    #[test]
    fn a_stalled_server_times_out_and_a_huge_download_is_cut() {
        use crate::fetch::test_server::Server;
        TEST_LIMITS.with(|l| l.set(Some(Limits { read_timeout: Duration::from_secs(1), max_bytes: 1000 })));
        let (_dir, downloads) = downloads();
        // Accepts, reads the request, answers nothing.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let held: Vec<_> = listener.incoming().take(4).flatten().collect();
            std::thread::sleep(Duration::from_secs(30));
            drop(held);
        });
        let start = std::time::Instant::now();
        let err = downloads.fetch(&format!("http://{addr}/f"), None).unwrap_err();
        assert!(matches!(err, FetchError::ReadTimeout { secs: 1, .. }), "{err}");
        assert!(start.elapsed() < Duration::from_secs(10));

        let server = Server::start();
        server.reply("/big", 200, &[], &[b'x'; 1001]);
        server.reply("/fits", 200, &[], &[b'x'; 1000]);
        let err = downloads.fetch(&server.url("/big"), None).unwrap_err();
        assert!(matches!(err, FetchError::TooLarge { max: 1000, .. }), "{err}");
        downloads.fetch(&server.url("/fits"), None).unwrap();
    }

    #[test]
    fn the_store_keeps_no_password_of_a_url() {
        use crate::fetch::test_server::Server;
        let (dir, downloads) = downloads();
        let server = Server::start();
        server.reply("/f", 200, &[("ETag", "\"e\"")], b"content\n");
        let url = server.url("/f").replace("http://", "http://u:secret@");
        downloads.fetch(&url, None).unwrap();
        // Found again from its record (a 304), which still works without the URL in it.
        downloads.fetch(&url, None).unwrap();
        assert_eq!(server.not_modified("/f"), 1);
        for entry in walkdir::WalkDir::new(dir.path()).into_iter().filter_map(Result::ok) {
            if entry.file_type().is_file() {
                let bytes = std::fs::read(entry.path()).unwrap();
                let text = String::from_utf8_lossy(&bytes);
                assert!(!text.contains("secret"), "{} keeps the password: {text}", entry.path().display());
            }
        }
    }

    #[test]
    fn http_dates() {
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784111777));
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(parse_http_date("Tue, 29 Feb 2000 12:00:00 GMT"), Some(951825600));
        for bad in ["", "yesterday", "Sun, 06 Nov 1994 08:49:37 CET", "Sun, 32 Nov 1994 08:49:37 GMT"] {
            assert_eq!(parse_http_date(bad), None, "{bad}");
        }
    }
}
