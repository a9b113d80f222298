//! `[storage]`: the SQLite file and how long history is kept.

use std::path::PathBuf;
use std::time::Duration;

use crate::document::{ConfigError, Table, field, table};

table!(
    /// `[storage]`.
    RawStorage { path: String, raw_retention: String, rollup_retention: String }
);

/// `[storage]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Storage {
    /// SQLite file (relative paths are relative to the working directory).
    pub path: PathBuf,
    /// How long per-run results are kept before only rollups remain.
    pub raw_retention: Duration,
    /// How long rollups, status history and incidents are kept.
    pub rollup_retention: Duration,
}

pub(super) fn read_storage(t: Option<Table<'_, RawStorage>>) -> Result<Storage, ConfigError> {
    let mut storage = Storage {
        path: PathBuf::from("chatpulse.db"),
        raw_retention: Duration::from_secs(14 * 86400),
        rollup_retention: Duration::from_secs(400 * 86400),
    };
    let Some(t) = t else { return Ok(storage) };
    if let Some(p) = t.str(field!(t, path)) {
        if p.value.is_empty() {
            return Err(t.error(&p.span, "\"path\" must not be empty"));
        }
        storage.path = PathBuf::from(p.value);
    }
    storage.raw_retention = t.duration(field!(t, raw_retention), false)?.unwrap_or(storage.raw_retention);
    storage.rollup_retention = t.duration(field!(t, rollup_retention), false)?.unwrap_or(storage.rollup_retention);
    if storage.rollup_retention < storage.raw_retention {
        return Err(
            t.error_at_key("rollup_retention", "\"rollup_retention\" must not be shorter than \"raw_retention\"")
        );
    }
    Ok(storage)
}
