//! Multicast only to the endpoints that joined the group (issue #13), through the real `xlan` binary in namespaces
//! of the test's own, against the kernel's macvlan (bridge mode) in the same scenario. The endpoints join the way
//! applications do: an IPv4 group with `ip address add … autojoin` (the stack sends IGMPv3 reports), an IPv6
//! address (the stack joins its solicited-node group and sends MLDv2 reports), and leave by removing them.
//! Frames from outside to each group are counted on every endpoint's interface:
//! - a group some endpoints joined reaches exactly those, as with the kernel's per-device filter;
//! - link-local groups (224.0.0.1) reach every endpoint, as with the kernel (every endpoint is in 224.0.0.1);
//! - a member that leaves gets no more, the other members still do;
//! - a group none of the network's endpoints is in reaches every endpoint with xlan (a snooping bridge's
//!   unregistered multicast) and none with the kernel (whose filter is the device's own address list, which xlan
//!   cannot see): the one difference, asserted as such;
//! - `xlan mdb show` lists the memberships, and a new endpoint given a removed one's slot inherits none of them.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use serde_json::Value;
use xlan_lib::datapath::{maps::Tables, pins::PinDir};
use xlan_tests::{counters::EndpointCounters, dot1q, link, unique_prefix, Netns, XlanHost};

const ENDPOINTS: usize = 4;
/// Frames sent to each group.
const FRAMES: u64 = 200;
/// A group endpoints 0 and 1 join, and one nobody joins.
const JOINED: [u8; 4] = [239, 1, 1, 1];
const NOBODYS: [u8; 4] = [239, 2, 2, 2];
/// All hosts (link-local: never filtered by xlan; every IPv4 interface is in it).
const ALL_HOSTS: [u8; 4] = [224, 0, 0, 1];
/// Endpoint 0's extra IPv6 address, and the solicited-node group it brings (ff02::1:ff00:1).
const ADDRESS_V6: &str = "fd00:1::1:0:1";
const SOLICITED_NODE: [u8; 16] = [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 1];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Maker {
    Kernel,
    Xlan,
}

/// A host with parent `uplink` (its peer `wire` in `outside`) and endpoints `if0`..`if3`, each in a namespace of
/// its own (a group is joined per namespace and interface), made by the kernel's macvlan or by xlan.
struct Lab {
    // Dropped first: deletes the network while the namespaces still exist.
    xlan: Option<XlanHost>,
    endpoints: Vec<Netns>,
    outside: Netns,
    host: Netns,
}

impl Lab {
    fn build(maker: Maker) -> Result<Lab> {
        let prefix = unique_prefix();
        let (host, outside) = Netns::host_and_outside(&prefix)?;
        let endpoints = Netns::create_numbered(&prefix, "e", ENDPOINTS as u8)?;
        link::up(&outside, "wire")?;
        link::up(&host, "uplink")?;
        let mut lab = Lab { xlan: None, endpoints, outside, host };
        if maker == Maker::Xlan {
            let mut xlan = XlanHost::new(&lab.host)?;
            xlan.create_network("lan", &["--driver", "macvlan", "--parent", "uplink"])?;
            lab.xlan = Some(xlan);
        }
        for n in 0..ENDPOINTS {
            lab.add_endpoint(maker, n)?;
        }
        Ok(lab)
    }

    fn add_endpoint(&mut self, maker: Maker, n: usize) -> Result<()> {
        let netns = &self.endpoints[n];
        let ifname = format!("if{n}");
        match maker {
            Maker::Kernel => {
                link::add_macvlan(&self.host, "uplink", "bridge", netns, &ifname)?;
                link::up(netns, &ifname)?;
            }
            Maker::Xlan => {
                let xlan = self.xlan.as_ref().context("not an xlan lab")?;
                xlan.run(&["endpoint", "add", "lan", "--netns", netns.name(), "--ifname", &ifname])?;
            }
        }
        Ok(())
    }

    fn ip(&self, n: usize, args: &[&str]) -> Result<()> {
        self.endpoints[n].ip(args).map(drop)
    }

