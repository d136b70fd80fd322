//! The text part's tokenizer: any input converts without a panic, and the
//! output has no control characters but line breaks.
#![no_main]

use artifact_render::finish::text::html_to_text;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|html: &str| {
    let text = html_to_text(html);
    assert!(!text.contains('\r'));
});
