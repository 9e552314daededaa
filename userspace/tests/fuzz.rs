//! The datapath fuzzer (see `fuzzer/`): generated frames — random and structure-aware, cut at every offset, with
//! bogus lengths, VLAN/QinQ stacks, IPv4 options and fragments, IPv6 extension chains, VXLAN flag/VNI/port mutations —
//! through every program of the object by BPF_PROG_TEST_RUN, under every driver and mode, with the invariants checked
//! on every verdict (`fuzzer/oracle.rs`). Here the seeded quick run that `cargo xtask test` includes; `cargo xtask
//! fuzz` runs the same test with 100 000 frames per program and a fresh seed, and prints the rates.
// Tests state their expectations with unwrap/expect (the product may not: [workspace.lints]).
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;
mod fuzzer;

use fuzzer::{
    frames::{Generator, Palette, Sender, VxlanTarget, ETH_P_8021AD, ETH_P_8021Q, ETH_P_ARP, ETH_P_IPV4, ETH_P_IPV6},
    rng::Rng,
    Settings,
};

/// Frames per program in the quick run (XLAN_FUZZ_FRAMES overrides): 5 programs, so 50 000 frames in all.
const QUICK_FRAMES_PER_PROGRAM: u64 = 10_000;

#[test]
fn fuzz_every_program_under_every_driver() {
    let settings = Settings::from_env(QUICK_FRAMES_PER_PROGRAM);
    let report = fuzzer::run_all(&settings);
    eprintln!("{}", report.summary());
    assert!(report.violations.is_empty(), "{}", report.failure());
}

/// The generator makes what the fuzzer claims it makes, and the same seed makes the same frames.
#[test]
fn fuzz_generator_covers_the_structures_and_is_seeded() {
    let palette = Palette {
        macs: vec![[2, 0, 0, 0, 0, 1]],
        v4: vec![[10, 0, 0, 1]],
        v6: vec![[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]],
        vnis: vec![42],
        vxlan_ports: vec![4789],
        vtep_locals: vec![[10, 0, 0, 1]],
        vtep_remotes: vec![[10, 0, 0, 2]],
        vxlan_networks: vec![VxlanTarget { vni: 42, port: 4789, dst: [10, 0, 0, 1], macs: vec![[2, 0, 0, 0, 0, 2]] }],
        vxlan_share: 20,
        vids: vec![10, 20],
    };
    let frames = |seed: u64| {
        let mut rng = Rng::new(seed);
        let sender = Sender::default();
        let mut generator = Generator { rng: &mut rng, palette: &palette, sender: &sender };
        (0..20_000).map(|_| generator.frame()).collect::<Vec<_>>()
    };
    let made = frames(7);
    assert_eq!(made, frames(7), "the same seed makes the same frames");
    assert_ne!(made, frames(8));
    let ether_type = |f: &[u8], at: usize| f.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    let count = |what: &dyn Fn(&[u8]) -> bool| made.iter().filter(|f| what(f)).count();
    let outer = |f: &[u8]| ether_type(f, 12);
    // The L3 header behind at most one tag.
    let l3 = |f: &[u8]| match outer(f) {
        Some(ETH_P_8021Q | ETH_P_8021AD) => ether_type(f, 16).map(|t| (t, 18)),
        other => other.map(|t| (t, 14)),
    };
    let tci = |f: &[u8], at: usize| ether_type(f, at).unwrap_or(0);
    let of_network = |f: &[u8], at: usize| [10, 20].contains(&(tci(f, at) & 0x0fff));
    type Feature<'a> = (&'a str, &'a dyn Fn(&[u8]) -> bool);
    let features: [Feature; 16] = [
        ("802.1Q", &|f| outer(f) == Some(ETH_P_8021Q)),
        ("802.1Q on a network's VLAN", &|f| outer(f) == Some(ETH_P_8021Q) && of_network(f, 14)),
        ("802.1Q on a network's VLAN with priority bits", &|f| {
            outer(f) == Some(ETH_P_8021Q) && of_network(f, 14) && tci(f, 14) >> 13 != 0
        }),
        ("802.1ad outside a network's VLAN", &|f| {
            outer(f) == Some(ETH_P_8021AD) && ether_type(f, 16) == Some(ETH_P_8021Q) && of_network(f, 18)
        }),
        ("a network's VLAN outside another tag", &|f| {
            outer(f) == Some(ETH_P_8021Q) && of_network(f, 14) && ether_type(f, 16) == Some(ETH_P_8021Q)
        }),
        ("QinQ", &|f| outer(f) == Some(ETH_P_8021AD) && ether_type(f, 16) == Some(ETH_P_8021Q)),
        ("ARP", &|f| l3(f).is_some_and(|(t, _)| t == ETH_P_ARP)),
        ("IPv4 options", &|f| {
            l3(f).is_some_and(|(t, at)| t == ETH_P_IPV4 && f.get(at).is_some_and(|v| v & 0xf > 5 && v >> 4 == 4))
        }),
        ("IPv4 fragments", &|f| {
            l3(f).is_some_and(|(t, at)| {
                t == ETH_P_IPV4 && f.get(at + 6..at + 8).is_some_and(|b| b[0] & 0x3f != 0 || b[1] != 0)
            })
        }),
        ("IPv6 extension headers", &|f| {
            l3(f).is_some_and(|(t, at)| {
                t == ETH_P_IPV6 && f.get(at + 6).is_some_and(|n| [0, 43, 44, 60, 51].contains(n))
            })
        }),
        ("neighbour solicitations", &|f| {
            l3(f).is_some_and(|(t, at)| t == ETH_P_IPV6 && f.get(at + 6) == Some(&58) && f.get(at + 40) == Some(&135))
        }),
        ("VXLAN", &|f| {
            l3(f).is_some_and(|(t, at)| {
                t == ETH_P_IPV4 && f.get(at + 22..at + 24) == Some(&[0x12, 0xb5][..]) && f.len() > at + 50
            })
        }),
        ("VXLAN without the I flag", &|f| {
            l3(f).is_some_and(|(t, at)| {
                t == ETH_P_IPV4 && f.get(at + 22..at + 24) == Some(&[0x12, 0xb5][..]) && f.get(at + 28) == Some(&0)
            })
        }),
        ("bogus IPv4 total length", &|f| {
            l3(f).is_some_and(|(t, at)| {
                t == ETH_P_IPV4
                    && f.get(at + 2..at + 4).is_some_and(|b| u16::from_be_bytes([b[0], b[1]]) as usize != f.len() - at)
            })
        }),
        ("runts", &|f| f.len() < 14),
        ("cut inside a tag", &|f| matches!(outer(f), Some(ETH_P_8021Q | ETH_P_8021AD)) && f.len() < 18),
    ];
    for (name, feature) in features {
        let n = count(feature);
        assert!(n >= 20, "{name}: only {n} of {} frames", made.len());
    }
}

