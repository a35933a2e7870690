//! An image's users and groups: its /etc/passwd and /etc/group, and
//! `user[:group]` resolved against them by docker's rules — for the process a
//! RUN step or container runs as (`USER`, `-u`) and for the owner of the
//! files a COPY writes (`--chown`).
//!
//! Every id, whether written by the user or read from the image's files, is
//! held to one rule: 32 bits, and not 4294967295, which chown(2) and
//! setresuid(2) read as "leave unchanged" (so `USER 4294967295` would stay
//! root). Parsing into a wider type and truncating would silently make it
//! some other user, so such ids are errors.

use std::path::Path;

/// The largest id kiln accepts.
pub const MAX_ID: u32 = u32::MAX - 1;

const PASSWD: &str = "/etc/passwd";
const GROUP: &str = "/etc/group";

/// Why `user[:group]` names nobody kiln may use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error("{what} {value} is out of range: ids go from 0 to {MAX_ID}")]
    OutOfRange { what: &'static str, value: String },
    #[error("the image's {file} gives {name} the {what} {value} is out of range: ids go from 0 to {MAX_ID}")]
    EntryOutOfRange { file: &'static str, name: String, what: &'static str, value: String },
    #[error("the image's {file} gives {name} no numeric {what}")]
    EntryNotNumeric { file: &'static str, name: String, what: &'static str },
    #[error("unable to find user {0}: no matching entries in passwd file")]
    NoUser(String),
    #[error("unable to find group {0}: no matching entries in group file")]
    NoGroup(String),
    #[error("cannot read the image's {file}: {why}; make it a regular file (of at most 16 MiB) in the image")]
    Unreadable { file: &'static str, why: String },
}

type Result<T> = std::result::Result<T, UserError>;

/// The most of /etc/passwd or /etc/group read: far more than any real one.
const MAX_ACCOUNTS_FILE: u64 = 16 * 1024 * 1024;

/// The text of `file` below `root`; empty when it does not exist.
fn read_file(root: &Path, file: &'static str) -> Result<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let fail = |why: String| UserError::Unreadable { file, why };
    let path = match crate::fsutil::resolve_in_root(root, Path::new(file)) {
        Ok(path) => path,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(String::new()),
        Err(e) => return Err(fail(e.to_string())),
    };
    // O_NOFOLLOW: resolve_in_root left no symlink, and none may appear since;
    // O_NONBLOCK: opening a FIFO must not wait for a writer.
    let f = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(String::new()),
        Err(e) => return Err(fail(e.to_string())),
    };
    let meta = f.metadata().map_err(|e| fail(e.to_string()))?;
    if !meta.is_file() {
        return Err(fail("it is not a regular file".to_owned()));
    }
    if meta.len() > MAX_ACCOUNTS_FILE {
        return Err(fail(format!("it is {} bytes, more than the 16 MiB allowed", meta.len())));
    }
    // Bounded again: the size may change under us.
    let mut bytes = Vec::new();
    f.take(MAX_ACCOUNTS_FILE).read_to_end(&mut bytes).map_err(|e| fail(e.to_string()))?;
    // As read_to_string did, and runc's Go would: invalid UTF-8 is an error.
    String::from_utf8(bytes).map_err(|_| fail("it is not UTF-8 text".to_owned()))
}

/// The credentials of a process, resolved from `USER`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecUser {
    /// The uid.
    pub uid: u32,
    /// The primary gid.
    pub gid: u32,
    /// The supplementary groups: those /etc/group lists the user in, and
    /// only those — runc (under BuildKit and `docker run`) does not add the
    /// primary gid, so `id` shows the same groups as there.
    pub groups: Vec<u32>,
    /// The home directory of its /etc/passwd entry; `/` for a uid without one.
    pub home: String,
}

/// A uid or gid as written.
enum Id {
    Valid(u32),
    /// A number that does not fit (see the module doc).
    OutOfRange,
    /// Not a number: a name to look up.
    Name,
}

fn id(text: &str) -> Id {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Id::Name;
    }
    match text.parse::<u32>() {
        Ok(id) if id <= MAX_ID => Id::Valid(id),
        _ => Id::OutOfRange,
    }
}

/// One line of /etc/passwd or /etc/group, split on `:`.
struct Entry<'a> {
    file: &'static str,
    fields: Vec<&'a str>,
}

