//! Durable files: statistics and profile snapshots are replaced atomically (a temporary
//! file in the same directory is written, flushed and fsynced, renamed over the old
//! file, and the directory is fsynced) and read back with a size limit. A crash at any
//! moment leaves the old file or the new one, never a mix: nothing here writes into the
//! target file in place.
//!
//! A crash can leave a temporary file behind (`.<name>.<pid>.<n>.tmp`, next to the
//! target); it is never read and safe to delete. The new file gets the default
//! permissions of a new file, not the old file's.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::learn::{LoadReport, StatsSnapshot};
use crate::limits::{MAX_PROFILE_BYTES, MAX_SNAPSHOT_BYTES};
use crate::persona::PersonaMenu;
use crate::profile::Profile;
use crate::select::Selector;

fn io_error(path: &Path, source: io::Error) -> Error {
    Error::Io { path: path.display().to_string(), source }
}

/// Replaces the file at `path` with `contents`, atomically (see the module
/// documentation).
pub fn write_atomically(path: impl AsRef<Path>, contents: &[u8]) -> Result<()> {
    write_atomically_with(path, |out| out.write_all(contents))
}

/// Replaces the file at `path` with what `write` writes, atomically: `write` fills a
/// temporary file in the same directory; only when it returns `Ok` is the file flushed,
/// fsynced and renamed over `path`, and the directory fsynced. If `write` (or any later
/// step) fails, the temporary file is removed and `path` is left exactly as it was.
///
/// When `path` is a symbolic link, the file it points to is replaced (or created) and
/// the link kept.
///
/// Errors: [`Error::Io`] naming the path. An error from the final directory fsync means
/// the new file is in place but might not survive a power cut.
pub fn write_atomically_with(
    path: impl AsRef<Path>,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<()> {
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    let given = path.as_ref();
    // A symbolic link is followed: the file it points to is replaced (next to it), and
    // the link stays, as a plain write through the link would leave it. Renaming over
    // the link itself would replace it with a file and leave its target stale.
    let resolved = resolve_links(given).map_err(|source| io_error(given, source))?;
    let path = resolved.as_path();
    let Some(name) = path.file_name() else {
        return Err(io_error(path, io::Error::new(io::ErrorKind::InvalidInput, "not a file path")));
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let temp: PathBuf = dir.join(format!(
        ".{}.{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id(),
        SEQUENCE.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        // `create_new`: never follow or reuse whatever is at the temporary name.
        let file = OpenOptions::new().write(true).create_new(true).open(&temp)?;
        let mut out = BufWriter::new(file);
        write(&mut out)?;
        let file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temp, path)
    })();
    if let Err(source) = written {
        let _ = fs::remove_file(&temp);
        return Err(io_error(given, source));
    }
    sync_dir(dir).map_err(|source| io_error(dir, source))
}

/// `path` with symbolic links at its end followed (a link to a file that does not exist
/// yet gives that file's path); other paths are returned as they are.
fn resolve_links(path: &Path) -> io::Result<PathBuf> {
    let mut path = path.to_path_buf();
    // As many links as the kernel follows in one lookup (Linux's limit).
    for _ in 0..40 {
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = fs::read_link(&path)?;
                path = match path.parent() {
                    Some(dir) if target.is_relative() => dir.join(target),
                    _ => target,
                };
            }
            _ => return Ok(path),
        }
    }
    Err(io::Error::new(io::ErrorKind::InvalidInput, "too many levels of symbolic links"))
}

/// Makes a rename in `dir` durable.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Directories cannot be opened for fsync here; the rename is as durable as the
/// platform makes it.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// Reads and parses a statistics snapshot file (at most
/// [`MAX_SNAPSHOT_BYTES`]).
pub fn read_stats(path: impl AsRef<Path>) -> Result<StatsSnapshot> {
    crate::limits::parse_file(
        path.as_ref(),
        "stats snapshot",
        MAX_SNAPSHOT_BYTES,
        "MAX_SNAPSHOT_BYTES",
        StatsSnapshot::from_json,
    )
}

/// Writes a statistics snapshot to `path` atomically. A snapshot that is larger than
/// [`MAX_SNAPSHOT_BYTES`] as JSON, which [`read_stats`] would refuse, is not written:
/// the error says how large it is, and the file at `path` stays as it was.
pub fn write_stats(path: impl AsRef<Path>, snapshot: &StatsSnapshot) -> Result<()> {
    write_stats_within(path.as_ref(), snapshot, MAX_SNAPSHOT_BYTES)
}