/// The oracle fails what it must: observations made up here (no kernel involved) of a frame delivered across
/// networks, through a private boundary, or dropped without a counter.
#[test]
fn fuzz_oracle_rejects_crossings_and_uncounted_drops() {
    use datapath_common::{DropReason, EndpointStats, DROP_REASONS};
    use fuzzer::{
        oracle::{check, Class, Counters, FdbProbe, Observation, Program},
        world::World,
    };
    use xlan::{
        mac::Mac,
        model::{DriverSettings, Endpoint, EndpointRef, HostPort, Macvlan, MacvlanMode, Network, Parent, ParentHook},
    };

    let endpoint = |port: u32, mac: [u8; 6]| Endpoint {
        at: EndpointRef { netns: "ns".into(), ifname: format!("ep{port}") },
        mac: Mac(mac),
        addresses: Vec::new(),
        host: HostPort { ifname: format!("port{port}"), ifindex: port },
        container_id: None,
        placement: Default::default(),
    };
    let network = |id: u32, parent: u32, mode: MacvlanMode, endpoints: Vec<Endpoint>| Network {
        name: format!("net{id}"),
        id,
        parent: Parent {
            name: format!("parent{parent}"),
            ifindex: parent,
            mac: Mac([2, 0xbb, 0, 0, 0, parent as u8]),
            vlan: None,
        },
        hook: ParentHook::Xdp,
        driver: DriverSettings::Macvlan(Macvlan { mode, host_access: false, source_macs: Vec::new() }),
        next_port: endpoints.len() as u32,
        subnets: Vec::new(),
        endpoints,
    };
    let (a, b) = ([2, 0x77, 0, 0, 0, 1], [2, 0x77, 0, 0, 0, 2]);
    let world = World {
        networks: vec![
            network(7, 100, MacvlanMode::Bridge, vec![endpoint(1, a), endpoint(2, b)]),
            network(8, 200, MacvlanMode::Private, vec![endpoint(3, a), endpoint(4, b)]),
            // One MAC again, on VLAN 10 of the second parent.
            common::on_vlan(network(9, 200, MacvlanMode::Bridge, vec![endpoint(5, a)]), 10),
        ],
        ports: vec![1, 2, 3, 4, 5],
        parents: vec![100, 200],
    };
    let quiet = Counters {
        ports: vec![EndpointStats::default(); 5],
        drops: [0; DROP_REASONS],
        sent: vec![0; 7],
        unsent: vec![0; 7],
    };
    let received = |port: usize, len: usize| {
        let mut counters = quiet.clone();
        counters.ports[port].rx_packets = 1;
        counters.ports[port].rx_bytes = len as u64;
        counters
    };
    let fdb = FdbProbe::default();
    let run_to = |program, device, frame: &[u8], verdict, out: &[u8], after: &Counters| {
        check(&world, &Observation { program, device, frame, verdict, out, before: &quiet, after, fdb: &fdb })
    };
    let run = |program, device, frame: &[u8], verdict, after: &Counters| {
        run_to(program, device, frame, verdict, frame, after)
    };
    let mut to_a = vec![0u8; 60];
    to_a[..6].copy_from_slice(&a);
    to_a[6..12].copy_from_slice(&[2, 0xaa, 0, 0, 0, 1]);
    to_a[12..14].copy_from_slice(&[0x08, 0x00]);

    // Network 7's own endpoint gets it: fine.
    assert_eq!(run(Program::ParentXdp, 100, &to_a, common::XDP_REDIRECT, &received(0, 60)), Ok(Class::Delivered));
    // The endpoint of network 8 with the same MAC gets it: a crossing.
    let crossing = run(Program::ParentXdp, 100, &to_a, common::XDP_REDIRECT, &received(2, 60)).unwrap_err();
    assert!(crossing.contains("reached port(s) 3 (net8 on parent200)"), "{crossing}");
    // Private network 8: endpoint 4 reaches endpoint 3 directly.
    let mut from_b = to_a.clone();
    from_b[6..12].copy_from_slice(&b);
    let private = run(Program::EndpointIngress, 4, &from_b, common::TC_ACT_REDIRECT, &{
        let mut counters = received(2, 60);
        counters.ports[3].tx_packets = 1;
        counters.ports[3].tx_bytes = 60;
        counters
    })
    .unwrap_err();
    assert!(private.contains("private"), "{private}");
    // Dropped, yet nothing counted.
    let silent = run(Program::ParentXdp, 100, &to_a, common::XDP_DROP, &quiet).unwrap_err();
    assert!(silent.contains("without a counted reason"), "{silent}");
    // Counted, as one reason: fine.
    let mut malformed = quiet.clone();
    malformed.drops[DropReason::Malformed as usize] = 1;
    assert_eq!(
        run(Program::ParentXdp, 100, &to_a, common::XDP_DROP, &malformed),
        Ok(Class::Dropped(DropReason::Malformed))
    );
    // A copy the kernel sent into port 2 that the datapath did not count.
    let mut uncounted = quiet.clone();
    uncounted.sent[1] = 1;
    let copy = run(Program::ParentIngress, 100, &to_a, common::TC_ACT_OK, &uncounted).unwrap_err();
    assert!(copy.contains("copies but counted 0"), "{copy}");

    // VLAN 10's frame for MAC a: VLAN 10's endpoint gets it, its tag taken off.
    let tagged = |vid: u16| common::with_tag(&to_a, 0x8100, vid);
    assert_eq!(
        run_to(Program::ParentXdp, 200, &tagged(10), common::XDP_REDIRECT, &to_a, &received(4, 60)),
        Ok(Class::Delivered)
    );
    // The untagged (private) network's endpoint with that MAC gets it: a crossing of VLANs.
    let crossing =
        run_to(Program::ParentXdp, 200, &tagged(10), common::XDP_REDIRECT, &to_a, &received(2, 60)).unwrap_err();
    assert!(crossing.contains("reached port(s) 3 (net8 on parent200)"), "{crossing}");
    // Delivered with the tag still on.
    let tag_kept = run(Program::ParentXdp, 200, &tagged(10), common::XDP_REDIRECT, &received(4, 60)).unwrap_err();
    assert!(tag_kept.contains("not the frame (or inner frame) as it came"), "{tag_kept}");
    // VLAN 30, which no network is on: delivered anywhere, or not passed on, is wrong.
    let no_network = run(Program::ParentXdp, 200, &tagged(30), common::XDP_REDIRECT, &received(4, 64)).unwrap_err();
    assert!(no_network.contains("reached port(s) 5 (net9 on parent200.10)"), "{no_network}");
    let dropped = run(Program::ParentIngress, 200, &tagged(30), common::TC_ACT_SHOT, &malformed).unwrap_err();
    assert!(dropped.contains("must be passed on untouched"), "{dropped}");
    // TC passes VLAN 10's broadcast on to the host with its tag in the skb's metadata, out of the bytes.
    let mut broadcast = tagged(10);
    broadcast[..6].copy_from_slice(&[0xff; 6]);
    let in_bytes = run(Program::ParentIngress, 200, &broadcast, common::TC_ACT_OK, &quiet).unwrap_err();
    assert!(in_bytes.contains("passed on changed"), "{in_bytes}");
}
