//! A kiln with its own store root, a busybox base image, and helpers to read
//! what a build produced.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

pub const KILN: &str = env!("CARGO_BIN_EXE_kiln");

/// This test process's scratch folder, shared by its tests. The folders of
/// earlier runs whose process is gone are removed first: each holds a copy of
/// the kiln binary and a busybox tarball, and a developer runs the suite often.
fn run_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let tmp = std::env::temp_dir();
        for entry in fs::read_dir(&tmp).into_iter().flatten().flatten() {
            let name = entry.file_name();
            let pid = name.to_str().and_then(|n| n.strip_prefix("kiln-it-")).and_then(|p| p.parse::<u32>().ok());
            if pid.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
        let dir = tmp.join(format!("kiln-it-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        dir
    })
}

/// The busybox rootfs tarball, made once per test run by the fixture script.
pub fn busybox_tar() -> &'static Path {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| {
        let tar = run_dir().join("busybox.tar");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/make-busybox-rootfs.sh");
        let out = Command::new("bash").arg(&script).arg(&tar).output().unwrap();
        assert!(out.status.success(), "{} failed:\n{}", script.display(), String::from_utf8_lossy(&out.stderr));
        tar
    })
}

/// The result of one kiln command.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from(out: Output) -> Self {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Panic with the output unless the command succeeded.
    #[track_caller]
    pub fn ok(self) -> Self {
        assert_eq!(self.code, 0, "kiln failed\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }

    /// Panic unless the command failed; return it.
    #[track_caller]
    pub fn failed(self) -> Self {
        assert_ne!(self.code, 0, "kiln unexpectedly succeeded\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }
}

/// The unprivileged user the rootless tests run kiln as.
pub const ROOTLESS_USER: &str = "kiln-rootless";

/// Create [`ROOTLESS_USER`] (with /etc/subuid and /etc/subgid ranges, as
/// Debian's useradd gives every new user) unless it exists.
pub fn ensure_rootless_user() {
    static MADE: OnceLock<()> = OnceLock::new();
    MADE.get_or_init(|| {
        if Command::new("id").arg(ROOTLESS_USER).output().unwrap().status.success() {
            return;
        }
        assert!(
            nix::unistd::geteuid().is_root(),
            "the rootless tests create the user {ROOTLESS_USER} and so must start as root (CI does)"
        );
        let out =
            Command::new("useradd").args(["--create-home", "--shell", "/bin/sh", ROOTLESS_USER]).output().unwrap();
        // Another test binary may have made it meanwhile.
        let exists = Command::new("id").arg(ROOTLESS_USER).output().unwrap().status.success();
        assert!(out.status.success() || exists, "useradd: {}", String::from_utf8_lossy(&out.stderr));
    });
}

/// The unprivileged user with no /etc/subuid or /etc/subgid range: kiln
/// maps it alone, a single id.
pub const SINGLE_ID_USER: &str = "kiln-single-id";

/// Create [`SINGLE_ID_USER`] unless it exists: a system user, which useradd
/// gives no subordinate ids (and none is added later).
pub fn ensure_single_id_user() {
    static MADE: OnceLock<()> = OnceLock::new();
    MADE.get_or_init(|| {
        if !Command::new("id").arg(SINGLE_ID_USER).output().unwrap().status.success() {
            assert!(nix::unistd::geteuid().is_root(), "the tests create the user {SINGLE_ID_USER} as root (CI does)");
            let out = Command::new("useradd")
                .args(["--system", "--create-home", "--shell", "/bin/sh", SINGLE_ID_USER])
                .output()
                .unwrap();
            let exists = Command::new("id").arg(SINGLE_ID_USER).output().unwrap().status.success();
            assert!(out.status.success() || exists, "useradd: {}", String::from_utf8_lossy(&out.stderr));
        }
        for file in ["/etc/subuid", "/etc/subgid"] {
            let text = fs::read_to_string(file).unwrap_or_default();
            let mine = format!("{SINGLE_ID_USER}:");
            assert!(!text.lines().any(|l| l.starts_with(&mine)), "{SINGLE_ID_USER} must have no range in {file}");
        }
    });
}

/// A copy of the kiln binary any user can run, wherever the checkout lives
/// (CI's clone may sit under a folder only root can enter).
pub fn shared_kiln() -> &'static str {
    static EXE: OnceLock<String> = OnceLock::new();
    EXE.get_or_init(|| {
        let exe = run_dir().join("kiln");
        fs::copy(kiln_bin(), &exe).unwrap();
        exe.to_string_lossy().into_owned()
    })
}

/// The kiln under test: `KILN_TEST_BIN` when set (to show a regression test
/// fails on an older build), else the one cargo built.
pub fn kiln_bin() -> String {
    std::env::var("KILN_TEST_BIN").unwrap_or_else(|_| KILN.to_owned())
}

/// Who runs kiln in a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The test's own user, root in CI.
    Root,
    /// [`ROOTLESS_USER`], through runuser: kiln's rootless mode.
    Rootless,
    /// [`SINGLE_ID_USER`], through runuser: rootless with a single-id map.
    SingleId,
}

impl Mode {
    /// The user kiln runs as, when not the test's own.
    pub fn user(self) -> Option<&'static str> {
        match self {
            Mode::Root => None,
            Mode::Rootless => Some(ROOTLESS_USER),
            Mode::SingleId => Some(SINGLE_ID_USER),
        }
    }
}