    /// `count` frames from outside to IPv4 group `group` (a UDP header is all the payload).
    fn send_v4(&self, group: [u8; 4]) -> Result<()> {
        let mut packet = vec![0x45, 0, 0, 28, 0, 0, 0x40, 0, 1, 17, 0, 0, 10, 9, 0, 100];
        packet.extend(group);
        packet.extend([0x30, 0x39, 0x30, 0x39, 0, 8, 0, 0]);
        let mac = [0x01, 0x00, 0x5e, group[1] & 0x7f, group[2], group[3]];
        self.send(mac, 0x0800, &packet)
    }

    fn send_v6(&self, group: [u8; 16]) -> Result<()> {
        let mut packet = vec![0x60, 0, 0, 0, 0, 8, 59, 1];
        packet.extend([0xfd, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x64]);
        packet.extend(group);
        packet.extend([0; 8]);
        let mac = [0x33, 0x33, group[12], group[13], group[14], group[15]];
        self.send(mac, 0x86dd, &packet)
    }

    fn send(&self, dst: [u8; 6], ether_type: u16, packet: &[u8]) -> Result<()> {
        let frame = dot1q::frame(dst, link::mac(&self.outside, "wire")?, None, ether_type, packet);
        dot1q::send_paced(&self.outside, "wire", frame, FRAMES, Some(20_000))?;
        Ok(())
    }

    fn received(&self) -> Result<Vec<u64>> {
        (0..ENDPOINTS)
            .map(|n| Ok(EndpointCounters::of_interface(&self.endpoints[n], &format!("if{n}"))?.rx_packets))
            .collect()
    }

    /// Frames each endpoint received while `send` ran, once the counts stopped growing. The endpoints' own
    /// chatter (MLD, neighbour discovery) is a few frames at most: counts are rounded down to whole `FRAMES`.
    fn delivered(&self, send: impl FnOnce(&Lab) -> Result<()>) -> Result<Vec<u64>> {
        let before = self.received()?;
        send(self)?;
        std::thread::sleep(Duration::from_millis(300));
        let after = self.received()?;
        Ok(before.iter().zip(after).map(|(b, a)| (a - b) / FRAMES * FRAMES).collect())
    }

    /// `xlan mdb show --json` as (group, endpoint ifname) pairs.
    fn mdb(&self) -> Result<Vec<(String, String)>> {
        let xlan = self.xlan.as_ref().context("not an xlan lab")?;
        let rows = xlan.mdb(None)?;
        Ok(rows
            .into_iter()
            .map(|(group, endpoint)| (group, endpoint.split('@').next().unwrap_or_default().into()))
            .collect())
    }

