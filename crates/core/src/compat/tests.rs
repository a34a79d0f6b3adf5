//! One test per rule, each failing if its rule is removed, and properties over random pairs.

use proptest::prelude::*;

use super::*;
use crate::model::BootModes;

const BOTH: BootModes = BootModes {
    legacy_bios: true,
    uefi: true,
};
const LEGACY: BootModes = BootModes {
    legacy_bios: true,
    uefi: false,
};
const UEFI: BootModes = BootModes {
    legacy_bios: false,
    uefi: true,
};

/// An m5.large as DescribeInstanceTypes reports it.
fn m5_large() -> InstanceTypeSpec {
    InstanceTypeSpec {
        name: "m5.large".into(),
        architectures: vec!["x86_64".into()],
        vcpus: 2,
        memory_mib: 8192,
        gpus: 0,
        instance_store_gb: 0,
        gpu_model: None,
        gpu_memory_mib: 0,
        ebs_baseline_mbps: 650,
        ebs_maximum_mbps: 4750,
        ena: Support::Required,
        nvme: Support::Required,
        boot_modes: BOTH,
        burstable: false,
    }
}

/// A candidate that meets an m5.large in every rule: an m6i.large.
fn m6i_large() -> InstanceTypeSpec {
    InstanceTypeSpec {
        name: "m6i.large".into(),
        ebs_maximum_mbps: 10_000,
        ..m5_large()
    }
}

fn none() -> TypeGlobs {
    TypeGlobs::default()
}

fn check(orig: &InstanceTypeSpec, cand: &InstanceTypeSpec) -> Result<(), Incompatibility> {
    compatible(&Original::new(orig, "x86_64"), cand, &none())
}

fn with_image(
    orig: &InstanceTypeSpec,
    image: ImageNeeds,
    cand: &InstanceTypeSpec,
) -> Result<(), Incompatibility> {
    compatible(&Original::new(orig, "x86_64").with_image(image), cand, &none())
}

#[test]
fn a_candidate_meeting_every_rule_is_compatible() {
    assert_eq!(check(&m5_large(), &m6i_large()), Ok(()));
    assert_eq!(check(&m5_large(), &m5_large()), Ok(()));
}

#[test]
fn architecture_must_be_the_one_the_original_runs() {
    let cand = InstanceTypeSpec {
        architectures: vec!["arm64".into()],
        ..m6i_large()
    };
    assert_eq!(
        check(&m5_large(), &cand),
        Err(Incompatibility::ArchitectureMismatch)
    );
    // the architecture the original runs, not its type's first
    let arm = compatible(&Original::new(&m5_large(), "arm64"), &m6i_large(), &none());
    assert_eq!(arm, Err(Incompatibility::ArchitectureMismatch));
}

#[test]
fn vcpus_and_memory_at_least_the_originals() {
    let fewer = InstanceTypeSpec {
        vcpus: 1,
        ..m6i_large()
    };
    let less = InstanceTypeSpec {
        memory_mib: 4096,
        ..m6i_large()
    };
    assert_eq!(check(&m5_large(), &fewer), Err(Incompatibility::TooFewVcpus));
    assert_eq!(check(&m5_large(), &less), Err(Incompatibility::TooLittleMemory));
}

#[test]
fn gpus_same_manufacturer_and_model_with_count_and_memory_at_least() {
    let g4dn = InstanceTypeSpec {
        name: "g4dn.xlarge".into(),
        vcpus: 4,
        memory_mib: 16_384,
        gpus: 1,
        gpu_model: Some("NVIDIA T4".into()),
        gpu_memory_mib: 16_384,
        ..m5_large()
    };
    let bigger = InstanceTypeSpec {
        name: "g4dn.12xlarge".into(),
        gpus: 4,
        gpu_memory_mib: 65_536,
        ..g4dn.clone()
    };
    assert_eq!(check(&g4dn, &bigger), Ok(()));
    let other_model = InstanceTypeSpec {
        gpu_model: Some("NVIDIA A10G".into()),
        gpu_memory_mib: 24_576,
        ..g4dn.clone()
    };
    assert_eq!(check(&g4dn, &other_model), Err(Incompatibility::GpuMismatch));
    let no_gpu = InstanceTypeSpec {
        gpus: 0,
        gpu_model: None,
        gpu_memory_mib: 0,
        ..g4dn.clone()
    };
    assert_eq!(check(&g4dn, &no_gpu), Err(Incompatibility::GpuMismatch));
    let less_memory = InstanceTypeSpec {
        gpus: 2,
        gpu_memory_mib: 8192,
        ..g4dn.clone()
    };
    assert_eq!(check(&g4dn, &less_memory), Err(Incompatibility::GpuMismatch));
    // an original without GPUs asks nothing of them
    assert_eq!(check(&m5_large(), &g4dn), Ok(()));
}

