//! The bench's Python keeps one copy of a core rule: `bench/replay.py`'s `compatible()`, with
//! which it builds the spot replacements of its `steady` region (a region the planner must
//! find nothing to do in). This checks the copy against `spotswap_core::compat::compatible`
//! on every pair of the replay's instance types, so the two cannot drift apart unseen.
//! Needs `python3` (standard library only), as `make bench` does.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use spotswap_core::candidates::{compatible, Original};
use spotswap_core::model::{BootMode, BootModes, InstanceTypeSpec, Support};
use spotswap_core::policy::TypeGlobs;

#[test]
fn replay_compatible_is_the_planners_rule() {
    let replay = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/replay.py");
    let out = Command::new("python3")
        .arg(&replay)
        .arg("--dump-compatible")
        .output()
        .expect("python3 runs bench/replay.py");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let dump: Value = serde_json::from_slice(&out.stdout).expect("JSON");

    let types: Vec<(String, InstanceTypeSpec)> = dump["types"]
        .as_array()
        .expect("types")
        .iter()
        .map(|t| {
            let arch = t["arch"].as_str().expect("arch").to_owned();
            let mut boot_modes = BootModes::default();
            for m in t["boot_modes"].as_array().expect("boot modes") {
                boot_modes.add(BootMode::from_api(m.as_str().expect("mode")).expect("known mode"));
            }
            let spec = InstanceTypeSpec {
                name: t["name"].as_str().expect("name").to_owned(),
                architectures: vec![arch.clone()],
                vcpus: t["vcpus"].as_u64().expect("vcpus") as u32,
                memory_mib: t["memory_mib"].as_u64().expect("memory"),
                instance_store_gb: t["store_gb"].as_u64().expect("store"),
                burstable: t["burstable"].as_bool().expect("burstable"),
                boot_modes,
                // As the replay serves every type: ENA and NVMe required, no GPU, no EBS
                // bandwidth figures.
                ena: Support::Required,
                nvme: Support::Required,
                ..InstanceTypeSpec::default()
            };
            (arch, spec)
        })
        .collect();
    // Both architectures and a type with instance store, or the check would prove little.
    let archs: BTreeSet<&str> = types.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(archs, BTreeSet::from(["arm64", "x86_64"]));
    assert!(types.iter().any(|(_, t)| t.instance_store_gb > 0));
    assert!(types.iter().any(|(_, t)| t.burstable));

    let python: BTreeSet<(String, String)> = dump["compatible"]
        .as_array()
        .expect("compatible")
        .iter()
        .map(|p| {
            let name = |i: usize| p[i].as_str().expect("type name").to_owned();
            (name(0), name(1))
        })
        .collect();
    let core: BTreeSet<(String, String)> = types
        .iter()
        .flat_map(|(arch, orig)| {
            types
                .iter()
                .filter(|(_, cand)| {
                    compatible(&Original::new(orig, arch), cand, &TypeGlobs::default()).is_ok()
                })
                .map(|(_, cand)| (orig.name.clone(), cand.name.clone()))
        })
        .collect();
    let only_python: Vec<_> = python.difference(&core).collect();
    let only_core: Vec<_> = core.difference(&python).collect();
    assert!(
        only_python.is_empty() && only_core.is_empty(),
        "replay.py compatible() disagrees with the planner: only in replay.py {only_python:?}, \
         only in the core {only_core:?}"
    );
}
