//! App lifecycle: create, destroy, rename and clone (the create/delete halves of a rename or
//! clone are not recorded: the rename event says it all).

use super::*;

impl Capture<'_> {
    pub(super) fn app_lifecycle(&mut self, app: &str, create: bool) -> Built {
        let w = self.windows;
        if self.state.renaming(self.pid(), app, create, &w) {
            // The create/delete half of a rename or clone: the rename event says it all.
            return Built::default();
        }
        let (kind, action, message) = if create {
            ("app-create", "create", "app created")
        } else {
            ("app-destroy", "destroy", "app destroyed")
        };
        let who = self.follow_on(app, kind);
        let classification = if create { "app_create" } else { "app_destroy" };
        let spec = Spec::new(
            Some(app),
            "app",
            action,
            classification,
            message.into(),
            Map::new(),
        );
        Built::one(self.event(spec, &who))
    }

    pub(super) fn renamed(&mut self, old: &str, new: &str, clone: bool) -> Built {
        let (kind, action, classification, verb) = if clone {
            ("app-clone", "clone", "app_clone", "cloned")
        } else {
            ("app-rename", "rename", "app_rename", "renamed")
        };
        let who = self.follow_on(new, kind);
        self.state
            .renames
            .retain(|r| !(r.old == old && r.new == new));
        let meta = obj(vec![("old_app", old.into()), ("new_app", new.into())]);
        let spec = Spec::new(
            Some(new),
            "app",
            action,
            classification,
            format!("app {verb} from {old} to {new}"),
            meta,
        );
        Built::one(self.event(spec, &who))
    }
}

/// Calls that record nothing and change no state: the trigger can return before taking a lock
/// (most `user-auth` calls for read-only commands end here).
pub fn records_nothing(hook: &Hook, env: &HookEnv) -> bool {
    match hook {
        Hook::UserAuth { tokens, .. } => {
            if tokens.is_empty() {
                return true;
            }
            let inv = command_line::parse(tokens, env.app_name.as_deref());
            !inv.is_recorded(&tokens[inv.args_start.min(tokens.len())..])
        }
        Hook::DomainsUpdate { action: None, .. } => true,
        Hook::ConfigUpdate { action, keys, .. } => {
            action != "clear"
                && keys
                    .iter()
                    .all(|k| redact::INTERNAL_CONFIG_KEYS.contains(&k.as_str()))
        }
        _ => false,
    }
}
