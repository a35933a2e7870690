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
    if !args.password_stdin {
        bail!("give the password on standard input with --password-stdin (never as an argument)");
    }
    let mut secret = String::new();
    std::io::stdin().read_to_string(&mut secret).context("reading the password from standard input")?;
    let secret = secret.trim_end_matches(['\n', '\r']).to_owned();
    let host = host(args.host);
    let credential = Credential { username: args.username, secret };
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
