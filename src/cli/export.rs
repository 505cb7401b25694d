//! `export [--format jsonl|json|csv] [--app APP] [--since T] [--until T] [--output PATH]`:
//! events oldest first (log order), streamed from the segments.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use clap::Args as ClapArgs;

use super::{CliError, Context};
use crate::output::{ExportFormat, ExportWriter};
use crate::query::{self, Filter, ScanError};
use crate::timefmt;

/// Arguments of `export`.
#[derive(Debug, ClapArgs)]
pub struct ExportArgs {
    /// jsonl (default), json or csv.
    #[arg(long, default_value = "jsonl")]
    pub format: String,
    /// Only this app.
    #[arg(long)]
    pub app: Option<String>,
    /// Events at or after this time (RFC 3339, date, or age like 7d).
    #[arg(long)]
    pub since: Option<String>,
    /// Events at or before this time.
    #[arg(long)]
    pub until: Option<String>,
    /// Write here (atomically) instead of stdout.
    #[arg(long, value_name = "PATH")]
    pub output: Option<PathBuf>,
}

/// Parses `--since`/`--until` into a canonical timestamp.
pub fn time_bound(ctx: &Context, v: &Option<String>) -> Result<Option<String>, CliError> {
    v.as_deref()
        .map(|s| {
            timefmt::parse_time_arg(s, ctx.clock.now())
                .map(timefmt::format_utc)
                .map_err(|e| CliError::Usage(e.to_string()))
        })
        .transpose()
}

/// Runs `export`.
pub fn run(ctx: &Context, args: ExportArgs) -> Result<(), CliError> {
    let format: ExportFormat = args.format.parse().map_err(CliError::Usage)?;
    let filter = Filter {
        app: args.app.clone(),
        since: time_bound(ctx, &args.since)?,
        until: time_bound(ctx, &args.until)?,
    };
    let store = ctx.store()?;
    store.check_readable()?;
    let exported_at = ctx.clock.now_ts();
    match &args.output {
        None => {
            let stdout = std::io::stdout();
            let out = BufWriter::with_capacity(256 * 1024, stdout.lock());
            drop(write_export(
                &store,
                &filter,
                format,
                &exported_at,
                out,
                "stdout",
            )?);
        }
        Some(path) => {
            // A path inside the data directory is touched as the runtime user, with the data
            // directory's rules (no symlink followed); one outside it as the operator who named
            // it (root stays root there: `--output /root/audit.jsonl` works).
            let inside = crate::privilege::is_inside(path, &ctx.data_dir);
            // A device, FIFO or socket (`/dev/stdout`, `/dev/full`, a named pipe) is written in
            // place: the temp file + rename below would replace the special file itself with a
            // regular file. Found by tests/hostile_input.rs: `--output /dev/full` (as root)
            // succeeded and left a regular file where the device was.
            match std::fs::metadata(path) {
                Ok(m) if m.is_dir() => {
                    return Err(CliError::Usage(format!(
                        "--output {}: is a directory",
                        path.display()
                    )));
                }
                Ok(m) if !m.is_file() => {
                    let f = as_operator(inside, || {
                        std::fs::OpenOptions::new().write(true).open(path)
                    })
                    .map_err(CliError::output("--output"))?;
                    let mut f = write_export(
                        &store,
                        &filter,
                        format,
                        &exported_at,
                        BufWriter::new(f),
                        "--output",
                    )?;
                    return f.flush().map_err(CliError::output("--output"));
                }
                _ => {}
            }
            let tmp = temp_path(path);
            let result = as_operator(inside, || create_output_temp(path, &tmp, inside))
                .map_err(CliError::output("--output"))
                .and_then(|f| {
                    let f = write_export(
                        &store,
                        &filter,
                        format,
                        &exported_at,
                        BufWriter::new(f),
                        "--output",
                    )?;
                    f.sync_all().map_err(CliError::output("--output"))
                })
                .and_then(|()| {
                    as_operator(inside, || rename_output(&tmp, path, inside))
                        .map_err(CliError::output("--output"))
                });
            if result.is_err() {
                let _ = as_operator(inside, || remove_output(&tmp, inside));
            }
            result?;
        }
    }
    Ok(())
}

/// An unpredictable name beside the output (`.<name>.tmp-<random>-<pid>`).
fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(crate::layout::temp_name(&name))
}

/// Creates the temp file exclusively (a planted name or symlink is an error, never followed),
/// and the output's parent directories if missing.
fn create_output_temp(path: &Path, tmp: &Path, inside: bool) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        if std::fs::symlink_metadata(parent).is_err() {
            std::fs::create_dir_all(parent)?;
        }
    }
    if inside {
        let owner = crate::safefs::Ownership::from_env();
        return crate::safefs::create_new(tmp, &owner).map_err(std::io::Error::other);
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o640)
        .custom_flags(libc::O_NOFOLLOW)
        .open(tmp)
}

fn rename_output(tmp: &Path, path: &Path, inside: bool) -> std::io::Result<()> {
    if inside {
        crate::safefs::rename(tmp, path)
    } else {
        std::fs::rename(tmp, path)
    }
}

fn remove_output(tmp: &Path, inside: bool) -> std::io::Result<()> {
    if inside {
        crate::safefs::remove_file(tmp)
    } else {
        std::fs::remove_file(tmp)
    }
}

/// Runs a file operation on the output path: as the runtime user inside the data directory, as
/// the operator who named the path outside it (`privilege::as_invoker`).
fn as_operator<T>(inside: bool, f: impl FnOnce() -> std::io::Result<T>) -> std::io::Result<T> {
    if inside {
        f()
    } else {
        crate::privilege::as_invoker(f).and_then(|r| r)
    }
}

fn write_export<W: Write>(
    store: &crate::store::Store,
    filter: &Filter,
    format: ExportFormat,
    exported_at: &str,
    out: BufWriter<W>,
    what: &str,
) -> Result<W, CliError> {
    let mut w = ExportWriter::start(out, format, exported_at).map_err(CliError::output(what))?;
    let summary =
        query::scan_events(store, filter, &mut |ev| w.event_open(ev)).map_err(|e| match e {
            ScanError::Store(s) => CliError::Store(s),
            ScanError::Output(io) => CliError::output(what)(io),
        })?;
    let out = w.finish().map_err(CliError::output(what))?;
    for d in &summary.damage {
        eprintln!(
            "dokku-audit: warning: skipped damaged data at {}: {}",
            d.pos, d.kind
        );
    }
    out.into_inner()
        .map_err(|e| CliError::output(what)(e.into_error()))
}

#[cfg(test)]
mod tests {
    /// `--output` at a device writes to it and leaves it a device (it used to be replaced by a
    /// regular file through the temp + rename path).
    #[test]
    fn output_to_a_device_keeps_the_device() {
        use clap::Parser;
        use std::os::unix::fs::FileTypeExt;
        let tmp = tempfile::tempdir().unwrap();
        let store = crate::store::Store::new(
            tmp.path(),
            crate::store::StoreOptions::default(),
            crate::safefs::Ownership::default(),
        );
        store.init().unwrap();
        let args = crate::cli::Args::parse_from([
            "dokku-audit",
            "--data-dir",
            tmp.path().to_str().unwrap(),
            "export",
            "--output",
            "/dev/null",
        ]);
        assert!(std::fs::metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device());
        crate::cli::run(args).unwrap();
        assert!(std::fs::metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device());
    }
}
