//! How the config file is read, for every section and probe kind alike:
//! tables declared once with their keys ([`table!`]), line numbers, and the
//! name of the place (`[monitor]`, `service "whatsapp" probe 2`) each byte
//! lies in — named here once, for the errors serde reports and for the
//! ones the checks raise.
//!
//! [`Table`] hands a check one deserialized table with accessors that
//! check a value's range or syntax and turn any refusal into one
//! [`ConfigError`] sentence naming `file:line`, the place and the key.
//! A leaf: the config, the BGP engine and the probe kinds read their own
//! keys with it.

use std::ops::Range;
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// A config that cannot be used, as one sentence.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A channel names a secret the environment does not hold: it would
    /// fail at the first real outage.
    #[error("{file}: {place} names the environment variable {var}, which is not set")]
    MissingSecret {
        /// The config file.
        file: String,
        /// The section and key (`[alerts.email] password_env`).
        place: String,
        /// The variable.
        var: String,
    },
    /// The file could not be read.
    #[error("{path}: cannot read the config file: {source}")]
    Read {
        /// The path as given.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML or breaks a rule; `line` is 1-based.
    #[error("{file}:{line}: {message}")]
    Invalid {
        /// The path as given.
        file: String,
        /// Where.
        line: usize,
        /// What is wrong, naming the section and key.
        message: String,
    },
}

mod keys;
mod values;

pub(crate) use keys::{Keys, Strings, Tables, table};
pub use values::redacted;
pub use values::{parse_hex32, parse_socket_addr};

/// The source file: its name and its text. Lines are counted, and the TOML
/// tree that names places is parsed, only when an error needs them: for a
/// config of 100,000 probes the tree would otherwise double the peak memory
/// of every successful load.
pub struct Document<'a> {
    file: String,
    text: &'a str,
}

/// Why a value's text is refused; the reader adds the key and the place
/// (`file:line: place: "key": ...`).
#[derive(Debug, thiserror::Error)]
pub enum ValueError {
    /// Not of the expected form.
    #[error("\"{text}\" is not {expected}{}", because(.why))]
    Not { text: String, expected: std::borrow::Cow<'static, str>, why: Option<String> },
    /// Of the form, but breaking a rule.
    #[error("\"{text}\" must {rule}{}", because(.why))]
    Must { text: String, rule: String, why: Option<String> },
    /// A word outside a closed list.
    #[error("unknown {what} \"{text}\" (expected one of {known})")]
    Unknown { what: &'static str, text: String, known: &'static str },
    /// An `smtp` URL of another scheme.
    #[error("scheme \"{0}\" is not one of smtp://, smtp+starttls://, smtps://")]
    SmtpScheme(String),
    /// A URL without a host.
    #[error("\"{0}\" has no host")]
    NoHost(String),
}

/// ` (why)`, or nothing.
fn because(why: &Option<String>) -> String {
    why.as_ref().map(|w| format!(" ({w})")).unwrap_or_default()
}

impl ValueError {
    /// `"text" is not expected`.
    pub fn not(text: &str, expected: impl Into<std::borrow::Cow<'static, str>>) -> ValueError {
        ValueError::Not { text: text.to_string(), expected: expected.into(), why: None }
    }

    /// `"text" must rule`.
    pub fn must(text: &str, rule: impl Into<String>) -> ValueError {
        ValueError::Must { text: text.to_string(), rule: rule.into(), why: None }
    }

    /// The same, with the parser's own words in parentheses.
    pub fn because(self, e: impl std::fmt::Display) -> ValueError {
        match self {
            ValueError::Not { text, expected, .. } => ValueError::Not { text, expected, why: Some(e.to_string()) },
            ValueError::Must { text, rule, .. } => ValueError::Must { text, rule, why: Some(e.to_string()) },
            other => other,
        }
    }
}

/// Where a byte lies: the place's name and the key whose value holds it.
struct Place {
    context: String,
    key: Option<String>,
}

/// 1-based line of a byte offset in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    let before = &text.as_bytes()[..offset.min(text.len())];
    1 + before.iter().filter(|&&b| b == b'\n').count()
}

