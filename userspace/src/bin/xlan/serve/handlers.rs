//! What each request does: Docker's networks and endpoints as the library's. A Docker network is the xlan network
//! named by its id (`options::network_name`); a Docker endpoint is an endpoint of it whose `at` is
//! (Docker's endpoint id, "eth"), made by `ops::endpoint::add_for_runtime`: its interface waits in the host
//! namespace until Join hands it to Docker, which moves it into the container, names it ethN and sets the addresses
//! and routes Join answered. Nothing here calls Docker: everything needed later is in xlan's state.
use std::{collections::HashMap, net::IpAddr};

use ipnet::IpNet;
use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value;
use xlan::{
    driver::port::{self, DefaultRoute},
    instance::Instance,
    mac::Mac,
    model::{Driver, EndpointRef, Network},
    ops::{
        endpoint::{self, AddEndpoint},
        network,
    },
    Error,
};

use super::{
    errors, internal,
    options::{self, network_name},
    protocol::{
        ActivateResponse, CapabilitiesResponse, CreateEndpointResponse, CreateNetworkRequest, EndpointInfoResponse,
        EndpointInterface, EndpointRequest, InterfaceName, JoinResponse, Method, NetworkRequest, StaticRoute,
        ROUTE_CONNECTED,
    },
};

/// The interface name prefix inside containers, as Docker's own drivers.
const DST_PREFIX: &str = "eth";

/// One driver name's requests (xlan-macvlan, xlan-ipvlan, xlan-vxlan): the driver its networks are made with.
pub struct Handler<'a> {
    pub instance: &'a Instance,
    pub driver: Driver,
    /// Docker's name for the driver, for messages.
    pub name: &'a str,
}

/// A failed request: the one line Docker shows.
pub type Answer = Result<Value, String>;