impl Entry<'_> {
    fn name(&self) -> &str {
        self.fields[0]
    }

    /// Field `i` as an id, held to the same rule as ids the user writes.
    fn id(&self, i: usize, what: &'static str) -> Result<u32> {
        let value = self.fields.get(i).copied().unwrap_or("");
        match id(value) {
            Id::Valid(id) => Ok(id),
            Id::OutOfRange => Err(UserError::EntryOutOfRange {
                file: self.file,
                name: self.name().to_owned(),
                what,
                value: value.to_owned(),
            }),
            Id::Name => Err(UserError::EntryNotNumeric { file: self.file, name: self.name().to_owned(), what }),
        }
    }
}

/// How an entry is looked up: by its name, or by the id in field 2.
enum Key<'a> {
    Name(&'a str),
    Id(u32),
}

/// An image's /etc/passwd and /etc/group.
#[derive(Debug, Clone, Default)]
pub struct Accounts {
    passwd: String,
    group: String,
}

impl Accounts {
    /// Accounts from the text of /etc/passwd and /etc/group.
    pub fn new(passwd: String, group: String) -> Self {
        Self { passwd, group }
    }

    /// The accounts of the filesystem at `root`, its files resolved inside
    /// it (the image's /etc may be a symlink); a missing file has no entries.
    /// The image is untrusted: a file that is not a regular one (a FIFO
    /// would block the read forever) or is huge is an error, as runc errors.
    pub fn read(root: &Path) -> Result<Self> {
        Ok(Self::new(read_file(root, PASSWD)?, read_file(root, GROUP)?))
    }

    fn find<'a>(text: &'a str, file: &'static str, key: &Key<'_>) -> Option<Entry<'a>> {
        text.lines().map(|l| Entry { file, fields: l.split(':').collect() }).find(|e| match key {
            Key::Name(name) => e.name() == *name,
            Key::Id(want) => e.fields.get(2).is_some_and(|f| matches!(id(f), Id::Valid(n) if n == *want)),
        })
    }

    /// `USER user[:group]`, the way docker (runc's GetExecUser) resolves it:
    /// an empty user is root; a number not in /etc/passwd is used as is, with
    /// gid 0 and home `/`; without a group, the groups /etc/group lists the
    /// user's name in are its supplementary groups (none for a uid without
    /// a passwd entry, none when a group is given).
    pub fn exec_user(&self, spec: &str) -> Result<ExecUser> {
        let (user, group) = split(spec);
        let user = if user.is_empty() { "0" } else { user };
        let home = |e: &Entry<'_>| e.fields.get(5).copied().unwrap_or_default().to_owned();
        let (uid, mut gid, name, home) = match id(user) {
            Id::OutOfRange => return Err(UserError::OutOfRange { what: "uid", value: user.to_owned() }),
            Id::Valid(uid) => match Self::find(&self.passwd, PASSWD, &Key::Id(uid)) {
                Some(e) => (uid, e.id(3, "gid")?, Some(e.name().to_owned()), home(&e)),
                None => (uid, 0, None, "/".to_owned()),
            },
            Id::Name => {
                let e = Self::find(&self.passwd, PASSWD, &Key::Name(user))
                    .ok_or_else(|| UserError::NoUser(user.to_owned()))?;
                (e.id(2, "uid")?, e.id(3, "gid")?, Some(user.to_owned()), home(&e))
            }
        };
        if let Some(group) = group {
            gid = self.gid(group)?;
        }
        let mut groups = Vec::new();
        if let (Some(name), None) = (&name, group) {
            for line in self.group.lines() {
                let e = Entry { file: GROUP, fields: line.split(':').collect() };
                if e.fields.get(3).is_some_and(|m| m.split(',').any(|m| m == name)) {
                    // A broken line elsewhere in the file is not this user's problem.
                    if let Ok(g) = e.id(2, "gid") {
                        groups.push(g);
                    }
                }
            }
        }
        Ok(ExecUser { uid, gid, groups, home })
    }

    /// `COPY --chown=user[:group]`, the way docker resolves it: a uid without
    /// a group is also the gid; a name takes its primary group.
    pub fn owner(&self, spec: &str) -> Result<(u32, u32)> {
        let (user, group) = split(spec);
        let (uid, user_gid) = match id(user) {
            Id::Valid(uid) => (uid, uid),
            Id::OutOfRange => return Err(UserError::OutOfRange { what: "uid", value: user.to_owned() }),
            Id::Name => {
                let e = Self::find(&self.passwd, PASSWD, &Key::Name(user))
                    .ok_or_else(|| UserError::NoUser(user.to_owned()))?;
                (e.id(2, "uid")?, e.id(3, "gid")?)
            }
        };
        let gid = match group {
            None => user_gid,
            Some(g) => self.gid(g)?,
        };
        Ok((uid, gid))
    }

    /// A group, by number or by name.
    fn gid(&self, group: &str) -> Result<u32> {
        match id(group) {
            Id::Valid(gid) => Ok(gid),
            Id::OutOfRange => Err(UserError::OutOfRange { what: "gid", value: group.to_owned() }),
            Id::Name => Self::find(&self.group, GROUP, &Key::Name(group))
                .ok_or_else(|| UserError::NoGroup(group.to_owned()))?
                .id(2, "gid"),
        }
    }
}

