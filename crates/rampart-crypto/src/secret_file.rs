//! Reading secrets from files, refusing files that others can read.
//!
//! A key file readable by group or others is a leaked key waiting to happen: the
//! check runs on every read, and the error carries the exact command that fixes it.

use std::fs;
use std::io::Read as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use crate::secret::{SecretBytes, SecretString};

/// Largest secret file accepted. Secrets are keys, tokens and URLs; anything bigger is
/// a mistake (a wrong path), and reading it unbounded would be a memory hazard.
pub const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

/// Why a secret file was refused.
#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    /// The file could not be opened or read.
    #[error("cannot read secret file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Group or others have some access to the file.
    #[error(
        "secret file {path} has mode {mode:04o}, which lets other users read it; fix: chmod 600 {path}"
    )]
    TooOpen {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file belongs to a user other than the one running Rampart (or root).
    #[error(
        "secret file {path} is owned by uid {owner}, not by the user running Rampart (uid {running}) or root; fix: chown {running} {path}"
    )]
    WrongOwner {
        /// The file.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// The effective uid of this process.
        running: u32,
    },
    /// The path is not a regular file.
    #[error("secret file {path} is not a regular file")]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// The file is larger than [`MAX_SECRET_FILE_BYTES`].
    #[error("secret file {path} is larger than {MAX_SECRET_FILE_BYTES} bytes; is the path right?")]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The file's content is not UTF-8 where text was expected.
    #[error("secret file {path} is not valid UTF-8")]
    NotUtf8 {
        /// The file.
        path: PathBuf,
    },
}

/// What the permission check found; used by `rampart doctor` without reading content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileAccess {
    /// Mode 0600 or stricter, owned by this user or root.
    Private,
}

/// Checks mode and owner of a secret file without reading it.
pub fn check_permissions(path: &Path) -> Result<FileAccess, SecretFileError> {
    let meta = fs::metadata(path).map_err(|source| SecretFileError::Io {
        path: path.to_owned(),
        source,
    })?;
    if !meta.is_file() {
        return Err(SecretFileError::NotAFile {
            path: path.to_owned(),
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(SecretFileError::TooOpen {
            path: path.to_owned(),
            mode,
        });
    }
    let running = rustix::process::geteuid().as_raw();
    let owner = meta.uid();
    if owner != running && owner != 0 {
        return Err(SecretFileError::WrongOwner {
            path: path.to_owned(),
            owner,
            running,
        });
    }
    Ok(FileAccess::Private)
}

/// Reads a secret file after [`check_permissions`], as raw bytes.
pub fn read_bytes(path: &Path) -> Result<SecretBytes, SecretFileError> {
    check_permissions(path)?;
    read_unchecked(path)
}

/// Reads a secret file after [`check_permissions`], as text with surrounding
/// whitespace (a trailing newline) removed.
pub fn read_string(path: &Path) -> Result<SecretString, SecretFileError> {
    let bytes = read_bytes(path)?;
    to_string(path, bytes)
}

/// Reads a file managed by a trusted secret store (systemd's
/// `$CREDENTIALS_DIRECTORY`), where the directory itself is private to the service
/// and the file mode is set by the service manager.
pub fn read_managed_string(path: &Path) -> Result<SecretString, SecretFileError> {
    let bytes = read_unchecked(path)?;
    to_string(path, bytes)
}

fn to_string(path: &Path, bytes: SecretBytes) -> Result<SecretString, SecretFileError> {
    let text =
        std::str::from_utf8(bytes.expose_secret()).map_err(|_| SecretFileError::NotUtf8 {
            path: path.to_owned(),
        })?;
    Ok(SecretString::new(text.trim().to_owned()))
}

fn read_unchecked(path: &Path) -> Result<SecretBytes, SecretFileError> {
    let io = |source| SecretFileError::Io {
        path: path.to_owned(),
        source,
    };
    let file = fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    if len > MAX_SECRET_FILE_BYTES {
        return Err(SecretFileError::TooLarge {
            path: path.to_owned(),
        });
    }
    let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(MAX_SECRET_FILE_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(io)?;
    Ok(SecretBytes::new(buf))
}

/// Writes `content` to a new file with mode 0600, refusing to overwrite.
pub fn write_new(path: &Path, content: &[u8]) -> Result<(), std::io::Error> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(content)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn private_file_is_read_and_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        write_new(&path, b"s3cret\n").unwrap();
        assert_eq!(read_string(&path).unwrap().expose_secret(), "s3cret");
    }

    #[test]
    fn group_readable_file_is_refused_with_chmod_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        write_new(&path, b"s3cret").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let err = read_string(&path).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, SecretFileError::TooOpen { mode: 0o640, .. }));
        assert!(
            msg.contains(&format!("chmod 600 {}", path.display())),
            "{msg}"
        );
        assert!(!msg.contains("s3cret"));
    }

    #[test]
    fn read_only_owner_file_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        write_new(&path, b"x").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
        assert!(read_bytes(&path).is_ok());
    }

    #[test]
    fn oversized_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        write_new(&path, &vec![b'a'; 70_000]).unwrap();
        assert!(matches!(
            read_bytes(&path),
            Err(SecretFileError::TooLarge { .. })
        ));
    }

    #[test]
    fn write_new_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        write_new(&path, b"1").unwrap();
        assert!(write_new(&path, b"2").is_err());
        let mode = fs::metadata(&path).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
