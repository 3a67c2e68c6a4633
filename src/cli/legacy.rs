//! The original script's multi-letter single-dash flags (`-st 10`, `-mtp "..."`).
//!
//! clap reads `-st` as `-s -t`, so argv is rewritten before parsing: each legacy flag becomes
//! its long form. Whether a token is a flag or the value of the previous flag is decided from
//! the clap definition itself, so `-mtp "-st"` keeps `-st` as the prompt text.

use std::ffi::OsString;

/// Legacy flag → long name. The long names are the ones defined in `cli::RunArgs`.
pub const LEGACY_FLAGS: &[(&str, &str)] = &[
    ("mm", "multimodal"),
    ("st", "start-threads"),
    ("et", "end-threads"),
    ("ts", "step-threads"),
    ("pp", "prompt-length"),
    ("tg", "tokens-to-generate"),
    ("ip", "image-path"),
    ("mtp", "multimodal-text-prompt"),
];

/// Does `token` (a flag, before any `=`) take a separate value, per the clap command?
fn takes_separate_value(token: &str, commands: &[&clap::Command]) -> bool {
    let args = || commands.iter().flat_map(|c| c.get_arguments());
    if let Some(long) = token.strip_prefix("--") {
        if long.contains('=') {
            return false;
        }
        return args().any(|a| {
            a.get_action().takes_values()
                && (a.get_long() == Some(long) || a.get_all_aliases().is_some_and(|al| al.contains(&long)))
        });
    }
    if let Some(short) = token.strip_prefix('-') {
        let mut chars = short.chars();
        if let (Some(c), None) = (chars.next(), chars.next()) {
            return args().any(|a| a.get_action().takes_values() && a.get_short() == Some(c));
        }
    }
    false
}

/// Rewrites legacy flags in `argv` (whose first element is the program name).
pub fn normalize(argv: Vec<OsString>, command: &clap::Command) -> Vec<OsString> {
    let mut commands: Vec<&clap::Command> = vec![command];
    commands.extend(command.get_subcommands());
    let mut out = Vec::with_capacity(argv.len());
    let mut expecting_value = false;
    let mut after_double_dash = false;
    for (index, arg) in argv.into_iter().enumerate() {
        if index == 0 || after_double_dash || expecting_value {
            expecting_value = false;
            out.push(arg);
            continue;
        }
        let Some(text) = arg.to_str() else {
            out.push(arg);
            continue;
        };
        if text == "--" {
            after_double_dash = true;
            out.push(arg);
            continue;
        }
        let rewritten = text
            .strip_prefix('-')
            .filter(|rest| !rest.starts_with('-'))
            .and_then(|rest| {
                let (name, value) = match rest.split_once('=') {
                    Some((n, v)) => (n, Some(v)),
                    None => (rest, None),
                };
                let long = LEGACY_FLAGS.iter().find(|(legacy, _)| *legacy == name)?.1;
                Some(match value {
                    Some(v) => format!("--{long}={v}"),
                    None => format!("--{long}"),
                })
            })
            .unwrap_or_else(|| text.to_string());
        expecting_value = takes_separate_value(&rewritten, &commands);
        out.push(OsString::from(rewritten));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn norm(args: &[&str]) -> Vec<String> {
        let mut argv = vec![OsString::from("llm-bench")];
        argv.extend(args.iter().map(OsString::from));
        normalize(argv, &crate::cli::Cli::command())
            .into_iter()
            .skip(1)
            .map(|s| s.into_string().unwrap())
            .collect()
    }

    #[test]
    fn seed_command_line() {
        assert_eq!(
            norm(&[
                "-i",
                "-o",
                "-mm",
                "-st",
                "10",
                "-et",
                "300",
                "-ts",
                "10",
                "-pp",
                "500",
                "-tg",
                "500",
                "-ip",
                "x.jpg",
                "-mtp",
                "Describe.",
                "-l",
                "a.log"
            ]),
            vec![
                "-i",
                "-o",
                "--multimodal",
                "--start-threads",
                "10",
                "--end-threads",
                "300",
                "--step-threads",
                "10",
                "--prompt-length",
                "500",
                "--tokens-to-generate",
                "500",
                "--image-path",
                "x.jpg",
                "--multimodal-text-prompt",
                "Describe.",
                "-l",
                "a.log"
            ]
        );
    }

    #[test]
    fn inline_values() {
        assert_eq!(norm(&["-st=5", "-et=7"]), vec!["--start-threads=5", "--end-threads=7"]);
    }

    #[test]
    fn values_that_look_like_legacy_flags_are_left_alone() {
        assert_eq!(
            norm(&["-mtp", "-st", "-o"]),
            vec!["--multimodal-text-prompt", "-st", "-o"]
        );
        assert_eq!(norm(&["--model", "-pp"]), vec!["--model", "-pp"]);
        assert_eq!(norm(&["-m", "-tg"]), vec!["-m", "-tg"]);
        assert_eq!(norm(&["--", "-st"]), vec!["--", "-st"]);
    }

    #[test]
    fn long_and_unknown_flags_untouched() {
        assert_eq!(
            norm(&["--start_threads", "3", "-x"]),
            vec!["--start_threads", "3", "-x"]
        );
    }

    #[test]
    fn every_legacy_target_exists_in_the_definition() {
        let command = crate::cli::Cli::command();
        for (_, long) in LEGACY_FLAGS {
            assert!(
                command.get_arguments().any(|a| a.get_long() == Some(long)),
                "--{long} is not defined"
            );
        }
    }
}
