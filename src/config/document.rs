//! A parsed TOML document that remembers where every value came from.
//!
//! The config loader walks the file section by section through [`Section`];
//! each accessor checks the value's type and hands back its byte span, so any
//! error (unknown key, bad type, bad value, missing key) becomes one sentence
//! naming `file:line`, the section and the key.

use std::collections::HashSet;
use std::ops::Range;
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::ConfigError;

/// The source file's name plus its line index.
pub(crate) struct Document {
    file: String,
    line_starts: Vec<usize>,
}

impl Document {
    pub(crate) fn new(file: &str, text: &str) -> Self {
        let line_starts = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        Document { file: file.to_string(), line_starts }
    }

    /// 1-based line of a byte offset.
    pub(crate) fn line_of(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&start| start <= offset).max(1)
    }

    /// An error at `span`, in `context` (e.g. `service "x" probe 2`).
    pub(crate) fn error(&self, span: &Range<usize>, context: &str, message: String) -> ConfigError {
        let message = if context.is_empty() { message } else { format!("{context}: {message}") };
        ConfigError::Invalid { file: self.file.clone(), line: self.line_of(span.start), message }
    }
}

/// One TOML table being read, with the keys it may contain.
pub(crate) struct Section<'d, 't> {
    doc: &'d Document,
    context: String,
    table: &'d DeTable<'t>,
    span: Range<usize>,
}

/// A value with the span it was read from.
pub(crate) struct At<T> {
    pub(crate) value: T,
    pub(crate) span: Range<usize>,
}

impl<'d, 't> Section<'d, 't> {
    /// The document root.
    pub(crate) fn root(doc: &'d Document, table: &'d Spanned<DeTable<'t>>) -> Self {
        Section { doc, context: String::new(), table: table.get_ref(), span: table.span() }
    }

    /// The human name of this section, used as the prefix of its errors.
    pub(crate) fn context(&self) -> &str {
        &self.context
    }

    /// Renames the section (once its identity is known, e.g. a service id).
    pub(crate) fn set_context(&mut self, context: String) {
        self.context = context;
    }

    /// An error anywhere inside this section.
    pub(crate) fn error(&self, span: &Range<usize>, message: impl Into<String>) -> ConfigError {
        self.doc.error(span, &self.context, message.into())
    }

    /// An error about the section as a whole (reported at its header).
    pub(crate) fn error_here(&self, message: impl Into<String>) -> ConfigError {
        self.error(&self.span.clone(), message)
    }

    /// An error about `key`, at the key's value when present, else at the header.
    pub(crate) fn error_at_key(&self, key: &str, message: impl Into<String>) -> ConfigError {
        let span = self.table.get(key).map(|v| v.span()).unwrap_or_else(|| self.span.clone());
        self.error(&span, message)
    }

