//! The operations' typed results, called as a front end calls them (no CLI in between), against a host namespace of
//! the test's own: what `create`/`add` return is what `show`/`list` read back and what the host has, the errors are
//! the library's variants with their fields, and `delete` returns what it removed and leaves no pins behind.
// Tests state their expectations with unwrap/expect (the product may not: [workspace.lints]).
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::net::Ipv4Addr;

use common::{ip, on_instance, on_thread, OwnedNetns};
use datapath_common::DROP_REASONS;
use ipnet::IpNet;
use xlan::{
    error::{AddressOwner, Error},
    instance::Instance,
    mac::Mac,
    model::{EndpointRef, Flood, IpvlanFlag, IpvlanMode, MacvlanMode, ParentHook, Placement},
    ops::{
        doctor,
        endpoint::{self, AddEndpoint},
        fdb::{self, FdbState},
        macaddr::{self, MacaddrChange},
        network::{self, CreateNetwork, DriverRequest, VxlanRequest},
        route, stats,
    },
};

fn net(text: &str) -> IpNet {
    text.parse().unwrap()
}

fn mac(text: &str) -> Mac {
    text.parse().unwrap()
}

#[test]
fn operations_return_what_they_made() {
    let prefix = format!("xlops{}", std::process::id());
    let host = OwnedNetns::create(&format!("{prefix}h"));
    let endpoint_ns = OwnedNetns::create(&format!("{prefix}e1"));
    let ipvlan_ns = OwnedNetns::create(&format!("{prefix}e2"));
    for (parent, address) in [("up1", None), ("up2", Some("10.99.0.1/24")), ("up3", Some("10.98.0.1/24"))] {
        ip(&["-n", host.name(), "link", "add", parent, "type", "veth", "peer", "name", &format!("{parent}-p")]);
        ip(&["-n", host.name(), "link", "set", parent, "up"]);
        if let Some(address) = address {
            ip(&["-n", host.name(), "addr", "add", address, "dev", parent]);
        }
    }
    let state_dir = std::env::temp_dir().join(format!("{prefix}-state"));
    let (host_name, endpoint_name, ipvlan_name) = (host.name(), endpoint_ns.name(), ipvlan_ns.name());

    on_instance(host_name, &state_dir, async |instance: &Instance| {
        exercise(instance, endpoint_name, ipvlan_name).await;
        assert!(!instance.pins.root.exists(), "the last network's delete removes the pins");
    });
    assert!(!state_dir.join("state.json").exists());
}

