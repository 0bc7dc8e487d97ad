//! Reading and deliberately damaging bootable images (for the QEMU tests).
//!
//! The plan sits at `abi::image::plan_offset(image_size)` from the start of the file, where
//! `image_size` comes from the arm64 Image header: the same rule the kernel uses, taken from
//! `abi` so that nothing is kept in sync by hand.

use std::fmt;

use abi::plan;

/// What can be wrong with an image handed to xtask.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageError {
    /// The file does not start with an arm64 Image header.
    NoImageHeader,
    /// The header's `image_size` puts the plan outside the file.
    PlanOutsideFile {
        /// Where the plan should start.
        offset: u64,
        /// The file's length.
        file_len: usize,
    },
    /// The bytes at the plan offset do not decode as a plan.
    BadPlan(plan::PlanError),
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoImageHeader => write!(f, "no arm64 Image header"),
            Self::PlanOutsideFile { offset, file_len } => write!(
                f,
                "plan offset {offset:#x} is outside the {file_len}-byte file"
            ),
            Self::BadPlan(error) => write!(f, "{error}"),
        }
    }
}

/// A way to damage a good image, to check that the kernel refuses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutation {
    /// Flip every bit of one byte in the middle of the plan's records (the checksum no
    /// longer matches).
    CorruptPlanByte,
    /// Set the plan's version field and recompute the checksum, so that the version
    /// check is the one that fires.
    PlanVersion(u16),
}

/// Where the plan starts in the image file.
pub fn plan_start(image: &[u8]) -> Result<usize, ImageError> {
    let (_text_offset, image_size) =
        abi::image::read_header(image).ok_or(ImageError::NoImageHeader)?;
    let offset = abi::image::plan_offset(image_size).ok_or(ImageError::PlanOutsideFile {
        offset: u64::MAX,
        file_len: image.len(),
    })?;
    let outside = ImageError::PlanOutsideFile {
        offset,
        file_len: image.len(),
    };
    let start = usize::try_from(offset).map_err(|_| outside.clone())?;
    if start
        .checked_add(plan::HEADER_LEN)
        .is_none_or(|end| end > image.len())
    {
        return Err(outside);
    }
    Ok(start)
}

/// Decodes the plan inside a (good) image.
pub fn decode_plan(image: &[u8]) -> Result<plan::Plan<'_>, ImageError> {
    let start = plan_start(image)?;
    plan::Plan::decode(&image[start..]).map_err(ImageError::BadPlan)
}

/// QEMU's `-m` value for an image: the board RAM its plan was laid out for, in MiB.
pub fn ram_megabytes(image: &[u8]) -> Result<u64, ImageError> {
    Ok(decode_plan(image)?.ram_size() / (1024 * 1024))
}