/// A kiln with a fresh store and a context folder to write a build into.
pub struct Kiln {
    pub dir: tempfile::TempDir,
    pub mode: Mode,
}

/// A test that failed midway leaves its detached containers running, and
/// their monitors outlive the test by design: removed here, so one failure
/// does not leave a busy loop burning a core for the rest of the suite.
impl Drop for Kiln {
    fn drop(&mut self) {
        if !self.root().join("containers").exists() {
            return;
        }
        let ids = self.cmd(&["ps", "-aq", "--no-trunc"]).stdout;
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if !ids.is_empty() {
            let _ = self.command().args(["rm", "-f", "-v"]).args(&ids).output();
        }
    }
}

impl Kiln {
    /// A store holding `busybox:latest`.
    pub fn with_busybox() -> Self {
        Self::in_mode(Mode::Root)
    }

    /// A store holding `busybox:latest`, run as `mode` says.
    pub fn in_mode(mode: Mode) -> Self {
        let k = Kiln::empty_in(mode);
        let tar = k.dir.path().join("busybox.tar");
        fs::copy(busybox_tar(), &tar).unwrap();
        k.cmd(&["import", tar.to_str().unwrap(), "busybox"]).ok();
        k
    }

    /// One store of each mode, each holding `busybox:latest`: the security
    /// tests hold for root and rootless kiln alike.
    pub fn each_mode() -> [Kiln; 2] {
        [Self::in_mode(Mode::Root), Self::in_mode(Mode::Rootless)]
    }

    /// One empty store of each mode.
    pub fn each_mode_empty() -> [Kiln; 2] {
        [Self::empty_in(Mode::Root), Self::empty_in(Mode::Rootless)]
    }

    pub fn empty() -> Self {
        Self::empty_in(Mode::Root)
    }

    fn empty_in(mode: Mode) -> Self {
        let dir = tempfile::Builder::new().prefix("kiln-it-").tempdir().unwrap();
        fs::create_dir_all(dir.path().join("ctx")).unwrap();
        let k = Kiln { dir, mode };
        match mode {
            Mode::Root => {}
            Mode::Rootless => ensure_rootless_user(),
            Mode::SingleId => ensure_single_id_user(),
        }
        k.give(k.dir.path());
        k
    }

    /// Hand `path` to the user kiln runs as (a no-op for root), so that what a
    /// test checks is kiln's confinement, not the file's permissions.
    pub fn give(&self, path: &Path) {
        if let Some(user) = self.mode.user() {
            let owner = format!("{user}:{user}");
            let ok = Command::new("chown").args(["-R", &owner]).arg(path).status().unwrap().success();
            assert!(ok, "chown {owner} {}", path.display());
        }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn ctx(&self) -> PathBuf {
        self.dir.path().join("ctx")
    }

    /// Write a file into the context (parents created).
    pub fn write(&self, rel: &str, body: &str) -> &Self {
        let p = self.ctx().join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, body).unwrap();
        self
    }

