//! `get <key>` and `set <key> <value>`: runtime settings, stored in `<data dir>/settings.json`.
//! `set` validates the value the way every reader will parse it, so a bad value is refused
//! before it is stored; an empty value removes the stored one (back to env/default). Every
//! successful `set` records a `maintenance`/`set` (or `unset`) event with the value in effect
//! before and after (settings hold no secrets).

use clap::Args as ClapArgs;
use serde_json::Value;

use super::{CliError, Context};
use crate::settings::{Settings, KEYS};

/// Arguments of `get`.
#[derive(Debug, ClapArgs)]
pub struct GetArgs {
    /// The setting.
    pub key: String,
}

/// Arguments of `set`.
#[derive(Debug, ClapArgs)]
pub struct SetArgs {
    /// The setting.
    pub key: String,
    /// The value (empty: back to the environment or default).
    #[arg(allow_hyphen_values = true)]
    pub value: Option<String>,
}

fn known(key: &str) -> Result<&'static str, CliError> {
    KEYS.iter()
        .find(|k| k.name == key)
        .map(|k| k.name)
        .ok_or_else(|| {
            let names: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
            CliError::Usage(format!(
                "config key not set: {key} (not a setting; known: {})",
                names.join(", ")
            ))
        })
}

/// Runs `get`: the value in effect (stored, else environment, else default).
pub fn get(ctx: &Context, args: GetArgs) -> Result<(), CliError> {
    let key = known(&args.key)?;
    println!("{}", ctx.settings.raw(key));
    Ok(())
}

/// Runs `set`.
pub fn set(ctx: &Context, args: SetArgs) -> Result<(), CliError> {
    let key = known(&args.key)?;
    let value = args.value.unwrap_or_default();
    let mut updated: Settings = ctx.settings.clone();
    updated.store(key, &value);
    updated.validate()?;
    updated.save(&ctx.data_dir)?;
    // The change stands from here; the trail records it with the new store options in effect.
    let (old, new) = (ctx.settings.raw(key), updated.raw(key));
    let (action, message) = if value.is_empty() {
        (
            "unset",
            format!("setting {key} unset: changed from {old} to {new} (environment or default)"),
        )
    } else if old == new {
        ("set", format!("setting {key} set to {new} (unchanged)"))
    } else {
        ("set", format!("setting {key} changed from {old} to {new}"))
    };
    let meta = super::trail::meta(&[
        ("setting", Value::from(key)),
        ("old", Value::from(old)),
        ("new", Value::from(new)),
    ]);
    let store = crate::store::Store::new(
        &ctx.data_dir,
        crate::store::StoreOptions::from_settings(&updated)?,
        ctx.owner,
    );
    super::trail::record_change(ctx, &store, action, message, meta);
    println!("{key}={value}");
    Ok(())
}