impl<'a> Document<'a> {
    pub fn new(file: &str, text: &'a str) -> Self {
        Document { file: file.to_string(), text }
    }

    /// The file's text.
    pub fn text(&self) -> &'a str {
        self.text
    }

    /// A TOML syntax error in this file.
    pub fn syntax_error_of(&self, e: &toml::de::Error) -> ConfigError {
        Document::syntax_error(&self.file, self.text, e)
    }

    /// 1-based line of a byte offset.
    pub fn line_of(&self, offset: usize) -> usize {
        line_of(self.text, offset)
    }

    /// An error at `span`, named after the place it lies in.
    pub fn error(&self, span: &Range<usize>, message: String) -> ConfigError {
        let context = self.place(span.start).context;
        let message = if context.is_empty() { message } else { format!("{context}: {message}") };
        ConfigError::Invalid { file: self.file.clone(), line: self.line_of(span.start), message }
    }

    /// The TOML parser's refusal, as one sentence.
    pub fn syntax_error(file: &str, text: &str, e: &toml::de::Error) -> ConfigError {
        let line = line_of(text, e.span().unwrap_or(0..0).start);
        let message = e.message().trim_end().replace('\n', " ");
        ConfigError::Invalid { file: file.to_string(), line, message: format!("invalid TOML: {message}") }
    }

    /// serde's refusal (an unknown key, a value of the wrong type), in the
    /// words the checks use.
    pub fn serde_error(&self, e: &toml::de::Error) -> ConfigError {
        let span = e.span().unwrap_or(0..0);
        let message = e.message().trim_end().replace('\n', " ");
        let key = self.place(span.start).key.unwrap_or_default();
        let message = if let Some(rest) = message.strip_prefix("unknown field `") {
            let (name, expected) = rest.split_once('`').unwrap_or((rest, ""));
            let known: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
            format!("unknown key \"{name}\" (expected one of: {})", known.join(", "))
        } else if let Some(rest) = message.strip_prefix("invalid type: ") {
            let (found, want) = rest.split_once(", expected ").unwrap_or((rest, ""));
            format!("\"{key}\" must be {}, not {}", wanted(want), found_type(found))
        } else if message.starts_with("data did not match any variant") {
            format!("\"{key}\" must be a string or an array of strings")
        } else {
            format!("\"{key}\": {message}")
        };
        self.error(&span, message)
    }

    /// Deserializes one table of the parsed tree into its declared keys,
    /// refusals in the checks' words.
    pub fn deserialize<T: serde::de::DeserializeOwned>(&self, value: Spanned<DeValue<'_>>) -> Result<T, ConfigError> {
        T::deserialize(toml::de::ValueDeserializer::from(value)).map_err(|e| self.serde_error(&e))
    }

    /// The place `offset` lies in.
    fn place(&self, offset: usize) -> Place {
        DeTable::parse(self.text)
            .ok()
            .and_then(|tree| locate(tree.get_ref(), &[], "", offset))
            .unwrap_or(Place { context: String::new(), key: None })
    }
}

/// serde's "expected …" in the checks' words.
fn wanted(want: &str) -> &'static str {
    match want {
        "i64" => "an integer",
        "f64" => "a number",
        "a boolean" => "true or false",
        "a string" => "a string",
        "a sequence" => "an array",
        _ => "a table",
    }
}

/// serde's "invalid type: …" in the checks' words.
fn found_type(found: &str) -> &'static str {
    match found.split(' ').next().unwrap_or("") {
        "string" => "a string",
        "integer" => "an integer",
        "floating" => "a float",
        "boolean" => "a boolean",
        "sequence" => "an array",
        "map" => "a table",
        _ => "another type",
    }
}

