use std::path::{Path, PathBuf};

use artifact_render::{Artifact, PreparedRequest};
use async_trait::async_trait;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

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

/// A path segment for `id`: escaped, and never `.` or `..`.
fn segment(id: &str) -> String {
    let escaped = utf8_percent_encode(id, NAME).to_string();
    match escaped.strip_prefix('.') {
        Some(rest) => format!("%2E{rest}"),
        None => escaped,
    }
}

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
        prepared: &PreparedRequest,
        artifacts: &[Artifact],
    ) -> PortResult<()> {
        let Some(first) = artifacts.first() else {
            return Ok(());
        };
        let dir = self.request_dir(lane, first.company_id.as_str(), first.request_id.as_str());
        let mut files: Vec<(String, Vec<u8>)> = Vec::with_capacity(artifacts.len() * 2);
        for artifact in artifacts {
            let stem = format!(
                "{}.{}",
                segment(artifact.recipient_id.as_str()),
                artifact.channel
            );
            let json = serde_json::to_vec_pretty(artifact)
                .map_err(|e| Error::backend("cannot serialize an artifact", e))?;
            files.push((format!("{stem}.json"), json));
            if let Some(eml) = prepared.eml(artifact) {
                files.push((format!("{stem}.eml"), eml.into_bytes()));
            }
        }
        blocking("cannot write to the outbox", move || {
            std::fs::create_dir_all(&dir)?;
            for (name, contents) in files {
                let tmp = dir.join(format!(".{name}.tmp"));
                std::fs::write(&tmp, contents)?;
                std::fs::rename(&tmp, dir.join(name))?;
            }
            Ok(())
        })
        .await
    }
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
}
