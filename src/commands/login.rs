//! `kiln login` and `kiln logout`: docker's config.json `auths`.

use std::io::Read as _;

use anyhow::{bail, Context as _};
use kiln::registry::auth::Credential;
use kiln::registry::{Client, RegistryConfig};

use crate::cli::registry::{LoginArgs, LogoutArgs};

fn host(host: Option<String>) -> String {
    host.unwrap_or_else(|| kiln::store::reference::DEFAULT_REGISTRY.to_owned())
}

pub fn login(config: &RegistryConfig, args: LoginArgs) -> anyhow::Result<()> {
    let (username, secret) = if args.password_stdin {
        let Some(username) = args.username else {
            bail!("--password-stdin needs the user name too: give it with -u");
        };
        let mut secret = String::new();
        std::io::stdin().read_to_string(&mut secret).context("reading the password from standard input")?;
        (username, secret.trim_end_matches(['\n', '\r']).to_owned())
    } else {
        let mut tty = Terminal::open()?;
        let username = match args.username {
            Some(u) => u,
            None => tty.ask("Username: ", true)?,
        };
        (username, tty.ask("Password: ", false)?)
    };
    let host = host(args.host);
    let credential = Credential { username, secret };
    kiln::registry::block_on(async {
        let client = Client::for_host(config, &host).await?;
        client.verify(&credential).await
    })??;
    let path = config.auth.store(&host, &credential)?;
    eprintln!("credentials kept in {}", path.display());
    crate::outln!("Login Succeeded")
}

pub fn logout(config: &RegistryConfig, args: LogoutArgs) -> anyhow::Result<()> {
    let host = host(args.host);
    if config.auth.remove(&host)? {
        crate::outln!("Removing login credentials for {host}")
    } else {
        crate::outln!("Not logged in to {host}")
    }
}

/// The controlling terminal, for docker's interactive login: the password
/// is read with echo off, so it never shows on the screen or in a log of it.
struct Terminal(std::fs::File);

impl Terminal {
    fn open() -> anyhow::Result<Self> {
        let tty = std::fs::OpenOptions::new().read(true).write(true).open("/dev/tty").context(
            "cannot ask for the credentials: kiln has no terminal; give the password on standard input with \
             --password-stdin (and the user with -u)",
        )?;
        Ok(Self(tty))
    }

    /// Print `prompt` and read one line; with `echo` off for a secret, the
    /// terminal's settings restored after, whatever happened.
    fn ask(&mut self, prompt: &str, echo: bool) -> anyhow::Result<String> {
        use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
        use std::io::{BufRead as _, Write as _};
        let saved = tcgetattr(&self.0).context("reading the terminal's settings")?;
        // Echo goes off before the prompt shows: whoever answers the prompt
        // the moment it appears must not see the secret echoed.
        if !echo {
            let mut quiet = saved.clone();
            quiet.local_flags.remove(LocalFlags::ECHO);
            quiet.local_flags.insert(LocalFlags::ECHONL);
            tcsetattr(&self.0, SetArg::TCSANOW, &quiet).context("turning the terminal's echo off")?;
        }
        let mut line = String::new();
        let read = self
            .0
            .write_all(prompt.as_bytes())
            .and_then(|_| self.0.flush())
            .and_then(|_| std::io::BufReader::new(&self.0).read_line(&mut line));
        if !echo {
            let _ = tcsetattr(&self.0, SetArg::TCSANOW, &saved);
        }
        read.context("asking on the terminal")?;
        Ok(line.trim_end_matches(['\n', '\r']).to_owned())
    }
}
