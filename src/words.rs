//! Closed lists of words declared once: [`words!`] declares an enum whose
//! every variant carries its word (the one metrics, the API, the store and
//! e-mail use), and derives `ALL`, `as_str`, `from_word`, `choices` (the
//! list an error message offers) and `Display` from
//! that single list — no hand-written name table to drift, no impossible
//! fallback. A leaf: any module may use it.

/// `words! { /// doc  pub enum Name { /// doc  Variant = "word", … } }`.
macro_rules! words {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $($(#[$vmeta:meta])* $variant:ident = $word:literal),* $(,)?
        }
    ) => {
        $(#[$meta])*
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// Its word.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word,)*
                }
            }

            /// The words for an error message: `"a", "b" or "c"`.
            pub fn choices() -> String {
                let words: &[&str] = &[$($word),*];
                match words.split_last() {
                    Some((last, [])) => format!("\"{last}\""),
                    Some((last, rest)) => format!(
                        "{} or \"{last}\"",
                        rest.iter().map(|w| format!("\"{w}\"")).collect::<Vec<_>>().join(", ")
                    ),
                    None => String::new(),
                }
            }

            /// The value a word names.
            pub fn from_word(word: &str) -> Option<$name> {
                match word {
                    $($word => Some($name::$variant),)*
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use words;

#[cfg(test)]
mod tests {
    words! {
    /// Three words.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Source {
        /// One.
        RisLive = "ris-live",
        /// Two.
        Session = "session",
        /// Three.
        Mrt = "mrt",
    }
    }

    #[test]
    fn every_table_comes_from_the_one_list() {
        assert_eq!(Source::ALL, [Source::RisLive, Source::Session, Source::Mrt]);
        assert_eq!(Source::choices(), r#""ris-live", "session" or "mrt""#);
        for s in Source::ALL {
            assert_eq!(Source::from_word(s.as_str()), Some(*s));
            assert_eq!(s.to_string(), s.as_str());
        }
        assert_eq!(Source::from_word("Session"), None, "words are exact");
    }
}