/// The name of the table at `path` (keys and array indexes from the root),
/// given the table itself (a service is named by its id) and the name of
/// the table holding it.
fn name(path: &[(&str, Option<usize>)], table: &DeTable<'_>, parent: &str) -> String {
    match path {
        [] => String::new(),
        [("service", Some(i))] => match table.get("id").and_then(|v| v.get_ref().as_str()) {
            Some(id) => format!("service \"{id}\""),
            None => format!("service {}", i + 1),
        },
        [("service", Some(_)), ("probe", Some(j))] => format!("{parent} probe {}", j + 1),
        [("guard", Some(i))] => format!("guard {}", i + 1),
        [("maintenance", Some(i))] => format!("maintenance {}", i + 1),
        [("alerts", None), (channel, Some(i))] => format!("[[alerts.{channel}]] {}", i + 1),
        [("bgp", None), ("session", None), ("peer", Some(i))] => format!("[bgp.session] peer {}", i + 1),
        keys => format!("[{}]", keys.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(".")),
    }
}

/// The deepest table holding `offset` (in a key, a value, or its header);
/// `here` is the name of `table`.
fn locate(table: &DeTable<'_>, path: &[(&str, Option<usize>)], here: &str, offset: usize) -> Option<Place> {
    let contains = |span: Range<usize>| span.start <= offset && offset < span.end.max(span.start + 1);
    for (key, value) in table {
        let k = key.get_ref().as_ref();
        let mut children: Vec<(Option<usize>, &Spanned<DeValue<'_>>)> = Vec::new();
        match value.get_ref() {
            DeValue::Table(_) => children.push((None, value)),
            DeValue::Array(items) if items.iter().all(|i| i.get_ref().as_table().is_some()) && !items.is_empty() => {
                children.extend(items.iter().enumerate().map(|(i, item)| (Some(i), item)));
            }
            _ => {
                if contains(key.span()) || contains(value.span()) {
                    return Some(Place { context: here.to_string(), key: Some(k.to_string()) });
                }
                continue;
            }
        }
        for (index, child) in children {
            let Some(t) = child.get_ref().as_table() else { continue };
            let mut deeper = path.to_vec();
            deeper.push((k, index));
            let named = name(&deeper, t, here);
            if let Some(found) = locate(t, &deeper, &named, offset) {
                return Some(found);
            }
            if contains(child.span()) || (index.is_none() && contains(key.span())) {
                return Some(Place { context: named, key: None });
            }
        }
        if contains(key.span()) {
            return Some(Place { context: here.to_string(), key: Some(k.to_string()) });
        }
    }
    None
}

/// A value with the span it was read from.
pub struct At<T> {
    pub value: T,
    pub span: Range<usize>,
}

/// One key of a table: its name and its value, if set.
pub type Field<'r, T> = (&'static str, &'r Option<Spanned<T>>);

/// `field!(table, key)`: the key's name and value in a [`Table`].
macro_rules! field {
    ($t:expr, $key:ident) => {
        (stringify!($key), &$t.raw.$key)
    };
}
pub(crate) use field;

/// One table of the file being checked.
pub struct Table<'d, R> {
    doc: &'d Document<'d>,
    /// Its keys, as deserialized.
    pub raw: &'d R,
    span: Range<usize>,
}

impl<'d, R: Keys> Table<'d, R> {
    /// A table of `doc` spanning `span`.
    pub fn new(doc: &'d Document<'d>, raw: &'d R, span: Range<usize>) -> Self {
        Table { doc, raw, span }
    }

    /// An error anywhere inside this table.
    pub fn error(&self, span: &Range<usize>, message: impl Into<String>) -> ConfigError {
        self.doc.error(span, message.into())
    }

    /// An error about the table as a whole (reported at its header).
    pub fn error_here(&self, message: impl Into<String>) -> ConfigError {
        self.error(&self.span.clone(), message)
    }

    /// An error about `key`, at the key's value when present, else at the header.
    pub fn error_at_key(&self, key: &str, message: impl Into<String>) -> ConfigError {
        let span =
            self.raw.present().into_iter().find(|(k, _)| *k == key).map_or_else(|| self.span.clone(), |(_, s)| s);
        self.error(&span, message)
    }

    /// The keys the file set here.
    pub fn present(&self) -> Vec<(&'static str, Range<usize>)> {
        self.raw.present()
    }

    /// True when the file set `key` here.
    pub fn has(&self, key: &str) -> bool {
        self.raw.present().iter().any(|(k, _)| *k == key)
    }

