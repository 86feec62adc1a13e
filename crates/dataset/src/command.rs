//! The command line that started a run, recorded with its parts so that `featx dataset status`
//! can print the command that finishes an interrupted or never-started shard.

use serde::{Deserialize, Serialize};

use crate::listing::Shard;

/// A program's arguments and the folder they were given in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandLine {
    /// The program and its arguments, as given.
    pub args: Vec<String>,
    /// The working folder (relative paths among the arguments are relative to it).
    pub dir: String,
}

impl CommandLine {
    /// This process's command line and working folder.
    pub fn current() -> Self {
        CommandLine {
            args: std::env::args_os()
                .map(|a| a.to_string_lossy().into_owned())
                .collect(),
            dir: std::env::current_dir()
                .map(|d| d.to_string_lossy().into_owned())
                .unwrap_or_else(|_| ".".into()),
        }
    }

    /// The same command for `shard`: its `--shard` value (`auto` included) becomes `I/N`, so
    /// that it runs anywhere, without a scheduler's environment.
    pub fn for_shard(&self, shard: Shard) -> CommandLine {
        let spec = format!("{}/{}", shard.index, shard.count);
        let mut args = Vec::with_capacity(self.args.len() + 2);
        let mut found = false;
        let mut given = self.args.iter();
        while let Some(arg) = given.next() {
            if arg == "--shard" {
                given.next();
                args.extend(["--shard".to_string(), spec.clone()]);
                found = true;
            } else if arg.starts_with("--shard=") {
                args.push(format!("--shard={spec}"));
                found = true;
            } else {
                args.push(arg.clone());
            }
        }
        if !found && shard.count > 1 {
            args.extend(["--shard".to_string(), spec]);
        }
        CommandLine {
            args,
            dir: self.dir.clone(),
        }
    }

    /// The command for a POSIX shell: `cd DIR && PROGRAM ARGS...`, quoted where needed.
    pub fn shell(&self) -> String {
        let words: Vec<String> = self.args.iter().map(|a| quote(a)).collect();
        format!("cd {} && {}", quote(&self.dir), words.join(" "))
    }
}

/// `word` as one shell word: as it is when it has only safe characters, else single-quoted.
fn quote(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(args: &[&str]) -> CommandLine {
        CommandLine {
            args: args.iter().map(|a| a.to_string()).collect(),
            dir: "/data/my job".into(),
        }
    }

    #[test]
    fn the_shard_value_is_replaced_or_added() {
        let shard = Shard { index: 2, count: 4 };
        let auto = command(&["featx", "extract", "--shard", "auto", "--quiet"]);
        assert_eq!(
            auto.for_shard(shard).args,
            ["featx", "extract", "--shard", "2/4", "--quiet"]
        );
        let inline = command(&["featx", "extract", "--shard=0/4"]);
        assert_eq!(
            inline.for_shard(shard).args,
            ["featx", "extract", "--shard=2/4"]
        );
        let none = command(&["featx", "extract"]);
        assert_eq!(
            none.for_shard(shard).args,
            ["featx", "extract", "--shard", "2/4"]
        );
        assert_eq!(none.for_shard(Shard::ALL).args, ["featx", "extract"]);
    }

    #[test]
    fn shell_words_are_quoted_only_where_needed() {
        let c = command(&[
            "featx",
            "--input",
            "my photos/*.jpg",
            "--nodes",
            "layer3=it's",
        ]);
        assert_eq!(
            c.shell(),
            r"cd '/data/my job' && featx --input 'my photos/*.jpg' --nodes 'layer3=it'\''s'"
        );
    }
}
