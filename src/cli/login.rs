//! `berth login` and `berth logout`: registry credentials in Docker's `config.json`.

use std::io::Read;

use anyhow::{bail, Context};
use berth::image::{self, Credentials};
use clap::Args;

/// Arguments of `berth login`.
#[derive(Args, Debug)]
pub struct LoginArgs {
    /// Registry host[:port] (default: Docker Hub)
    pub server: Option<String>,
    /// User name
    #[arg(short, long)]
    pub username: Option<String>,
    /// Password or token (prefer --password-stdin)
    #[arg(short, long)]
    pub password: Option<String>,
    /// Read the password from standard input
    #[arg(long)]
    pub password_stdin: bool,
}

/// Arguments of `berth logout`.
#[derive(Args, Debug)]
pub struct LogoutArgs {
    /// Registry host[:port] (default: Docker Hub)
    pub server: Option<String>,
}

fn registry(server: Option<&str>) -> String {
    let s = server.unwrap_or("docker.io");
    let s = s.split_once("://").map_or(s, |(_, rest)| rest);
    s.split('/').next().unwrap_or(s).to_string()
}

/// Runs `berth login`: checks the credentials against the registry, then stores them.
pub fn login(args: LoginArgs) -> anyhow::Result<()> {
    let server = registry(args.server.as_deref());
    let Some(username) = args.username else { bail!("`--username` is required") };
    let password = match (args.password, args.password_stdin) {
        (Some(_), true) => bail!("`--password` and `--password-stdin` are mutually exclusive"),
        (Some(p), false) => p,
        (None, true) => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s)?;
            s.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => bail!("give the password with `--password-stdin` (or `--password`)"),
    };
    let creds = Credentials { username, password };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime
        .block_on(image::check_login(&server, &creds, false))
        .with_context(|| format!("login to `{server}` failed"))?;
    let path = image::login(&server, &creds, None)?;
    eprintln!("credentials for `{server}` stored in `{}`", path.display());
    println!("Login Succeeded");
    Ok(())
}

/// Runs `berth logout`.
pub fn logout(args: LogoutArgs) -> anyhow::Result<()> {
    let server = registry(args.server.as_deref());
    if image::logout(&server, None)? {
        println!("Removing login credentials for {server}");
    } else {
        eprintln!("not logged in to `{server}`");
    }
    Ok(())
}
