//! `docker network create` in xlan's words: the `-o` options (Docker's own — parent, macvlan_mode, ipvlan_mode,
//! ipvlan_flag — and xlan's), `--internal`, and the pools Docker's IPAM gave, turned into the library's
//! `CreateNetwork`. Every option is checked before anything is made, so a bad one leaves nothing behind.
use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr},
    str::FromStr,
};

use ipnet::IpNet;
use serde_json::Value;
use xlan::{
    ipam::IpamRequest,
    model::{AuxAddress, Driver, Flood, IpvlanFlag, IpvlanMode},
    ops::network::{CreateNetwork, DriverRequest, VxlanRequest},
};

use super::{
    internal,
    protocol::{CreateNetworkRequest, IpamData, GENERIC_OPTIONS, INTERNAL},
};

/// The options each driver takes, in the order a refusal lists them.
fn options_of(driver: Driver) -> &'static [&'static str] {
    match driver {
        Driver::Macvlan => &["parent", "macvlan_mode", "host_access"],
        Driver::Ipvlan => &["parent", "ipvlan_mode", "ipvlan_flag"],
        Driver::Vxlan => &["parent", "vni", "local", "remote", "group", "dstport", "learning", "ageing"],
    }
}

/// The xlan network a Docker network is: `dk` and the first 12 digits of its id (Docker's short id). Deterministic,
/// so that the mapping survives restarts of either daemon with nothing but xlan's own state, and short: xlan's
/// network names are at most 64 characters and show in `xlan network list`.
pub fn network_name(network_id: &str) -> String {
    let short: String = network_id.chars().take(12).collect();
    format!("dk{short}")
}

/// What to make for a Docker network.
#[derive(Debug)]
pub struct NetworkPlan {
    pub create: CreateNetwork,
    /// On a parent of its own that the daemon makes first (`internal.rs`).
    pub internal: bool,
}

/// The network to create for `request` on the driver `driver` (`name`: Docker's driver name, for messages).
pub fn create_network(driver: Driver, name: &str, request: &CreateNetworkRequest) -> Result<NetworkPlan, String> {
    let options = generic_options(&request.options)?;
    let allowed = options_of(driver);
    let mut keys: Vec<&String> = options.keys().collect();
    keys.sort();
    for key in keys {
        if !allowed.contains(&key.as_str()) {
            let owner = [Driver::Macvlan, Driver::Ipvlan, Driver::Vxlan]
                .into_iter()
                .find(|other| options_of(*other).contains(&key.as_str()));
            return Err(match owner {
                Some(owner) => format!("-o {key} is an option of {} networks, not of {name}", owner.word()),
                None => format!("unknown option -o {key}: {name} takes {}", allowed.join(", ")),
            });
        }
    }
    let network = network_name(&request.network_id);
    // No parent, or --internal (whose parent Docker's own drivers ignore too): a LAN of this host's containers.
    let internal =
        request.options.get(INTERNAL).is_some_and(|v| v.as_bool() == Some(true) || v.as_str() == Some("true"))
            || !options.contains_key("parent");
    let parent = match options.get("parent") {
        // As the library reads it: a link, or `eth0.10` (no such link) for VLAN 10 of eth0, tagged in the datapath.
        Some(value) if !internal => value.clone(),
        _ if driver == Driver::Vxlan => {
            return Err(format!("{name} needs -o parent=IFACE, its underlay (a VXLAN network cannot be internal)"))
        }
        _ => internal::parent_name(&network),
    };
    let driver = match driver {
        Driver::Macvlan => DriverRequest::Macvlan {
            mode: word(&options, "macvlan_mode")?.unwrap_or_default(),
            host_access: boolean(&options, "host_access")?.unwrap_or(false),
        },
        Driver::Ipvlan => DriverRequest::Ipvlan {
            mode: word::<IpvlanMode>(&options, "ipvlan_mode")?.unwrap_or_default(),
            flag: word::<IpvlanFlag>(&options, "ipvlan_flag")?.unwrap_or_default(),
        },
        Driver::Vxlan => DriverRequest::Vxlan(vxlan(&options)?),
    };
    let ipam = ipam(request.ipv4_data.iter().chain(&request.ipv6_data).flatten())?;
    Ok(NetworkPlan { create: CreateNetwork { name: network, parent, vlan: None, hook: None, driver, ipam }, internal })
}

