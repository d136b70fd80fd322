//! One module per subcommand.

pub mod audit;
pub mod canary;
pub mod db;
pub mod loadgen;
pub mod nats;
pub mod render;
pub mod serve;
pub mod templates;
pub mod worker;
