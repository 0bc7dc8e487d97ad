//! The generated device tree parsed back with the `fdt` crate, node by node.

use super::*;

fn cells(values: &[u32]) -> Vec<u8> {
    values
        .iter()
        .flat_map(|value| value.to_be_bytes())
        .collect()
}

fn range(base: u64, size: u64) -> Vec<u32> {
    vec![
        (base >> 32) as u32,
        base as u32,
        (size >> 32) as u32,
        size as u32,
    ]
}

fn strings_value(values: &[&str]) -> Vec<u8> {
    values
        .iter()
        .flat_map(|value| value.bytes().chain([0]))
        .collect()
}

fn value(tree: &fdt::Fdt, path: &str, name: &str) -> Vec<u8> {
    let node = tree
        .find_node(path)
        .unwrap_or_else(|| panic!("no node {path}"));
    node.property(name)
        .unwrap_or_else(|| panic!("no property {name} in {path}"))
        .value
        .to_vec()
}

fn spec() -> TreeSpec<'static> {
    TreeSpec {
        vcpus: 2,
        memory: 256 << 20,
        bootargs: "console=ttyAMA0 panic=-1",
        initrd: Some((0x4400_0000, 0x4412_3456)),
        virtio_mmio: 2,
        reserved: vec![("ring", 0x5000_0000, 0x1_0000)],
    }
}

