//! `[[service]]` and the keys every probe has (`[[service.probe]]` and
//! `[[guard]]`): ids, names, timing, the essential role. A probe's own
//! keys are its kind's business ([`crate::probe::read_check`]).

use std::collections::HashSet;
use std::sync::Arc;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::monitor::Monitor;
use crate::document::Keys;
use crate::document::{ConfigError, Document, Table, field, table};
use crate::probe::{Kind, ProbeSpec, RawProbe, ReadContext, read_check};

table!(
    /// `[[service]]` (its `[[service.probe]]` tables are read one by one).
    RawService {
        id: String,
        name: String,
        // Left in the tree only when not an array of tables, for serde to refuse.
        probe: crate::document::Tables<toml::Table>,
    }
);

/// `[[service]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    /// `[a-z0-9-]+`, unique.
    pub id: String,
    /// Display name.
    pub name: String,
    /// At least one (shared with the running plan, hence `Arc`).
    pub probes: Vec<Arc<ProbeSpec>>,
}

/// One `[[service]]` with its probe tables.
pub(super) fn read_service(
    doc: &Document<'_>,
    table: &Table<'_, RawService>,
    probe_tables: Vec<Spanned<DeTable<'_>>>,
    ids: &mut HashSet<String>,
    monitor: &Monitor,
    cx: &ReadContext<'_>,
) -> Result<Service, ConfigError> {
    let id = table.required_str(field!(table, id))?;
    if id.value.is_empty() || !id.value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        return Err(table.error(&id.span, format!("\"id\": \"{}\" must use only a-z, 0-9 and -", id.value)));
    }
    if !ids.insert(id.value.to_string()) {
        return Err(table.error(&id.span, format!("\"id\": \"{}\" is used by another service", id.value)));
    }
    let name = table.required_str(field!(table, name))?;
    if name.value.trim().is_empty() {
        return Err(table.error(&name.span, "\"name\" must not be empty"));
    }
    if name.value.chars().any(char::is_control) {
        return Err(table.error(&name.span, "\"name\" must be one line without control characters"));
    }
    if probe_tables.is_empty() {
        return Err(table.error_here("has no [[service.probe]]: a service needs at least one probe"));
    }
    let mut probes = Vec::new();
    for probe in probe_tables {
        let spec = read_probe(doc, probe, monitor, &probes, cx, false)?;
        probes.push(Arc::new(spec));
    }
    Ok(Service { id: id.value.to_string(), name: name.value.to_string(), probes })
}

/// One `[[guard]]`: a probe of the monitor's own connectivity.
pub(super) fn read_guard(
    doc: &Document<'_>,
    table: Spanned<DeTable<'_>>,
    monitor: &Monitor,
    earlier: &[Arc<ProbeSpec>],
    cx: &ReadContext<'_>,
) -> Result<ProbeSpec, ConfigError> {
    read_probe(doc, table, monitor, earlier, cx, true)
}

/// One probe table: the common keys here, the rest by its kind.
fn read_probe(
    doc: &Document<'_>,
    table: Spanned<DeTable<'_>>,
    monitor: &Monitor,
    earlier: &[Arc<ProbeSpec>],
    cx: &ReadContext<'_>,
    guard: bool,
) -> Result<ProbeSpec, ConfigError> {
    let span = table.span();
    let (common, own): (DeTable<'_>, DeTable<'_>) =
        table.into_inner().into_iter().partition(|(key, _)| RawProbe::KEYS.contains(&key.get_ref().as_ref()));
    let raw: RawProbe = doc.deserialize(Spanned::new(span.clone(), DeValue::Table(common)))?;
    let t = Table::new(doc, &raw, span.clone());
    let kind_word = t.required_str(field!(t, kind))?;
    let check = read_check(doc, &kind_word, Spanned::new(span, own), cx)?;
    let kind = check.kind();
    if guard && kind == Kind::Bgp {
        let others: Vec<String> = Kind::ALL.iter().filter(|k| **k != Kind::Bgp).map(|k| format!("\"{k}\"")).collect();
        let (last, rest) = others.split_last().expect("kinds besides bgp are registered");
        return Err(t.error_at_key("kind", format!("a guard must be of kind {} or {last}", rest.join(", "))));
    }

    let n = earlier.iter().filter(|p| p.check.kind() == kind).count() + 1;
    let id = match t.str(field!(t, id)) {
        Some(id) => {
            if id.value.is_empty() || !id.value.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
                return Err(t.error(
                    &id.span,
                    format!("\"id\": \"{}\" must use only letters, digits, '-', '_' and '.'", id.value),
                ));
            }
            id.value.to_string()
        }
        None => format!("{}-{n}", kind.as_str()),
    };
    if earlier.iter().any(|p| p.id == id) {
        return Err(t.error_at_key("id", format!("probe id \"{id}\" is used twice in this service")));
    }
    let essential = t.bool(field!(t, essential)).unwrap_or(false);
    if guard && essential {
        return Err(t.error_at_key("essential", "a guard cannot be essential (it watches the monitor, not a service)"));
    }
    let group = match t.str(field!(t, group)) {
        None => None,
        Some(_) if !essential => {
            return Err(t.error_at_key("group", "\"group\" names an essential group: it needs essential = true"));
        }
        Some(g) if g.value.trim().is_empty() || g.value.chars().any(char::is_control) => {
            return Err(t.error(&g.span, "\"group\" must be a non-empty name on one line"));
        }
        Some(g) => Some(g.value.to_string()),
    };
    let interval = t.duration(field!(t, interval), false)?.unwrap_or(monitor.interval);
    let timeout = t.duration(field!(t, timeout), false)?.unwrap_or(monitor.timeout.min(interval));
    if timeout > interval {
        return Err(t.error_at_key("timeout", "\"timeout\" must not be longer than \"interval\""));
    }
    Ok(ProbeSpec {
        id,
        interval,
        timeout,
        fail_after: t.int(field!(t, fail_after), 1..1001)?.map_or(monitor.fail_after, |n| n as u32),
        recover_after: t.int(field!(t, recover_after), 1..1001)?.map_or(monitor.recover_after, |n| n as u32),
        essential,
        group,
        check,
    })
}
