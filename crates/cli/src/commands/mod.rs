//! One module per subcommand.

pub mod extract;
pub mod nodes;
pub mod viz;
pub mod weights;