impl Handler<'_> {
    /// Answers `method` with `body`'s request.
    pub async fn handle(&self, method: Method, body: &[u8]) -> Answer {
        match method {
            Method::Activate => reply(ActivateResponse { implements: vec!["NetworkDriver"] }),
            Method::GetCapabilities => reply(CapabilitiesResponse { scope: "local", connectivity_scope: "local" }),
            Method::CreateNetwork => self.create_network(parse(body)?).await,
            Method::DeleteNetwork => self.delete_network(parse(body)?).await,
            Method::CreateEndpoint => self.create_endpoint(parse(body)?).await,
            Method::EndpointOperInfo => self.endpoint_info(parse(body)?).await,
            Method::Join => self.join(parse(body)?).await,
            Method::DeleteEndpoint => self.delete_endpoint(parse(body)?).await,
            Method::Leave | Method::Acknowledge => Ok(Value::Object(Default::default())),
        }
    }

    async fn create_network(&self, request: CreateNetworkRequest) -> Answer {
        let plan = options::create_network(self.driver, self.name, &request)?;
        let name = plan.create.name.clone();
        if plan.internal {
            internal::make_parent(self.instance, &name).await.map_err(|e| self.phrase(&e))?;
        }
        if let Err(error) = network::create(self.instance, plan.create).await {
            if plan.internal {
                internal::remove_parent(self.instance, &name).await.map_err(|e| self.phrase(&e))?;
            }
            return Err(self.phrase(&error));
        }
        ok()
    }

    /// Idempotent: Docker may ask again for a network whose deletion it did not see complete.
    async fn delete_network(&self, request: NetworkRequest) -> Answer {
        let name = network_name(&request.network_id);
        let deleted = match network::delete(self.instance, &name).await {
            Ok(deleted) => Some(deleted),
            Err(Error::NetworkNotFound(_)) => None,
            Err(error) => return Err(self.phrase(&error)),
        };
        if deleted.is_some_and(|network| internal::is_internal(&network)) {
            internal::remove_parent(self.instance, &name).await.map_err(|e| self.phrase(&e))?;
        }
        ok()
    }

    async fn create_endpoint(&self, request: EndpointRequest) -> Answer {
        let given = request.interface.unwrap_or_default();
        let mut addresses = Vec::new();
        for text in [&given.address, &given.address_ipv6].into_iter().filter(|text| !text.is_empty()) {
            addresses
                .push(text.parse::<IpNet>().map_err(|_| format!("Docker gave an address xlan cannot read: {text}"))?);
        }
        let mac = match given.mac_address.as_str() {
            "" => None,
            text => Some(text.parse::<Mac>().map_err(|e| format!("--mac-address {text}: {e}"))?),
        };
        let add = AddEndpoint {
            network: network_name(&request.network_id),
            at: endpoint_ref(&request.endpoint_id),
            mac,
            addresses,
        };
        let made = endpoint::add_for_runtime(self.instance, add).await.map_err(|e| self.phrase(&e))?;
        let interface = given
            .mac_address
            .is_empty()
            .then(|| EndpointInterface { mac_address: made.mac.to_string(), ..Default::default() });
        reply(CreateEndpointResponse { interface })
    }

    async fn endpoint_info(&self, request: EndpointRequest) -> Answer {
        let (_, found) = self.find(&request).await?;
        let mut value = HashMap::new();
        value.insert("mac".to_string(), found.mac.to_string());
        value.insert("host_ifname".to_string(), found.host.ifname.clone());
        reply(EndpointInfoResponse { value })
    }

    async fn join(&self, request: EndpointRequest) -> Answer {
        let (network, found) = self.find(&request).await?;
        let src_name = found
            .placement
            .handed_over()
            .ok_or_else(|| format!("endpoint {} was not made for Docker", request.endpoint_id))?
            .to_string();
        let mut response = JoinResponse {
            interface_name: InterfaceName { src_name, dst_prefix: DST_PREFIX.into() },
            gateway: String::new(),
            gateway_ipv6: String::new(),
            static_routes: Vec::new(),
            disable_gateway_service: true,
        };
        for route in port::default_routes(&network, &found.addresses) {
            match route {
                // ipvlan l3: the parent routes for the endpoints, which reach everything through their own interface
                // (NOARP), as Docker's ipvlan l3 and the library's own endpoints.
                DefaultRoute::OnLink { ipv6 } => response.static_routes.push(StaticRoute {
                    destination: if ipv6 { "::/0" } else { "0.0.0.0/0" }.into(),
                    route_type: ROUTE_CONNECTED,
                    next_hop: String::new(),
                }),
                // An internal network has no way out: no gateway, as Docker's own drivers.
                DefaultRoute::Via(_) if internal::is_internal(&network) => {}
                DefaultRoute::Via(gateway @ IpAddr::V4(_)) => response.gateway = gateway.to_string(),
                DefaultRoute::Via(gateway) => response.gateway_ipv6 = gateway.to_string(),
            }
        }
        reply(response)
    }

    /// Idempotent, as DeleteNetwork.
    async fn delete_endpoint(&self, request: EndpointRequest) -> Answer {
        let at = endpoint_ref(&request.endpoint_id);
        match endpoint::del(self.instance, &network_name(&request.network_id), &at).await {
            Ok(_) | Err(Error::EndpointNotFound { .. } | Error::NetworkNotFound(_)) => ok(),
            Err(error) => Err(self.phrase(&error)),
        }
    }

    /// The network and endpoint a request names.
    async fn find(&self, request: &EndpointRequest) -> Result<(Network, xlan::model::Endpoint), String> {
        let network =
            network::show(self.instance, &network_name(&request.network_id)).await.map_err(|e| self.phrase(&e))?;
        let found = network.require_endpoint(&endpoint_ref(&request.endpoint_id)).map_err(|e| self.phrase(&e))?.clone();
        Ok((network, found))
    }

    fn phrase(&self, error: &Error) -> String {
        errors::phrase(error, self.name)
    }
}

/// The endpoint Docker's `endpoint_id` is, in xlan's state: no namespace xlan knows (Docker picks it at Join), so
/// the id stands in its place, and the name prefix for the interface.
pub fn endpoint_ref(endpoint_id: &str) -> EndpointRef {
    EndpointRef { netns: endpoint_id.to_owned(), ifname: DST_PREFIX.to_owned() }
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("xlan cannot read Docker's request: {e}"))
}

fn reply(response: impl Serialize) -> Answer {
    serde_json::to_value(response).map_err(|e| format!("xlan cannot write its answer: {e}"))
}

fn ok() -> Answer {
    Ok(Value::Object(Default::default()))
}