    /// Rejects any key not in `known`, naming the first one in file order.
    pub(crate) fn allow_only(&self, known: &[&str]) -> Result<(), ConfigError> {
        let known_set: HashSet<&str> = known.iter().copied().collect();
        let mut unknown: Vec<(&Spanned<std::borrow::Cow<'t, str>>, _)> =
            self.table.iter().filter(|(k, _)| !known_set.contains(k.get_ref().as_ref())).collect();
        unknown.sort_by_key(|(k, _)| k.span().start);
        match unknown.first() {
            None => Ok(()),
            Some((key, _)) => Err(self.error(
                &key.span(),
                format!("unknown key \"{}\" (expected one of: {})", key.get_ref(), known.join(", ")),
            )),
        }
    }

    /// True when the key is present.
    pub(crate) fn has(&self, key: &str) -> bool {
        self.table.get(key).is_some()
    }

    fn get(&self, key: &str) -> Option<&'d Spanned<DeValue<'t>>> {
        self.table.get(key)
    }

    fn wrong_type(&self, key: &str, value: &Spanned<DeValue<'t>>, want: &str) -> ConfigError {
        self.error(&value.span(), format!("\"{key}\" must be {want}, not {}", value.get_ref().type_str()))
    }

    /// A string value.
    pub(crate) fn str(&self, key: &str) -> Result<Option<At<&'d str>>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.get_ref().as_str() {
                Some(s) => Ok(Some(At { value: s, span: v.span() })),
                None => Err(self.wrong_type(key, v, "a string")),
            },
        }
    }

    /// A string value that must be present.
    pub(crate) fn required_str(&self, key: &str) -> Result<At<&'d str>, ConfigError> {
        self.str(key)?.ok_or_else(|| self.error_here(format!("missing required key \"{key}\"")))
    }

    /// A string parsed by `parse`, whose error message is prefixed with the key.
    pub(crate) fn parsed<T>(
        &self,
        key: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        match self.str(key)? {
            None => Ok(None),
            Some(at) => parse(at.value).map(Some).map_err(|why| self.error(&at.span, format!("\"{key}\": {why}"))),
        }
    }

    /// A humantime duration (`"30s"`, `"5m"`, `"7d"`); zero only if `allow_zero`.
    pub(crate) fn duration(&self, key: &str, allow_zero: bool) -> Result<Option<Duration>, ConfigError> {
        self.parsed(key, |s| {
            let d = humantime::parse_duration(s)
                .map_err(|e| format!("\"{s}\" is not a duration like \"30s\", \"5m\" or \"7d\" ({e})"))?;
            if d.is_zero() && !allow_zero {
                return Err(format!("\"{s}\" must be longer than zero"));
            }
            Ok(d)
        })
    }

    /// A boolean.
    pub(crate) fn bool(&self, key: &str) -> Result<Option<bool>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.get_ref().as_bool().map(Some).ok_or_else(|| self.wrong_type(key, v, "true or false")),
        }
    }

    /// An integer in `range`.
    pub(crate) fn int(&self, key: &str, range: Range<i128>) -> Result<Option<i128>, ConfigError> {
        let Some(v) = self.get(key) else { return Ok(None) };
        let Some(int) = v.get_ref().as_integer() else {
            return Err(self.wrong_type(key, v, "an integer"));
        };
        let parsed =
            i128::from_str_radix(&int.as_str().replace('_', ""), int.radix()).ok().filter(|n| range.contains(n));
        parsed.map(Some).ok_or_else(|| {
            self.error(&v.span(), format!("\"{key}\" must be an integer from {} to {}", range.start, range.end - 1))
        })
    }

    /// An array of integers, each in `range`.
    pub(crate) fn int_list(&self, key: &str, range: Range<i128>) -> Result<Option<Vec<i128>>, ConfigError> {
        let Some(v) = self.get(key) else { return Ok(None) };
        let Some(items) = v.get_ref().as_array() else {
            return Err(self.wrong_type(key, v, "an array of integers"));
        };
        items
            .iter()
            .map(|item| {
                let Some(int) = item.get_ref().as_integer() else {
                    return Err(self.wrong_type(key, item, "an array of integers"));
                };
                i128::from_str_radix(&int.as_str().replace('_', ""), int.radix())
                    .ok()
                    .filter(|n| range.contains(n))
                    .ok_or_else(|| {
                        self.error(
                            &item.span(),
                            format!("\"{key}\" must hold integers from {} to {}", range.start, range.end - 1),
                        )
                    })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// A number (integer or float) in `lo..=hi`.
    pub(crate) fn number(&self, key: &str, lo: f64, hi: f64) -> Result<Option<f64>, ConfigError> {
        let Some(v) = self.get(key) else { return Ok(None) };
        let n = match v.get_ref() {
            DeValue::Float(f) => f.as_str().replace('_', "").parse::<f64>().ok(),
            DeValue::Integer(i) => i.as_str().replace('_', "").parse::<f64>().ok(),
            _ => return Err(self.wrong_type(key, v, "a number")),
        };
        n.filter(|n| (lo..=hi).contains(n))
            .map(Some)
            .ok_or_else(|| self.error(&v.span(), format!("\"{key}\" must be a number from {lo} to {hi}")))
    }

    /// An array of strings.
    pub(crate) fn str_list(&self, key: &str) -> Result<Option<Vec<At<&'d str>>>, ConfigError> {
        let Some(v) = self.get(key) else { return Ok(None) };
        let Some(items) = v.get_ref().as_array() else {
            return Err(self.wrong_type(key, v, "an array of strings"));
        };
        items
            .iter()
            .map(|item| match item.get_ref().as_str() {
                Some(s) => Ok(At { value: s, span: item.span() }),
                None => Err(self.wrong_type(key, item, "an array of strings")),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// A sub-table (`[monitor]`, `[alerts.email]`).
    pub(crate) fn table(&self, key: &str, context: &str) -> Result<Option<Section<'d, 't>>, ConfigError> {
        let Some(v) = self.get(key) else { return Ok(None) };
        match v.get_ref().as_table() {
            Some(table) => Ok(Some(Section { doc: self.doc, context: context.to_string(), table, span: v.span() })),
            None => Err(self.wrong_type(key, v, "a table")),
        }
    }

    /// An array of tables (`[[service]]`); `context(i)` names element `i`.
    pub(crate) fn tables(
        &self,
        key: &str,
        context: impl Fn(usize) -> String,
    ) -> Result<Vec<Section<'d, 't>>, ConfigError> {
        let Some(v) = self.get(key) else { return Ok(Vec::new()) };
        let Some(items) = v.get_ref().as_array() else {
            return Err(self.wrong_type(key, v, "an array of tables ([[...]])"));
        };
        items
            .iter()
            .enumerate()
            .map(|(i, item)| match item.get_ref().as_table() {
                Some(table) => Ok(Section { doc: self.doc, context: context(i), table, span: item.span() }),
                None => Err(self.wrong_type(key, item, "a table")),
            })
            .collect()
    }
}
