//! `completions <shell>` and `man`: generated from the clap definitions, so they never drift
//! from the real flags. `make dist` puts them in the release tarball.

use std::io::Write;

use clap::{Args as ClapArgs, CommandFactory};

use super::{Args, CliError};

/// Arguments of `completions`.
#[derive(Debug, ClapArgs)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell.
    pub shell: String,
}

/// Prints the completion script for a shell.
pub fn completions(a: CompletionsArgs) -> Result<(), CliError> {
    use clap_complete::Shell;
    let shell: Shell = a
        .shell
        .parse()
        .map_err(|_| CliError::Usage(format!("unsupported shell: {}", a.shell)))?;
    let mut cmd = Args::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "dokku-audit", &mut out);
    std::io::stdout()
        .write_all(&out)
        .map_err(CliError::output("stdout"))
}

/// Prints the man page (roff).
pub fn man() -> Result<(), CliError> {
    let mut out = Vec::new();
    clap_mangen::Man::new(Args::command())
        .render(&mut out)
        .map_err(|e| CliError::Io {
            path: "man page".into(),
            source: e,
        })?;
    std::io::stdout()
        .write_all(&out)
        .map_err(CliError::output("stdout"))
}