/// [`write_stats`] with the size limit given.
fn write_stats_within(path: &Path, snapshot: &StatsSnapshot, limit: usize) -> Result<()> {
    let size = std::cell::Cell::new(0usize);
    let written = write_atomically_with(path, |out| {
        let mut bounded = Bounded { out, limit, size: &size };
        serde_json::to_writer(&mut bounded, snapshot).map_err(io::Error::from)?;
        if size.get() > limit {
            // Fails the write: the temporary file is removed, the old file kept.
            return Err(io::Error::other("the snapshot is too large to be read back"));
        }
        Ok(())
    });
    if size.get() > limit {
        let then = format!(": not written, '{}' is as it was", path.display());
        return Err(snapshot.too_large(size.get(), limit, &then));
    }
    written
}

/// A writer that passes at most `limit` bytes on and counts all of them: past the
/// limit, the rest is only counted (so the error can say how large the whole is).
struct Bounded<'a> {
    out: &'a mut dyn Write,
    limit: usize,
    size: &'a std::cell::Cell<usize>,
}

impl Write for Bounded<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.size.set(self.size.get().saturating_add(buf.len()));
        if self.size.get() <= self.limit {
            self.out.write_all(buf)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl Selector {
    /// Saves a full snapshot of the learned statistics to `path`, atomically: a crash
    /// leaves the previous file or the new one.
    pub fn save_stats_to(&self, path: impl AsRef<Path>) -> Result<()> {
        write_stats(path, &self.save_stats())
    }

    /// Replaces the learned statistics with the snapshot saved at `path` (as
    /// [`Selector::load_stats`]). A missing, truncated, corrupted or oversized file is an
    /// error and changes nothing.
    pub fn load_stats_from(&self, path: impl AsRef<Path>) -> Result<LoadReport> {
        self.load_stats(&read_stats(path)?)
    }
}

impl Engine {
    /// Saves everything the engine learned ([`Engine::save_stats`]) to `path`,
    /// atomically.
    pub fn save_stats_to(&self, path: impl AsRef<Path>) -> Result<()> {
        write_stats(path, &self.save_stats())
    }

    /// Replaces everything the engine learned with the snapshot saved at `path` (as
    /// [`Engine::load_stats`]). A missing, truncated, corrupted or oversized file is an
    /// error and changes nothing.
    pub fn load_stats_from(&self, path: impl AsRef<Path>) -> Result<LoadReport> {
        self.load_stats(&read_stats(path)?)
    }
}

impl Profile {
    /// Saves the profile as JSON (persona names from `menu`) to `path`, atomically.
    pub fn save_to(&self, path: impl AsRef<Path>, menu: &PersonaMenu) -> Result<()> {
        write_atomically(path, self.to_json(menu)?.as_bytes())
    }

    /// Loads a profile saved with [`Profile::save_to`] (at most
    /// [`MAX_PROFILE_BYTES`]), checking it against
    /// `menu`.
    pub fn load_from(path: impl AsRef<Path>, menu: &PersonaMenu) -> Result<Profile> {
        crate::limits::parse_file(path.as_ref(), "profile", MAX_PROFILE_BYTES, "MAX_PROFILE_BYTES", |json| {
            Profile::from_json(menu, json)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learn::{CreativeStats, SnapshotKind, SNAPSHOT_FORMAT, SNAPSHOT_VERSION};

    fn snapshot(creatives: usize) -> StatsSnapshot {
        StatsSnapshot {
            format: SNAPSHOT_FORMAT.to_owned(),
            version: SNAPSHOT_VERSION,
            kind: SnapshotKind::Full,
            catalog_version: "v1".to_owned(),
            creatives: (0..creatives).map(|i| (format!("creative-{i}"), CreativeStats::default())).collect(),
            model: Vec::new(),
        }
    }

    #[test]
    fn a_snapshot_too_large_to_read_back_is_not_written_and_the_old_file_stays() {
        let dir = std::env::temp_dir().join(format!("pe-durable-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("stats.json");
        let small = snapshot(1);
        let json = serde_json::to_string(&small).unwrap();
        // Exactly at the limit: written, and read back.
        write_stats_within(&path, &small, json.len()).unwrap();
        assert_eq!(read_stats(&path).unwrap(), small);
        // Past it: refused, naming the size and the limit; the old file is untouched and
        // no temporary file is left.
        let large = snapshot(50);
        let size = serde_json::to_string(&large).unwrap().len();
        let err = write_stats_within(&path, &large, json.len()).unwrap_err().to_string();
        assert!(
            err.contains(&format!("50 creatives and 0 model weights is {size} bytes as JSON"))
                && err.contains(&format!("MAX_SNAPSHOT_BYTES ({} bytes)", json.len()))
                && err.contains("not written"),
            "{err}"
        );
        assert_eq!(fs::read_to_string(&path).unwrap(), json);
        let left: Vec<_> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left.len(), 1, "{left:?}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
