//! Which link a network hangs off: the config's `master`, or (as the reference plugins) the interface of the host's
//! default route. A master named `LINK.VID` that is no link is VLAN VID of LINK, done in BPF (this kind of host has no
//! 8021q module), as the library reads `--parent eth0.10`.
use xlan::instance::Instance;

use crate::spec::{Code, Failure};

/// Where the network goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Master {
    /// The parent link in the host namespace.
    pub link: String,
    /// The 802.1Q VLAN on it, for a master like `eth0.10`.
    pub vlan: Option<u16>,
}

pub async fn resolve(instance: &Instance, named: Option<&str>) -> Result<Master, Failure> {
    let name = match named {
        Some(name) => name.to_string(),
        None => default_route_interface()?,
    };
    let exists = |link: &str| {
        let link = link.to_string();
        async move { instance.netlink.device(&link).await.map_err(crate::errors::from_library).map(|d| d.is_some()) }
    };
    if exists(&name).await? {
        return Ok(Master { link: name, vlan: None });
    }
    if let Some((link, vid)) = name.rsplit_once('.') {
        if let Ok(vlan) = vid.parse::<u16>() {
            if !(1..=datapath_common::MAX_VLAN_ID).contains(&vlan) {
                return Err(Failure::new(Code::InvalidConfig, format!("master {name}: VLAN {vid} is not 1-4094")));
            }
            if exists(link).await? {
                return Ok(Master { link: link.to_string(), vlan: Some(vlan) });
            }
        }
    }
    Err(Failure::new(Code::InvalidConfig, format!("master {name} does not exist in the host namespace")))
}

/// The interface of the IPv4 default route with the lowest metric in this thread's namespace.
fn default_route_interface() -> Result<String, Failure> {
    let table = std::fs::read_to_string("/proc/thread-self/net/route")
        .map_err(|e| Failure::new(Code::Io, "cannot read the routing table").details(e.to_string()))?;
    default_route_in(&table).ok_or_else(|| {
        Failure::new(Code::InvalidConfig, "no \"master\" given and the host namespace has no default route")
    })
}

/// /proc/net/route: `Iface Destination Gateway Flags RefCnt Use Metric Mask ...`, hex fields.
fn default_route_in(table: &str) -> Option<String> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let default = fields.get(1) == Some(&"00000000") && fields.get(7) == Some(&"00000000");
            let metric: u32 = fields.get(6)?.parse().ok()?;
            default.then(|| (metric, fields[0].to_string()))
        })
        .min()
        .map(|(_, iface)| iface)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_route_with_the_lowest_metric_wins() {
        let table = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                     up1\t0000000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
                     up2\t00000000\t0100000A\t0003\t0\t0\t200\t00000000\t0\t0\t0\n\
                     up3\t00000000\t0100000A\t0003\t0\t0\t100\t00000000\t0\t0\t0\n";
        assert_eq!(default_route_in(table).as_deref(), Some("up3"));
        assert_eq!(default_route_in("Iface\tDestination\n"), None);
    }
}
