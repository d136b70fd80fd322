//! The preheader: the hidden line inbox previews show after the subject.
//! The template compiler marks the top of the body; the render writes the
//! block there.

/// Hides the preheader from the opened message but not from inbox previews.
const OPEN: &str = "<div style=\"display:none;font-size:1px;line-height:1px;max-height:0;max-width:0;opacity:0;overflow:hidden;mso-hide:all\">";

/// Appends the hidden block holding `preheader`, which is already escaped.
pub fn write_block(out: &mut String, preheader: &str) {
    out.push_str(OPEN);
    out.push_str(preheader);
    out.push_str("</div>");
}
