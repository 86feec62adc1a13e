use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use featx_dataset::{DatasetError, DatasetStatus, ShardStatus, dataset_status, merge_dataset};

use crate::commands::Format;
use crate::error::CliError;

/// Arguments of `featx dataset`.
#[derive(Args, Debug)]
pub struct DatasetArgs {
    #[command(subcommand)]
    command: DatasetCommand,
}

#[derive(Subcommand, Debug)]
enum DatasetCommand {
    /// Report a dataset folder: per shard done / partial / missing and failed images, whether
    /// every listed image is committed exactly once, and the commands that finish it. Exit code
    /// 0 when complete, 3 when not.
    Status(StatusArgs),
    /// Write one index.csv and one summary.json for all the shards of a complete dataset
    /// folder; the part files stay where they are.
    Merge(MergeArgs),
}

/// Arguments of `featx dataset status`.
#[derive(Args, Debug)]
struct StatusArgs {
    /// The `--out` folder of `featx extract`.
    dir: PathBuf,
    /// Text for people, or one JSON object for scripts.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

/// Arguments of `featx dataset merge`.
#[derive(Args, Debug)]
struct MergeArgs {
    /// The `--out` folder of `featx extract`.
    dir: PathBuf,
}

/// Runs `featx dataset status` or `featx dataset merge`.
pub fn run(args: &DatasetArgs) -> Result<(), CliError> {
    match &args.command {
        DatasetCommand::Status(args) => status(args),
        DatasetCommand::Merge(args) => merge(args),
    }
}

fn status(args: &StatusArgs) -> Result<(), CliError> {
    let status = dataset_status(&args.dir)?;
    match args.format {
        Format::Json => {
            let json = serde_json::to_string_pretty(&status).map_err(|e| CliError::Output {
                path: "stdout".into(),
                reason: e.to_string(),
            })?;
            print_out(&format!("{json}\n"))?;
        }
        Format::Text => print_out(&status_text(&status))?,
    }
    if status.complete {
        Ok(())
    } else {
        Err(DatasetError::Incomplete {
            dir: args.dir.clone(),
            missing: status.missing,
            listed: status.listed,
        }
        .into())
    }
}

fn status_text(status: &DatasetStatus) -> String {
    let mut text = format!(
        "{}: {}, outputs {}; {} listed images in {} shard{}\n",
        status.dir,
        status.model,
        status.outputs.join(", "),
        status.listed,
        status.shards.len(),
        if status.shards.len() == 1 { "" } else { "s" },
    );
    text += &table_line(
        "shard", "state", "parts", "images", "done", "failed", "missing", "summary",
    );
    for s in &status.shards {
        text += &shard_line(s);
    }
    if status.complete {
        text += &format!(
            "complete: every listed image is committed exactly once ({} ok, {} failed)\n",
            status.ok, status.failed
        );
        if status.merged {
            text += "index.csv and summary.json describe the whole dataset\n";
        } else {
            text += &format!("next: featx dataset merge {}\n", status.dir);
        }
        return text;
    }
    text += &format!(
        "incomplete: {} of {} listed images are in no committed part",
        status.missing, status.listed
    );
    if status.duplicated > 0 {
        text += &format!(", {} are committed more than once", status.duplicated);
    }
    text += "\nto finish, run (a shard resumes from its committed parts):\n";
    for s in status.shards.iter().filter(|s| s.missing > 0) {
        match &s.finish {
            Some(finish) => text += &format!("  {}\n", finish.shell),
            None => {
                text += &format!(
                    "  the run's featx extract command with --shard {}/{}\n",
                    s.shard.index, s.shard.count
                )
            }
        }
    }
    text
}

fn shard_line(s: &ShardStatus) -> String {
    let name = if s.shard.count == 1 {
        "all".to_string()
    } else {
        format!("{}/{}", s.shard.index, s.shard.count)
    };
    table_line(
        &name,
        &s.state.to_string(),
        &format!("{}/{}", s.committed_parts, s.parts),
        &s.images.to_string(),
        &s.done.to_string(),
        &s.failed.to_string(),
        &s.missing.to_string(),
        if s.finished { "yes" } else { "no" },
    )
}

/// One line of the shard table: names left-aligned, numbers right-aligned.
#[allow(clippy::too_many_arguments)]
fn table_line(
    shard: &str,
    state: &str,
    parts: &str,
    images: &str,
    done: &str,
    failed: &str,
    missing: &str,
    summary: &str,
) -> String {
    format!(
        "{shard:<9} {state:<8} {parts:>11} {images:>9} {done:>9} {failed:>9} {missing:>9}  {summary}\n"
    )
}

/// Writes `text` to stdout; a reader that stopped early (`| head`) ends the output quietly.
fn print_out(text: &str) -> Result<(), CliError> {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::Output {
            path: "stdout".into(),
            reason: e.to_string(),
        }),
        _ => Ok(()),
    }
}

fn merge(args: &MergeArgs) -> Result<(), CliError> {
    let summary = merge_dataset(&args.dir)?;
    print_out(&format!(
        "merged {} shard{} of {}: {} images ({} ok, {} failed) in {} parts; {} and {}\n",
        summary.merged_shards.unwrap_or(1),
        if summary.merged_shards == Some(1) {
            ""
        } else {
            "s"
        },
        args.dir.display(),
        summary.images,
        summary.ok,
        summary.failed,
        summary.parts,
        args.dir.join(&summary.index).display(),
        args.dir.join("summary.json").display(),
    ))
}