#[test]
fn instance_store_at_least_the_originals_when_it_has_some() {
    let m5d = InstanceTypeSpec {
        instance_store_gb: 75,
        ..m5_large()
    };
    let smaller = InstanceTypeSpec {
        instance_store_gb: 50,
        ..m6i_large()
    };
    assert_eq!(check(&m5d, &smaller), Err(Incompatibility::InstanceStoreTooSmall));
    assert_eq!(
        check(&m5d, &m6i_large()),
        Err(Incompatibility::InstanceStoreTooSmall)
    );
    let larger = InstanceTypeSpec {
        instance_store_gb: 118,
        ..m6i_large()
    };
    assert_eq!(check(&m5d, &larger), Ok(()));
    assert_eq!(check(&m5_large(), &larger), Ok(()));
}

#[test]
fn ena_when_the_original_type_requires_it_or_its_image_has_it() {
    let no_ena = InstanceTypeSpec {
        ena: Support::Unsupported,
        ..m6i_large()
    };
    assert_eq!(check(&m5_large(), &no_ena), Err(Incompatibility::EnaRequired));
    // not reported on the candidate: offers nothing
    let unknown = InstanceTypeSpec {
        ena: Support::Unknown,
        ..m6i_large()
    };
    assert_eq!(check(&m5_large(), &unknown), Err(Incompatibility::EnaRequired));
    // a type where ENA is optional: its image decides
    let optional = InstanceTypeSpec {
        ena: Support::Supported,
        ..m5_large()
    };
    assert_eq!(check(&optional, &no_ena), Ok(()));
    let enabled = ImageNeeds {
        ena_enabled: Some(true),
        ..ImageNeeds::default()
    };
    assert_eq!(
        with_image(&optional, enabled, &no_ena),
        Err(Incompatibility::EnaRequired)
    );
}

#[test]
fn a_type_requiring_ena_is_refused_for_an_image_without_it() {
    let optional = InstanceTypeSpec {
        ena: Support::Supported,
        ..m5_large()
    };
    let disabled = ImageNeeds {
        ena_enabled: Some(false),
        ..ImageNeeds::default()
    };
    assert_eq!(
        with_image(&optional, disabled, &m6i_large()),
        Err(Incompatibility::EnaNotEnabled)
    );
    let supports = InstanceTypeSpec {
        ena: Support::Supported,
        ..m6i_large()
    };
    assert_eq!(with_image(&optional, disabled, &supports), Ok(()));
    // unknown image: no refusal
    assert_eq!(check(&optional, &m6i_large()), Ok(()));
}

#[test]
fn nvme_when_the_original_type_requires_it() {
    let xen = InstanceTypeSpec {
        nvme: Support::Unsupported,
        ..m6i_large()
    };
    assert_eq!(check(&m5_large(), &xen), Err(Incompatibility::NvmeRequired));
    // an original that does not require NVMe asks nothing of it
    let m4 = InstanceTypeSpec {
        nvme: Support::Unsupported,
        ena: Support::Supported,
        boot_modes: LEGACY,
        ebs_baseline_mbps: 450,
        ebs_maximum_mbps: 450,
        ..m5_large()
    };
    assert_eq!(check(&m4, &m6i_large()), Ok(()));
}

