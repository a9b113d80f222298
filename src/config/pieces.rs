//! Reading a large file a service at a time. toml lexes a whole document
//! into one token vector before parsing it — about 14 bytes per byte of
//! input, 180 MiB for a 13 MB file of 100,000 services — so the file is
//! cut at its `[[service]]` headers (found by toml's own lexer, streaming,
//! so strings and comments are never mistaken for headers) and each piece
//! is parsed alone, its spans moved back to where they lie in the file.
//! Everything else is parsed as the file with the services blanked out,
//! which keeps every offset. Any layout this does not recognise with
//! certainty — and any syntax error — is left to the whole-file parse, so
//! errors read exactly as they always did.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};
use toml_parser::lexer::TokenKind;

/// The file cut into pieces.
pub(super) struct Pieces {
    /// The file with every service piece blanked (same length, same offsets).
    pub rest: String,
    /// Each `[[service]]` with its sub-tables, in file order.
    pub services: Vec<Range<usize>>,
}

/// What a table header opens.
#[derive(Debug, PartialEq)]
enum Header {
    /// `[[service]]`: a new service.
    Service,
    /// `[[service.probe]]`, `[service.x]`: part of the service above it.
    WithinService,
    /// Anything else.
    Other,
}

/// Cuts `text` at its service headers; `None` when there is none, or when
/// the layout is one only the whole-file parse reads right (a service's
/// sub-table after another section, a header it cannot read).
pub(super) fn cut(text: &str) -> Option<Pieces> {
    let source = toml_parser::Source::new(text);
    let mut tokens = source.lex().peekable();
    let mut headers: Vec<(usize, Header)> = Vec::new();
    let mut depth: i64 = 0;
    let mut line_start = true;
    while let Some(token) = tokens.next() {
        match token.kind() {
            TokenKind::Newline => line_start = true,
            TokenKind::Whitespace | TokenKind::Comment => {}
            TokenKind::LeftSquareBracket if depth == 0 && line_start => {
                let start = token.span().start();
                let mut end = token.span().end();
                while let Some(t) = tokens.next_if(|t| !matches!(t.kind(), TokenKind::Newline | TokenKind::Eof)) {
                    end = t.span().end();
                }
                headers.push((start, header(&text[start..end])?));
                line_start = false;
            }
            TokenKind::LeftSquareBracket | TokenKind::LeftCurlyBracket => {
                depth += 1;
                line_start = false;
            }
            TokenKind::RightSquareBracket | TokenKind::RightCurlyBracket => {
                depth -= 1;
                line_start = false;
            }
            TokenKind::Eof => break,
            _ => line_start = false,
        }
    }
    let mut services: Vec<Range<usize>> = Vec::new();
    let mut in_service = false;
    for (i, (start, kind)) in headers.iter().enumerate() {
        let end = headers.get(i + 1).map_or(text.len(), |(next, _)| *next);
        match kind {
            Header::Service => {
                services.push(*start..end);
                in_service = true;
            }
            Header::WithinService if in_service => services.last_mut()?.end = end,
            // A service's sub-table after another section, or before any service.
            Header::WithinService => return None,
            Header::Other => in_service = false,
        }
    }
    if services.is_empty() {
        return None;
    }
    let mut rest = text.as_bytes().to_vec();
    for piece in &services {
        rest[piece.clone()].fill(b' ');
    }
    // Only ASCII header starts were cut at, and blanks are ASCII.
    let rest = String::from_utf8(rest).ok()?;
    Some(Pieces { rest, services })
}

/// What the header on one line opens, read by parsing the line alone.
fn header(line: &str) -> Option<Header> {
    let tree = DeTable::parse(line).ok()?.into_inner();
    if tree.len() != 1 {
        return Some(Header::Other);
    }
    Some(match tree.get("service").map(Spanned::get_ref) {
        Some(DeValue::Array(_)) => Header::Service,
        Some(DeValue::Table(_)) => Header::WithinService,
        _ => Header::Other,
    })
}

