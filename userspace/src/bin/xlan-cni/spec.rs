//! The CNI specification's side of the plugin: the versions it speaks, the error object with its well-known codes,
//! and the ADD result in the shape of each version (SPEC.md, section 5). The result is kept in the 1.0 shape (what a
//! 1.x IPAM plugin returns, and what a 0.3/0.4 one returns once its `version` keys are ignored) and rendered in the
//! version the runtime asked for.
use std::{fmt, net::IpAddr};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// The spec versions this plugin speaks, oldest first (VERSION lists them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    V0_3_1,
    V0_4_0,
    V1_0_0,
    V1_1_0,
}

impl Version {
    pub const ALL: [Version; 4] = [Version::V0_3_1, Version::V0_4_0, Version::V1_0_0, Version::V1_1_0];

    pub fn parse(text: &str) -> Result<Version, Failure> {
        Version::ALL.into_iter().find(|v| v.as_str() == text).ok_or_else(|| {
            let supported: Vec<_> = Version::ALL.iter().map(|v| v.as_str()).collect();
            Failure::new(Code::IncompatibleVersion, format!("CNI version {text:?} is not supported"))
                .details(format!("supported versions: {}", supported.join(", ")))
        })
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Version::V0_3_1 => "0.3.1",
            Version::V0_4_0 => "0.4.0",
            Version::V1_0_0 => "1.0.0",
            Version::V1_1_0 => "1.1.0",
        }
    }

    /// Refuses a command the version does not have (CHECK came with 0.4.0, GC and STATUS with 1.1.0).
    pub fn require(self, since: Version, command: &str) -> Result<(), Failure> {
        if self >= since {
            Ok(())
        } else {
            Err(Failure::new(
                Code::IncompatibleVersion,
                format!("config version {} does not allow {command} (it needs {})", self.as_str(), since.as_str()),
            ))
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error codes of SPEC.md ("Error"), and this plugin's own (100 and up).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    IncompatibleVersion = 1,
    UnsupportedField = 2,
    UnknownContainer = 3,
    InvalidEnvironment = 4,
    Io = 5,
    Decode = 6,
    InvalidConfig = 7,
    TryAgainLater = 11,
    NotAvailable = 50,
    /// xlan's state and its datapath disagree: `xlan doctor` says how.
    Inconsistent = 100,
    /// CHECK found the attachment not as ADD made it.
    CheckFailed = 101,
    /// What none of the above describes (libcni's ErrInternal).
    Internal = 999,
}

/// A failed command, as the spec's error object tells it (the version is added when it is written).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub code: Code,
    pub msg: String,
    pub details: Option<String>,
}

impl Failure {
    pub fn new(code: Code, msg: impl Into<String>) -> Self {
        Failure { code, msg: msg.into(), details: None }
    }

    pub fn details(mut self, details: impl Into<String>) -> Self {
        self.details = Some(details.into());
        self
    }
}

/// The error object on stdout.
#[derive(Debug, Serialize)]
pub struct ErrorObject<'a> {
    #[serde(rename = "cniVersion")]
    pub cni_version: &'a str,
    pub code: u32,
    pub msg: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<&'a str>,
}

impl<'a> ErrorObject<'a> {
    pub fn new(version: &'a str, failure: &'a Failure) -> Self {
        ErrorObject {
            cni_version: version,
            code: failure.code as u32,
            msg: &failure.msg,
            details: failure.details.as_deref(),
        }
    }
}

/// The VERSION answer.
#[derive(Debug, Serialize)]
pub struct VersionInfo {
    #[serde(rename = "cniVersion")]
    pub cni_version: String,
    #[serde(rename = "supportedVersions")]
    pub supported_versions: Vec<&'static str>,
}

