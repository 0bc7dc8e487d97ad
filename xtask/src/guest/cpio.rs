//! The "newc" cpio format (the one the Linux kernel unpacks as an initramfs): a writer, and
//! a reader used to check what the writer produces.
//!
//! Each entry is a 110-byte ASCII header (`070701` and thirteen 8-digit hexadecimal fields),
//! the NUL-terminated name padded with NULs to a multiple of 4 bytes (counting from the
//! header's start), then the data padded to a multiple of 4. The archive ends with the entry
//! `TRAILER!!!`. Invariants of [`Archive`]: inode numbers are unique and start at 1, every
//! field fits in 32 bits (checked when an entry is added), and the bytes produced are a
//! pure function of the entries added (all times are 0, owner root), so two builds of the
//! same tree are byte-identical.

use std::fmt;

/// The magic at the start of every newc header (no checksum variant).
const MAGIC: &[u8; 6] = b"070701";
/// The size of a newc header.
const HEADER_SIZE: usize = 110;
/// The name of the entry that ends an archive.
const TRAILER: &str = "TRAILER!!!";

/// File type bits of `mode`.
const TYPE_DIRECTORY: u32 = 0o040000;
const TYPE_REGULAR: u32 = 0o100000;
const TYPE_SYMLINK: u32 = 0o120000;
const TYPE_CHARACTER_DEVICE: u32 = 0o020000;
const TYPE_MASK: u32 = 0o170000;

/// What an entry is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A directory.
    Directory,
    /// A regular file with its contents.
    File(Vec<u8>),
    /// A symbolic link to the given target.
    Symlink(String),
    /// A character device node.
    CharacterDevice {
        /// Device major number.
        major: u32,
        /// Device minor number.
        minor: u32,
    },
}

/// One entry read back from an archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Path inside the archive, without a leading `/`.
    pub name: String,
    /// Permission bits (without the type bits).
    pub permissions: u32,
    /// What it is.
    pub kind: Kind,
}

/// Why an entry cannot be written or an archive cannot be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CpioError {
    /// A name is empty, absolute, contains a NUL, or is the trailer's name.
    BadName(String),
    /// A file is larger than the 32-bit size field allows.
    TooLarge {
        /// The entry.
        name: String,
        /// Its size in bytes.
        size: usize,
    },
    /// Reading: the archive ends in the middle of an entry or before the trailer.
    Truncated {
        /// Offset of the entry being read.
        offset: usize,
    },
    /// Reading: a header does not start with `070701` or a field is not hexadecimal.
    BadHeader {
        /// Offset of the header.
        offset: usize,
    },
    /// Reading: a type this reader does not know.
    UnknownType {
        /// The entry.
        name: String,
        /// Its mode.
        mode: u32,
    },
}

impl fmt::Display for CpioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadName(name) => write!(f, "cpio: bad entry name {name:?}"),
            Self::TooLarge { name, size } => {
                write!(f, "cpio: {name} is {size} bytes, more than 4 GiB")
            }
            Self::Truncated { offset } => write!(f, "cpio: archive truncated at offset {offset}"),
            Self::BadHeader { offset } => write!(f, "cpio: bad newc header at offset {offset}"),
            Self::UnknownType { name, mode } => {
                write!(f, "cpio: {name} has unknown type (mode {mode:o})")
            }
        }
    }
}

impl std::error::Error for CpioError {}

/// A newc archive being written.
#[derive(Debug, Default)]
pub struct Archive {
    bytes: Vec<u8>,
    next_inode: u32,
}

/// The header fields a writer chooses; the rest are zero (owner root, time 0, device 0).
struct Header<'a> {
    name: &'a str,
    inode: u32,
    mode: u32,
    links: u32,
    size: u32,
    device_major: u32,
    device_minor: u32,
}

impl Archive {
    /// An empty archive.
    pub fn new() -> Self {
        Self {
            bytes: Vec::new(),
            next_inode: 1,
        }
    }

    /// Adds a directory (`permissions` such as 0o755).
    pub fn directory(&mut self, name: &str, permissions: u32) -> Result<(), CpioError> {
        self.entry(name, TYPE_DIRECTORY | permissions, 2, b"", (0, 0))
    }

    /// Adds a regular file.
    pub fn file(&mut self, name: &str, permissions: u32, data: &[u8]) -> Result<(), CpioError> {
        self.entry(name, TYPE_REGULAR | permissions, 1, data, (0, 0))
    }

    /// Adds a symbolic link `name` -> `target`.
    pub fn symlink(&mut self, name: &str, target: &str) -> Result<(), CpioError> {
        self.entry(name, TYPE_SYMLINK | 0o777, 1, target.as_bytes(), (0, 0))
    }

