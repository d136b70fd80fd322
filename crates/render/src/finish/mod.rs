//! Finishing: turns rendered template parts into a send-ready email
//! (tracking, one-line headers, preheader, text part, `.eml`).

pub mod eml;
pub mod headers;
pub mod preheader;
pub mod text;
pub mod tracking;
