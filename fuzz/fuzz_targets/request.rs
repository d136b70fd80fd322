//! Request parsing: any bytes give a request or an error, never a panic.
#![no_main]

use artifact_render::{RenderRequest, RequestLimits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    if let Err(error) = RenderRequest::from_json(bytes, &RequestLimits::default()) {
        assert!(!error.to_string().is_empty());
    }
});
