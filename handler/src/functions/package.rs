//! The deployable function app: a folder with `host.json`, one folder per function and the
//! `handler` binary at its root, and the same as a zip next to it for zip deploy.
//!
//! The files come from the embedded copies in [`super::table`], so a package always holds exactly
//! the function table the binary was built with. The zip is written by hand, entries stored
//! without compression, with Unix modes (the binary is `0755`) and a fixed 1980-01-01 timestamp,
//! so the same inputs give the same bytes.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::table::{FUNCTION_FILES, HOST_JSON};

/// The name the host looks for (`customHandler.description.defaultExecutablePath`).
pub const BINARY_NAME: &str = "handler";

/// Why a package could not be made.
#[derive(Debug, Error)]
pub enum PackageError {
    /// The handler binary to package is not a file.
    #[error("handler binary {path} is not a file")]
    MissingBinary {
        /// The path given.
        path: PathBuf,
    },
    /// The output folder holds files that are not a previous package; nothing is overwritten.
    #[error("output folder {path} is not empty and holds no previous package (no host.json)")]
    OutDirNotEmpty {
        /// The folder given.
        path: PathBuf,
    },
    /// The output folder has no parent to put the zip in, or no file name to name it after.
    #[error("output folder {path} needs a parent folder and a name for the zip")]
    OutDirUnnamed {
        /// The folder given.
        path: PathBuf,
    },
    /// Reading or writing a file failed.
    #[error("writing the package at {path}: {source}")]
    Write {
        /// The file or folder being written.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// An entry is over the 4 GiB that a zip without zip64 can hold.
    #[error("{name} is too large for the zip (over 4 GiB)")]
    TooLarge {
        /// The entry name.
        name: String,
    },
}

fn write_err(path: &Path) -> impl FnOnce(io::Error) -> PackageError + '_ {
    move |source| PackageError::Write {
        path: path.to_owned(),
        source,
    }
}

/// Assembles the function-app folder at `out_dir` (created if missing; a previous package there
/// is replaced) and `<out_dir>.zip` beside it, and returns the zip's path.
pub fn package(out_dir: &Path, handler_binary: &Path) -> Result<PathBuf, PackageError> {
    if !handler_binary.is_file() {
        return Err(PackageError::MissingBinary {
            path: handler_binary.to_owned(),
        });
    }
    let zip_path = zip_path_for(out_dir)?;
    prepare_out_dir(out_dir)?;

    let binary = fs::read(handler_binary).map_err(write_err(handler_binary))?;
    let mut entries = vec![
        Entry::file("host.json", HOST_JSON.as_bytes().to_vec(), 0o644),
        Entry::file(BINARY_NAME, binary, 0o755),
    ];
    for (name, text) in FUNCTION_FILES {
        entries.push(Entry::dir(&format!("{name}/")));
        entries.push(Entry::file(
            &format!("{name}/function.json"),
            text.as_bytes().to_vec(),
            0o644,
        ));
    }

    for entry in &entries {
        let path = out_dir.join(entry.name.trim_end_matches('/'));
        if entry.is_dir() {
            fs::create_dir_all(&path).map_err(write_err(&path))?;
        } else {
            fs::write(&path, &entry.data).map_err(write_err(&path))?;
            set_mode(&path, entry.mode)?;
        }
    }

    let zip = write_zip(&entries)?;
    let mut file = fs::File::create(&zip_path).map_err(write_err(&zip_path))?;
    file.write_all(&zip).map_err(write_err(&zip_path))?;
    file.sync_all().map_err(write_err(&zip_path))?;
    Ok(zip_path)
}

fn zip_path_for(out_dir: &Path) -> Result<PathBuf, PackageError> {
    let unnamed = || PackageError::OutDirUnnamed {
        path: out_dir.to_owned(),
    };
    let name = out_dir.file_name().ok_or_else(unnamed)?;
    let parent = out_dir.parent().ok_or_else(unnamed)?;
    let mut zip_name = name.to_owned();
    zip_name.push(".zip");
    Ok(parent.join(zip_name))
}

