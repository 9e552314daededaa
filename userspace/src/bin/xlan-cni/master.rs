//! Which link a network hangs off: the config's `master`, or (as the reference plugins) the interface of the host's
//! default route. The name goes to the library as it is: a master named `LINK.VID` that is no link is VLAN VID of
//! LINK there, done in BPF (this kind of host has no 8021q module), as `--parent eth0.10` is for the CLI.
use crate::spec::{Code, Failure};

/// The master's name: the one given, or the default route's interface.
pub fn resolve(named: Option<&str>) -> Result<String, Failure> {
    match named {
        Some(name) => Ok(name.to_string()),
        None => default_route_interface(),
    }
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
