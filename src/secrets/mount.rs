//! A step's secrets and ssh agents, made ready for the sandbox.
//!
//! Values are read only now, when a step mounts them, and written only to a
//! tmpfs kiln mounts for the step in its own private mount namespace (see
//! `main.rs`): they never touch a disk, and no other process of the host
//! sees that tmpfs. Each file gets the mount's mode, uid and gid and is bound
//! read-only at its target; a variable (`env=`) reaches the command through
//! [`SpecEnvFile`], read by the sandbox just before it starts the command,
//! so the spec file kiln writes holds paths, never values. Dropping
//! [`StepSecrets`] unmounts the tmpfs, which frees every value with it.
//! (A program that links kiln as a library and has no private mount
//! namespace shows the tmpfs in the host's mount table while the step runs,
//! at a 0700 folder of the 0700 store root; see `build`'s module doc.)
//!
//! An ssh agent is not bound directly: a bind keeps the host socket's owner
//! and mode, which a step running as another user could not connect to, and
//! which the step could change on the host's own socket. kiln serves a
//! socket of its own on the tmpfs instead, with the mount's mode, uid and
//! gid, and forwards each connection to the agent, only the requests that
//! use a key, never those that change the agent (see `agent`).

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use kiln_frontend::{ExecOp, RunMount};
use nix::mount::{mount, umount2, MntFlags, MsFlags};

use super::agent::Agent;
use super::{Redactor, SecretKind, SecretSource, SecretsError, MAX_SECRET_SIZE};
use crate::build::RunOptions;
use crate::sandbox::{SpecEnvFile, SpecMount, SpecMountKind};

/// What one RUN step gets of the build's secrets and ssh agents; torn down
/// when dropped.
#[derive(Default)]
pub(crate) struct StepSecrets {
    /// Bound over the root filesystem, in the step's order.
    pub(crate) mounts: Vec<SpecMount>,
    /// Variables read from the tmpfs when the command starts.
    pub(crate) env_files: Vec<SpecEnvFile>,
    /// `SSH_AUTH_SOCK=…` for the step's first ssh mount.
    pub(crate) ssh_auth_sock: Option<String>,
    /// Every value the step can see, to mask in its output.
    pub(crate) redactor: Redactor,
    tmpfs: Option<PathBuf>,
    agents: Vec<Agent>,
}

impl StepSecrets {
    /// Read and place what `op` mounts, in a tmpfs below `scratch`. A secret
    /// or agent that was not given and is not required is not mounted (as
    /// BuildKit); a required one was refused before the build started.
    pub(crate) fn prepare(op: &ExecOp, run: &RunOptions, scratch: &Path) -> Result<Self, SecretsError> {
        let mut step = StepSecrets::default();
        let wanted: Vec<_> =
            op.mounts.iter().filter(|m| matches!(m, RunMount::Secret { .. } | RunMount::Ssh { .. })).collect();
        // Room for a file and a variable of the largest size per mount.
        let size = (wanted.len() as u64 * 2 + 1) * MAX_SECRET_SIZE;
        for (n, m) in wanted.into_iter().enumerate() {
            match m {
                RunMount::Secret { id, target, env, required, mode, uid, gid } => {
                    let Some(source) = run.secrets.iter().find(|s| &s.id == id) else {
                        if *required {
                            return Err(SecretsError::MissingSecret { place: String::new(), id: id.clone() });
                        }
                        continue;
                    };
                    let value = read_value(source)?;
                    step.redactor.add(&value);
                    let dir = step.tmpfs(scratch, id, size)?;
                    if let Some(target) = target {
                        let path = dir.join(format!("{n}"));
                        write_file(&path, &value, *mode, *uid, *gid).map_err(fail(id, &owned_by(*uid, *gid)))?;
                        let kind = SpecMountKind::Bind { source: path, readonly: true };
                        step.mounts.push(SpecMount { target: target.clone(), kind });
                    }
                    if let Some(name) = env {
                        let path = dir.join(format!("{n}.env"));
                        write_file(&path, &value, 0o400, 0, 0).map_err(fail(id, "writing its value"))?;
                        step.env_files.push(SpecEnvFile { name: name.clone(), source: path });
                    }
                }
                RunMount::Ssh { id, target, required, mode, uid, gid } => {
                    let Some(source) = run.ssh.iter().find(|s| &s.id == id) else {
                        if *required {
                            return Err(SecretsError::MissingSsh { place: String::new(), id: id.clone() });
                        }
                        continue;
                    };
                    let dir = step.tmpfs(scratch, id, size)?;
                    let path = dir.join(format!("{n}.sock"));
                    let agent = Agent::serve(&path, &source.socket, *mode, *uid, *gid)
                        .map_err(fail(id, &format!("serving its ssh agent as {}", owned_by(*uid, *gid))))?;
                    step.agents.push(agent);
                    step.mounts.push(SpecMount {
                        target: target.clone(),
                        kind: SpecMountKind::Bind { source: path, readonly: false },
                    });
                    step.ssh_auth_sock.get_or_insert_with(|| target.clone());
                }
                _ => {}
            }
        }
        Ok(step)
    }

