//! The plugin's configuration (one entry of a conflist, as the runtime derives it): the keys of the reference
//! macvlan/ipvlan plugins (`master`, `mode`, `mtu`, `mac`, `ipam`), xlan's own (`driver`, `flag`, `hostAccess`,
//! `parentHook`) and the VXLAN ones (`vni`, `remotes`, `group`, `local`, `dstport`, `learning`, `ageing`), and what
//! the runtime adds (`prevResult`, `runtimeConfig`, `cni.dev/valid-attachments`). Keys it does not know are left
//! alone, as the reference plugins do. JSON that does not decode is error 6; settings that make no network, 7.
use std::net::Ipv4Addr;

use serde::Deserialize;
use xlan::{
    ipam::IpamRequest,
    mac::Mac,
    model::{segment_name, Driver, Flood, IpvlanFlag, IpvlanMode, MacvlanMode, Network, ParentHook},
    ops::network::{CreateNetwork, DriverRequest, VxlanRequest},
};

use crate::spec::{Code, Dns, Failure, Version};

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetConf {
    pub cni_version: String,
    pub name: String,
    /// macvlan (default, as `"type": "macvlan"` would be), ipvlan or vxlan.
    pub driver: Option<String>,
    /// The parent link (a VXLAN network's underlay); default: the interface of the host's default route.
    pub master: Option<String>,
    pub mode: Option<String>,
    pub flag: Option<String>,
    pub host_access: Option<bool>,
    pub parent_hook: Option<String>,
    pub mtu: Option<u32>,
    pub mac: Option<String>,
    pub vni: Option<u32>,
    #[serde(default)]
    pub remotes: Vec<Ipv4Addr>,
    pub group: Option<Ipv4Addr>,
    pub local: Option<Ipv4Addr>,
    pub dstport: Option<u16>,
    pub learning: Option<bool>,
    pub ageing: Option<u32>,
    pub ipam: Option<IpamConf>,
    pub dns: Option<Dns>,
    pub prev_result: Option<serde_json::Value>,
    #[serde(default)]
    pub runtime_config: RuntimeConfig,
    /// GC's list of the attachments still in use (the issue's `cni.dev/attachments` is read as well).
    #[serde(rename = "cni.dev/valid-attachments", alias = "cni.dev/attachments", default)]
    pub valid_attachments: Vec<Attachment>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct IpamConf {
    /// The IPAM plugin's binary in CNI_PATH; none (an empty `ipam`) means no addresses, as the reference plugins.
    #[serde(rename = "type")]
    pub plugin: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct RuntimeConfig {
    /// The `mac` capability.
    pub mac: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Attachment {
    #[serde(rename = "containerID")]
    pub container_id: String,
    pub ifname: String,
}

fn invalid(msg: impl Into<String>) -> Failure {
    Failure::new(Code::InvalidConfig, msg)
}

/// Reads the configuration on stdin; returns it with its version.
pub fn parse(stdin: &[u8]) -> Result<(NetConf, Version), Failure> {
    let conf: NetConf = serde_json::from_slice(stdin)
        .map_err(|e| Failure::new(Code::Decode, "cannot decode the network configuration").details(e.to_string()))?;
    let version = Version::parse(&conf.cni_version)?;
    Ok((conf, version))
}

/// Only the version (VERSION's input, and the version of an error when the rest does not decode).
pub fn version_of(stdin: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Only {
        #[serde(rename = "cniVersion")]
        cni_version: String,
    }
    serde_json::from_slice::<Only>(stdin).ok().map(|only| only.cni_version)
}

impl NetConf {
    /// The xlan network of this configuration: the CNI network's name. xlan's names are 1-64 characters of letters,
    /// digits, '-', '_' and '.' (the library checks them on create: error 7), which the names runtimes make fit; a
    /// longer one is refused, not cut, so that two networks never share a truncated name.
    pub fn network_name(&self) -> String {
        self.name.clone()
    }

    pub fn ipam_plugin(&self) -> Option<&str> {
        self.ipam.as_ref().and_then(|ipam| ipam.plugin.as_deref()).filter(|p| !p.is_empty())
    }

    /// The network to create on `parent`, from the settings; keys of another driver are refused (error 7).
    pub fn network_request(&self, name: String, parent: String) -> Result<CreateNetwork, Failure> {
        let driver: Driver = word(self.driver.as_deref(), "driver")?.unwrap_or(Driver::Macvlan);
        let not_for = |key: &str| invalid(format!("\"{key}\" does not apply to a {driver} network"));
        let vxlan_keys = self.vni.is_some()
            || !self.remotes.is_empty()
            || self.group.is_some()
            || self.local.is_some()
            || self.dstport.is_some()
            || self.learning.is_some()
            || self.ageing.is_some();
        if driver != Driver::Vxlan && vxlan_keys {
            return Err(not_for("vni/remotes/group/local/dstport/learning/ageing"));
        }
        if driver != Driver::Ipvlan && self.flag.is_some() {
            return Err(not_for("flag"));
        }
        if driver != Driver::Macvlan && self.host_access.is_some() {
            return Err(not_for("hostAccess"));
        }
        let driver = match driver {
            Driver::Macvlan => DriverRequest::Macvlan {
                mode: word::<MacvlanMode>(self.mode.as_deref(), "mode")?.unwrap_or_default(),
                host_access: self.host_access.unwrap_or(false),
            },
            Driver::Ipvlan => DriverRequest::Ipvlan {
                mode: word::<IpvlanMode>(self.mode.as_deref(), "mode")?.unwrap_or_default(),
                flag: word::<IpvlanFlag>(self.flag.as_deref(), "flag")?.unwrap_or_default(),
            },
            Driver::Vxlan => {
                if self.mode.is_some() {
                    return Err(not_for("mode"));
                }
                let vni = self.vni.ok_or_else(|| invalid("a vxlan network needs \"vni\""))?;
                let flood = Flood::new(self.group, self.remotes.clone())
                    .map_err(|_| invalid("\"remotes\" and \"group\" exclude each other"))?;
                DriverRequest::Vxlan(VxlanRequest {
                    vni,
                    local: self.local,
                    flood,
                    dstport: self.dstport,
                    learning: self.learning,
                    ageing: self.ageing,
                })
            }
        };
        let hook = word::<ParentHook>(self.parent_hook.as_deref(), "parentHook")?;
        // Addresses come from the delegated IPAM plugin, per endpoint: the xlan network has no subnets of its own.
        Ok(CreateNetwork { name, parent, vlan: None, hook, driver, ipam: IpamRequest::default() })
    }

    /// The container interface's MAC: runtimeConfig.mac, else CNI_ARGS MAC=, else the config's `mac` (the order
    /// of the reference macvlan plugin); none: xlan picks one.
    pub fn mac(&self, from_args: Option<&str>) -> Result<Option<Mac>, Failure> {
        let (text, source) = match (&self.runtime_config.mac, from_args, &self.mac) {
            (Some(mac), _, _) => (mac.as_str(), "runtimeConfig.mac"),
            (None, Some(mac), _) => (mac, "CNI_ARGS MAC"),
            (None, None, Some(mac)) => (mac.as_str(), "mac"),
            (None, None, None) => return Ok(None),
        };
        let code = if source == "CNI_ARGS MAC" { Code::InvalidEnvironment } else { Code::InvalidConfig };
        text.parse::<Mac>().map(Some).map_err(|e| Failure::new(code, format!("{source}: {e}")))
    }
}

/// An enum setting in xlan's words (the ones the CLI and Docker's options use).
fn word<T: std::str::FromStr<Err = xlan::Error>>(text: Option<&str>, key: &str) -> Result<Option<T>, Failure> {
    text.map(|text| text.parse::<T>().map_err(|e| invalid(format!("\"{key}\": {e}")))).transpose()
}

/// How an existing network differs from what a configuration asks for (empty: it is that configuration's network).
pub fn disagreements(existing: &Network, wanted: &CreateNetwork) -> Vec<String> {
    let mut found = Vec::new();
    let mut differ = |what: &str, have: String, want: String| {
        if have != want {
            found.push(format!("{what} {have} (asked: {want})"));
        }
    };
    differ("master", existing.parent.to_string(), segment_name(&wanted.parent, wanted.vlan));
    differ("driver", existing.driver_kind().to_string(), wanted.driver.kind().to_string());
    if let Some(hook) = wanted.hook {
        differ("parentHook", existing.hook.to_string(), hook.to_string());
    }
    match (&wanted.driver, &existing.driver) {
        (DriverRequest::Macvlan { mode, host_access }, xlan::model::DriverSettings::Macvlan(have)) => {
            differ("mode", have.mode.to_string(), mode.to_string());
            differ("hostAccess", have.host_access.to_string(), host_access.to_string());
        }
        (DriverRequest::Ipvlan { mode, flag }, xlan::model::DriverSettings::Ipvlan(have)) => {
            differ("mode", have.mode.to_string(), mode.to_string());
            differ("flag", have.flag.to_string(), flag.to_string());
        }
        (DriverRequest::Vxlan(want), xlan::model::DriverSettings::Vxlan(have)) => {
            differ("vni", have.vni.to_string(), want.vni.to_string());
            differ("flooding", flooding(&have.flood), flooding(&want.flood));
            if let Some(local) = want.local {
                differ("local", have.local.to_string(), local.to_string());
            }
            if let Some(port) = want.dstport {
                differ("dstport", have.dstport.to_string(), port.to_string());
            }
            if let Some(learning) = want.learning {
                differ("learning", have.learning.to_string(), learning.to_string());
            }
            if let Some(ageing) = want.ageing {
                differ("ageing", have.ageing.to_string(), ageing.to_string());
            }
        }
        // A different driver was reported above.
        _ => {}
    }
    found
}

/// A VXLAN network's flooding in the configuration's words, remotes in order and once each.
fn flooding(flood: &Flood) -> String {
    match flood {
        Flood::Group(group) => format!("group {group}"),
        Flood::Remotes(remotes) => {
            let mut remotes = remotes.clone();
            remotes.sort();
            remotes.dedup();
            let remotes: Vec<String> = remotes.iter().map(ToString::to_string).collect();
            format!("remotes [{}]", remotes.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(json: &str) -> NetConf {
        parse(json.as_bytes()).unwrap().0
    }

    #[test]
    fn reference_keys_make_a_network_request() {
        let c = conf(
            r#"{"cniVersion":"1.0.0","name":"lan10","type":"xlan","master":"eth0","mode":"private",
            "ipam":{"type":"host-local"},"unknownKey":true}"#,
        );
        let request = c.network_request(c.network_name(), "eth0".into()).unwrap();
        assert!(matches!(request.driver, DriverRequest::Macvlan { mode: MacvlanMode::Private, host_access: false }));
        assert_eq!(c.ipam_plugin(), Some("host-local"));
        let ipvlan = conf(r#"{"cniVersion":"0.4.0","name":"n","type":"xlan","driver":"ipvlan","mode":"l3"}"#);
        let request = ipvlan.network_request("n".into(), "eth0".into()).unwrap();
        assert!(matches!(request.driver, DriverRequest::Ipvlan { mode: IpvlanMode::L3, flag: IpvlanFlag::Bridge }));
    }

    #[test]
    fn bad_settings_are_invalid_config_and_bad_json_a_decode_error() {
        for bad in [
            r#"{"cniVersion":"1.0.0","name":"n","type":"xlan","mode":"l3"}"#,
            r#"{"cniVersion":"1.0.0","name":"n","type":"xlan","vni":5}"#,
            r#"{"cniVersion":"1.0.0","name":"n","type":"xlan","driver":"vxlan"}"#,
            r#"{"cniVersion":"1.0.0","name":"n","type":"xlan","driver":"bridge"}"#,
        ] {
            let c = conf(bad);
            assert_eq!(c.network_request("n".into(), "eth0".into()).unwrap_err().code, Code::InvalidConfig, "{bad}");
        }
        assert_eq!(parse(b"{").unwrap_err().code, Code::Decode);
        assert_eq!(
            parse(br#"{"cniVersion":"9.9.9","name":"n","type":"xlan"}"#).unwrap_err().code,
            Code::IncompatibleVersion
        );
    }

    #[test]
    fn gc_reads_the_valid_attachments() {
        let c = conf(
            r#"{"cniVersion":"1.1.0","name":"n","type":"xlan",
            "cni.dev/valid-attachments":[{"containerID":"c1","ifname":"eth0"}]}"#,
        );
        assert_eq!(c.valid_attachments, vec![Attachment { container_id: "c1".into(), ifname: "eth0".into() }]);
        let c = conf(r#"{"cniVersion":"1.1.0","name":"n","type":"xlan","cni.dev/attachments":[]}"#);
        assert!(c.valid_attachments.is_empty());
    }

    #[test]
    fn the_mac_comes_from_runtime_config_then_args_then_the_config() {
        let c = conf(
            r#"{"cniVersion":"1.0.0","name":"n","type":"xlan","mac":"02:00:00:00:00:01",
            "runtimeConfig":{"mac":"02:00:00:00:00:03"}}"#,
        );
        assert_eq!(c.mac(Some("02:00:00:00:00:02")).unwrap().unwrap().to_string(), "02:00:00:00:00:03");
        let c = conf(r#"{"cniVersion":"1.0.0","name":"n","type":"xlan","mac":"02:00:00:00:00:01"}"#);
        assert_eq!(c.mac(Some("02:00:00:00:00:02")).unwrap().unwrap().to_string(), "02:00:00:00:00:02");
        assert_eq!(c.mac(None).unwrap().unwrap().to_string(), "02:00:00:00:00:01");
        assert_eq!(c.mac(Some("nope")).unwrap_err().code, Code::InvalidEnvironment);
    }
}
