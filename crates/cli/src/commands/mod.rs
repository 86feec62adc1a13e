//! One module per subcommand.

pub mod bench;
pub mod extract;
pub mod nodes;
pub mod viz;
pub mod weights;
