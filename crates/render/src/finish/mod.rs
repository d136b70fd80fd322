//! Finishing: turns rendered template parts into a send-ready email
//! (one-line headers, preheader, text part, `.eml`).

pub mod eml;
pub mod headers;
pub mod preheader;
pub mod text;
