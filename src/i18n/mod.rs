//! Every sentence a user reads, in English and Chinese: one catalogue ([`messages`]), one
//! language per process (`--lang`, else `LC_ALL`/`LANG`, else English).
//!
//! A message is a template with `{name}` placeholders; callers pass the values already formatted
//! (numbers keep the same notation in both languages). The `catalogue!` macro makes it
//! impossible to add a message without both texts; the tests check that both texts use the same
//! placeholders and that the Chinese one is Chinese. JSON keys, CSV headers and flags stay
//! English.

mod messages;
pub use messages::Msg;

use std::fmt::Display;
use std::sync::atomic::{AtomicU8, Ordering};

/// The language of console and log lines, recommendations and the HTML report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    En,
    Zh,
}

impl Lang {
    /// `zh…` in `LC_ALL`, `LC_MESSAGES` or `LANG` (the first one set) means Chinese; anything
    /// else English.
    pub fn from_env() -> Self {
        let var = ["LC_ALL", "LC_MESSAGES", "LANG"]
            .iter()
            .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()));
        Self::from_locale(var.as_deref().unwrap_or(""))
    }

    /// `zh_CN.UTF-8`, `zh_TW`, `zh` → Chinese; anything else English.
    pub fn from_locale(locale: &str) -> Self {
        if locale.to_ascii_lowercase().starts_with("zh") {
            Lang::Zh
        } else {
            Lang::En
        }
    }

    /// The value of `--lang` and of summary.json's `config.lang`: `en` or `zh`.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh",
        }
    }

    /// The HTML `lang` attribute.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh-CN",
        }
    }
}

static CURRENT: AtomicU8 = AtomicU8::new(0);

/// Sets the process's language (once, at start-up).
pub fn set_lang(lang: Lang) {
    CURRENT.store(lang as u8, Ordering::Relaxed);
}

/// The process's language.
pub fn lang() -> Lang {
    match CURRENT.load(Ordering::Relaxed) {
        1 => Lang::Zh,
        _ => Lang::En,
    }
}

/// A message in the process's language with its placeholders filled.
pub fn tr(msg: Msg, args: &[(&str, &dyn Display)]) -> String {
    tr_in(lang(), msg, args)
}

/// A message in a given language with its placeholders filled. A placeholder without a value
/// stays as written (the tests make sure none is missing).
pub fn tr_in(lang: Lang, msg: Msg, args: &[(&str, &dyn Display)]) -> String {
    fill(msg.text(lang), args)
}

fn fill(template: &str, args: &[(&str, &dyn Display)]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let name = &after[..close];
                match args.iter().find(|(k, _)| *k == name) {
                    Some((_, value)) => {
                        let _ = write!(out, "{value}");
                    }
                    None => {
                        out.push('{');
                        out.push_str(name);
                        out.push('}');
                    }
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The `{name}` placeholders of a template, sorted.
pub fn placeholders(template: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else { break };
        names.push(&after[..close]);
        rest = &after[close + 1..];
    }
    names.sort_unstable();
    names.dedup();
    names
}

/// Defines [`Msg`]: one variant per message, each with its English and Chinese text.
macro_rules! catalogue {
    ( $( $(#[$doc:meta])* $key:ident { en: $en:literal, zh: $zh:literal $(,)? } )* ) => {
        /// A user-facing message; its texts are in `src/i18n/messages.rs`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Msg {
            $( $(#[$doc])* $key, )*
        }

        impl Msg {
            /// Every message, for the catalogue's tests.
            pub const ALL: &'static [Msg] = &[ $( Msg::$key, )* ];

            /// The template in a language.
            pub fn text(self, lang: super::Lang) -> &'static str {
                match (self, lang) {
                    $( (Msg::$key, super::Lang::En) => $en, (Msg::$key, super::Lang::Zh) => $zh, )*
                }
            }
        }
    };
}
pub(crate) use catalogue;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_has_both_languages_with_the_same_placeholders() {
        for &msg in Msg::ALL {
            let (en, zh) = (msg.text(Lang::En), msg.text(Lang::Zh));
            assert!(!en.trim().is_empty(), "{msg:?} has no English text");
            assert!(!zh.trim().is_empty(), "{msg:?} has no Chinese text");
            assert_eq!(placeholders(en), placeholders(zh), "{msg:?}: the placeholders differ");
            assert!(
                zh.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)) || en == zh,
                "{msg:?}: the Chinese text has no Chinese in it: {zh}"
            );
        }
    }

    #[test]
    fn placeholders_are_filled_and_unknown_ones_kept() {
        assert_eq!(fill("{a} and {b}", &[("a", &1), ("b", &"two")]), "1 and two");
        assert_eq!(fill("{a} {missing} {", &[("a", &1)]), "1 {missing} {");
    }

    #[test]
    fn locales_choose_the_language() {
        for (locale, lang) in [
            ("zh_CN.UTF-8", Lang::Zh),
            ("zh_TW", Lang::Zh),
            ("ZH", Lang::Zh),
            ("en_US.UTF-8", Lang::En),
            ("C", Lang::En),
            ("", Lang::En),
        ] {
            assert_eq!(Lang::from_locale(locale), lang, "{locale}");
        }
    }
}
