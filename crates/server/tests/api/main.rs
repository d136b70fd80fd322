//! HTTP tests: the router over a real embedded store in a temporary
//! directory, with a worker pool rendering what the API queues. Each test
//! builds its own app and calls it with `oneshot`.

mod support;

mod artifacts;
mod audit;
mod flags;
mod ops;
mod previews;
mod profiles;
mod requests;
mod templates;
mod tenancy;
mod tracking;