    /// Adds a character device node.
    pub fn character_device(
        &mut self,
        name: &str,
        permissions: u32,
        major: u32,
        minor: u32,
    ) -> Result<(), CpioError> {
        self.entry(
            name,
            TYPE_CHARACTER_DEVICE | permissions,
            1,
            b"",
            (major, minor),
        )
    }

    /// Writes the trailer and returns the archive's bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.header(&Header {
            name: TRAILER,
            inode: 0,
            mode: 0,
            links: 1,
            size: 0,
            device_major: 0,
            device_minor: 0,
        });
        self.bytes
    }

    fn entry(
        &mut self,
        name: &str,
        mode: u32,
        links: u32,
        data: &[u8],
        (device_major, device_minor): (u32, u32),
    ) -> Result<(), CpioError> {
        if name.is_empty() || name.starts_with('/') || name.contains('\0') || name == TRAILER {
            return Err(CpioError::BadName(name.to_owned()));
        }
        let size = u32::try_from(data.len()).map_err(|_| CpioError::TooLarge {
            name: name.to_owned(),
            size: data.len(),
        })?;
        let inode = self.next_inode;
        self.next_inode += 1;
        self.header(&Header {
            name,
            inode,
            mode,
            links,
            size,
            device_major,
            device_minor,
        });
        self.bytes.extend_from_slice(data);
        self.pad();
        Ok(())
    }

    fn header(&mut self, header: &Header<'_>) {
        self.bytes.extend_from_slice(MAGIC);
        let name_size = header.name.len() as u32 + 1;
        let fields = [
            header.inode,
            header.mode,
            0, // uid
            0, // gid
            header.links,
            0, // mtime
            header.size,
            0, // devmajor (of the file system holding the file)
            0, // devminor
            header.device_major,
            header.device_minor,
            name_size,
            0, // check (only for the 070702 variant)
        ];
        for field in fields {
            self.bytes
                .extend_from_slice(format!("{field:08x}").as_bytes());
        }
        self.bytes.extend_from_slice(header.name.as_bytes());
        self.bytes.push(0);
        self.pad();
    }

    /// Pads with NULs to a multiple of 4 (entries start 4-aligned, so the archive's length
    /// is the right base).
    fn pad(&mut self) {
        while !self.bytes.len().is_multiple_of(4) {
            self.bytes.push(0);
        }
    }
}

/// Rounds `offset` up to a multiple of 4.
fn align4(offset: usize) -> usize {
    offset.div_ceil(4) * 4
}

