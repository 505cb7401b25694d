//! The `dokku-audit` binary: parse, run, and turn any error into one Dokku-style line.

use std::process::ExitCode;

use clap::Parser;
use dokku_audit::cli::{self, Args, CliError};

fn main() -> ExitCode {
    let mut argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // Root stops being root before anything touches the data directory (src/privilege.rs),
    // while this is still the only thread.
    let switched = dokku_audit::privilege::enter();
    // The trigger path skips clap: Dokku's arguments may look like flags, and it must be fast.
    if argv.get(1).is_some_and(|a| a == "hook") {
        if let Err(e) = switched {
            // Never touch the data directory as root; never break Dokku either.
            eprintln!(" !     dokku-audit: warning: nothing recorded: {e}");
            return ExitCode::SUCCESS;
        }
        return cli::hook::main(argv.split_off(2));
    }
    if let Err(e) = switched {
        eprintln!(" !     {e}");
        return ExitCode::from(1);
    }
    let argv = cli::normalize_argv(argv);
    let args = match Args::try_parse_from(argv) {
        Ok(a) => a,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            eprintln!(" !     {}", clap_message(&e));
            return ExitCode::from(1);
        }
    };
    match cli::run(args) {
        Ok(()) | Err(CliError::BrokenPipe) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(" !     {e}");
            ExitCode::from(1)
        }
    }
}

/// clap's error as one line: its first line without the `error: ` prefix.
fn clap_message(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("invalid arguments");
    let first = first.strip_prefix("error: ").unwrap_or(first);
    // "the following required arguments were not provided:" names them on the next line.
    match (first.ends_with(':'), lines.next()) {
        (true, Some(next)) => format!("{first} {next}"),
        _ => first.to_string(),
    }
}
