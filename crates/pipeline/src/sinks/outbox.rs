use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use artifact_render::{Artifact, PreparedRequest};
use async_trait::async_trait;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::{Digest, Sha256};

use super::blocking;
use crate::Error;
use crate::ports::{ArtifactSink, Lane, PortResult};

/// Writes `<root>/<lane>/<company>/<request>/<recipient>.<channel>.json`,
/// plus `.eml` beside it for emails, the way a mail submitter picks them up.
///
/// Each file is written to a temporary name and renamed into place, so a
/// reader never sees half a file and a redelivered batch replaces its files
/// instead of adding new ones.
#[derive(Debug)]
pub struct OutboxSink {
    root: PathBuf,
}

/// Ids may hold any printable character; these stay readable in a file
/// name, everything else (`/`, `\`, `%`, spaces, non-ASCII) is escaped.
const NAME: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'_')
    .remove(b'-')
    .remove(b'.')
    .remove(b'@');

/// The longest segment written as is. File names may have 255 bytes; an
/// id may have 256 and triple when escaped, and the longest name written is
/// the segment plus `.email.json` and a temporary prefix and suffix.
const MAX_SEGMENT: usize = 160;

/// A path segment for `id`: escaped, never `.` or `..`, and short enough
/// for any file system. A longer one keeps its first bytes and ends in a
/// hash of the whole id, so distinct ids stay distinct.
fn segment(id: &str) -> String {
    let escaped = utf8_percent_encode(id, NAME).to_string();
    let mut segment = match escaped.strip_prefix('.') {
        Some(rest) => format!("%2E{rest}"),
        None => escaped,
    };
    if segment.len() > MAX_SEGMENT {
        let mut keep = MAX_SEGMENT - 18;
        // Not inside an escape: `%` and two hex digits stay together.
        while let Some(at) = segment[..keep].rfind('%').filter(|&at| at + 3 > keep) {
            keep = at;
        }
        let digest = Sha256::digest(id.as_bytes());
        segment.truncate(keep);
        segment.push('~');
        for byte in &digest[..8] {
            segment.push_str(&format!("{byte:02x}"));
        }
    }
    segment
}

/// Makes temporary names unique, so that two deliveries of one batch (its
/// lease expired while it was still rendering) never share a file.
static NEXT_TEMP: AtomicU64 = AtomicU64::new(0);

impl OutboxSink {
    /// Creates `root` if needed.
    pub fn open(root: &Path) -> Result<Self, Error> {
        std::fs::create_dir_all(root)
            .map_err(|e| Error::backend(format!("cannot create outbox {}", root.display()), e))?;
        Ok(Self {
            root: root.to_owned(),
        })
    }

    /// The folder one request's artifacts go to.
    pub fn request_dir(&self, lane: Lane, company: &str, request: &str) -> PathBuf {
        self.root
            .join(lane.as_str())
            .join(segment(company))
            .join(segment(request))
    }
}

#[async_trait]
impl ArtifactSink for OutboxSink {
    async fn write(
        &self,
        lane: Lane,
        prepared: Arc<PreparedRequest>,
        artifacts: Arc<[Artifact]>,
    ) -> PortResult<()> {
        let Some(first) = artifacts.first() else {
            return Ok(());
        };
        let dir = self.request_dir(lane, first.company_id.as_str(), first.request_id.as_str());
        blocking("cannot write to the outbox", move || {
            std::fs::create_dir_all(&dir)?;
            for artifact in artifacts.iter() {
                let stem = format!(
                    "{}.{}",
                    segment(artifact.recipient_id.as_str()),
                    artifact.channel
                );
                write_replacing(
                    &dir,
                    &format!("{stem}.json"),
                    &serde_json::to_vec_pretty(artifact)?,
                )?;
                if let Some(eml) = prepared.eml(artifact) {
                    write_replacing(&dir, &format!("{stem}.eml"), eml.as_bytes())?;
                }
            }
            Ok(())
        })
        .await
    }
}

/// Writes `dir/name` through a temporary file and a rename, so a reader
/// sees the old file or the new one, never half of one.
fn write_replacing(dir: &Path, name: &str, contents: &[u8]) -> std::io::Result<()> {
    let temp = dir.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        NEXT_TEMP.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&temp, contents)?;
    std::fs::rename(&temp, dir.join(name))
}

#[cfg(test)]
mod tests {
    use super::segment;

    #[test]
    fn ids_cannot_escape_their_folder() {
        assert_eq!(segment("rcpt-1"), "rcpt-1");
        assert_eq!(segment("a@b.example"), "a@b.example");
        assert_eq!(segment("../etc/passwd"), "%2E.%2Fetc%2Fpasswd");
        assert_eq!(segment(".."), "%2E.");
        assert_eq!(segment("a b\\c%"), "a%20b%5Cc%25");
    }

    #[test]
    fn long_ids_are_shortened_and_stay_distinct() {
        let long = "é".repeat(128); // 256 bytes, 1,536 escaped
        let other = format!("{}x", "é".repeat(127));
        let (a, b) = (segment(&long), segment(&other));
        assert!(a.len() <= super::MAX_SEGMENT, "{}", a.len());
        assert_ne!(a, b);
        // Cut between escapes, never inside one.
        let (kept, hash) = a.split_once('~').unwrap();
        assert!(kept.len() % 3 == 0 && kept.starts_with("%C3%A9"), "{kept}");
        assert_eq!(hash.len(), 16);
        assert_eq!(segment(&long), a, "the same id, the same name");
        let name = format!(".{a}.email.json.4294967295.18446744073709551615.tmp");
        assert!(name.len() <= 255, "{}", name.len());
    }
}
