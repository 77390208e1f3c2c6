//! The event log file: raw bytes as received, hashed as they are written.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio::io::{AsyncWriteExt, BufWriter};

use crate::ExecError;

/// Writes bytes to the event log and hashes them incrementally.
pub(crate) struct EventLog {
    file: BufWriter<tokio::fs::File>,
    hasher: Sha256,
    path: PathBuf,
    bytes: u64,
}

impl EventLog {
    pub(crate) async fn create(path: &Path) -> Result<Self, ExecError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| err(path, e))?;
        }
        let file = tokio::fs::File::create(path)
            .await
            .map_err(|e| err(path, e))?;
        Ok(EventLog {
            file: BufWriter::with_capacity(256 * 1024, file),
            hasher: Sha256::new(),
            path: path.to_path_buf(),
            bytes: 0,
        })
    }

    pub(crate) async fn write(&mut self, bytes: &[u8]) -> Result<(), ExecError> {
        self.hasher.update(bytes);
        self.bytes += bytes.len() as u64;
        self.file
            .write_all(bytes)
            .await
            .map_err(|e| err(&self.path, e))
    }

    /// Flushes and syncs; returns (path, lowercase hex SHA-256, byte count).
    pub(crate) async fn finish(mut self) -> Result<(PathBuf, String, u64), ExecError> {
        self.file.flush().await.map_err(|e| err(&self.path, e))?;
        self.file
            .get_ref()
            .sync_data()
            .await
            .map_err(|e| err(&self.path, e))?;
        Ok((self.path, hex::encode(self.hasher.finalize()), self.bytes))
    }
}

fn err(path: &Path, source: std::io::Error) -> ExecError {
    ExecError::EventLog {
        path: path.to_path_buf(),
        source,
    }
}
