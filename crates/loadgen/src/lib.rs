//! Open-loop load generator for the render service.
//!
//! Requests are offered on a fixed schedule ([`rate::OpenLoop`]) whatever the
//! system under test does, and each latency is measured from the time the
//! request was *scheduled*, not sent, so a stall shows up in the percentiles
//! instead of silently lowering the offered load (coordinated omission).
//! [`report::Recorder`] counts and times requests per priority lane and
//! turns them into a [`report::Summary`].

pub mod data;
pub mod rate;
pub mod report;
pub mod run;
pub mod target;