    /// A command running kiln on this store, as this kiln's user; add the
    /// subcommand and its arguments.
    pub fn command(&self) -> Command {
        let mut cmd = match self.mode.user() {
            None => Command::new(kiln_bin()),
            Some(user) => {
                let mut c = Command::new("runuser");
                let home = format!("HOME=/home/{user}");
                c.args(["-u", user, "--", "env", &home, "XDG_DATA_HOME=", shared_kiln()]);
                c
            }
        };
        cmd.arg("--root").arg(self.root());
        cmd
    }

    pub fn cmd(&self, args: &[&str]) -> Run {
        Run::from(self.command().args(args).output().unwrap())
    }

    /// `kiln build` of the context with extra arguments.
    pub fn build(&self, args: &[&str]) -> Run {
        let ctx = self.ctx();
        let mut all: Vec<&str> = vec!["build"];
        all.extend_from_slice(args);
        all.push(ctx.to_str().unwrap());
        self.cmd(&all)
    }

    pub fn inspect(&self, image: &str) -> Value {
        let out = self.cmd(&["inspect", image]).ok();
        serde_json::from_str(&out.stdout).unwrap()
    }

    pub fn image_names(&self) -> Vec<String> {
        let out = self.cmd(&["images"]).ok();
        out.stdout
            .lines()
            .skip(1)
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                format!("{}:{}", f[0], f[1])
            })
            .collect()
    }

    /// Entries of each layer of `image`, as `path` plus `/` for directories and
    /// ` -> target` for symlinks.
    pub fn layers(&self, image: &str) -> Vec<Vec<String>> {
        let show = |e: Entry| match e.kind {
            tar::EntryType::Directory => format!("{}/", e.path),
            tar::EntryType::Symlink => format!("{} -> {}", e.path, e.link.unwrap_or_default()),
            _ => e.path,
        };
        self.layer_entries(image).into_iter().map(|l| l.into_iter().map(show).collect()).collect()
    }

    /// Entries of each layer of `image`, with their type, link target and
    /// xattrs (PAX `SCHILY.xattr.` records).
    pub fn layer_entries(&self, image: &str) -> Vec<Vec<Entry>> {
        let v = self.inspect(image);
        v["Manifest"]["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                let digest = l["digest"].as_str().unwrap();
                let blob = self.root().join("oci/blobs/sha256").join(digest.trim_start_matches("sha256:"));
                let mut archive = tar::Archive::new(layer_tar(&blob));
                archive.entries().unwrap().map(|e| Entry::read(&mut e.unwrap())).collect()
            })
            .collect()
    }

    /// The content of `path` in the last layer of `image`.
    pub fn file_in_top_layer(&self, image: &str, path: &str) -> Option<String> {
        let v = self.inspect(image);
        let last = v["Manifest"]["layers"].as_array().unwrap().last().unwrap()["digest"].as_str().unwrap().to_owned();
        let blob = self.root().join("oci/blobs/sha256").join(last.trim_start_matches("sha256:"));
        let mut archive = tar::Archive::new(layer_tar(&blob));
        for e in archive.entries().unwrap() {
            let mut e = e.unwrap();
            if e.path().unwrap().to_string_lossy() == path {
                let mut s = String::new();
                e.read_to_string(&mut s).unwrap();
                return Some(s);
            }
        }
        None
    }

    /// Nothing half-done is left in the store: no ingest files, no scratch folders.
    #[track_caller]
    pub fn assert_clean(&self) {
        for dir in ["ingest", "work"] {
            let p = self.root().join(dir);
            let left: Vec<_> =
                fs::read_dir(&p).map(|d| d.map(|e| e.unwrap().file_name()).collect()).unwrap_or_default();
            assert!(left.is_empty(), "{} holds leftovers: {left:?}", p.display());
        }
        let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
        let root = self.root().to_string_lossy().into_owned();
        assert!(!mounts.contains(&root), "a mount under {root} leaked:\n{mounts}");
        let procs = Command::new("ps").args(["-eo", "args"]).output().unwrap();
        let procs = String::from_utf8_lossy(&procs.stdout);
        assert!(
            !procs.lines().any(|l| (l.contains("__sandbox") || l.contains("__monitor")) && l.contains(&root)),
            "a sandbox or monitor process leaked:\n{procs}"
        );
    }
}