#[test]
fn boot_mode_the_ami_specifies() {
    let uefi_only = InstanceTypeSpec {
        boot_modes: UEFI,
        ..m6i_large()
    };
    let legacy_only = InstanceTypeSpec {
        boot_modes: LEGACY,
        ..m6i_large()
    };
    let unknown = InstanceTypeSpec {
        boot_modes: BootModes::default(),
        ..m6i_large()
    };
    let ami = |m| ImageNeeds {
        ami_boot_mode: Some(m),
        ..ImageNeeds::default()
    };
    let orig = m5_large();
    let bad = Err(Incompatibility::BootModeUnsupported);
    assert_eq!(with_image(&orig, ami(AmiBootMode::LegacyBios), &uefi_only), bad);
    assert_eq!(
        with_image(&orig, ami(AmiBootMode::LegacyBios), &legacy_only),
        Ok(())
    );
    assert_eq!(with_image(&orig, ami(AmiBootMode::Uefi), &legacy_only), bad);
    assert_eq!(with_image(&orig, ami(AmiBootMode::Uefi), &uefi_only), Ok(()));
    assert_eq!(
        with_image(&orig, ami(AmiBootMode::UefiPreferred), &uefi_only),
        Ok(())
    );
    assert_eq!(
        with_image(&orig, ami(AmiBootMode::UefiPreferred), &legacy_only),
        Ok(())
    );
    assert_eq!(with_image(&orig, ami(AmiBootMode::UefiPreferred), &unknown), bad);
}

#[test]
fn boot_mode_without_an_ami_mode_is_the_one_the_instance_booted_in() {
    let booted = |m| ImageNeeds {
        current_boot_mode: Some(m),
        ..ImageNeeds::default()
    };
    let legacy_only = InstanceTypeSpec {
        boot_modes: LEGACY,
        ..m6i_large()
    };
    let orig = m5_large();
    assert_eq!(
        with_image(&orig, booted(BootMode::Uefi), &legacy_only),
        Err(Incompatibility::BootModeUnsupported)
    );
    assert_eq!(
        with_image(&orig, booted(BootMode::LegacyBios), &legacy_only),
        Ok(())
    );
}

#[test]
fn boot_mode_unknown_needs_every_mode_of_the_original_type() {
    let legacy_only = InstanceTypeSpec {
        boot_modes: LEGACY,
        ..m6i_large()
    };
    assert_eq!(
        check(&m5_large(), &legacy_only),
        Err(Incompatibility::BootModeUnsupported)
    );
    let m4 = InstanceTypeSpec {
        boot_modes: LEGACY,
        ..m5_large()
    };
    assert_eq!(check(&m4, &m6i_large()), Ok(()));
}

#[test]
fn burstable_replaces_only_burstable_unless_a_glob_allows_it() {
    let t3 = InstanceTypeSpec {
        name: "t3.large".into(),
        burstable: true,
        ebs_maximum_mbps: 4750,
        ..m5_large()
    };
    assert_eq!(check(&m5_large(), &t3), Err(Incompatibility::BurstableNotAllowed));
    let orig = m5_large();
    let allowed = TypeGlobs::parse("t", "m5.*,t3.*").unwrap();
    assert_eq!(compatible(&Original::new(&orig, "x86_64"), &t3, &allowed), Ok(()));
    let others = TypeGlobs::parse("t", "m5.*,t3a.*").unwrap();
    assert_eq!(
        compatible(&Original::new(&orig, "x86_64"), &t3, &others),
        Err(Incompatibility::BurstableNotAllowed)
    );
    // a burstable original may take a burstable type, and a full-performance one
    let t3_medium = InstanceTypeSpec {
        name: "t3.medium".into(),
        memory_mib: 4096,
        ..t3.clone()
    };
    assert_eq!(check(&t3_medium, &t3), Ok(()));
    assert_eq!(check(&t3_medium, &m6i_large()), Ok(()));
}

#[test]
fn ebs_baseline_and_maximum_bandwidth_at_least_the_originals() {
    let low_max = InstanceTypeSpec {
        ebs_maximum_mbps: 2880,
        ..m6i_large()
    };
    let low_base = InstanceTypeSpec {
        ebs_baseline_mbps: 312,
        ..m6i_large()
    };
    let not_optimized = InstanceTypeSpec {
        ebs_baseline_mbps: 0,
        ebs_maximum_mbps: 0,
        ..m6i_large()
    };
    for cand in [low_max, low_base, not_optimized] {
        assert_eq!(
            check(&m5_large(), &cand),
            Err(Incompatibility::EbsBandwidthTooLow),
            "{cand:?}"
        );
    }
}

#[test]
fn codes_are_unique_and_pascal_case() {
    let codes: std::collections::BTreeSet<&str> = Incompatibility::ALL.iter().map(|i| i.code()).collect();
    assert_eq!(codes.len(), Incompatibility::ALL.len());
    for c in codes {
        assert!(c.chars().next().is_some_and(|ch| ch.is_ascii_uppercase()));
        assert!(c.chars().all(|ch| ch.is_ascii_alphanumeric()));
    }
}

