use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use artifact_render::{Artifact, PreparedRequest};
use async_trait::async_trait;
use serde::Serialize;

use super::blocking;
use crate::Error;
use crate::ports::{ArtifactSink, Lane, PortResult};

/// Appends one JSON line per artifact to a file.
///
/// Each batch is written and flushed as a whole, so lines never interleave.
/// Delivery is at least once: a batch redelivered after a crash appends its
/// lines again, and every line carries its key (company, request,
/// recipient, channel, lane) so that readers keep the last line per key.
#[derive(Debug)]
pub struct NdjsonSink {
    path: PathBuf,
    file: Arc<Mutex<BufWriter<File>>>,
}

/// One artifact as the sinks for other programs write it: its lane and
/// the artifact (which carries the rest of its key).
#[derive(Serialize)]
pub(crate) struct ArtifactLine<'a> {
    pub lane: Lane,
    #[serde(flatten)]
    pub artifact: &'a Artifact,
}

impl NdjsonSink {
    /// Opens `path` for appending, creating it and its folder.
    pub fn open(path: &Path) -> Result<Self, Error> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::backend(format!("cannot create {}", parent.display()), e))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| Error::backend(format!("cannot open {}", path.display()), e))?;
        Ok(Self {
            path: path.to_owned(),
            file: Arc::new(Mutex::new(BufWriter::with_capacity(1 << 20, file))),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[async_trait]
impl ArtifactSink for NdjsonSink {
    async fn write(
        &self,
        lane: Lane,
        _prepared: Arc<PreparedRequest>,
        artifacts: Arc<[Artifact]>,
    ) -> PortResult<()> {
        let file = self.file.clone();
        blocking("cannot append to the NDJSON sink", move || {
            // Serialized before taking the lock, so workers serialize in
            // parallel and only the append is one at a time.
            let mut lines = Vec::with_capacity(artifacts.len() * 4096);
            for artifact in artifacts.iter() {
                serde_json::to_writer(&mut lines, &ArtifactLine { lane, artifact })?;
                lines.push(b'\n');
            }
            let mut file = file.lock().unwrap_or_else(|e| e.into_inner());
            file.write_all(&lines)?;
            file.flush()
        })
        .await
    }
}