fn vxlan(options: &HashMap<String, String>) -> Result<VxlanRequest, String> {
    let vni = number::<u32>(options, "vni")?.ok_or("an xlan vxlan network needs -o vni=VNI (1-16777215)")?;
    let group = parsed::<Ipv4Addr>(options, "group", "an IPv4 multicast address")?;
    let remotes = match options.get("remote") {
        Some(list) => list
            .split(',')
            .map(|remote| {
                remote.trim().parse::<Ipv4Addr>().map_err(|_| {
                    format!("-o remote={list}: \"{remote}\" is not an IPv4 address (remotes are comma-separated)")
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    let flood = Flood::new(group, remotes).map_err(|_| "-o remote and -o group exclude each other".to_string())?;
    Ok(VxlanRequest {
        vni,
        local: parsed(options, "local", "an IPv4 address")?,
        flood,
        dstport: number(options, "dstport")?,
        learning: boolean(options, "learning")?,
        ageing: number(options, "ageing")?,
    })
}

/// The `-o` options: Docker passes them as strings under `com.docker.network.generic`.
fn generic_options(options: &HashMap<String, Value>) -> Result<HashMap<String, String>, String> {
    let Some(generic) = options.get(GENERIC_OPTIONS) else { return Ok(HashMap::new()) };
    let Some(generic) = generic.as_object() else { return Ok(HashMap::new()) };
    generic
        .iter()
        .map(|(key, value)| match value {
            Value::String(text) => Ok((key.clone(), text.clone())),
            other => Ok((key.clone(), other.to_string())),
        })
        .collect()
}

/// A word of the library's (modes, flags), with its message naming the option.
fn word<T: FromStr<Err = xlan::Error>>(options: &HashMap<String, String>, key: &str) -> Result<Option<T>, String> {
    options.get(key).map(|value| value.parse::<T>().map_err(|e| format!("-o {key}={value}: {e}"))).transpose()
}

fn number<T: FromStr>(options: &HashMap<String, String>, key: &str) -> Result<Option<T>, String> {
    parsed(options, key, "a number in range")
}

fn parsed<T: FromStr>(options: &HashMap<String, String>, key: &str, what: &str) -> Result<Option<T>, String> {
    options
        .get(key)
        .map(|value| value.trim().parse::<T>().map_err(|_| format!("-o {key}={value}: not {what}")))
        .transpose()
}

/// A boolean as Docker's own options take them (Go's strconv.ParseBool).
fn boolean(options: &HashMap<String, String>, key: &str) -> Result<Option<bool>, String> {
    options
        .get(key)
        .map(|value| match value.as_str() {
            "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
            "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
            _ => Err(format!("-o {key}={value}: not a boolean (true or false)")),
        })
        .transpose()
}

/// The pools Docker's IPAM gave (with `--subnet`, `--gateway`, `--aux-address`; `--ip-range` stays Docker's: its
/// IPAM allocates from it and hands the addresses over).
fn ipam<'a>(pools: impl Iterator<Item = &'a IpamData>) -> Result<IpamRequest, String> {
    let mut request = IpamRequest::default();
    for pool in pools {
        let subnet = cidr(&pool.pool, "pool")?;
        request.subnets.push(subnet);
        if !pool.gateway.is_empty() {
            request.gateways.push(address(&pool.gateway, "gateway")?);
        }
        let mut aux: Vec<_> = pool.aux_addresses.iter().flatten().collect();
        aux.sort();
        for (name, text) in aux {
            request.aux_addresses.push(AuxAddress { name: name.clone(), address: address(text, "aux address")? });
        }
    }
    Ok(request)
}

fn cidr(text: &str, what: &str) -> Result<IpNet, String> {
    text.parse().map_err(|_| format!("Docker's IPAM gave a {what} xlan cannot read: {text}"))
}

/// An address Docker gives as CIDR text (the gateway, aux addresses, an endpoint's), or as a bare address.
pub fn address(text: &str, what: &str) -> Result<IpAddr, String> {
    match text.parse::<IpNet>() {
        Ok(net) => Ok(net.addr()),
        Err(_) => text.parse().map_err(|_| format!("Docker's IPAM gave a {what} xlan cannot read: {text}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(options: &[(&str, &str)]) -> CreateNetworkRequest {
        let generic: serde_json::Map<String, Value> =
            options.iter().map(|(k, v)| (k.to_string(), Value::String(v.to_string()))).collect();
        serde_json::from_value(serde_json::json!({
            "NetworkID": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "Options": { GENERIC_OPTIONS: generic },
            "IPv4Data": [{ "Pool": "192.168.8.0/24", "Gateway": "192.168.8.1/24",
                           "AuxAddresses": { "router": "192.168.8.2/24" } }],
        }))
        .unwrap()
    }

    #[test]
    fn options_become_the_librarys_request() {
        let made = create_network(
            Driver::Vxlan,
            "xlan-vxlan",
            &request(&[("parent", "eth0"), ("vni", "42"), ("remote", "10.0.0.3,10.0.0.4"), ("learning", "false")]),
        )
        .unwrap();
        assert!(!made.internal);
        let made = made.create;
        assert_eq!(made.name, "dk0123456789ab");
        assert_eq!(made.parent, "eth0");
        match made.driver {
            DriverRequest::Vxlan(v) => {
                assert_eq!(v.vni, 42);
                assert_eq!(v.flood, Flood::Remotes(vec!["10.0.0.3".parse().unwrap(), "10.0.0.4".parse().unwrap()]));
                assert_eq!(v.learning, Some(false));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(made.ipam.subnets, vec!["192.168.8.0/24".parse::<IpNet>().unwrap()]);
        assert_eq!(made.ipam.gateways, vec!["192.168.8.1".parse::<IpAddr>().unwrap()]);
        assert_eq!(made.ipam.aux_addresses[0].name, "router");
    }

    #[test]
    fn no_parent_is_an_internal_network_on_its_own_parent() {
        for driver in [Driver::Macvlan, Driver::Ipvlan] {
            let plan = create_network(driver, "xlan-x", &request(&[])).unwrap();
            assert!(plan.internal);
            assert_eq!(plan.create.parent, plan.create.name);
        }
    }

    #[test]
    fn bad_options_are_one_line_naming_the_option() {
        type Case<'a> = (Driver, &'a [(&'a str, &'a str)], &'a str);
        let cases: &[Case] = &[
            (Driver::Macvlan, &[("parent", "eth0"), ("macvlan_mode", "bridgy")], "-o macvlan_mode=bridgy: unknown"),
            (Driver::Macvlan, &[("parent", "eth0"), ("colour", "red")], "unknown option -o colour"),
            (Driver::Macvlan, &[("parent", "eth0"), ("vni", "4")], "-o vni is an option of vxlan networks"),
            (Driver::Ipvlan, &[("parent", "eth0"), ("ipvlan_mode", "l4")], "-o ipvlan_mode=l4"),
            (Driver::Vxlan, &[("parent", "eth0")], "needs -o vni"),
            (Driver::Vxlan, &[("vni", "1")], "a VXLAN network cannot be internal"),
            (Driver::Vxlan, &[("parent", "eth0"), ("vni", "x")], "-o vni=x: not a number"),
            (Driver::Vxlan, &[("parent", "eth0"), ("vni", "1"), ("remote", "a,b")], "-o remote=a,b"),
            (Driver::Macvlan, &[("parent", "eth0"), ("host_access", "yes please")], "-o host_access"),
        ];
        for (driver, options, expected) in cases {
            let error = create_network(*driver, "xlan-x", &request(options)).unwrap_err();
            assert!(error.contains(expected), "{options:?}: {error}");
            assert!(!error.contains('\n'), "{error}");
        }
    }
}