/// The one service table of a piece parsed alone, its spans moved by
/// `offset` to where they lie in the file; `None` if it holds anything else.
pub(super) fn service_of(piece: Spanned<DeTable<'_>>, offset: usize) -> Option<Spanned<DeTable<'_>>> {
    let tree = piece.into_inner();
    if tree.len() != 1 {
        return None;
    }
    let (_, services) = tree.into_iter().next()?;
    let DeValue::Array(items) = services.into_inner() else { return None };
    let mut items = items.into_iter();
    let (Some(item), None) = (items.next(), items.next()) else { return None };
    let span = item.span();
    let DeValue::Table(table) = moved(item.into_inner(), offset) else { return None };
    Some(Spanned::new(span.start + offset..span.end + offset, table))
}

/// `value` with every span in it moved by `offset`.
fn moved(value: DeValue<'_>, offset: usize) -> DeValue<'_> {
    let at = |span: Range<usize>| span.start + offset..span.end + offset;
    match value {
        DeValue::Array(mut items) => {
            for item in items.iter_mut() {
                let span = at(item.span());
                let inner = std::mem::replace(item.get_mut(), DeValue::Boolean(false));
                *item = Spanned::new(span, moved(inner, offset));
            }
            DeValue::Array(items)
        }
        DeValue::Table(table) => {
            let mut out = DeTable::new();
            for (key, value) in table {
                let key = Spanned::new(at(key.span()), key.into_inner());
                let span = at(value.span());
                out.insert(key, Spanned::new(span, moved(value.into_inner(), offset)));
            }
            DeValue::Table(out)
        }
        scalar => scalar,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The service tables as the whole-file parse sees them.
    fn whole(text: &str) -> Vec<String> {
        let tree = DeTable::parse(text).unwrap().into_inner();
        let Some(DeValue::Array(items)) = tree.get("service").map(Spanned::get_ref) else { return Vec::new() };
        items.iter().map(|i| format!("{:?} {:?}", i.span(), i.get_ref())).collect()
    }

    /// The same, read piece by piece.
    fn by_pieces(text: &str) -> Vec<String> {
        let pieces = cut(text).expect("cut");
        pieces
            .services
            .iter()
            .map(|r| {
                let piece = DeTable::parse(&text[r.clone()]).unwrap();
                let t = service_of(piece, r.start).unwrap();
                format!("{:?} {:?}", t.span(), DeValue::Table(t.into_inner()))
            })
            .collect()
    }

    #[test]
    fn pieces_read_exactly_as_the_whole_file_with_every_span_in_place() {
        let text = r#"
# [[service]] in a comment is not a header
[monitor]
interval = "60s"
note = """
[[service]]
"""

[[service]]
id = "a"
name = "A"
list = [
  [1, 2],
]
  [[service.probe]]
  kind = "dns"
  query = "x.test"
  [service.extra]
  k = { a = 1 }

[[ "service" ]]   # quoted, with a comment
id = "b"
name = "B ] ["
  [[service.probe]]
  kind = "http"
  url = "http://127.0.0.1/"

[alerts]
[[maintenance]]
service = "a"
"#;
        let expected = whole(text);
        assert_eq!(expected.len(), 2);
        assert_eq!(by_pieces(text), expected);
        let rest = cut(text).unwrap().rest;
        assert_eq!(rest.len(), text.len());
        let tree = DeTable::parse(&rest).unwrap().into_inner();
        assert!(tree.get("service").is_none() && tree.get("monitor").is_some() && tree.get("maintenance").is_some());
    }

    #[test]
    fn the_shipped_config_reads_the_same_in_pieces() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.toml")).unwrap();
        assert_eq!(by_pieces(&text), whole(&text));
    }

    #[test]
    fn layouts_only_the_whole_parse_reads_right_are_left_to_it() {
        // A probe table after another section still belongs to the last service.
        assert!(cut("[[service]]\nid = \"a\"\n[alerts]\n[[service.probe]]\nkind = \"dns\"\n").is_none());
        // No service at all.
        assert!(cut("[monitor]\ninterval = \"1m\"\n").is_none());
        // A header that does not parse.
        assert!(cut("[[service]]\nid = \"a\"\n[[service.\n").is_none());
    }
}
