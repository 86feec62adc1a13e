use std::net::IpAddr;
use std::path::PathBuf;

use clap::Args;

use crate::error::CliError;
use crate::input::PreprocessArgs;
use crate::model::ModelArgs;

/// Arguments of `featx explore`.
#[derive(Args, Debug, Clone)]
pub struct ExploreArgs {
    #[command(flatten)]
    pub(crate) model: ModelArgs,
    /// Images to look at: files, folders (searched recursively), glob patterns (quoted) or
    /// `.txt` lists, as `featx extract` takes them. More can be uploaded from the page.
    #[arg(long, num_args = 1..)]
    pub(crate) images: Vec<PathBuf>,
    /// The address to listen on. Anything but a loopback address needs the token.
    #[arg(long, default_value = "127.0.0.1")]
    pub(crate) bind: IpAddr,
    /// The port to listen on; 0 picks a free one (the printed URL tells which).
    #[arg(long, default_value_t = 8787)]
    pub(crate) port: u16,
    /// The token every request must carry (`?token=`, or the cookie the page sets) [default:
    /// a random one when bound beyond loopback, none on loopback].
    #[arg(long, conflicts_with = "no_token")]
    pub(crate) token: Option<String>,
    /// Serve a non-loopback address without a token: anyone who can reach it can use it.
    #[arg(long)]
    pub(crate) no_token: bool,
    /// Memory for kept node outputs, in MiB: an image's forward pass is kept so other nodes of
    /// it cost no forward; the least recently used images go first.
    #[arg(long, default_value_t = 1024)]
    pub(crate) cache_mb: u64,
    /// The largest image upload accepted, in MiB.
    #[arg(long, default_value_t = 20)]
    pub(crate) max_upload_mb: u64,
    /// The most pixels an uploaded image may have (decompression bombs are refused before
    /// they are decoded).
    #[arg(long, default_value_t = 40_000_000)]
    pub(crate) max_pixels: u64,
    /// Requests waiting for the model at most; past it the server answers 503 with
    /// `Retry-After`.
    #[arg(long, default_value_t = 64)]
    pub(crate) queue: usize,
    #[command(flatten)]
    pub(crate) preprocess: PreprocessArgs,
}

/// Serves the explorer until Ctrl-C or SIGTERM.
pub fn run(args: &ExploreArgs) -> Result<(), CliError> {
    crate::explore::serve(args)
}
