//! Config options: enums whose every variant has one name, used in config files, on the
//! command line and in messages.

/// What every config option offers: its variants and their names, so that front ends (the
/// CLI's flags) take the same names as config files without listing them again.
pub trait ConfigOption: Copy + 'static {
    fn all() -> &'static [Self];
    fn name(self) -> &'static str;

    /// The variant named `name`.
    fn from_name(name: &str) -> Option<Self> {
        Self::all().iter().copied().find(|v| v.name() == name)
    }
}

/// Defines a config option: an enum whose variants are listed once, each with its name in
/// config files. That name is the variant's serde name and what `name()` returns, and `ALL`
/// lists the variants in order, so a new variant is parsed, named and iterated (the core tests
/// run every option) with no other list to update.
macro_rules! config_option {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $(
                $(#[$variant_meta:meta])*
                $variant:ident = $text:literal,
            )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $(
                $(#[$variant_meta])*
                #[serde(rename = $text)]
                $variant,
            )+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The name in config files.
            pub fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }
        }

        impl $crate::options::ConfigOption for $name {
            fn all() -> &'static [Self] {
                Self::ALL
            }

            fn name(self) -> &'static str {
                self.name()
            }
        }
    };
}

/// Serde for a config value that is a word or a count: an enum with one unit variant, written
/// as `$word` (`rollout_len = "episode"`), and one holding a count ≥ 1, written as the number
/// (`rollout_len = 200`). Anything else is refused with `$expecting` in the message.
macro_rules! word_or_count {
    ($ty:ident { $word_variant:ident = $word:literal, $count_variant:ident(count) }, $expecting:literal) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                match self {
                    Self::$word_variant => s.serialize_str($word),
                    Self::$count_variant(n) => s.serialize_u64(*n as u64),
                }
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                use serde::de::{Error, Unexpected};
                struct Visitor;
                impl serde::de::Visitor<'_> for Visitor {
                    type Value = $ty;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: Error>(self, v: &str) -> Result<$ty, E> {
                        match v {
                            $word => Ok($ty::$word_variant),
                            _ => Err(E::invalid_value(Unexpected::Str(v), &self)),
                        }
                    }
                    fn visit_i64<E: Error>(self, v: i64) -> Result<$ty, E> {
                        match usize::try_from(v) {
                            Ok(n) if n >= 1 => Ok($ty::$count_variant(n)),
                            _ => Err(E::invalid_value(Unexpected::Signed(v), &self)),
                        }
                    }
                    fn visit_u64<E: Error>(self, v: u64) -> Result<$ty, E> {
                        match usize::try_from(v) {
                            Ok(n) if n >= 1 => Ok($ty::$count_variant(n)),
                            _ => Err(E::invalid_value(Unexpected::Unsigned(v), &self)),
                        }
                    }
                }
                d.deserialize_any(Visitor)
            }
        }
    };
}