fn prepare_out_dir(out_dir: &Path) -> Result<(), PackageError> {
    if out_dir.exists() {
        let mut children = fs::read_dir(out_dir).map_err(write_err(out_dir))?;
        if children.next().is_some() {
            if !out_dir.join("host.json").is_file() {
                return Err(PackageError::OutDirNotEmpty {
                    path: out_dir.to_owned(),
                });
            }
            fs::remove_dir_all(out_dir).map_err(write_err(out_dir))?;
        }
    }
    fs::create_dir_all(out_dir).map_err(write_err(out_dir))
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> Result<(), PackageError> {
    use std::os::unix::fs::PermissionsExt as _;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(write_err(path))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> Result<(), PackageError> {
    Ok(())
}

/// One zip entry; a name ending in `/` is a folder.
struct Entry {
    name: String,
    data: Vec<u8>,
    mode: u32,
}

impl Entry {
    fn file(name: &str, data: Vec<u8>, mode: u32) -> Self {
        Self {
            name: name.to_owned(),
            data,
            mode,
        }
    }

    fn dir(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            data: Vec::new(),
            mode: 0o755,
        }
    }

    fn is_dir(&self) -> bool {
        self.name.ends_with('/')
    }

    /// Unix mode with the file-type bits, as zip's external attributes carry it.
    fn unix_mode(&self) -> u32 {
        let kind = if self.is_dir() { 0o040000 } else { 0o100000 };
        kind | self.mode
    }
}

/// MS-DOS date 1980-01-01 (the earliest a zip can say), time 00:00.
const DOS_DATE: u16 = (1 << 5) | 1;
const DOS_TIME: u16 = 0;
/// Version needed to extract: 2.0 (folders).
const VERSION_NEEDED: u16 = 20;
/// Version made by: Unix (3), spec 2.0, so extractors honour the mode bits.
const VERSION_MADE_BY: u16 = (3 << 8) | 20;
/// General-purpose flag 11: names are UTF-8.
const FLAG_UTF8: u16 = 1 << 11;

/// A zip of `entries`, all stored (method 0).
fn write_zip(entries: &[Entry]) -> Result<Vec<u8>, PackageError> {
    let too_large = |name: &str| PackageError::TooLarge {
        name: name.to_owned(),
    };
    let mut out = Vec::new();
    let mut central = Vec::new();
    for entry in entries {
        let offset = u32::try_from(out.len()).map_err(|_| too_large(&entry.name))?;
        let size = u32::try_from(entry.data.len()).map_err(|_| too_large(&entry.name))?;
        let name_len = u16::try_from(entry.name.len()).map_err(|_| too_large(&entry.name))?;
        let crc = crc32(&entry.data);

        put32(&mut out, 0x0403_4b50);
        put16(&mut out, VERSION_NEEDED);
        put16(&mut out, FLAG_UTF8);
        put16(&mut out, 0); // stored
        put16(&mut out, DOS_TIME);
        put16(&mut out, DOS_DATE);
        put32(&mut out, crc);
        put32(&mut out, size);
        put32(&mut out, size);
        put16(&mut out, name_len);
        put16(&mut out, 0); // extra field length
        out.extend_from_slice(entry.name.as_bytes());
        out.extend_from_slice(&entry.data);

        let dos_attributes = if entry.is_dir() { 0x10 } else { 0 };
        put32(&mut central, 0x0201_4b50);
        put16(&mut central, VERSION_MADE_BY);
        put16(&mut central, VERSION_NEEDED);
        put16(&mut central, FLAG_UTF8);
        put16(&mut central, 0);
        put16(&mut central, DOS_TIME);
        put16(&mut central, DOS_DATE);
        put32(&mut central, crc);
        put32(&mut central, size);
        put32(&mut central, size);
        put16(&mut central, name_len);
        put16(&mut central, 0); // extra
        put16(&mut central, 0); // comment
        put16(&mut central, 0); // disk number start
        put16(&mut central, 0); // internal attributes
        put32(&mut central, (entry.unix_mode() << 16) | dos_attributes);
        put32(&mut central, offset);
        central.extend_from_slice(entry.name.as_bytes());
    }
    let too_large_zip = || too_large("the central directory");
    let count = u16::try_from(entries.len()).map_err(|_| too_large_zip())?;
    let central_offset = u32::try_from(out.len()).map_err(|_| too_large_zip())?;
    let central_size = u32::try_from(central.len()).map_err(|_| too_large_zip())?;
    out.extend_from_slice(&central);
    put32(&mut out, 0x0605_4b50);
    put16(&mut out, 0); // this disk
    put16(&mut out, 0); // disk with the central directory
    put16(&mut out, count);
    put16(&mut out, count);
    put32(&mut out, central_size);
    put32(&mut out, central_offset);
    put16(&mut out, 0); // comment length
    Ok(out)
}

fn put16(out: &mut Vec<u8>, value: u16) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn put32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_le_bytes());
}

/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), as zip requires.
fn crc32(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    let mut crc = 0xFFFF_FFFFu32;
    for byte in data {
        crc = TABLE[((crc ^ u32::from(*byte)) & 0xFF) as usize] ^ (crc >> 8);
    }
    !crc
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        // The CRC-32/ISO-HDLC check value for "123456789".
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn package_writes_folder_and_zip_and_replaces_a_previous_one() {
        let dir = tempfile::tempdir().unwrap();
        let binary = dir.path().join("built-handler");
        fs::write(&binary, b"\x7fELF not really").unwrap();
        let out = dir.path().join("app");
        let zip = package(&out, &binary).unwrap();
        assert_eq!(zip, dir.path().join("app.zip"));
        assert_eq!(
            fs::read_to_string(out.join("host.json")).unwrap(),
            HOST_JSON
        );
        for (name, text) in FUNCTION_FILES {
            assert_eq!(
                fs::read_to_string(out.join(name).join("function.json")).unwrap(),
                *text
            );
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(out.join("handler"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o755);
        }
        let first = fs::read(&zip).unwrap();
        assert_eq!(&first[..4], b"PK\x03\x04");
        // Again, over the previous package: same bytes.
        package(&out, &binary).unwrap();
        assert_eq!(fs::read(&zip).unwrap(), first);
    }

    #[test]
    fn package_refuses_foreign_folders_and_missing_binaries() {
        let dir = tempfile::tempdir().unwrap();
        let binary = dir.path().join("handler-bin");
        fs::write(&binary, b"x").unwrap();
        let out = dir.path().join("precious");
        fs::create_dir(&out).unwrap();
        fs::write(out.join("notes.txt"), b"keep me").unwrap();
        let err = package(&out, &binary).unwrap_err();
        assert!(matches!(err, PackageError::OutDirNotEmpty { .. }), "{err}");
        assert_eq!(fs::read(out.join("notes.txt")).unwrap(), b"keep me");
        let err = package(&dir.path().join("new"), &dir.path().join("nope")).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }
}