// ---------------------------------------------------------------- properties

fn support() -> impl Strategy<Value = Support> {
    prop_oneof![
        Just(Support::Unknown),
        Just(Support::Unsupported),
        Just(Support::Supported),
        Just(Support::Required),
    ]
}

fn modes() -> impl Strategy<Value = BootModes> {
    (any::<bool>(), any::<bool>()).prop_map(|(legacy_bios, uefi)| BootModes { legacy_bios, uefi })
}

fn spec() -> impl Strategy<Value = InstanceTypeSpec> {
    (
        (
            prop::sample::select(vec!["x86_64", "arm64"]),
            1u32..5,
            1u64..5,
            0u32..3,
            prop::sample::select(vec!["NVIDIA T4", "NVIDIA A10G"]),
            0u64..3,
            0u64..3,
        ),
        (0u32..3, 0u32..3, support(), support(), modes(), any::<bool>()),
    )
        .prop_map(
            |((arch, vcpus, mem, gpus, model, gpu_mem, store), (base, max, ena, nvme, boot, burst))| {
                InstanceTypeSpec {
                    name: if burst { "t3.large" } else { "m5.large" }.into(),
                    architectures: vec![arch.into()],
                    vcpus,
                    memory_mib: mem * 1024,
                    gpus,
                    gpu_model: (gpus > 0).then(|| model.into()),
                    gpu_memory_mib: if gpus > 0 { gpu_mem * 8192 } else { 0 },
                    instance_store_gb: store * 50,
                    ebs_baseline_mbps: base * 300,
                    ebs_maximum_mbps: max * 2000,
                    ena,
                    nvme,
                    boot_modes: boot,
                    burstable: burst,
                }
            },
        )
}

fn image() -> impl Strategy<Value = ImageNeeds> {
    let ami = prop_oneof![
        Just(None),
        Just(Some(AmiBootMode::LegacyBios)),
        Just(Some(AmiBootMode::Uefi)),
        Just(Some(AmiBootMode::UefiPreferred)),
    ];
    let current = prop_oneof![
        Just(None),
        Just(Some(BootMode::LegacyBios)),
        Just(Some(BootMode::Uefi))
    ];
    let ena = prop_oneof![Just(None), Just(Some(true)), Just(Some(false))];
    (ami, current, ena).prop_map(|(ami_boot_mode, current_boot_mode, ena_enabled)| ImageNeeds {
        ami_boot_mode,
        current_boot_mode,
        ena_enabled,
    })
}