async fn exercise(instance: &Instance, endpoint_ns: &str, ipvlan_ns: &str) {
    // macvlan: the created network, as list and show read it back.
    let macvlan = network::create(
        instance,
        CreateNetwork {
            name: "mv0".into(),
            parent: "up1".into(),
            vlan: None,
            hook: None,
            ipam: Default::default(),
            driver: DriverRequest::Macvlan { mode: MacvlanMode::Source, host_access: false },
        },
    )
    .await
    .unwrap();
    assert_eq!((macvlan.id, macvlan.parent.name.as_str(), macvlan.next_port), (1, "up1", 0));
    assert_eq!(macvlan.hook, ParentHook::Tc, "a veth parent defaults to the tc hook");
    assert_eq!(macvlan.macvlan().map(|m| m.mode), Some(MacvlanMode::Source));
    assert_eq!(network::list(instance).await.unwrap(), std::slice::from_ref(&macvlan));

    let at = EndpointRef { netns: endpoint_ns.into(), ifname: "eth0".into() };
    let added = endpoint::add(
        instance,
        AddEndpoint {
            network: "mv0".into(),
            at: at.clone(),
            mac: Some(mac("02:77:00:00:00:11")),
            addresses: vec![net("10.77.0.11/24"), net("fd77::11/64")],
        },
    )
    .await
    .unwrap();
    assert_eq!((added.at.clone(), added.mac), (at.clone(), mac("02:77:00:00:00:11")));
    assert_eq!(added.host.ifname, "xl1p0");
    let host_port = instance.netlink.device("xl1p0").await.unwrap().expect("the host-side veth exists");
    assert_eq!(host_port.index, added.host.ifindex);
    let shown = network::show(instance, "mv0").await.unwrap();
    assert_eq!((shown.endpoints.as_slice(), shown.next_port), (std::slice::from_ref(&added), 1));

    let duplicate = AddEndpoint { network: "mv0".into(), at: at.clone(), mac: None, addresses: Vec::new() };
    match endpoint::add(instance, duplicate).await {
        Err(Error::EndpointExists { network, netns, ifname }) => {
            assert_eq!((network.as_str(), netns.as_str(), ifname.as_str()), ("mv0", endpoint_ns, "eth0"))
        }
        other => panic!("a second endpoint at the same place: {other:?}"),
    }

    let allowed = macaddr::change(instance, "mv0", MacaddrChange::Add(mac("02:00:00:00:00:aa"))).await.unwrap();
    assert_eq!(allowed, [mac("02:00:00:00:00:aa")]);
    assert!(macaddr::change(instance, "mv0", MacaddrChange::Flush).await.unwrap().is_empty());

    let counters = stats::endpoints(instance, Some("mv0")).await.unwrap();
    assert_eq!(counters.len(), 1);
    assert_eq!((counters[0].endpoint.clone(), counters[0].mac), (at.clone(), added.mac));
    assert_eq!(counters[0].drops.len(), DROP_REASONS, "every drop reason is named");

    // vxlan: defaults filled in from the parent and the kernel's conventions, each remote once; the FDB as static
    // rows.
    let (first, second) = (Ipv4Addr::new(10, 99, 0, 2), Ipv4Addr::new(10, 99, 0, 4));
    assert!(matches!(Flood::new(Some(Ipv4Addr::new(239, 1, 1, 1)), vec![first]), Err(Error::RemoteWithGroup)));
    let vxlan = network::create(
        instance,
        CreateNetwork {
            name: "vx0".into(),
            parent: "up2".into(),
            vlan: None,
            hook: None,
            ipam: Default::default(),
            driver: DriverRequest::Vxlan(VxlanRequest {
                vni: 42,
                local: None,
                flood: Flood::new(None, vec![first, second, first]).unwrap(),
                dstport: None,
                learning: None,
                ageing: None,
            }),
        },
    )
    .await
    .unwrap();
    let settings = vxlan.vxlan().unwrap();
    assert_eq!((settings.local, settings.dstport), (Ipv4Addr::new(10, 99, 0, 1), 4789));
    assert_eq!((settings.learning, settings.ageing), (true, 300));
    assert_eq!(settings.flood, Flood::Remotes(vec![first, second]), "a repeated remote, not next to itself, once");
    assert_eq!(vxlan.id, 2);
    fdb::add(instance, "vx0", mac("02:00:00:00:00:bb"), Ipv4Addr::new(10, 99, 0, 3)).await.unwrap();
    let rows = fdb::show(instance, Some("vx0")).await.unwrap();
    let entries: Vec<_> = rows.iter().map(|r| (r.mac, r.dst, r.state)).collect();
    assert_eq!(
        entries,
        [
            (Mac::ZERO, Some(first), FdbState::Static),
            (Mac::ZERO, Some(second), FdbState::Static),
            (mac("02:00:00:00:00:bb"), Some(Ipv4Addr::new(10, 99, 0, 3)), FdbState::Static),
        ]
    );
    assert!(matches!(fdb::show(instance, Some("mv0")).await, Err(Error::NotVxlan { .. })));

    // ipvlan: addresses owned once per parent; routes returned, shown and removed.
    network::create(
        instance,
        CreateNetwork {
            name: "ipv0".into(),
            parent: "up3".into(),
            vlan: None,
            hook: None,
            ipam: Default::default(),
            driver: DriverRequest::Ipvlan { mode: IpvlanMode::L3, flag: IpvlanFlag::Private },
        },
    )
    .await
    .unwrap();
    let ipvlan_at = EndpointRef { netns: ipvlan_ns.into(), ifname: "eth0".into() };
    let ipvlan_endpoint =
        AddEndpoint { network: "ipv0".into(), at: ipvlan_at.clone(), mac: None, addresses: vec![net("10.98.0.1/24")] };
    match endpoint::add(instance, ipvlan_endpoint.clone()).await {
        Err(Error::AddressInUse { owner, .. }) => assert_eq!(owner, AddressOwner::Host),
        other => panic!("an endpoint with the host's own address: {other:?}"),
    }
    let added = endpoint::add(instance, AddEndpoint { addresses: vec![net("10.98.0.11/24")], ..ipvlan_endpoint })
        .await
        .unwrap();
    assert_eq!(added.mac, network::show(instance, "ipv0").await.unwrap().parent.mac, "ipvlan endpoints share the MAC");
    let routed = route::add(instance, "ipv0", net("10.210.0.0/24"), ipvlan_at.clone()).await.unwrap();
    assert_eq!((routed.prefix, routed.endpoint.clone()), (net("10.210.0.0/24"), ipvlan_at.clone()));
    assert_eq!(route::show(instance, "ipv0").await.unwrap(), std::slice::from_ref(&routed));
    match route::add(instance, "ipv0", net("10.210.0.9/24"), ipvlan_at.clone()).await {
        Err(Error::InvalidPrefix { given, network }) => {
            assert_eq!((given, network), (net("10.210.0.9/24"), net("10.210.0.0/24")))
        }
        other => panic!("a prefix with host bits: {other:?}"),
    }
    assert_eq!(route::del(instance, "ipv0", net("10.210.0.0/24")).await.unwrap(), routed);
    assert!(route::show(instance, "ipv0").await.unwrap().is_empty());

    // delete returns what it removed, endpoints and all; the instance ends empty.
    let removed = endpoint::del(instance, "mv0", &at).await.unwrap();
    assert_eq!(removed.host.ifindex, host_port.index);
    assert!(instance.netlink.device("xl1p0").await.unwrap().is_none(), "the host-side veth is gone");
    for name in ["mv0", "vx0", "ipv0"] {
        let deleted = network::delete(instance, name).await.unwrap();
        assert_eq!(deleted.name, name);
    }
    assert!(network::list(instance).await.unwrap().is_empty());
    assert!(matches!(network::show(instance, "mv0").await, Err(Error::NetworkNotFound(name)) if name == "mv0"));
}