fn split(spec: &str) -> (&str, Option<&str>) {
    match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accounts() -> Accounts {
        Accounts::new(
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/app:/bin/sh\nhuge:x:99999999999:1::/:/bin/sh\n\
             minus:x:4294967295:1::/:/bin/sh\nnogid:x:7\n"
                .into(),
            "wheel:x:10:app,other\nstaff:x:50:app\nbig:x:4294967296:app\nroot:x:0:\n".into(),
        )
    }

    #[test]
    fn exec_users_follow_dockers_rules() {
        let out_of_range = |what, value: &str| Err(UserError::OutOfRange { what, value: value.into() });
        for (spec, want) in [
            ("", Ok((0, 0, vec![]))),
            ("root", Ok((0, 0, vec![]))),
            ("app", Ok((1000, 1001, vec![10, 50]))),
            ("1000", Ok((1000, 1001, vec![10, 50]))),
            ("app:wheel", Ok((1000, 10, vec![]))),
            ("app:77", Ok((1000, 77, vec![]))),
            ("4242", Ok((4242, 0, vec![]))),
            ("4242:staff", Ok((4242, 50, vec![]))),
            ("nobody", Err(UserError::NoUser("nobody".into()))),
            ("app:nogroup", Err(UserError::NoGroup("nogroup".into()))),
            ("4294967295", out_of_range("uid", "4294967295")),
            ("0:4294967295", out_of_range("gid", "4294967295")),
            ("99999999999", out_of_range("uid", "99999999999")),
            (
                "huge",
                Err(UserError::EntryOutOfRange {
                    file: PASSWD,
                    name: "huge".into(),
                    what: "uid",
                    value: "99999999999".into(),
                }),
            ),
            ("nogid", Err(UserError::EntryNotNumeric { file: PASSWD, name: "nogid".into(), what: "gid" })),
        ] {
            let got = accounts().exec_user(spec).map(|u| (u.uid, u.gid, u.groups));
            assert_eq!(got, want, "USER {spec}");
        }
    }

    #[test]
    fn homes_come_from_the_passwd_entry() {
        for (spec, want) in [("", "/root"), ("app", "/app"), ("1000:wheel", "/app"), ("4242", "/"), ("4242:staff", "/")]
        {
            assert_eq!(accounts().exec_user(spec).unwrap().home, want, "USER {spec}");
        }
    }

    #[test]
    fn owners_follow_dockers_rules() {
        for (spec, want) in [
            ("0", Ok((0, 0))),
            ("1000", Ok((1000, 1000))),
            ("app", Ok((1000, 1001))),
            ("app:wheel", Ok((1000, 10))),
            ("7:wheel", Ok((7, 10))),
            ("-1", Err(UserError::NoUser("-1".into()))),
        ] {
            assert_eq!(accounts().owner(spec), want, "--chown={spec}");
        }
    }

    #[test]
    fn files_are_read_inside_the_root() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("real")).unwrap();
        std::os::unix::fs::symlink("/real", root.path().join("etc")).unwrap();
        std::fs::write(root.path().join("real/passwd"), "app:x:5:6::/:/bin/sh\n").unwrap();
        assert_eq!(Accounts::read(root.path()).unwrap().owner("app"), Ok((5, 6)));
        assert_eq!(
            Accounts::read(&root.path().join("missing")).unwrap().owner("app"),
            Err(UserError::NoUser("app".into()))
        );
    }

    #[test]
    fn a_huge_or_special_accounts_file_is_an_error() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("etc")).unwrap();
        // Sparse: 17 MiB claimed, nothing written.
        let f = std::fs::File::create(root.path().join("etc/group")).unwrap();
        f.set_len(17 * 1024 * 1024).unwrap();
        let err = Accounts::read(root.path()).unwrap_err();
        assert!(err.to_string().contains("/etc/group: it is 17825792 bytes, more than the 16 MiB allowed"), "{err}");
        std::fs::remove_file(root.path().join("etc/group")).unwrap();
        std::fs::create_dir(root.path().join("etc/passwd")).unwrap();
        let err = Accounts::read(root.path()).unwrap_err();
        assert!(err.to_string().contains("/etc/passwd: it is not a regular file"), "{err}");
    }
}