/// Each rule restated on its own, in the documented order: whether `cand` breaks it.
fn broken(
    orig: &InstanceTypeSpec,
    arch: &str,
    image: ImageNeeds,
    cand: &InstanceTypeSpec,
    glob: bool,
) -> Vec<Incompatibility> {
    use Incompatibility as I;
    let boot_ok = match (image.ami_boot_mode, image.current_boot_mode) {
        (Some(AmiBootMode::LegacyBios), _) => cand.boot_modes.legacy_bios,
        (Some(AmiBootMode::Uefi), _) => cand.boot_modes.uefi,
        (Some(AmiBootMode::UefiPreferred), _) => cand.boot_modes.legacy_bios || cand.boot_modes.uefi,
        (None, Some(BootMode::LegacyBios)) => cand.boot_modes.legacy_bios,
        (None, Some(BootMode::Uefi)) => cand.boot_modes.uefi,
        (None, None) => {
            (cand.boot_modes.legacy_bios || !orig.boot_modes.legacy_bios)
                && (cand.boot_modes.uefi || !orig.boot_modes.uefi)
        }
    };
    let ena_needed = orig.ena == Support::Required || image.ena_enabled == Some(true);
    let ena_offered = matches!(cand.ena, Support::Supported | Support::Required);
    let nvme_offered = matches!(cand.nvme, Support::Supported | Support::Required);
    [
        (
            I::ArchitectureMismatch,
            !cand.architectures.iter().any(|a| a == arch),
        ),
        (I::TooFewVcpus, cand.vcpus < orig.vcpus),
        (I::TooLittleMemory, cand.memory_mib < orig.memory_mib),
        (
            I::GpuMismatch,
            orig.gpus > 0
                && (cand.gpus < orig.gpus
                    || cand.gpu_model != orig.gpu_model
                    || cand.gpu_memory_mib < orig.gpu_memory_mib),
        ),
        (
            I::InstanceStoreTooSmall,
            orig.instance_store_gb > 0 && cand.instance_store_gb < orig.instance_store_gb,
        ),
        (I::EnaRequired, ena_needed && !ena_offered),
        (
            I::EnaNotEnabled,
            cand.ena == Support::Required && image.ena_enabled == Some(false),
        ),
        (I::NvmeRequired, orig.nvme == Support::Required && !nvme_offered),
        (I::BootModeUnsupported, !boot_ok),
        (I::BurstableNotAllowed, cand.burstable && !orig.burstable && !glob),
        (
            I::EbsBandwidthTooLow,
            cand.ebs_baseline_mbps < orig.ebs_baseline_mbps || cand.ebs_maximum_mbps < orig.ebs_maximum_mbps,
        ),
    ]
    .into_iter()
    .filter(|(_, b)| *b)
    .map(|(i, _)| i)
    .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    /// A candidate is compatible exactly when it breaks no rule, and otherwise the answer is
    /// the first rule it breaks: removing or weakening any rule makes this fail.
    #[test]
    fn compatible_iff_no_rule_is_broken(
        orig in spec(),
        cand in spec(),
        image in image(),
        arch in prop::sample::select(vec!["x86_64", "arm64"]),
        glob in any::<bool>(),
    ) {
        let allowed = if glob { TypeGlobs::parse("t", "t3.*").unwrap() } else { none() };
        let got = compatible(&Original::new(&orig, arch).with_image(image), &cand, &allowed);
        let want = broken(&orig, arch, image, &cand, glob && cand.name.starts_with("t3."));
        prop_assert_eq!(got, want.first().map_or(Ok(()), |i| Err(*i)));
    }

    /// More of everything never hurts: a type stays compatible with an instance of itself
    /// given more vCPUs, memory, instance store and EBS bandwidth.
    #[test]
    fn more_capacity_keeps_a_candidate_compatible((orig, image) in booted(), more in 0u32..4) {
        let arch = orig.architectures[0].clone();
        let o = Original::new(&orig, &arch).with_image(image);
        let bigger = InstanceTypeSpec {
            name: "m5.xlarge".into(),
            vcpus: orig.vcpus + more,
            memory_mib: orig.memory_mib + u64::from(more) * 1024,
            instance_store_gb: orig.instance_store_gb + u64::from(more) * 50,
            ebs_baseline_mbps: orig.ebs_baseline_mbps + more * 100,
            ebs_maximum_mbps: orig.ebs_maximum_mbps + more * 100,
            gpus: orig.gpus + if orig.gpus > 0 { more } else { 0 },
            gpu_memory_mib: orig.gpu_memory_mib + u64::from(more) * 8192,
            ..orig.clone()
        };
        prop_assert_eq!(compatible(&o, &bigger, &none()), Ok(()));
    }

    /// A type can always replace an instance of its own type whose image runs on it.
    #[test]
    fn a_type_replaces_itself((orig, image) in booted()) {
        let arch = orig.architectures[0].clone();
        prop_assert_eq!(compatible(&Original::new(&orig, &arch).with_image(image), &orig, &none()), Ok(()));
    }
}

/// A type and an image that runs on it: a boot mode the type has, ENA as the type allows.
fn booted() -> impl Strategy<Value = (InstanceTypeSpec, ImageNeeds)> {
    (spec(), image()).prop_map(|(orig, mut image)| {
        let has = |m: AmiBootMode| match m {
            AmiBootMode::LegacyBios => orig.boot_modes.legacy_bios,
            AmiBootMode::Uefi => orig.boot_modes.uefi,
            AmiBootMode::UefiPreferred => !orig.boot_modes.is_empty(),
        };
        image.ami_boot_mode = image.ami_boot_mode.filter(|m| has(*m));
        image.current_boot_mode = image.current_boot_mode.filter(|m| orig.boot_modes.has(*m));
        image.ena_enabled = match (orig.ena, image.ena_enabled) {
            (Support::Required, Some(false)) => Some(true),
            (Support::Unsupported | Support::Unknown, Some(true)) => Some(false),
            (_, e) => e,
        };
        (orig, image)
    })
}