/// What the CNI plugin needs of the library: the instance of the namespace the process is in, an endpoint in a
/// namespace given by path that carries its container id (found again by it), a namespace path that is no namespace
/// refused, and a network deleted only while it has no endpoints.
#[test]
fn an_endpoint_made_for_a_container_in_a_namespace_given_by_path() {
    let prefix = format!("xlopc{}", std::process::id());
    let host = OwnedNetns::create(&format!("{prefix}h"));
    let endpoint_ns = OwnedNetns::create(&format!("{prefix}e1"));
    ip(&["-n", host.name(), "link", "add", "up1", "type", "veth", "peer", "name", "up1-p"]);
    ip(&["-n", host.name(), "link", "set", "up1", "up"]);
    let state_dir = std::env::temp_dir().join(format!("{prefix}-state"));
    let (host_name, endpoint_path) = (host.name(), format!("/run/netns/{}", endpoint_ns.name()));
    on_thread(async || {
        // As a CNI runtime runs its plugins: in the host's namespace already.
        xlan::host::netns::enter_for_good(host_name).unwrap();
        let instance = Instance::open_current(Some(&state_dir)).unwrap();
        assert_eq!(instance.name, host_name);
        let request = CreateNetwork {
            name: "cni0".into(),
            parent: "up1".into(),
            vlan: None,
            hook: None,
            ipam: Default::default(),
            driver: DriverRequest::Macvlan { mode: MacvlanMode::Bridge, host_access: false },
        };
        network::create(&instance, request).await.unwrap();
        let at = EndpointRef { netns: endpoint_path.clone(), ifname: "eth0".into() };
        let add = |at: EndpointRef| AddEndpoint {
            network: "cni0".into(),
            at,
            mac: None,
            addresses: vec![net("10.66.0.2/24")],
        };
        let added = endpoint::add_for_container(&instance, add(at.clone()), Some("c0ffee".into())).await.unwrap();
        assert_eq!(added.container_id.as_deref(), Some("c0ffee"));
        let state = network::list(&instance).await.unwrap();
        let shown = xlan::model::State { networks: state, ..Default::default() };
        let (network, found) = shown.find_container_endpoint("c0ffee", "eth0").unwrap();
        assert_eq!((network.name.as_str(), &found.at), ("cni0", &at));
        assert!(shown.find_container_endpoint("c0ffee", "eth1").is_none());

        let not_a_namespace = EndpointRef { netns: "/etc/hostname".into(), ifname: "eth1".into() };
        match endpoint::add(&instance, add(not_a_namespace)).await {
            Err(Error::NoSuchNetnsPath(path)) => assert_eq!(path, "/etc/hostname"),
            other => panic!("a file that is no namespace: {other:?}"),
        }

        assert!(network::delete_if_unused(&instance, "cni0").await.unwrap().is_none(), "in use");
        endpoint::del(&instance, "cni0", &at).await.unwrap();
        let deleted = network::delete_if_unused(&instance, "cni0").await.unwrap();
        assert_eq!(deleted.map(|n| n.name), Some("cni0".to_string()));
    });
    assert!(!state_dir.join("state.json").exists());
}