/// Applies `mutation` to a good image in place.
pub fn mutate(image: &mut [u8], mutation: Mutation) -> Result<(), ImageError> {
    let start = plan_start(image)?;
    let len = decode_plan(image)?.bytes().len();
    let plan_bytes = &mut image[start..start + len];
    match mutation {
        Mutation::CorruptPlanByte => {
            // A byte inside the records (or the header's tail for an empty plan): the
            // magic and version stay intact, so only the checksum can catch it.
            let at = if len > plan::HEADER_LEN {
                plan::HEADER_LEN + (len - plan::HEADER_LEN) / 2
            } else {
                plan::HEADER_LEN - 8
            };
            plan_bytes[at] ^= 0xff;
        }
        Mutation::PlanVersion(version) => {
            plan_bytes[8..10].copy_from_slice(&version.to_le_bytes());
            plan_bytes[16..20].fill(0);
            let checksum = plan::crc32(plan_bytes);
            plan_bytes[16..20].copy_from_slice(&checksum.to_le_bytes());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use abi::plan::{
        CellFlags, CellKind, CellRecord, FaultPolicy, PlanError, PlanParts, NO_SUPERVISOR,
    };

    /// A fake image: an arm64 header claiming `image_size` = 0x1234, then a real plan at
    /// the next 64 KiB boundary.
    fn image() -> Vec<u8> {
        let cell = CellRecord {
            name: CellRecord::name_field("ping").unwrap(),
            kind: CellKind::Native,
            priority: 1,
            vcpu_count: 1,
            fault_policy: FaultPolicy::Stop,
            restart_limit: 0,
            vcpu_cores: [0; plan::MAX_VCPUS_PER_CELL],
            first_region: 0,
            region_count: 0,
            image_offset: 0,
            image_size: 0,
            entry_ipa: 0x4000_0000,
            load_ipa: 0x4000_0000,
            flags: CellFlags::NONE,
            supervisor: NO_SUPERVISOR,
            controls: 0,
            budget_us: 0,
            period_us: 0,
            first_capability: 0,
            capability_count: 0,
        };
        let parts = PlanParts {
            cells: &[cell],
            regions: &[],
            irqs: &[],
            channels: &[],
            endpoints: &[],
            notifications: &[],
            capabilities: &[],
            core_count: 1,
            ram_base: 0x4000_0000,
            ram_size: 1 << 30,
            payload_len: 0x1000,
        };
        let mut bytes = vec![0u8; 0x1_0000 + 0x1000];
        bytes[16..24].copy_from_slice(&0x1234u64.to_le_bytes());
        bytes[56..60].copy_from_slice(&abi::image::ARM64_MAGIC);
        plan::encode(&parts, &mut bytes[0x1_0000..]).unwrap();
        bytes
    }

    #[test]
    fn finds_and_decodes_the_plan() {
        let image = image();
        assert_eq!(plan_start(&image), Ok(0x1_0000));
        assert_eq!(decode_plan(&image).unwrap().cell_count(), 1);
        assert_eq!(ram_megabytes(&image), Ok(1024));
    }

    #[test]
    fn refuses_files_that_are_not_images() {
        assert_eq!(plan_start(&[0u8; 64]), Err(ImageError::NoImageHeader));
        let mut short = image();
        short.truncate(0x1_0000 + 10);
        assert!(matches!(
            plan_start(&short),
            Err(ImageError::PlanOutsideFile { .. })
        ));
    }

    #[test]
    fn corrupting_one_byte_breaks_only_the_checksum() {
        let good = image();
        let mut bad = good.clone();
        mutate(&mut bad, Mutation::CorruptPlanByte).unwrap();
        let differing: Vec<usize> = (0..good.len()).filter(|&i| good[i] != bad[i]).collect();
        assert_eq!(differing.len(), 1);
        assert!(differing[0] >= 0x1_0000 + plan::HEADER_LEN);
        assert!(matches!(
            decode_plan(&bad),
            Err(ImageError::BadPlan(PlanError::ChecksumMismatch { .. }))
        ));
    }

    #[test]
    fn version_change_keeps_a_valid_checksum() {
        let mut image = image();
        mutate(&mut image, Mutation::PlanVersion(99)).unwrap();
        assert_eq!(
            decode_plan(&image).unwrap_err(),
            ImageError::BadPlan(PlanError::UnsupportedVersion { found: 99 })
        );
        // Putting the version back yields the original, checksum included.
        mutate_back(&mut image);
        assert_eq!(image, self::image());
    }

    fn mutate_back(image: &mut [u8]) {
        let start = plan_start(image).unwrap();
        image[start + 8..start + 10].copy_from_slice(&plan::VERSION.to_le_bytes());
        let len = plan::Counts {
            cells: 1,
            ..plan::Counts::default()
        }
        .encoded_len();
        let bytes = &mut image[start..start + len];
        bytes[16..20].fill(0);
        let checksum = plan::crc32(bytes);
        bytes[16..20].copy_from_slice(&checksum.to_le_bytes());
    }
}