    /// A string value.
    pub fn str(&self, (_, v): Field<'d, String>) -> Option<At<&'d str>> {
        v.as_ref().map(|v| At { value: v.get_ref().as_str(), span: v.span() })
    }

    /// A string value that must be present.
    pub fn required_str(&self, field: Field<'d, String>) -> Result<At<&'d str>, ConfigError> {
        let key = field.0;
        self.str(field).ok_or_else(|| self.error_here(format!("missing required key \"{key}\"")))
    }

    /// A string parsed by `parse`, whose error message is prefixed with the key.
    pub fn parsed<T, E: std::fmt::Display>(
        &self,
        field: Field<'d, String>,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<Option<T>, ConfigError> {
        let key = field.0;
        match self.str(field) {
            None => Ok(None),
            Some(at) => parse(at.value).map(Some).map_err(|why| self.error(&at.span, format!("\"{key}\": {why}"))),
        }
    }

    /// A humantime duration (`"30s"`, `"5m"`, `"7d"`); zero only if `allow_zero`.
    pub fn duration(&self, field: Field<'d, String>, allow_zero: bool) -> Result<Option<Duration>, ConfigError> {
        self.parsed(field, |s| {
            let d = humantime::parse_duration(s)
                .map_err(|e| ValueError::not(s, "a duration like \"30s\", \"5m\" or \"7d\"").because(e))?;
            if d.is_zero() && !allow_zero {
                return Err(ValueError::must(s, "be longer than zero"));
            }
            Ok(d)
        })
    }

    /// A boolean.
    pub fn bool(&self, (_, v): Field<'d, bool>) -> Option<bool> {
        v.as_ref().map(|v| *v.get_ref())
    }

    /// An integer in `range`.
    pub fn int(&self, (key, v): Field<'d, i64>, range: Range<i64>) -> Result<Option<i64>, ConfigError> {
        let Some(v) = v else { return Ok(None) };
        let n = *v.get_ref();
        if !range.contains(&n) {
            return Err(self
                .error(&v.span(), format!("\"{key}\" must be an integer from {} to {}", range.start, range.end - 1)));
        }
        Ok(Some(n))
    }

    /// An array of integers, each in `range`.
    pub fn int_list(
        &self,
        (key, v): Field<'d, Vec<Spanned<i64>>>,
        range: Range<i64>,
    ) -> Result<Option<Vec<i64>>, ConfigError> {
        let Some(v) = v else { return Ok(None) };
        v.get_ref()
            .iter()
            .map(|item| {
                let n = *item.get_ref();
                range.contains(&n).then_some(n).ok_or_else(|| {
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
    pub fn number(&self, (key, v): Field<'d, f64>, lo: f64, hi: f64) -> Result<Option<f64>, ConfigError> {
        let Some(v) = v else { return Ok(None) };
        let n = *v.get_ref();
        if !(lo..=hi).contains(&n) {
            return Err(self.error(&v.span(), format!("\"{key}\" must be a number from {lo} to {hi}")));
        }
        Ok(Some(n))
    }

    /// An array of strings.
    pub fn str_list(&self, (_, v): Field<'d, Strings>) -> Option<Vec<At<&'d str>>> {
        v.as_ref().map(|v| v.get_ref().iter().map(|s| At { value: s.get_ref().as_str(), span: s.span() }).collect())
    }

    /// A sub-table (`[monitor]`, `[alerts.email]`).
    pub fn table<S: Keys>(&self, (_, v): Field<'d, S>) -> Option<Table<'d, S>> {
        v.as_ref().map(|v| Table { doc: self.doc, raw: v.get_ref(), span: v.span() })
    }

    /// An array of tables (`[[service]]`).
    pub fn tables<S: Keys>(&self, (_, v): Field<'d, Tables<S>>) -> Vec<Table<'d, S>> {
        v.as_ref()
            .map(|v| v.get_ref().iter().map(|t| Table { doc: self.doc, raw: t.get_ref(), span: t.span() }).collect())
            .unwrap_or_default()
    }
}
