//! What a type supports and what an image needs of it: ENA and NVMe support, boot modes.
//! Part of [`crate::model`], which re-exports every item.

use serde::{Deserialize, Serialize};

/// `unsupported | supported | required`, as DescribeInstanceTypes reports ENA and NVMe.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Support {
    /// Not reported.
    #[default]
    Unknown,
    /// `unsupported`.
    Unsupported,
    /// `supported`.
    Supported,
    /// `required`.
    Required,
}

impl Support {
    /// Map the API's string; anything else is `Unknown`.
    pub fn from_api(s: &str) -> Self {
        match s {
            "unsupported" => Self::Unsupported,
            "supported" => Self::Supported,
            "required" => Self::Required,
            _ => Self::Unknown,
        }
    }

    /// `supported` or `required`.
    pub fn is_available(self) -> bool {
        matches!(self, Self::Supported | Self::Required)
    }
}

/// A boot mode: `legacy-bios` or `uefi`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BootMode {
    /// `legacy-bios`.
    LegacyBios,
    /// `uefi`.
    Uefi,
}

impl BootMode {
    /// Map the API's string (`legacy-bios`, `uefi`); `None` for anything else.
    pub fn from_api(s: &str) -> Option<Self> {
        match s {
            "legacy-bios" => Some(Self::LegacyBios),
            "uefi" => Some(Self::Uefi),
            _ => None,
        }
    }
}

/// A set of boot modes, as a type's `SupportedBootModes` lists them. Empty when not reported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BootModes {
    /// `legacy-bios` is listed.
    pub legacy_bios: bool,
    /// `uefi` is listed.
    pub uefi: bool,
}

impl BootModes {
    /// True when `mode` is listed.
    pub fn has(self, mode: BootMode) -> bool {
        match mode {
            BootMode::LegacyBios => self.legacy_bios,
            BootMode::Uefi => self.uefi,
        }
    }

    /// Add `mode`.
    pub fn add(&mut self, mode: BootMode) {
        match mode {
            BootMode::LegacyBios => self.legacy_bios = true,
            BootMode::Uefi => self.uefi = true,
        }
    }

    /// True when every mode of `other` is listed here.
    pub fn covers(self, other: BootModes) -> bool {
        (!other.legacy_bios || self.legacy_bios) && (!other.uefi || self.uefi)
    }

    /// True when nothing is listed (not reported).
    pub fn is_empty(self) -> bool {
        !self.legacy_bios && !self.uefi
    }
}

/// The boot mode an AMI specifies (`Instance.BootMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AmiBootMode {
    /// `legacy-bios`: the OS boots only on Legacy BIOS.
    LegacyBios,
    /// `uefi`: the OS boots only on UEFI.
    Uefi,
    /// `uefi-preferred`: either, UEFI where the type supports it.
    UefiPreferred,
}

impl AmiBootMode {
    /// Map the API's string; `None` for anything else.
    pub fn from_api(s: &str) -> Option<Self> {
        match s {
            "legacy-bios" => Some(Self::LegacyBios),
            "uefi" => Some(Self::Uefi),
            "uefi-preferred" => Some(Self::UefiPreferred),
            _ => None,
        }
    }
}

/// What an instance's image needs of a type, as `DescribeInstances` shows it for free (no
/// DescribeImages call): the AMI's boot mode, the mode the instance booted in, and whether
/// ENA is enabled. Each `None` when not reported (moto reports none of them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ImageNeeds {
    /// `Instance.BootMode`, the boot mode the AMI specifies. `None` when it specifies none.
    pub ami_boot_mode: Option<AmiBootMode>,
    /// `Instance.CurrentInstanceBootMode`: the mode the instance booted in.
    pub current_boot_mode: Option<BootMode>,
    /// `Instance.EnaSupport`: enhanced networking with ENA is enabled (from the AMI).
    pub ena_enabled: Option<bool>,
}
