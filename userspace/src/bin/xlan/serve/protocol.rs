//! Docker's remote network driver protocol (libnetwork's `drivers/remote/api` and `docs/remote.md`): JSON bodies
//! POSTed to `/Plugin.Activate` and `/NetworkDriver.<Method>`, every answer carrying `Err` on failure. Only the
//! fields xlan reads or answers are here; serde ignores the rest, so newer dockerds' extra fields do no harm.
use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The media type of every answer.
pub const CONTENT_TYPE: &str = "application/vnd.docker.plugins.v1.2+json";

/// Where `docker network create -o KEY=VALUE` options arrive in `CreateNetwork`'s `Options`.
pub const GENERIC_OPTIONS: &str = "com.docker.network.generic";
/// `docker network create --internal`, in `CreateNetwork`'s `Options`.
pub const INTERNAL: &str = "com.docker.network.internal";

/// The methods xlan answers, by their path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Activate,
    GetCapabilities,
    CreateNetwork,
    DeleteNetwork,
    CreateEndpoint,
    EndpointOperInfo,
    Join,
    Leave,
    DeleteEndpoint,
    /// DiscoverNew, DiscoverDelete, ProgramExternalConnectivity, RevokeExternalConnectivity: nothing for a local
    /// driver whose endpoints need no NAT or port mapping to do.
    Acknowledge,
}

impl Method {
    pub fn from_path(path: &str) -> Option<Method> {
        Some(match path {
            "/Plugin.Activate" => Method::Activate,
            "/NetworkDriver.GetCapabilities" => Method::GetCapabilities,
            "/NetworkDriver.CreateNetwork" => Method::CreateNetwork,
            "/NetworkDriver.DeleteNetwork" => Method::DeleteNetwork,
            "/NetworkDriver.CreateEndpoint" => Method::CreateEndpoint,
            "/NetworkDriver.EndpointOperInfo" => Method::EndpointOperInfo,
            "/NetworkDriver.Join" => Method::Join,
            "/NetworkDriver.Leave" => Method::Leave,
            "/NetworkDriver.DeleteEndpoint" => Method::DeleteEndpoint,
            "/NetworkDriver.DiscoverNew"
            | "/NetworkDriver.DiscoverDelete"
            | "/NetworkDriver.ProgramExternalConnectivity"
            | "/NetworkDriver.RevokeExternalConnectivity" => Method::Acknowledge,
            _ => return None,
        })
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ActivateResponse {
    pub implements: Vec<&'static str>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CapabilitiesResponse {
    pub scope: &'static str,
    pub connectivity_scope: &'static str,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateNetworkRequest {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(default)]
    pub options: HashMap<String, Value>,
    #[serde(default, rename = "IPv4Data")]
    pub ipv4_data: Option<Vec<IpamData>>,
    #[serde(default, rename = "IPv6Data")]
    pub ipv6_data: Option<Vec<IpamData>>,
}

/// One pool Docker's IPAM gave the network: addresses as CIDR text (the gateway and aux addresses with the pool's
/// prefix length).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IpamData {
    #[serde(default)]
    pub pool: String,
    #[serde(default)]
    pub gateway: String,
    #[serde(default)]
    pub aux_addresses: Option<HashMap<String, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkRequest {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
}

/// CreateEndpoint, Join, Leave, DeleteEndpoint and EndpointOperInfo name the endpoint alike.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EndpointRequest {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    /// CreateEndpoint only: what Docker's IPAM (and `--ip`, `--ip6`, `--mac-address`) gave.
    #[serde(default)]
    pub interface: Option<EndpointInterface>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EndpointInterface {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub address: String,
    #[serde(default, rename = "AddressIPv6", skip_serializing_if = "String::is_empty")]
    pub address_ipv6: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac_address: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateEndpointResponse {
    /// Only what the driver chose itself (the MAC when Docker gave none): Docker refuses an answer that changes
    /// what it gave.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface: Option<EndpointInterface>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EndpointInfoResponse {
    pub value: HashMap<String, String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct JoinResponse {
    pub interface_name: InterfaceName,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub gateway: String,
    #[serde(rename = "GatewayIPv6", skip_serializing_if = "String::is_empty")]
    pub gateway_ipv6: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub static_routes: Vec<StaticRoute>,
    /// True: Docker adds no docker_gwbridge for containers with no gateway here.
    pub disable_gateway_service: bool,
}

/// The interface Docker moves into the container (`SrcName`, in the daemon's namespace) and names `DstPrefix`N.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InterfaceName {
    pub src_name: String,
    pub dst_prefix: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StaticRoute {
    pub destination: String,
    /// libnetwork's types.RouteType: 0 next hop, 1 connected (a route through the interface itself).
    pub route_type: u8,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub next_hop: String,
}

/// libnetwork's RouteType for a route through the interface itself.
pub const ROUTE_CONNECTED: u8 = 1;

/// A failure, as Docker shows it: `Error response from daemon: <Err>`.
#[derive(Debug, Serialize)]
pub struct ErrorResponse {
    #[serde(rename = "Err")]
    pub err: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The field names libnetwork's remote driver reads (drivers/remote/api): a misspelt one is silently ignored by
    /// Docker, so they are pinned here.
    #[test]
    fn answers_use_dockers_field_names() {
        let join = JoinResponse {
            interface_name: InterfaceName { src_name: "xl1t0".into(), dst_prefix: "eth".into() },
            gateway: "192.168.8.1".into(),
            gateway_ipv6: "fd00::1".into(),
            static_routes: vec![StaticRoute {
                destination: "0.0.0.0/0".into(),
                route_type: ROUTE_CONNECTED,
                next_hop: String::new(),
            }],
            disable_gateway_service: true,
        };
        assert_eq!(
            serde_json::to_value(join).unwrap(),
            serde_json::json!({
                "InterfaceName": { "SrcName": "xl1t0", "DstPrefix": "eth" },
                "Gateway": "192.168.8.1",
                "GatewayIPv6": "fd00::1",
                "StaticRoutes": [{ "Destination": "0.0.0.0/0", "RouteType": 1 }],
                "DisableGatewayService": true,
            })
        );
        let created = CreateEndpointResponse {
            interface: Some(EndpointInterface { mac_address: "02:00:00:00:00:01".into(), ..Default::default() }),
        };
        assert_eq!(
            serde_json::to_value(created).unwrap(),
            serde_json::json!({ "Interface": { "MacAddress": "02:00:00:00:00:01" } })
        );
        let capabilities = CapabilitiesResponse { scope: "local", connectivity_scope: "local" };
        assert_eq!(
            serde_json::to_value(capabilities).unwrap(),
            serde_json::json!({ "Scope": "local", "ConnectivityScope": "local" })
        );
        let request: EndpointRequest = serde_json::from_value(serde_json::json!({
            "NetworkID": "n", "EndpointID": "e",
            "Interface": { "Address": "10.0.0.2/24", "AddressIPv6": "fd00::2/64", "MacAddress": "" },
            "Options": {}
        }))
        .unwrap();
        let interface = request.interface.unwrap();
        assert_eq!((interface.address.as_str(), interface.address_ipv6.as_str()), ("10.0.0.2/24", "fd00::2/64"));
    }
}
