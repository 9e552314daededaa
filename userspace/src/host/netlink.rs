//! Devices and addresses through rtnetlink. A connection belongs to the namespace its socket was opened in,
//! so one `Netlink` per namespace; the calls are then independent of the thread's current namespace.
use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    os::fd::{AsFd, AsRawFd},
};

use futures::TryStreamExt;
use ipnet::IpNet;
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteScope};
use netlink_packet_route::{
    address::{AddressAttribute, AddressFlags, AddressHeaderFlags},
    link::{InfoKind, LinkAttribute, LinkFlags, LinkInfo, LinkMessage},
    neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourExtFlags, NeighbourState},
};
use rtnetlink::{Handle, LinkUnspec, LinkVeth, RouteMessageBuilder};

use crate::{
    error::{Error, Result},
    host::netns::Netns,
    mac::Mac,
};

pub struct Netlink {
    handle: Handle,
    /// Where the socket lives, for error messages.
    pub place: String,
}

/// What xlan needs to know of a device.
#[derive(Clone, Debug)]
pub struct Device {
    pub index: u32,
    pub mac: Option<Mac>,
    pub mtu: u32,
    /// A veth: its frames arrive as skbs, so XDP on it gains nothing over TC and costs GRO and a copy.
    pub is_veth: bool,
    /// The loopback device: no LAN can hang off it.
    pub is_loopback: bool,
}

/// A main-table route of `message` through device `index`, as (destination, gateway).
fn route_through(message: &RouteMessage, index: u32) -> Option<(IpNet, Option<IpAddr>)> {
    let main = message.header.table == RouteHeader::RT_TABLE_MAIN
        || message
            .attributes
            .iter()
            .any(|a| matches!(a, RouteAttribute::Table(t) if *t == u32::from(RouteHeader::RT_TABLE_MAIN)));
    let through = message.attributes.iter().any(|a| matches!(a, RouteAttribute::Oif(oif) if *oif == index));
    if !main || !through {
        return None;
    }
    let ip = |address: &RouteAddress| match address {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    };
    let unspecified = match message.header.address_family {
        netlink_packet_route::AddressFamily::Inet6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    };
    let destination = message
        .attributes
        .iter()
        .find_map(|a| if let RouteAttribute::Destination(d) = a { ip(d) } else { None })
        .unwrap_or(unspecified);
    let gateway = message.attributes.iter().find_map(|a| if let RouteAttribute::Gateway(g) = a { ip(g) } else { None });
    let dst = IpNet::new(destination, message.header.destination_prefix_length).ok()?;
    Some((dst, gateway))
}

impl Netlink {
    /// A connection in the calling thread's namespace.
    pub fn connect(place: &str) -> Result<Self> {
        let (connection, handle, _) = rtnetlink::new_connection().map_err(|e| Error::io("open netlink socket", e))?;
        tokio::spawn(connection);
        Ok(Self { handle, place: place.into() })
    }

    /// A connection in `netns`.
    pub fn connect_in(netns: &Netns) -> Result<Self> {
        let _inside = netns.enter()?;
        Self::connect(&format!("netns {}", netns.name()))
    }

