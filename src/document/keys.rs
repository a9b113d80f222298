//! How a config table is declared: each key once, as a field of a serde
//! struct whose values keep their byte spans (so any check can name the
//! line), unknown keys refused. Every section and every probe kind
//! declares its own table with [`table!`] in its own file.

use std::ops::Range;

use toml::Spanned;

/// Declares a table: each key an optional spanned value, unknown keys
/// refused, and [`Keys::present`] listing the keys the file set.
macro_rules! table {
    ($(#[$meta:meta])* $name:ident { $($key:ident: $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Default, ::serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $(
                #[serde(default)]
                pub $key: Option<::toml::Spanned<$ty>>,
            )*
        }

        impl $crate::document::Keys for $name {
            const KEYS: &'static [&'static str] = &[$(stringify!($key)),*];

            fn present(&self) -> Vec<(&'static str, ::std::ops::Range<usize>)> {
                let mut keys = Vec::new();
                $(
                    if let Some(value) = &self.$key {
                        keys.push((stringify!($key), value.span()));
                    }
                )*
                keys
            }
        }
    };
}

/// The keys a table's file text set, with their values' spans.
pub trait Keys {
    /// Every key the table declares, in declaration order.
    const KEYS: &'static [&'static str];

    /// Present keys in declaration order.
    fn present(&self) -> Vec<(&'static str, Range<usize>)>;
}

pub(crate) use table;

/// A list of strings, each with its span.
pub type Strings = Vec<Spanned<String>>;
/// An array of tables.
pub type Tables<T> = Vec<Spanned<T>>;
