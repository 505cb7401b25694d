//! `serve [--listen ADDR] [--no-auth] [--threads N] [--allow-host NAME]… [--max-per-peer N]
//! [--head-timeout SECS]` and
//! `serve --rotate-token`: the read-only HTTP API and web page (see `src/serve/` and
//! docs/serve.md). Creating the token (first start) and rotating it record a `maintenance` event
//! that names the token file, never the token.

use std::io::Write;
use std::net::SocketAddr;

use clap::Args as ClapArgs;
use serde_json::Value;

use super::{CliError, Context};
use crate::serve::{self, ServeOptions, Server};

/// Arguments of `serve`.
#[derive(Debug, ClapArgs)]
pub struct ServeArgs {
    /// Address to listen on (loopback by default; any other address requires the token).
    #[arg(long, default_value = "127.0.0.1:8787", value_name = "ADDR:PORT")]
    pub listen: String,
    /// Serve the API without a token (refused unless the address is loopback).
    #[arg(long)]
    pub no_auth: bool,
    /// Worker threads for requests.
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub threads: usize,
    /// Also answer requests whose Host is NAME (a reverse proxy's name; repeatable). Loopback
    /// names and the listening address are always answered; any other Host gets a 421.
    #[arg(long = "allow-host", value_name = "NAME")]
    pub allow_host: Vec<String>,
    /// Open connections allowed from one client address (behind a reverse proxy every client
    /// shares the proxy's address).
    #[arg(long, default_value_t = 32, value_name = "N")]
    pub max_per_peer: usize,
    /// Seconds a request head may take to arrive in full, and a kept-alive connection may stay
    /// idle (1–300).
    #[arg(long, default_value_t = 5, value_name = "SECS")]
    pub head_timeout: u64,
    /// Replace the token with a new one, print it, and exit (a running server uses it at once).
    #[arg(long)]
    pub rotate_token: bool,
}

/// Runs `serve`.
pub fn run(ctx: &Context, a: ServeArgs) -> Result<(), CliError> {
    let token_file = serve::token::path(&ctx.data_dir);
    let token_before = token_file.exists();
    if a.rotate_token {
        let token =
            serve::token::rotate(&ctx.data_dir).map_err(|e| CliError::Usage(e.to_string()))?;
        record_token(ctx, "rotate-token", token_before);
        println!("{token}");
        eprintln!(
            "dokku-audit: new token written to {}",
            serve::token::path(&ctx.data_dir).display()
        );
        return Ok(());
    }
    let listen: SocketAddr = a.listen.parse().map_err(|_| {
        CliError::Usage(format!(
            "--listen must be an address and port (127.0.0.1:8787, [::1]:8787), not {:?}",
            a.listen
        ))
    })?;
    if !(1..=1024).contains(&a.threads) {
        return Err(CliError::Usage("--threads must be from 1 to 1024".into()));
    }
    if !(1..=4096).contains(&a.max_per_peer) {
        return Err(CliError::Usage(
            "--max-per-peer must be from 1 to 4096".into(),
        ));
    }
    if !(1..=300).contains(&a.head_timeout) {
        return Err(CliError::Usage(
            "--head-timeout must be from 1 to 300 seconds".into(),
        ));
    }
    let mut opts = ServeOptions::new(listen);
    opts.head_deadline = std::time::Duration::from_secs(a.head_timeout);
    opts.no_auth = a.no_auth;
    opts.threads = a.threads;
    opts.max_per_peer = a.max_per_peer;
    opts.allow_hosts = a
        .allow_host
        .iter()
        .map(|h| serve::guard::normalize_allowed(h))
        .collect::<Result<_, _>>()
        .map_err(CliError::Usage)?;
    let bound = Server::bind(
        opts,
        ctx.data_dir.clone(),
        crate::store::StoreOptions::from_settings(&ctx.settings).unwrap_or_default(),
        ctx.clock,
    );
    // The first start created the token (even if binding the address then failed).
    if !a.no_auth && !token_before && token_file.exists() {
        record_token(ctx, "create-token", false);
    }
    let server = bound.map_err(|e| CliError::Usage(e.to_string()))?;
    let addr = server
        .local_addr()
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let auth = if a.no_auth {
        "no token required".to_string()
    } else {
        format!("token in {}", serve::token::path(&ctx.data_dir).display())
    };
    let mut out = std::io::stdout();
    let _ = writeln!(out, "serving http://{addr}/ ({auth})");
    let _ = out.flush();
    server.run().map_err(|e| CliError::Usage(e.to_string()))
}

/// Records a token change: which file, whether one was replaced; never the token or a hash of it.
fn record_token(ctx: &Context, action: &str, replaced: bool) {
    let file = serve::token::path(&ctx.data_dir).display().to_string();
    let message = if action == "rotate-token" {
        format!("serve API token rotated in {file}")
    } else {
        format!("serve API token created in {file}")
    };
    let meta = super::trail::meta(&[
        ("action", Value::from(action)),
        ("token_file", Value::from(file)),
        ("replaced", Value::from(replaced)),
    ]);
    match ctx.store() {
        Ok(store) => {
            super::trail::record_change(ctx, &store, action, message, meta);
        }
        Err(e) => eprintln!(
            " !     warning: {message}, but the audit trail could not record it: {e} (the change stands)"
        ),
    }
}
