//! Files that survive a crash, a kill or a power loss: written under a hidden temporary name,
//! synced, renamed into place, and the folder synced so that the rename itself is on disk.
use anyhow::Context;
use std::path::Path;

/// Prefix of files and folders being written; what a killed process leaves under it is
/// removed when the run is next trained.
pub const PARTIAL: &str = ".partial-";
/// Every prefix of leftovers: [`PARTIAL`], and `tempfile`'s default of earlier versions.
pub const LEFTOVER_PREFIXES: [&str; 2] = [PARTIAL, ".tmp"];

/// The folder a path lies in: `.` for a bare file name.
pub fn folder_of(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = folder_of(path);
    // tempfile's default is owner-only; a run's files are as readable as any other output.
    let mut tmp = tempfile::Builder::new()
        .prefix(PARTIAL)
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a file in `{}`", dir.display()))?;
    std::io::Write::write_all(&mut tmp, bytes)
        .with_context(|| format!("cannot write `{}`", path.display()))?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .with_context(|| format!("cannot write `{}`", path.display()))?;
    sync_dir(dir)
}

/// Removes the file at `path`; one that is not there is already what the caller wants.
pub fn remove_if_present(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove `{}`", path.display()))
        }
        _ => Ok(()),
    }
}

/// Makes the renames and removals in `dir` durable.
pub fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync folder `{}`", dir.display()))
}

/// Whether `err` comes from a full disk (or an exhausted quota).
pub fn is_disk_full(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        let io = cause.downcast_ref::<std::io::Error>();
        io.is_some_and(|e| matches!(e.raw_os_error(), Some(28 | 122)))
            || cause.to_string().contains("No space left on device")
    })
}
