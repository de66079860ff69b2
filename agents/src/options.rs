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
