//! The `featx` binary; the commands live in the `featx-cli` crate.

fn main() -> std::process::ExitCode {
    featx_cli::main()
}