/// A success result (ADD's output, a delegated IPAM plugin's, a `prevResult`), in the 1.0 shape.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Success {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<Interface>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<IpConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    /// Always written, `{}` when empty, as the reference plugins write it.
    #[serde(default)]
    pub dns: Dns,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Interface {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// The container's namespace path for interfaces inside it; absent for host interfaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IpConfig {
    pub address: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    /// Index into `interfaces` (absent in an IPAM plugin's result).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<usize>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Route {
    pub dst: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<IpAddr>,
    /// The 1.1 keys (mtu, advmss, priority, table, scope) passed through as given.
    #[serde(flatten)]
    pub more: serde_json::Map<String, serde_json::Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Dns {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

impl Dns {
    pub fn is_empty(&self) -> bool {
        self.nameservers.is_empty() && self.domain.is_none() && self.search.is_empty() && self.options.is_empty()
    }
}

/// The result as written for the runtime: 1.x as is; 0.3.x/0.4.0 with each IP's family as `version`.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Versioned<'a> {
    V1 {
        #[serde(rename = "cniVersion")]
        cni_version: &'static str,
        #[serde(flatten)]
        result: &'a Success,
    },
    V0 {
        #[serde(rename = "cniVersion")]
        cni_version: &'static str,
        #[serde(skip_serializing_if = "<[_]>::is_empty")]
        interfaces: &'a [Interface],
        #[serde(skip_serializing_if = "Vec::is_empty")]
        ips: Vec<IpConfigV0<'a>>,
        #[serde(skip_serializing_if = "<[_]>::is_empty")]
        routes: &'a [Route],
        dns: &'a Dns,
    },
}

#[derive(Debug, Serialize)]
pub struct IpConfigV0<'a> {
    /// "4" or "6".
    pub version: &'static str,
    #[serde(flatten)]
    pub ip: &'a IpConfig,
}

impl Success {
    pub fn versioned(&self, version: Version) -> Versioned<'_> {
        let cni_version = version.as_str();
        if version >= Version::V1_0_0 {
            return Versioned::V1 { cni_version, result: self };
        }
        let ips = self
            .ips
            .iter()
            .map(|ip| IpConfigV0 { version: if ip.address.addr().is_ipv4() { "4" } else { "6" }, ip })
            .collect();
        Versioned::V0 { cni_version, interfaces: &self.interfaces, ips, routes: &self.routes, dns: &self.dns }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Success {
        Success {
            interfaces: vec![Interface {
                name: "eth0".into(),
                mac: Some("02:00:00:00:00:01".into()),
                mtu: None,
                sandbox: Some("/run/netns/x".into()),
            }],
            ips: vec![IpConfig {
                address: "10.1.0.2/24".parse().unwrap(),
                gateway: Some("10.1.0.1".parse().unwrap()),
                interface: Some(0),
            }],
            routes: vec![Route { dst: "0.0.0.0/0".parse().unwrap(), gw: None, more: Default::default() }],
            dns: Dns::default(),
        }
    }

    #[test]
    fn results_take_the_shape_of_their_version() {
        let result = sample();
        let v1 = serde_json::to_value(result.versioned(Version::V1_0_0)).unwrap();
        assert_eq!(v1["cniVersion"], "1.0.0");
        assert!(v1["ips"][0].get("version").is_none());
        assert_eq!(v1["ips"][0]["interface"], 0);
        assert_eq!(v1["dns"], serde_json::json!({}));
        let v0 = serde_json::to_value(result.versioned(Version::V0_3_1)).unwrap();
        assert_eq!(v0["cniVersion"], "0.3.1");
        assert_eq!(v0["ips"][0]["version"], "4");
        assert_eq!(v0["ips"][0]["address"], "10.1.0.2/24");
        // Read back (as a prevResult would be), the version key is ignored.
        let back: Success = serde_json::from_value(v0).unwrap();
        assert_eq!(back, result);
    }

    #[test]
    fn versions_outside_the_list_are_incompatible() {
        assert_eq!(Version::parse("0.4.0").unwrap(), Version::V0_4_0);
        for bad in ["0.2.0", "1.2.0", "x"] {
            assert_eq!(Version::parse(bad).unwrap_err().code, Code::IncompatibleVersion, "{bad}");
        }
        assert!(Version::V0_3_1.require(Version::V0_4_0, "CHECK").is_err());
        assert!(Version::V1_1_0.require(Version::V1_1_0, "GC").is_ok());
    }
}
