//! One module per subcommand.

pub mod audit;
pub mod canary;
pub mod loadgen;
pub mod render;
pub mod serve;
pub mod templates;
pub mod worker;