/// Reads every entry of a newc archive up to its trailer.
pub fn read(bytes: &[u8]) -> Result<Vec<Entry>, CpioError> {
    let mut entries = Vec::new();
    let mut offset = 0;
    loop {
        let header = bytes
            .get(offset..offset + HEADER_SIZE)
            .ok_or(CpioError::Truncated { offset })?;
        if &header[..6] != MAGIC {
            return Err(CpioError::BadHeader { offset });
        }
        let field = |index: usize| -> Result<u32, CpioError> {
            let start = 6 + index * 8;
            std::str::from_utf8(&header[start..start + 8])
                .ok()
                .and_then(|text| u32::from_str_radix(text, 16).ok())
                .ok_or(CpioError::BadHeader { offset })
        };
        let mode = field(1)?;
        let size = field(6)? as usize;
        let (device_major, device_minor) = (field(9)?, field(10)?);
        let name_size = field(11)? as usize;
        let name_start = offset + HEADER_SIZE;
        let name_bytes = bytes
            .get(name_start..name_start + name_size)
            .ok_or(CpioError::Truncated { offset })?;
        let Some((&0, name_bytes)) = name_bytes.split_last() else {
            return Err(CpioError::BadHeader { offset });
        };
        let name = String::from_utf8_lossy(name_bytes).into_owned();
        let data_start = align4(name_start + name_size);
        let data = bytes
            .get(data_start..data_start + size)
            .ok_or(CpioError::Truncated { offset })?;
        if name == TRAILER {
            return Ok(entries);
        }
        let kind = match mode & TYPE_MASK {
            TYPE_DIRECTORY => Kind::Directory,
            TYPE_REGULAR => Kind::File(data.to_vec()),
            TYPE_SYMLINK => Kind::Symlink(String::from_utf8_lossy(data).into_owned()),
            TYPE_CHARACTER_DEVICE => Kind::CharacterDevice {
                major: device_major,
                minor: device_minor,
            },
            _ => return Err(CpioError::UnknownType { name, mode }),
        };
        entries.push(Entry {
            name,
            permissions: mode & !TYPE_MASK,
            kind,
        });
        offset = align4(data_start + size);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_file_matches_the_newc_layout_byte_for_byte() {
        let mut archive = Archive::new();
        archive.file("init", 0o755, b"hello").unwrap();
        let bytes = archive.finish();
        let expected_header = concat!(
            "070701", "00000001", // inode
            "000081ed", // mode: regular file, 0755
            "00000000", // uid
            "00000000", // gid
            "00000001", // nlink
            "00000000", // mtime
            "00000005", // filesize
            "00000000", "00000000", "00000000", "00000000",
            "00000005", // namesize: "init" and NUL
            "00000000", // check
        );
        assert_eq!(&bytes[..HEADER_SIZE], expected_header.as_bytes());
        // 110 + 5 = 115, padded to 116; then 5 bytes of data padded to 8.
        assert_eq!(&bytes[110..116], b"init\0\0");
        assert_eq!(&bytes[116..124], b"hello\0\0\0");
        // The trailer: header, "TRAILER!!!\0" (110 + 11 = 121, padded to 124).
        let trailer = &bytes[124..];
        assert_eq!(trailer.len(), 124);
        assert_eq!(&trailer[..6], MAGIC);
        assert_eq!(&trailer[94..102], b"0000000b");
        assert_eq!(&trailer[110..121], b"TRAILER!!!\0");
        assert!(trailer[121..].iter().all(|&b| b == 0));
        assert_eq!(bytes.len() % 4, 0);
    }

    #[test]
    fn every_kind_round_trips_and_is_aligned() {
        let mut archive = Archive::new();
        archive.directory("bin", 0o755).unwrap();
        archive.file("bin/busybox", 0o755, &[7u8; 1001]).unwrap();
        archive.symlink("bin/sh", "busybox").unwrap();
        archive.directory("dev", 0o755).unwrap();
        archive
            .character_device("dev/console", 0o600, 5, 1)
            .unwrap();
        archive.file("empty", 0o644, b"").unwrap();
        let bytes = archive.finish();
        assert_eq!(bytes.len() % 4, 0);
        let entries = read(&bytes).unwrap();
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "bin",
                "bin/busybox",
                "bin/sh",
                "dev",
                "dev/console",
                "empty"
            ]
        );
        assert_eq!(entries[1].kind, Kind::File(vec![7u8; 1001]));
        assert_eq!(entries[1].permissions, 0o755);
        assert_eq!(entries[2].kind, Kind::Symlink("busybox".into()));
        assert_eq!(
            entries[4].kind,
            Kind::CharacterDevice { major: 5, minor: 1 }
        );
        assert_eq!(entries[4].permissions, 0o600);
        assert_eq!(entries[5].kind, Kind::File(Vec::new()));
        // Every header starts 4-aligned: find each magic where the reader found an entry.
        let mut offset = 0;
        for entry in &entries {
            assert_eq!(&bytes[offset..offset + 6], MAGIC, "{}", entry.name);
            let size = match &entry.kind {
                Kind::File(data) => data.len(),
                Kind::Symlink(target) => target.len(),
                _ => 0,
            };
            offset = align4(align4(offset + HEADER_SIZE + entry.name.len() + 1) + size);
        }
        assert_eq!(&bytes[offset + HEADER_SIZE..offset + 120], b"TRAILER!!!");
    }

    #[test]
    fn bad_names_are_refused_and_truncation_is_detected() {
        let mut archive = Archive::new();
        assert!(matches!(
            archive.file("/abs", 0o644, b""),
            Err(CpioError::BadName(_))
        ));
        assert!(matches!(
            archive.file("", 0o644, b""),
            Err(CpioError::BadName(_))
        ));
        assert!(matches!(
            archive.file(TRAILER, 0o644, b""),
            Err(CpioError::BadName(_))
        ));
        archive.file("a", 0o644, b"abc").unwrap();
        let bytes = archive.finish();
        // Without the trailer the archive is truncated.
        assert!(matches!(
            read(&bytes[..bytes.len() - 124]),
            Err(CpioError::Truncated { .. })
        ));
        let mut damaged = bytes.clone();
        damaged[0] = b'X';
        assert_eq!(read(&damaged), Err(CpioError::BadHeader { offset: 0 }));
    }

    #[test]
    fn same_entries_give_identical_bytes() {
        let build = || {
            let mut archive = Archive::new();
            archive.directory("x", 0o755).unwrap();
            archive.file("x/y", 0o644, b"data").unwrap();
            archive.finish()
        };
        assert_eq!(build(), build());
    }
}