    /// The step's tmpfs of `size` bytes, mounted on first use: mode 0700,
    /// nothing on it executable, no devices, never swapped where the kernel
    /// allows.
    fn tmpfs(&mut self, scratch: &Path, id: &str, size: u64) -> Result<PathBuf, SecretsError> {
        if let Some(dir) = &self.tmpfs {
            return Ok(dir.clone());
        }
        let dir = tempfile::Builder::new()
            .prefix(&crate::store::temp_prefix("secrets"))
            .tempdir_in(scratch)
            .map_err(fail(id, "making a folder for its tmpfs"))?
            .keep();
        let flags = MsFlags::MS_NODEV | MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC;
        // `noswap` (Linux 6.4) keeps the values off the swap device too; an
        // older kernel refuses the option with EINVAL, and gets it without.
        let options = format!("mode=0700,size={size}");
        let mounted = match mount(Some("tmpfs"), &dir, Some("tmpfs"), flags, Some(format!("{options},noswap").as_str()))
        {
            Err(nix::errno::Errno::EINVAL) => mount(Some("tmpfs"), &dir, Some("tmpfs"), flags, Some(options.as_str())),
            other => other,
        };
        if let Err(e) = mounted {
            let _ = std::fs::remove_dir(&dir);
            return Err(fail(id, "mounting its tmpfs")(e.into()));
        }
        self.tmpfs = Some(dir.clone());
        Ok(dir)
    }
}

impl Drop for StepSecrets {
    fn drop(&mut self) {
        for agent in self.agents.drain(..) {
            agent.stop();
        }
        if let Some(dir) = self.tmpfs.take() {
            // Detached: a sandbox that is still being torn down may hold a
            // bind of a file; the values go with the last reference.
            let _ = umount2(&dir, MntFlags::MNT_DETACH);
            let _ = std::fs::remove_dir(&dir);
        }
    }
}

/// What a failed chown most likely means, for the message.
fn owned_by(uid: u32, gid: u32) -> String {
    let why = match (uid, gid) {
        (0, 0) => "",
        _ => " (a rootless kiln without a subordinate id range in /etc/subuid and /etc/subgid has only id 0)",
    };
    format!("writing a file owned by {uid}:{gid}{why}")
}

fn fail(id: &str, what: &str) -> impl FnOnce(std::io::Error) -> SecretsError {
    let (id, what) = (id.to_owned(), what.to_owned());
    move |source| SecretsError::Mount { id, what, source }
}

/// A secret's value: its file's content (at most [`MAX_SECRET_SIZE`]), or
/// its variable's, empty when kiln's environment lacks it (as BuildKit).
fn read_value(source: &SecretSource) -> Result<Vec<u8>, SecretsError> {
    forbid_dumps();
    match &source.kind {
        SecretKind::Env(var) => Ok(std::env::var_os(var).map(|v| v.into_encoded_bytes()).unwrap_or_default()),
        SecretKind::File(path) => {
            let unreadable = |e| SecretsError::SecretFile { id: source.id.clone(), path: path.clone(), source: e };
            let file = std::fs::File::open(path).map_err(unreadable)?;
            let mut value = Vec::new();
            file.take(MAX_SECRET_SIZE + 1).read_to_end(&mut value).map_err(unreadable)?;
            if value.len() as u64 > MAX_SECRET_SIZE {
                let size = value.len() as u64;
                return Err(SecretsError::SecretTooBig { id: source.id.clone(), path: path.clone(), size });
            }
            Ok(value)
        }
    }
}

/// From the first value read on, kiln's memory holds secrets (the
/// redactor's copies): no core dump of it, and no other process of the
/// caller's may ptrace it or read its /proc/PID/mem and environ. Left so for
/// the rest of the process, as a step of another build may hold values
/// too. The sandbox's processes are not affected: execve makes each of them
/// dumpable again, so kiln still writes their id maps and a network helper
/// still joins their namespace.
fn forbid_dumps() {
    // SAFETY: PR_SET_DUMPABLE takes an integer and touches no memory of ours.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
}

/// Write `value` to a new file with exactly `mode`, owned by `uid`:`gid`.
fn write_file(path: &Path, value: &[u8], mode: u32, uid: u32, gid: u32) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(value)?;
    std::os::unix::fs::fchown(&file, Some(uid), Some(gid))?;
    // After the chown, which clears setuid bits, and without the umask.
    file.set_permissions(std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run in a process of its own (the test binary again), as the flag
    /// stays set for the rest of the process.
    #[test]
    fn reading_a_value_makes_kiln_non_dumpable() {
        const CHILD: &str = "_KILN_TEST_DUMPABLE_CHILD";
        if std::env::var_os(CHILD).is_some() {
            // SAFETY: PR_GET_DUMPABLE reads a flag of the process.
            assert_eq!(unsafe { libc::prctl(libc::PR_GET_DUMPABLE) }, 1, "dumpable to begin with");
            let source = SecretSource { id: "x".into(), kind: SecretKind::Env("_KILN_NO_SUCH_VARIABLE".into()) };
            read_value(&source).unwrap();
            // SAFETY: as above.
            assert_eq!(unsafe { libc::prctl(libc::PR_GET_DUMPABLE) }, 0, "dumpable while holding values");
            return;
        }
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "secrets::mount::tests::reading_a_value_makes_kiln_non_dumpable", "--nocapture"])
            .env(CHILD, "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