#[test]
fn every_node_and_property_is_as_specified() {
    let blob = device_tree(&spec()).unwrap();
    let tree = fdt::Fdt::new(&blob).unwrap();
    let names: Vec<&str> = tree
        .find_node("/")
        .unwrap()
        .children()
        .map(|n| n.name)
        .collect();
    assert_eq!(
        names,
        [
            "memory@40000000",
            "cpus",
            "psci",
            "intc@8000000",
            "timer",
            "apb-pclk",
            "pl011@9000000",
            "virtio_mmio@a000000",
            "virtio_mmio@a000200",
            "reserved-memory",
            "chosen"
        ]
    );
    assert_eq!(
        value(&tree, "/", "compatible"),
        strings_value(&["linux,dummy-virt"])
    );
    assert_eq!(value(&tree, "/", "#address-cells"), cells(&[2]));
    assert_eq!(value(&tree, "/", "#size-cells"), cells(&[2]));
    assert_eq!(value(&tree, "/", "interrupt-parent"), cells(&[GIC_PHANDLE]));

    let memory = "/memory@40000000";
    assert_eq!(
        value(&tree, memory, "device_type"),
        strings_value(&["memory"])
    );
    assert_eq!(
        value(&tree, memory, "reg"),
        cells(&range(0x4000_0000, 256 << 20))
    );

    assert_eq!(value(&tree, "/cpus", "#address-cells"), cells(&[1]));
    assert_eq!(value(&tree, "/cpus", "#size-cells"), cells(&[0]));
    let cpus: Vec<&str> = tree
        .find_node("/cpus")
        .unwrap()
        .children()
        .map(|n| n.name)
        .collect();
    assert_eq!(cpus, ["cpu@0", "cpu@1"]);
    for (index, cpu) in ["/cpus/cpu@0", "/cpus/cpu@1"].iter().enumerate() {
        assert_eq!(value(&tree, cpu, "device_type"), strings_value(&["cpu"]));
        assert_eq!(
            value(&tree, cpu, "compatible"),
            strings_value(&["arm,cortex-a72"])
        );
        assert_eq!(value(&tree, cpu, "reg"), cells(&[index as u32]));
        assert_eq!(value(&tree, cpu, "enable-method"), strings_value(&["psci"]));
    }

    assert_eq!(
        value(&tree, "/psci", "compatible"),
        strings_value(&["arm,psci-1.0", "arm,psci-0.2"])
    );
    assert_eq!(value(&tree, "/psci", "method"), strings_value(&["hvc"]));

    let gic = "/intc@8000000";
    assert_eq!(
        value(&tree, gic, "compatible"),
        strings_value(&["arm,gic-v3"])
    );
    assert_eq!(value(&tree, gic, "#interrupt-cells"), cells(&[3]));
    assert_eq!(value(&tree, gic, "interrupt-controller"), b"");
    let mut gic_reg = range(0x0800_0000, 0x1_0000);
    gic_reg.extend(range(0x080a_0000, 2 * 0x2_0000));
    assert_eq!(value(&tree, gic, "reg"), cells(&gic_reg));
    assert_eq!(value(&tree, gic, "interrupts"), cells(&[1, 9, 4]));
    assert_eq!(value(&tree, gic, "phandle"), cells(&[GIC_PHANDLE]));
    assert_eq!(tree.find_phandle(GIC_PHANDLE).unwrap().name, "intc@8000000");

    assert_eq!(
        value(&tree, "/timer", "compatible"),
        strings_value(&["arm,armv8-timer"])
    );
    assert_eq!(
        value(&tree, "/timer", "interrupts"),
        cells(&[1, 13, 4, 1, 14, 4, 1, 11, 4, 1, 10, 4])
    );

    assert_eq!(
        value(&tree, "/apb-pclk", "compatible"),
        strings_value(&["fixed-clock"])
    );
    assert_eq!(value(&tree, "/apb-pclk", "#clock-cells"), cells(&[0]));
    assert_eq!(
        value(&tree, "/apb-pclk", "clock-frequency"),
        cells(&[24_000_000])
    );
    assert_eq!(tree.find_phandle(CLOCK_PHANDLE).unwrap().name, "apb-pclk");

    let uart = "/pl011@9000000";
    assert_eq!(
        value(&tree, uart, "compatible"),
        strings_value(&["arm,pl011", "arm,primecell"])
    );
    assert_eq!(
        value(&tree, uart, "reg"),
        cells(&range(0x0900_0000, 0x1000))
    );
    assert_eq!(value(&tree, uart, "interrupts"), cells(&[0, 1, 4]));
    assert_eq!(
        value(&tree, uart, "clocks"),
        cells(&[CLOCK_PHANDLE, CLOCK_PHANDLE])
    );
    assert_eq!(
        value(&tree, uart, "clock-names"),
        strings_value(&["uartclk", "apb_pclk"])
    );

    for (slot, path) in ["/virtio_mmio@a000000", "/virtio_mmio@a000200"]
        .iter()
        .enumerate()
    {
        assert_eq!(
            value(&tree, path, "compatible"),
            strings_value(&["virtio,mmio"])
        );
        let base = 0x0a00_0000 + slot as u64 * 0x200;
        assert_eq!(value(&tree, path, "reg"), cells(&range(base, 0x200)));
        assert_eq!(
            value(&tree, path, "interrupts"),
            cells(&[0, 16 + slot as u32, 1])
        );
    }

    let reserved = "/reserved-memory";
    assert_eq!(value(&tree, reserved, "#address-cells"), cells(&[2]));
    assert_eq!(value(&tree, reserved, "ranges"), b"");
    let ring = "/reserved-memory/ring@50000000";
    assert_eq!(
        value(&tree, ring, "reg"),
        cells(&range(0x5000_0000, 0x1_0000))
    );
    assert_eq!(value(&tree, ring, "no-map"), b"");

    let chosen = tree.chosen();
    assert_eq!(chosen.bootargs(), Some("console=ttyAMA0 panic=-1"));
    assert_eq!(
        value(&tree, "/chosen", "stdout-path"),
        strings_value(&["/pl011@9000000"])
    );
    assert_eq!(
        value(&tree, "/chosen", "linux,initrd-start"),
        0x4400_0000u64.to_be_bytes()
    );
    assert_eq!(
        value(&tree, "/chosen", "linux,initrd-end"),
        0x4412_3456u64.to_be_bytes()
    );
    assert_eq!(
        value(&tree, "/chosen", "rng-seed"),
        [0; abi::image::GUEST_RNG_SEED_BYTES]
    );
    assert_eq!(value(&tree, "/chosen", "kaslr-seed"), [0; 8]);
    assert!(blob.len() as u64 <= crate::guest::DTB_SLOT);
}

#[test]
fn optional_nodes_follow_the_spec() {
    let bare = TreeSpec {
        vcpus: 1,
        initrd: None,
        virtio_mmio: 0,
        reserved: Vec::new(),
        ..spec()
    };
    let blob = device_tree(&bare).unwrap();
    let tree = fdt::Fdt::new(&blob).unwrap();
    assert!(tree.find_node("/reserved-memory").is_none());
    assert!(tree.find_node("/virtio_mmio@a000000").is_none());
    assert!(tree
        .find_node("/chosen")
        .unwrap()
        .property("linux,initrd-start")
        .is_none());
    assert_eq!(tree.cpus().count(), 1);
    let mut gic_reg = range(0x0800_0000, 0x1_0000);
    gic_reg.extend(range(0x080a_0000, 0x2_0000));
    assert_eq!(value(&tree, "/intc@8000000", "reg"), cells(&gic_reg));
}