/// One layer entry as a test looks at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The path, without a trailing `/`.
    pub path: String,
    pub kind: tar::EntryType,
    /// A symlink's or hard link's target.
    pub link: Option<String>,
    /// `(name, value)` of each `SCHILY.xattr.<name>` PAX record.
    pub xattrs: Vec<(String, Vec<u8>)>,
}

impl Entry {
    fn read(e: &mut tar::Entry<impl Read>) -> Self {
        let path = e.path().unwrap().to_string_lossy().trim_end_matches('/').to_string();
        let link = e.link_name().unwrap().map(|l| l.display().to_string());
        let mut xattrs = Vec::new();
        for record in e.pax_extensions().unwrap().into_iter().flatten() {
            let record = record.unwrap();
            if let Some(name) = record.key().unwrap().strip_prefix("SCHILY.xattr.") {
                xattrs.push((name.to_owned(), record.value_bytes().to_vec()));
            }
        }
        Entry { path, kind: e.header().entry_type(), link, xattrs }
    }
}

/// Write a `docker save` archive of one image to `path`: named `repo_tags`,
/// its one layer the tar `layer`, its config `config` (JSON) with the layer's
/// diffID filled into `rootfs`, and the host's architecture and linux unless
/// `config` says otherwise.
pub fn write_docker_save(path: &Path, mut config: Value, repo_tags: &[&str], layer: &[u8]) {
    use sha2::Digest as _;
    let diff_id = format!("sha256:{}", hex::encode(sha2::Sha256::digest(layer)));
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    };
    let object = config.as_object_mut().expect("a config is a JSON object");
    object.entry("architecture").or_insert(arch.into());
    object.entry("os").or_insert("linux".into());
    object.insert("rootfs".into(), serde_json::json!({"type": "layers", "diff_ids": [diff_id]}));
    let config = serde_json::to_vec(&config).unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!([
        {"Config": "config.json", "RepoTags": repo_tags, "Layers": ["layer/layer.tar"]}
    ]))
    .unwrap();
    let mut tar = tar::Builder::new(fs::File::create(path).unwrap());
    for (name, bytes) in [("manifest.json", &manifest), ("config.json", &config), ("layer/layer.tar", &layer.to_vec())]
    {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        tar.append_data(&mut h, name, &bytes[..]).unwrap();
    }
    tar.finish().unwrap();
}

/// Spawn `cmd` with a new pseudo-terminal as its controlling terminal and all
/// three standard streams, as an interactive shell would; returns the child
/// and the terminal's other end, to read what it prints and type into it.
pub fn spawn_in_terminal(cmd: &mut Command) -> (std::process::Child, fs::File) {
    spawn_in_sized_terminal(cmd, None)
}

/// [`spawn_in_terminal`], the terminal `size` rows and columns from the start.
pub fn spawn_in_sized_terminal(cmd: &mut Command, size: Option<(u16, u16)>) -> (std::process::Child, fs::File) {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    use std::process::Stdio;
    let size = size.map(|(ws_row, ws_col)| nix::pty::Winsize { ws_row, ws_col, ws_xpixel: 0, ws_ypixel: 0 });
    let pty = nix::pty::openpty(size.as_ref(), None).unwrap();
    let slave_fd = pty.slave.as_raw_fd();
    cmd.stdin(Stdio::from(pty.slave.try_clone().unwrap()))
        .stdout(Stdio::from(pty.slave.try_clone().unwrap()))
        .stderr(Stdio::from(pty.slave.try_clone().unwrap()));
    // SAFETY: setsid and ioctl only, between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 || libc::ioctl(slave_fd, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().unwrap();
    // The child holds the terminal now: reads of the master end with EIO
    // once it (and whatever it started) is gone.
    drop(pty.slave);
    (child, fs::File::from(pty.master))
}

/// The tar stream of the layer blob at `path`, whatever its form: kiln keeps
/// its own layers as plain tars; pulled ones stay gzip or zstd.
pub fn layer_tar(path: &Path) -> Box<dyn Read> {
    use std::io::BufRead;
    let mut file = std::io::BufReader::new(fs::File::open(path).unwrap());
    let head = file.fill_buf().unwrap();
    if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::stream::read::Decoder::with_buffer(file).unwrap())
    } else {
        Box::new(file)
    }
}
