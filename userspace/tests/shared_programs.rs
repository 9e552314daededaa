//! The datapath's programs are verified once per instance and shared by every load (`datapath::loader`): the
//! endpoints' links run one program, a later load takes it from its pin instead of verifying it again, maps made
//! anew make the next load verify programs that hold them, `upgrade` verifies anew, and the last network's delete
//! leaves no program pinned.
// Tests state their expectations with unwrap/expect (the product may not: [workspace.lints]).
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use aya::{
    maps::MapInfo,
    programs::{
        links::{FdLink, PinnedLink},
        SchedClassifier,
    },
};
use common::{ip, on_instance, OwnedNetns};
use datapath_common::{map_names, program_names};
use xlan::{
    datapath::{
        loader::{link_names, Datapath},
        pins::PinDir,
    },
    instance::Instance,
    model::{EndpointRef, MacvlanMode, ParentHook},
    ops::{
        endpoint::{self, AddEndpoint},
        network::{self, CreateNetwork, DriverRequest},
        upgrade,
    },
};

/// The id of the program the pinned link of port `port`'s `hook` runs: "tc" on its host-side veth, "xdp" (the pass
/// stub) on its own end.
fn port_program(pins: &PinDir, port: u32, hook: &str) -> u32 {
    let link = FdLink::from(PinnedLink::from_pin(pins.link(&link_names::port(port, hook))).unwrap());
    link.info().unwrap().program_id()
}

/// The endpoints' program as a new load of the datapath has it: its id and the ids of the maps it holds.
fn loaded_endpoint_program(pins: &PinDir) -> (u32, Vec<u32>) {
    let mut datapath = Datapath::load(pins).unwrap();
    let program: &mut SchedClassifier = datapath.program(program_names::ENDPOINT_INGRESS).unwrap();
    let info = program.info().unwrap();
    (info.id(), info.map_ids().unwrap().expect("the kernel lists a program's maps"))
}

/// Removes the instance's pins, state and kept configuration, also when the test fails midway (the namespaces go
/// by their own guards).
struct Cleanup {
    pins: PinDir,
    dirs: [std::path::PathBuf; 2],
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.pins.root);
        self.pins.remove_if_empty();
        for dir in &self.dirs {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The keys (directories) of shared programs the instance holds.
fn program_keys(pins: &PinDir) -> usize {
    std::fs::read_dir(pins.programs()).map_or(0, |entries| entries.count())
}

#[test]
fn endpoints_share_one_verified_program_and_new_maps_get_their_own() {
    let prefix = format!("xlsp{}", std::process::id());
    let host = OwnedNetns::create(&format!("{prefix}h"));
    let endpoint_namespaces = [OwnedNetns::create(&format!("{prefix}e1")), OwnedNetns::create(&format!("{prefix}e2"))];
    ip(&["-n", host.name(), "link", "add", "up1", "type", "veth", "peer", "name", "up1-p"]);
    ip(&["-n", host.name(), "link", "set", "up1", "up"]);
    let state_dir = std::env::temp_dir().join(format!("{prefix}-state"));
    let namespaces = endpoint_namespaces.each_ref().map(OwnedNetns::name);
    let config_dir = std::path::Path::new(xlan::instance::CONFIG_ROOT).join(host.name());
    let _cleanup = Cleanup { pins: PinDir::for_instance(host.name()), dirs: [state_dir.clone(), config_dir] };

    on_instance(host.name(), &state_dir, async |instance: &Instance| {
        let create = CreateNetwork {
            name: "lan".into(),
            parent: "up1".into(),
            vlan: None,
            // The XDP hook: the endpoints' own ends get the XDP pass stub, a shared XDP program too.
            hook: Some(ParentHook::Xdp),
            ipam: Default::default(),
            driver: DriverRequest::Macvlan { mode: MacvlanMode::Bridge, host_access: false },
        };
        network::create(instance, create).await.unwrap();
        let mut ports = Vec::new();
        for netns in namespaces {
            let at = EndpointRef { netns: netns.into(), ifname: "eth0".into() };
            let request = AddEndpoint { network: "lan".into(), at, mac: None, addresses: Vec::new() };
            ports.push(endpoint::add(instance, request).await.unwrap().host.ifindex);
        }
        let pins = &instance.pins;
        let shared = port_program(pins, ports[0], "tc");
        assert_eq!(
            port_program(pins, ports[1], "tc"),
            shared,
            "both endpoints run the one program verified for the first"
        );
        let stub = port_program(pins, ports[0], "xdp");
        assert_eq!(port_program(pins, ports[1], "xdp"), stub, "and the one XDP pass stub");
        let (loaded, _) = loaded_endpoint_program(pins);
        assert_eq!(loaded, shared, "a later load takes the program from its pin");
        assert_eq!(program_keys(pins), 1);

        // A map made anew (its pin removed behind xlan's back; the next load makes it): the pinned program holds
        // the old one, so the next load verifies a program that holds the new one, and unpins the old key's.
        let drops = pins.map(map_names::DROPS);
        std::fs::remove_file(&drops).unwrap();
        let (anew, map_ids) = loaded_endpoint_program(pins);
        assert_ne!(anew, shared, "a program verified with the new map");
        let new_map = MapInfo::from_pin(&drops).unwrap().id();
        assert!(map_ids.contains(&new_map), "the program holds the new {} ({new_map}): {map_ids:?}", map_names::DROPS);
        assert_eq!(program_keys(pins), 1, "the old key's programs are unpinned");
        assert_eq!(loaded_endpoint_program(pins).0, anew, "and the new one is shared");

        // An upgrade verifies every program anew and attaches that one everywhere.
        let upgraded = upgrade::upgrade(instance).await.unwrap();
        assert!(upgraded.replaced.len() >= 3, "the parent's link and both ports': {:?}", upgraded.replaced);
        let after = port_program(pins, ports[0], "tc");
        assert!(after != shared && after != anew, "the upgrade's own program");
        assert_eq!(port_program(pins, ports[1], "tc"), after, "one program for both endpoints after the upgrade too");
        assert_eq!(port_program(pins, ports[1], "xdp"), port_program(pins, ports[0], "xdp"), "and one XDP pass stub");

        network::delete(instance, "lan").await.unwrap();
        assert!(!pins.root.exists(), "the last network's delete leaves no program (or map) pinned");
    });
}