    pub async fn device(&self, name: &str) -> Result<Option<Device>> {
        let mut links = self.handle.link().get().match_name(name.to_string()).execute();
        match links.try_next().await {
            Ok(Some(message)) => {
                let mac = message.attributes.iter().find_map(|attr| match attr {
                    LinkAttribute::Address(bytes) => Mac::from_slice(bytes),
                    _ => None,
                });
                let mtu = message
                    .attributes
                    .iter()
                    .find_map(|attr| if let LinkAttribute::Mtu(mtu) = attr { Some(*mtu) } else { None })
                    .unwrap_or(1500);
                let is_veth = message.attributes.iter().any(|attr| {
                    matches!(attr, LinkAttribute::LinkInfo(infos)
                        if infos.iter().any(|info| matches!(info, LinkInfo::Kind(InfoKind::Veth))))
                });
                let is_loopback = message.header.flags.contains(LinkFlags::Loopback);
                Ok(Some(Device { index: message.header.index, mac, mtu, is_veth, is_loopback }))
            }
            Ok(None) => Ok(None),
            // The kernel answers ENODEV for an unknown name.
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Every device of the namespace: ifindex → name.
    pub async fn device_names(&self) -> Result<std::collections::HashMap<u32, String>> {
        let mut links = self.handle.link().get().execute();
        let mut names = std::collections::HashMap::new();
        while let Some(message) = links.try_next().await.map_err(Error::netlink("list devices"))? {
            let name = message.attributes.iter().find_map(|attr| match attr {
                LinkAttribute::IfName(name) => Some(name.clone()),
                _ => None,
            });
            if let Some(name) = name {
                names.insert(message.header.index, name);
            }
        }
        Ok(names)
    }

    /// The device, or a "does not exist" error naming the namespace.
    pub async fn require_device(&self, name: &str) -> Result<Device> {
        self.device(name).await?.ok_or_else(|| Error::NoSuchDevice { device: name.into(), place: self.place.clone() })
    }

    /// One `RTM_SETLINK` request.
    async fn set_link(&self, message: LinkMessage, what: String) -> Result<()> {
        self.handle.link().set(message).execute().await.map_err(Error::netlink(what))
    }

    pub async fn create_veth(&self, name: &str, peer: &str) -> Result<()> {
        self.handle
            .link()
            .add(LinkVeth::new(name, peer).build())
            .execute()
            .await
            .map_err(Error::netlink(format!("create veth pair {name}/{peer}")))?;
        Ok(())
    }

    pub async fn set_mac(&self, index: u32, mac: Mac) -> Result<()> {
        let message = LinkUnspec::new_with_index(index).address(mac.0.to_vec()).build();
        self.set_link(message, format!("set the MAC of device {index}")).await
    }

    pub async fn move_to(&self, index: u32, netns: &Netns) -> Result<()> {
        let message = LinkUnspec::new_with_index(index).setns_by_fd(netns.as_fd().as_raw_fd()).build();
        self.set_link(message, format!("move device {index} into netns {}", netns.name())).await
    }

    pub async fn rename(&self, index: u32, name: &str) -> Result<()> {
        let message = LinkUnspec::new_with_index(index).name(name.to_string()).build();
        self.set_link(message, format!("rename device {index} to {name}")).await
    }

    pub async fn set_mtu(&self, index: u32, mtu: u32) -> Result<()> {
        let message = LinkUnspec::new_with_index(index).mtu(mtu).build();
        self.set_link(message, format!("set the MTU of device {index}")).await
    }

    /// Every address of the device, with its prefix length.
    pub async fn addresses(&self, index: u32) -> Result<Vec<IpNet>> {
        let mut addresses = self.handle.address().get().set_link_index_filter(index).execute();
        let mut found = Vec::new();
        while let Some(message) =
            addresses.try_next().await.map_err(Error::netlink(format!("list the addresses of device {index}")))?
        {
            for attribute in &message.attributes {
                if let AddressAttribute::Address(ip) = attribute {
                    if let Ok(net) = IpNet::new(*ip, message.header.prefix_len) {
                        found.push(net);
                    }
                }
            }
        }
        Ok(found)
    }

    /// The device's first IPv4 address (a VXLAN network's default outer source).
    pub async fn first_ipv4(&self, index: u32) -> Result<Option<Ipv4Addr>> {
        let mut addresses = self.handle.address().get().set_link_index_filter(index).execute();
        while let Some(message) =
            addresses.try_next().await.map_err(Error::netlink(format!("list the addresses of device {index}")))?
        {
            for attribute in &message.attributes {
                if let AddressAttribute::Address(IpAddr::V4(ip)) = attribute {
                    return Ok(Some(*ip));
                }
            }
        }
        Ok(None)
    }

    /// Adds a neighbour entry the kernel resolves and keeps resolved itself (NTF_EXT_MANAGED, ≥ 5.16), so the
    /// datapath's FIB lookups find the next hop of a VTEP before any traffic went to it. Returns false when an
    /// entry for the address already exists (then it is someone else's, and stays).
    pub async fn add_managed_neighbour(&self, index: u32, ip: Ipv4Addr) -> Result<bool> {
        let mut request = self.handle.neighbours().add(index, IpAddr::V4(ip)).state(NeighbourState::None);
        request.message_mut().attributes.push(NeighbourAttribute::ExtFlags(NeighbourExtFlags::Managed));
        match request.execute().await {
            Ok(()) => Ok(true),
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::EEXIST => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// The link-layer address of `ip`'s neighbour entry on the device, once resolved.
    pub async fn neighbour_mac(&self, index: u32, ip: Ipv4Addr) -> Result<Option<Mac>> {
        let mut neighbours = self.handle.neighbours().get().execute();
        let mut found = None;
        while let Some(message) = neighbours.try_next().await.map_err(Error::netlink("list neighbours"))? {
            if message.header.ifindex != index || !is_neighbour_of(&message.attributes, ip) {
                continue;
            }
            found = message.attributes.iter().find_map(|attr| match attr {
                NeighbourAttribute::LinkLayerAddress(bytes) => Mac::from_slice(bytes),
                _ => None,
            });
        }
        Ok(found)
    }

    /// Deletes the neighbour entry for `ip` on the device; one that is gone is fine.
    pub async fn delete_neighbour(&self, index: u32, ip: Ipv4Addr) -> Result<()> {
        let mut neighbours = self.handle.neighbours().get().execute();
        while let Some(message) = neighbours.try_next().await.map_err(Error::netlink("list neighbours"))? {
            if message.header.ifindex == index && is_neighbour_of(&message.attributes, ip) {
                return match self.handle.neighbours().del(message).execute().await {
                    Ok(()) => Ok(()),
                    Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENOENT => Ok(()),
                    Err(e) => Err(e.into()),
                };
            }
        }
        Ok(())
    }

    /// Joins the multicast group on the device for as long as the address exists (IFA_F_MCAUTOJOIN, what
    /// `ip addr add GROUP/32 dev DEV autojoin` does), so switches that snoop IGMP deliver the group here.
    pub async fn join_group(&self, index: u32, group: Ipv4Addr) -> Result<()> {
        let mut request = self.handle.address().add(index, IpAddr::V4(group), 32);
        // rtnetlink's builder leaves IFA_LOCAL/IFA_ADDRESS out for a multicast address; the kernel needs them.
        let attributes = &mut request.message_mut().attributes;
        attributes.push(AddressAttribute::Local(IpAddr::V4(group)));
        attributes.push(AddressAttribute::Address(IpAddr::V4(group)));
        attributes.push(AddressAttribute::Flags(AddressFlags::Mcautojoin));
        match request.execute().await {
            Ok(()) => Ok(()),
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::EEXIST => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Leaves a group `join_group` joined.
    pub async fn leave_group(&self, index: u32, group: Ipv4Addr) -> Result<()> {
        let mut addresses =
            self.handle.address().get().set_link_index_filter(index).set_address_filter(IpAddr::V4(group)).execute();
        while let Some(message) =
            addresses.try_next().await.map_err(Error::netlink(format!("list group {group} on device {index}")))?
        {
            self.handle
                .address()
                .del(message)
                .execute()
                .await
                .map_err(Error::netlink(format!("leave group {group} on device {index}")))?;
        }
        Ok(())
    }

    /// Turns ARP off on the device (an ipvlan l3 endpoint: its neighbours all resolve to its own MAC).
    pub async fn set_noarp(&self, index: u32) -> Result<()> {
        let message = LinkUnspec::new_with_index(index).arp(false).build();
        self.set_link(message, format!("turn ARP off on device {index}")).await
    }

    /// `ip route add default dev DEV` (IPv4 or IPv6).
    /// `ip route add default via GATEWAY dev DEV` (IPv4 or IPv6).
    pub async fn add_default_route_via(&self, index: u32, gateway: IpAddr) -> Result<()> {
        let route = match gateway {
            IpAddr::V4(v4) => RouteMessageBuilder::<Ipv4Addr>::new().output_interface(index).gateway(v4).build(),
            IpAddr::V6(v6) => {
                RouteMessageBuilder::<std::net::Ipv6Addr>::new().output_interface(index).gateway(v6).build()
            }
        };
        self.handle
            .route()
            .add(route)
            .execute()
            .await
            .map_err(Error::netlink(format!("add a default route via {gateway} on device {index}")))
    }

    pub async fn add_default_route(&self, index: u32, ipv6: bool) -> Result<()> {
        let route = if ipv6 {
            RouteMessageBuilder::<std::net::Ipv6Addr>::new().output_interface(index).build()
        } else {
            RouteMessageBuilder::<Ipv4Addr>::new().output_interface(index).scope(RouteScope::Link).build()
        };
        self.handle
            .route()
            .add(route)
            .execute()
            .await
            .map_err(Error::netlink(format!("add a default route through device {index}")))
    }

    /// `ip route add DST [via GATEWAY] dev DEV` in the main table (a CNI IPAM result's routes). A gateway of the
    /// other family than DST is refused by the kernel.
    pub async fn add_route(&self, index: u32, dst: IpNet, gateway: Option<IpAddr>) -> Result<()> {
        let what = || format!("add route {dst} via {gateway:?} on device {index}");
        let mut builder = RouteMessageBuilder::<IpAddr>::new()
            .destination_prefix(dst.addr(), dst.prefix_len())
            .map_err(|e| Error::io(what(), std::io::Error::other(e.to_string())))?
            .output_interface(index);
        if let Some(gateway) = gateway {
            builder = builder.gateway(gateway).map_err(|e| Error::io(what(), std::io::Error::other(e.to_string())))?;
        }
        self.handle.route().add(builder.build()).execute().await.map_err(Error::netlink(what()))
    }

    /// The main table's routes through device `index` (IPv4 and IPv6): destination and gateway.
    pub async fn routes(&self, index: u32) -> Result<Vec<(IpNet, Option<IpAddr>)>> {
        let mut found = Vec::new();
        for family in [RouteMessageBuilder::<Ipv4Addr>::new().build(), RouteMessageBuilder::<Ipv6Addr>::new().build()] {
            let mut routes = self.handle.route().get(family).execute();
            while let Some(message) =
                routes.try_next().await.map_err(Error::netlink(format!("list the routes of device {index}")))?
            {
                if let Some(route) = route_through(&message, index) {
                    found.push(route);
                }
            }
        }
        Ok(found)
    }

    pub async fn set_up(&self, index: u32) -> Result<()> {
        let message = LinkUnspec::new_with_index(index).up().build();
        self.set_link(message, format!("bring device {index} up")).await
    }

    /// Adds an address; IPv6 ones skip duplicate address detection so the endpoint is usable at once
    /// (xlan hands out the addresses, as Docker does).
    pub async fn add_address(&self, index: u32, address: IpNet) -> Result<()> {
        let mut request = self.handle.address().add(index, address.addr(), address.prefix_len());
        if address.addr().is_ipv6() {
            request.message_mut().header.flags |= AddressHeaderFlags::Nodad;
        }
        request.execute().await.map_err(Error::netlink(format!("add address {address} to device {index}")))
    }

    /// Deletes a device; one that is already gone is fine (teardown is idempotent).
    pub async fn delete(&self, index: u32) -> Result<()> {
        match self.handle.link().del(index).execute().await {
            Ok(()) => Ok(()),
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

fn is_neighbour_of(attributes: &[NeighbourAttribute], ip: Ipv4Addr) -> bool {
    attributes.iter().any(|attr| matches!(attr, NeighbourAttribute::Destination(NeighbourAddress::Inet(d)) if *d == ip))
}