    /// Waits until `mdb show` has (`present`) or lacks each membership: reports go out a moment after a join.
    fn wait_mdb(&self, memberships: &[(&str, &str)], present: bool) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let rows = self.mdb()?;
            let has = |(group, ifname): &(&str, &str)| rows.iter().any(|(g, i)| g == group && i == ifname);
            if memberships.iter().all(|m| has(m) == present) {
                return Ok(());
            }
            let never = if present { "listed" } else { "stopped listing" };
            ensure!(Instant::now() < deadline, "mdb show never {never} {memberships:?}: {rows:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// What each endpoint gets, sent to: the joined group, a group nobody joined, all hosts, the solicited-node group
/// of endpoint 0's address.
struct Deliveries {
    joined: Vec<u64>,
    nobodys: Vec<u64>,
    all_hosts: Vec<u64>,
    solicited_node: Vec<u64>,
}

fn deliveries(lab: &Lab) -> Result<Deliveries> {
    Ok(Deliveries {
        joined: lab.delivered(|lab| lab.send_v4(JOINED))?,
        nobodys: lab.delivered(|lab| lab.send_v4(NOBODYS))?,
        all_hosts: lab.delivered(|lab| lab.send_v4(ALL_HOSTS))?,
        solicited_node: lab.delivered(|lab| lab.send_v6(SOLICITED_NODE))?,
    })
}

/// Endpoints 0 and 1 join `JOINED`; endpoint 0 gets `ADDRESS_V6`.
fn join(lab: &Lab) -> Result<()> {
    lab.ip(0, &["address", "add", "239.1.1.1/32", "dev", "if0", "autojoin"])?;
    lab.ip(1, &["address", "add", "239.1.1.1/32", "dev", "if1", "autojoin"])?;
    lab.ip(0, &["address", "add", &format!("{ADDRESS_V6}/64"), "dev", "if0", "nodad"])?;
    Ok(())
}

/// The scenario on one lab: deliveries after the joins, then after endpoint 0 left `JOINED`.
fn scenario(maker: Maker) -> Result<(Deliveries, Vec<u64>)> {
    let lab = Lab::build(maker)?;
    join(&lab)?;
    if maker == Maker::Xlan {
        lab.wait_mdb(&[("239.1.1.1", "if0"), ("239.1.1.1", "if1"), ("ff02::1:ff00:1", "if0")], true)?;
    } else {
        // The kernel's filter changes with the address list at once.
        std::thread::sleep(Duration::from_millis(200));
    }
    let joined = deliveries(&lab)?;
    lab.ip(0, &["address", "del", "239.1.1.1/32", "dev", "if0"])?;
    if maker == Maker::Xlan {
        lab.wait_mdb(&[("239.1.1.1", "if0")], false)?;
    }
    let after_leave = lab.delivered(|lab| lab.send_v4(JOINED))?;
    Ok((joined, after_leave))
}

/// Checks one traffic kind: every member got every frame, with the kernel (the reference: if it does not, the
/// scenario is wrong, not xlan) and with xlan; non-members got nothing from xlan. The kernel's filter is a hash of
/// the MAC salted per device (256 buckets), so one of its non-members may get a group's frames too; xlan's is exact.
fn check(what: &str, members: &[usize], kernel: &[u64], xlan: &[u64]) -> Result<()> {
    for n in 0..ENDPOINTS {
        if members.contains(&n) {
            ensure!(
                kernel[n] == FRAMES,
                "{what}: the kernel's member if{n} got {} of {FRAMES} ({kernel:?})",
                kernel[n]
            );
            ensure!(
                xlan[n] == FRAMES,
                "{what}: member if{n} got {} of {FRAMES} ({xlan:?}, kernel {kernel:?})",
                xlan[n]
            );
        } else {
            ensure!(xlan[n] == 0, "{what}: non-member if{n} got {} frames ({xlan:?}, kernel {kernel:?})", xlan[n]);
        }
    }
    Ok(())
}

#[test]
fn multicast_reaches_the_members_as_with_the_kernels_macvlan() -> Result<()> {
    let (kernel, kernel_after_leave) = scenario(Maker::Kernel)?;
    let (xlan, xlan_after_leave) = scenario(Maker::Xlan)?;
    check("239.1.1.1, joined by if0 and if1", &[0, 1], &kernel.joined, &xlan.joined)?;
    check("224.0.0.1, every endpoint's", &[0, 1, 2, 3], &kernel.all_hosts, &xlan.all_hosts)?;
    check("ff02::1:ff00:1, if0's address's", &[0], &kernel.solicited_node, &xlan.solicited_node)?;
    check("239.1.1.1 after if0 left", &[1], &kernel_after_leave, &xlan_after_leave)?;
    // The one difference: a group nobody joined goes to every endpoint (unregistered multicast).
    let all = vec![FRAMES; ENDPOINTS];
    ensure!(xlan.nobodys == all, "a group nobody joined: xlan delivered {:?}, expected every endpoint", xlan.nobodys);
    Ok(())
}

#[test]
fn a_group_whose_members_all_left_or_went_reaches_everyone_and_goes_and_a_reused_slot_inherits_nothing() -> Result<()> {
    let mut lab = Lab::build(Maker::Xlan)?;
    join(&lab)?;
    lab.wait_mdb(&[("239.1.1.1", "if0"), ("239.1.1.1", "if1"), ("ff02::1:ff00:1", "if0")], true)?;
    // Both members leave: nobody's group again.
    lab.ip(0, &["address", "del", "239.1.1.1/32", "dev", "if0"])?;
    lab.ip(1, &["address", "del", "239.1.1.1/32", "dev", "if1"])?;
    lab.wait_mdb(&[("239.1.1.1", "if0"), ("239.1.1.1", "if1")], false)?;
    let after_leaves = lab.delivered(|lab| lab.send_v4(JOINED))?;
    ensure!(after_leaves == vec![FRAMES; ENDPOINTS], "after every member left: {after_leaves:?}");

    // Endpoint 0 goes without leaving (its interface is deleted with it): its group has no member left.
    let xlan = lab.xlan.as_ref().context("xlan lab")?;
    ensure!(group_entries(&lab.host)?.contains(&SOLICITED_NODE), "ff02::1:ff00:1 has an entry while if0 is in it");
    xlan.run(&["endpoint", "del", "lan", "--netns", lab.endpoints[0].name(), "--ifname", "if0"])?;
    lab.wait_mdb(&[("ff02::1:ff00:1", "if0")], false)?;
    // Its groups without another member went with it: endpoints that come and go do not fill the map.
    ensure!(!group_entries(&lab.host)?.contains(&SOLICITED_NODE), "ff02::1:ff00:1 outlived its only member");
    // A new endpoint takes the freed slot (the lowest); it joined nothing, so it must inherit nothing.
    lab.add_endpoint(Maker::Xlan, 0)?;
    let rows = lab.mdb()?;
    ensure!(
        !rows.iter().any(|(group, ifname)| group == "ff02::1:ff00:1" && ifname == "if0"),
        "the new if0 inherited its slot's membership: {rows:?}"
    );
    let solicited = lab.delivered(|lab| lab.send_v6(SOLICITED_NODE))?;
    ensure!(solicited == vec![FRAMES; ENDPOINTS], "a group whose only member went: {solicited:?}");
    Ok(())
}

/// Memberships made before the datapath kept groups (an instance upgraded from an xlan without them): emptied here
/// behind xlan's back. Until they are known again, the group is nobody's and reaches everyone; `xlan upgrade` asks
/// every endpoint for its groups, and their answers make the filter exact again.
#[test]
fn upgrade_asks_the_endpoints_for_the_groups_they_joined_before() -> Result<()> {
    let lab = Lab::build(Maker::Xlan)?;
    join(&lab)?;
    let memberships = [("239.1.1.1", "if0"), ("239.1.1.1", "if1"), ("ff02::1:ff00:1", "if0")];
    lab.wait_mdb(&memberships, true)?;
    // A join's report is sent again within a second (robustness 2): only then are the endpoints silent.
    std::thread::sleep(Duration::from_secs(3));
    forget_every_group(&lab.host)?;
    // Nothing tells xlan the groups again by itself.
    std::thread::sleep(Duration::from_secs(2));
    ensure!(lab.mdb()?.is_empty(), "the groups were emptied: {:?}", lab.mdb()?);
    let unknown = lab.delivered(|lab| lab.send_v4(JOINED))?;
    ensure!(unknown == vec![FRAMES; ENDPOINTS], "an unknown group reaches everyone: {unknown:?}");

    let xlan = lab.xlan.as_ref().context("xlan lab")?;
    let upgraded: Value = serde_json::from_str(&xlan.run(&["upgrade", "--json"])?)?;
    ensure!(upgraded["queried_endpoints"] == ENDPOINTS, "upgrade asked {} endpoints", upgraded["queried_endpoints"]);
    lab.wait_mdb(&memberships, true)?;
    let known = lab.delivered(|lab| lab.send_v4(JOINED))?;
    ensure!(known == vec![FRAMES, FRAMES, 0, 0], "the members again, after upgrade: {known:?}");
    Ok(())
}

/// The groups of the instance's one network (`XLAN_GROUPS`, read through xlan's own tables), members or not, IPv4
/// mapped.
fn group_entries(host: &Netns) -> Result<Vec<[u8; 16]>> {
    let pins = PinDir::for_instance(host.name());
    let tables = Tables::new(&pins);
    let groups = tables.groups(only_network(&tables)?)?;
    Ok(groups.into_iter().map(|(key, _)| key.group).collect())
}

/// Deletes every group of the instance's one network behind xlan's back.
fn forget_every_group(host: &Netns) -> Result<()> {
    let pins = PinDir::for_instance(host.name());
    let tables = Tables::new(&pins);
    Ok(tables.delete_network_groups(only_network(&tables)?)?)
}

/// The id of the lab's one network.
fn only_network(tables: &Tables<'_>) -> Result<u32> {
    let networks = tables.networks()?;
    networks.first().map(|(id, _)| *id).context("the instance has no network")
}
