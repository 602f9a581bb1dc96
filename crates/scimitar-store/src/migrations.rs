//! Migration sets. Each concern that brings its own tables (the core
//! server, later the provisioning engine) has its own ordered set of
//! migrations per backend, applied in order and recorded by name in one
//! `schema_migrations` table. A set's steps are recorded as
//! `"{set}/{step}"`, except the core set's, which keep their bare names
//! (databases migrated before sets existed know them by those).

/// One migration: a name that never changes, and its SQL.
pub type Step = (&'static str, &'static str);

/// An ordered set of migrations of one concern.
#[derive(Debug, Clone, Copy)]
pub struct MigrationSet {
    pub name: &'static str,
    pub steps: &'static [Step],
}

/// The set every backend has: tenants, tokens, resources, logs, console.
pub const CORE: &str = "core";

/// The provisioning engine's set: jobs, object states, its log.
pub const ENGINE: &str = "engine";

/// The change events' set: the outbox and its per-tenant counters.
pub const EVENTS: &str = "events";

/// Webhook endpoints, their delivery state and log.
pub const WEBHOOKS: &str = "webhooks";

impl MigrationSet {
    /// The name under which `step` is recorded as applied.
    pub fn key(&self, step: &str) -> String {
        if self.name == CORE {
            step.to_string()
        } else {
            format!("{}/{step}", self.name)
        }
    }

    /// Every key of the set, in order.
    pub fn keys(&self) -> impl Iterator<Item = (String, &'static str)> + '_ {
        self.steps.iter().map(|(step, sql)| (self.key(step), *sql))
    }
}

/// The number of steps of all `sets`, to compare with what is recorded.
pub fn total_steps(sets: &[MigrationSet]) -> usize {
    sets.iter().map(|s| s.steps.len()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_keeps_bare_names_and_other_sets_are_prefixed() {
        let core = MigrationSet {
            name: CORE,
            steps: &[("0001_initial", "")],
        };
        let engine = MigrationSet {
            name: "engine",
            steps: &[("0001_state", ""), ("0002_log", "")],
        };
        assert_eq!(core.key("0001_initial"), "0001_initial");
        let keys: Vec<String> = engine.keys().map(|(k, _)| k).collect();
        assert_eq!(keys, ["engine/0001_state", "engine/0002_log"]);
        assert_eq!(total_steps(&[core, engine]), 3);
    }
}
