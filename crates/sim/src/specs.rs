//! A built-in table of common instance types: vCPUs, memory and architecture, as
//! `DescribeInstanceTypes` reports them. A pool of another type gives `vcpus`, `memory_mib`
//! (and optionally `arch`, `gpus`, `instance_store_gb`) as extra keys in the scenario.

use spotswap_core::InstanceTypeSpec;

/// (name, vCPUs, memory MiB, architecture, instance store GB).
const TABLE: &[(&str, u32, u64, &str, u64)] = &[
    ("m3.medium", 1, 3840, "x86_64", 4),
    ("m4.large", 2, 8192, "x86_64", 0),
    ("m4.xlarge", 4, 16384, "x86_64", 0),
    ("m5.large", 2, 8192, "x86_64", 0),
    ("m5.xlarge", 4, 16384, "x86_64", 0),
    ("m5.2xlarge", 8, 32768, "x86_64", 0),
    ("m5a.large", 2, 8192, "x86_64", 0),
    ("m5a.xlarge", 4, 16384, "x86_64", 0),
    ("m5n.large", 2, 8192, "x86_64", 0),
    ("m5d.large", 2, 8192, "x86_64", 75),
    ("m6i.large", 2, 8192, "x86_64", 0),
    ("m6i.xlarge", 4, 16384, "x86_64", 0),
    ("m6a.large", 2, 8192, "x86_64", 0),
    ("m7i.large", 2, 8192, "x86_64", 0),
    ("m6g.large", 2, 8192, "arm64", 0),
    ("m7g.large", 2, 8192, "arm64", 0),
    ("c5.large", 2, 4096, "x86_64", 0),
    ("c5.xlarge", 4, 8192, "x86_64", 0),
    ("c6i.large", 2, 4096, "x86_64", 0),
    ("c6g.large", 2, 4096, "arm64", 0),
    ("r5.large", 2, 16384, "x86_64", 0),
    ("r6i.large", 2, 16384, "x86_64", 0),
    ("t3.medium", 2, 4096, "x86_64", 0),
    ("t3.large", 2, 8192, "x86_64", 0),
];

/// The built-in spec of `name`, if the table has it.
pub fn builtin(name: &str) -> Option<InstanceTypeSpec> {
    TABLE
        .iter()
        .find(|(n, ..)| *n == name)
        .map(|&(n, vcpus, memory_mib, arch, store)| InstanceTypeSpec {
            name: n.to_string(),
            architectures: vec![arch.to_string()],
            vcpus,
            memory_mib,
            gpus: 0,
            instance_store_gb: store,
            ..InstanceTypeSpec::default()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_knows_m5_large_and_not_made_up_types() {
        let m5 = builtin("m5.large").unwrap();
        assert_eq!((m5.vcpus, m5.memory_mib), (2, 8192));
        assert!(builtin("x9.huge").is_none());
    }
}