/// An endpoint handed over to a container runtime (Docker's remote driver): its end waits in the host namespace,
/// with its MAC and no addresses, and the runtime moves and renames it; the check knows the endpoint by its host-side
/// port wherever the runtime put the other end, and deleting it removes both ends.
#[test]
fn handed_over_endpoints_are_the_runtimes_to_move() {
    let prefix = format!("xlho{}", std::process::id());
    let host = OwnedNetns::create(&format!("{prefix}h"));
    let container = OwnedNetns::create(&format!("{prefix}c"));
    ip(&["-n", host.name(), "link", "add", "up1", "type", "veth", "peer", "name", "up1-p"]);
    ip(&["-n", host.name(), "link", "set", "up1", "up"]);
    let state_dir = std::env::temp_dir().join(format!("{prefix}-state"));
    let (host_name, container_name) = (host.name(), container.name());
    on_instance(host_name, &state_dir, async |instance: &Instance| {
        hand_over(instance, host_name, container_name).await
    });
    assert!(!state_dir.join("state.json").exists());
}

async fn hand_over(instance: &Instance, host: &str, container: &str) {
    let macvlan = DriverRequest::Macvlan { mode: MacvlanMode::Bridge, host_access: false };
    let create = CreateNetwork {
        name: "dk0".into(),
        parent: "up1".into(),
        vlan: None,
        hook: None,
        ipam: Default::default(),
        driver: macvlan,
    };
    network::create(instance, create).await.unwrap();
    let at = EndpointRef { netns: "0123abcd".into(), ifname: "eth".into() };
    let request =
        AddEndpoint { network: "dk0".into(), at: at.clone(), mac: None, addresses: vec![net("10.66.0.5/24")] };
    let added = endpoint::add_for_runtime(instance, request).await.unwrap();
    assert_eq!(added.placement, Placement::HandedOver { ifname: "xl1t0".into() });
    assert_eq!(added.addresses, [net("10.66.0.5/24")], "the endpoint's addresses are its allocations");
    let waiting = instance.netlink.device("xl1t0").await.unwrap().expect("the end waits in the host namespace");
    assert_eq!(waiting.mac, Some(added.mac));
    assert!(instance.netlink.addresses(waiting.index).await.unwrap().is_empty(), "the runtime sets the addresses");
    assert!(doctor::examine(instance).await.unwrap().findings.is_empty());

    // What Docker does at Join and at Leave: the check finds nothing missing either way.
    ip(&["-n", host, "link", "set", "xl1t0", "netns", container]);
    ip(&["-n", container, "link", "set", "xl1t0", "name", "eth0", "up"]);
    assert!(doctor::examine(instance).await.unwrap().findings.is_empty(), "moved by the runtime is not missing");
    ip(&["-n", container, "link", "set", "eth0", "down"]);
    ip(&["-n", container, "link", "set", "eth0", "name", "xl1t0", "netns", host]);

    let deleted = endpoint::del(instance, "dk0", &at).await.unwrap();
    assert_eq!(deleted, added);
    assert!(instance.netlink.device("xl1t0").await.unwrap().is_none(), "both ends are gone");
    network::delete(instance, "dk0").await.unwrap();
}
