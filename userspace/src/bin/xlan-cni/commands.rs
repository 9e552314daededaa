//! ADD, DEL, CHECK, GC and STATUS over the library's operations. The plugin runs in the host's network namespace
//! (the runtime's), whose xlan instance it opens; an attachment's endpoint carries its container id, by which DEL,
//! CHECK and GC find it whatever CNI_NETNS says then (DEL may come without one, after the namespace is gone).
//!
//! Networks are made on the first ADD from the configuration and kept when their last endpoint goes (README, "CNI
//! plugin"): a later ADD with another configuration for the same network, or another network on the same master,
//! is refused (error 7) rather than changing what running containers use.
use ipnet::IpNet;
use serde_json::Value;
use xlan::{
    check::Finding,
    error::Error,
    host::{netlink::Netlink, netns::Netns},
    instance::Instance,
    model::{Endpoint, EndpointRef, Network, State},
    ops::{self, endpoint::AddEndpoint, network::CreateNetwork},
    session::Session,
};

use crate::{
    config::{self, NetConf},
    env::{Command, Params},
    errors::from_library,
    ipam::{For, Ipam},
    master,
    spec::{Code, Failure, Interface, IpConfig, Success, Version},
};

/// One run of the plugin: the parameters and the configuration, decoded and as given.
pub struct Invocation {
    pub params: Params,
    pub conf: NetConf,
    pub version: Version,
    /// The configuration as it came on stdin: a delegated plugin gets it whole.
    pub raw: Value,
}

impl Invocation {
    fn ipam(&self) -> Option<Ipam<'_>> {
        self.conf.ipam_plugin().map(|plugin| Ipam { plugin, config: &self.raw, params: &self.params })
    }
}

fn open_instance() -> Result<Instance, Failure> {
    Instance::open_current(None).map_err(from_library)
}

/// The instance's state without the consistency check: DEL, CHECK and GC must work on a broken instance too. The
/// lock is released before anything changes.
async fn state(instance: &Instance) -> Result<State, Failure> {
    Ok(Session::open_unchecked(instance).await.map_err(from_library)?.state)
}

fn find_attachment<'a>(state: &'a State, container_id: &str, ifname: &str) -> Option<(&'a Network, &'a Endpoint)> {
    state.find_container_endpoint(container_id, ifname)
}

pub async fn add(call: &Invocation) -> Result<Success, Failure> {
    let container_id = call.params.require_container_id()?;
    let ifname = call.params.require_ifname()?;
    let netns = call.params.require_netns()?;
    let mac = call.conf.mac(call.params.args.mac.as_deref())?;
    let previous = prev_result(&call.conf)?;
    let name = call.conf.network_name();
    let instance = open_instance()?;
    forget_vanished(&instance, call).await?;
    if let Some((network, _)) = find_attachment(&state(&instance).await?, container_id, ifname) {
        return Err(Failure::new(
            Code::InvalidEnvironment,
            format!(
                "CNI_CONTAINERID/CNI_IFNAME: container {container_id} already has {ifname} on network {}",
                network.name
            ),
        ));
    }
    let master = master::resolve(call.conf.master.as_deref())?;
    let request = call.conf.network_request(name.clone(), master)?;
    let (network, created) = ensure_network(&instance, request).await?;
    // From here on, a failure undoes what this ADD made: nothing half-made is left.
    let undo_network = || undo_network(&instance, &name, created);
    let ipam = call.ipam();
    let addressed = match &ipam {
        Some(ipam) => match ipam.add() {
            Ok(result) => result,
            Err(failure) => {
                // SPEC.md section 4: a delegated plugin that failed on ADD is called again with DEL.
                let _ = ipam.del(None);
                undo_network().await;
                return Err(failure);
            }
        },
        None => Success::default(),
    };
    let at = EndpointRef { netns: netns.to_string(), ifname: ifname.to_string() };
    let request = AddEndpoint {
        network: name.clone(),
        at: at.clone(),
        mac,
        addresses: addressed.ips.iter().map(|ip| ip.address).collect(),
    };
    let made = async {
        let endpoint = ops::endpoint::add_for_container(&instance, request, Some(container_id.to_string()))
            .await
            .map_err(from_library)?;
        if let Err(failure) = configure(&instance, &network.parent.name, &endpoint, call.conf.mtu, &addressed).await {
            let _ = ops::endpoint::del(&instance, &name, &at).await;
            return Err(failure);
        }
        Ok(endpoint)
    }
    .await;
    let endpoint = match made {
        Ok(endpoint) => endpoint,
        Err(failure) => {
            if let Some(ipam) = &ipam {
                let _ = ipam.del(None);
            }
            undo_network().await;
            return Err(failure);
        }
    };
    Ok(result(previous, &network, &endpoint, call.conf.mtu, addressed, &call.conf))
}

/// Deletes the network a failed ADD made (`created`), unless a concurrent ADD has put an endpoint on it meanwhile.
async fn undo_network(instance: &Instance, name: &str, created: bool) {
    if created {
        let _ = ops::network::delete_if_unused(instance, name).await;
    }
}

/// The network of the configuration: made now (true), or already there with the same settings (false).
async fn ensure_network(instance: &Instance, request: CreateNetwork) -> Result<(Network, bool), Failure> {
    // Two ADDs of a network's first containers may race to create it: the loser finds it made.
    for _ in 0..2 {
        let networks = ops::network::list(instance).await.map_err(from_library)?;
        if let Some(existing) = networks.iter().find(|n| n.name == request.name) {
            let differences = config::disagreements(existing, &request);
            if differences.is_empty() {
                return Ok((existing.clone(), false));
            }
            let hint = if existing.endpoints.is_empty() {
                format!(" (it has no endpoints: `xlan network delete {}` removes it)", existing.name)
            } else {
                String::new()
            };
            return Err(Failure::new(
                Code::InvalidConfig,
                format!("xlan network {} exists with other settings: {}{hint}", existing.name, differences.join(", ")),
            ));
        }
        match ops::network::create(instance, request.clone()).await {
            Ok(network) => return Ok((network, true)),
            Err(Error::NetworkExists(_)) => continue,
            Err(Error::ParentInUse { parent, network } | Error::ParentTaken { parent, network, .. }) => {
                return Err(Failure::new(
                    Code::InvalidConfig,
                    format!(
                        "master {parent} already carries xlan network {network} (another configuration?): a master \
                         takes one macvlan or ipvlan network"
                    ),
                ))
            }
            Err(error) => return Err(from_library(error)),
        }
    }
    Err(Failure::new(
        Code::TryAgainLater,
        format!("network {} is being created and deleted concurrently", request.name),
    ))
}

/// What the library does not do for an endpoint and a CNI attachment asks for: the MTU, and the IPAM result's
/// routes (through the gateway of the route's family when the route names none).
async fn configure(
    instance: &Instance,
    master: &str,
    endpoint: &Endpoint,
    mtu: Option<u32>,
    addressed: &Success,
) -> Result<(), Failure> {
    let netns = Netns::locate(&endpoint.at.netns).map_err(from_library)?;
    let inside = Netlink::connect_in(&netns).map_err(from_library)?;
    let link = inside.require_device(&endpoint.at.ifname).await.map_err(from_library)?;
    if let Some(mtu) = mtu {
        let limit = instance.netlink.require_device(master).await.map_err(from_library)?.mtu;
        if mtu > limit || mtu < 68 {
            return Err(Failure::new(Code::InvalidConfig, format!("mtu {mtu}: 68 up to the master's {limit}")));
        }
        inside.set_mtu(link.index, mtu).await.map_err(from_library)?;
        instance.netlink.set_mtu(endpoint.host.ifindex, mtu).await.map_err(from_library)?;
    }
    // The library's own routes stay (an ipvlan l3 endpoint has `default dev eth0`): a route to the same
    // destination is not added twice.
    let present = inside.routes(link.index).await.map_err(from_library)?;
    for route in addressed.routes.iter().filter(|r| !present.iter().any(|(dst, _)| *dst == r.dst)) {
        let gateway = route.gw.or_else(|| gateway_for(&addressed.ips, route.dst));
        inside.add_route(link.index, route.dst, gateway).await.map_err(from_library)?;
    }
    Ok(())
}

/// The gateway of the first address of `dst`'s family.
fn gateway_for(ips: &[IpConfig], dst: IpNet) -> Option<std::net::IpAddr> {
    ips.iter().filter(|ip| ip.address.addr().is_ipv4() == dst.addr().is_ipv4()).find_map(|ip| ip.gateway)
}

/// The ADD result: the previous plugin's (when chained) with this interface, its addresses and routes added; DNS
/// from the configuration, else from the IPAM plugin (as the reference plugins). The addresses are the endpoint's:
/// the IPAM plugin's, or, on a network made with the CLI with `--subnet` and a configuration without `ipam`, the
/// ones xlan's own IPAM gave (with their subnet's gateway).
fn result(
    previous: Option<Success>,
    network: &Network,
    endpoint: &Endpoint,
    mtu: Option<u32>,
    addressed: Success,
    conf: &NetConf,
) -> Success {
    let mut result = previous.unwrap_or_default();
    let index = result.interfaces.len();
    result.interfaces.push(Interface {
        name: endpoint.at.ifname.clone(),
        mac: Some(endpoint.mac.to_string()),
        mtu,
        sandbox: Some(endpoint.at.netns.clone()),
    });
    result.ips.extend(endpoint.addresses.iter().map(|address| {
        let delegated = addressed.ips.iter().find(|ip| ip.address == *address).and_then(|ip| ip.gateway);
        let own = || network.subnets.iter().find(|s| s.subnet.contains(&address.addr())).and_then(|s| s.gateway);
        IpConfig { address: *address, gateway: delegated.or_else(own), interface: Some(index) }
    }));
    result.routes.extend(addressed.routes);
    match &conf.dns {
        Some(dns) if !dns.is_empty() => result.dns = dns.clone(),
        _ if !addressed.dns.is_empty() => result.dns = addressed.dns,
        _ => {}
    }
    result
}

fn prev_result(conf: &NetConf) -> Result<Option<Success>, Failure> {
    conf.prev_result
        .clone()
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| Failure::new(Code::Decode, "cannot decode prevResult").details(e.to_string()))
}

/// DEL: the endpoint (found by container id and interface) and its IPAM allocation; both may be gone already.
pub async fn del(call: &Invocation) -> Result<(), Failure> {
    let container_id = call.params.require_container_id()?;
    let ifname = call.params.require_ifname()?;
    let instance = open_instance()?;
    let state = state(&instance).await?;
    if let Some((network, endpoint)) = find_attachment(&state, container_id, ifname) {
        match ops::endpoint::del(&instance, &network.name, &endpoint.at).await {
            // Removed meanwhile by a concurrent DEL or GC of the same attachment.
            Ok(_) | Err(Error::EndpointNotFound { .. } | Error::NetworkNotFound(_)) => {}
            Err(error) => return Err(from_library(error)),
        }
    }
    match call.ipam() {
        Some(ipam) => ipam.del(None),
        None => Ok(()),
    }
}

/// CHECK: the attachment is as ADD made it — the interface with its MAC, the prevResult's addresses and routes on
/// it, the endpoint in the datapath, and the IPAM plugin's own check.
pub async fn check(call: &Invocation) -> Result<(), Failure> {
    call.version.require(Version::V0_4_0, "CHECK")?;
    let container_id = call.params.require_container_id()?;
    let ifname = call.params.require_ifname()?;
    let netns = call.params.require_netns()?;
    let previous =
        prev_result(&call.conf)?.ok_or_else(|| Failure::new(Code::InvalidConfig, "CHECK needs a prevResult"))?;
    let failed = |msg: String| Failure::new(Code::CheckFailed, msg);
    let instance = open_instance()?;
    let state = state(&instance).await?;
    let (network, endpoint) = find_attachment(&state, container_id, ifname)
        .ok_or_else(|| failed(format!("container {container_id} has no xlan interface {ifname}")))?;
    if let Some(ipam) = call.ipam() {
        ipam.check()?;
    }
    let namespace = Netns::locate(netns).map_err(from_library)?;
    let inside = Netlink::connect_in(&namespace).map_err(from_library)?;
    let link = inside
        .device(ifname)
        .await
        .map_err(from_library)?
        .ok_or_else(|| failed(format!("interface {ifname} is gone from {netns}")))?;
    if link.mac != Some(endpoint.mac) {
        let now = link.mac.map_or_else(|| "none".to_string(), |mac| mac.to_string());
        return Err(failed(format!("interface {ifname} has MAC {now}, not {}", endpoint.mac)));
    }
    let index = previous
        .interfaces
        .iter()
        .position(|i| i.name == ifname && i.sandbox.as_deref() == Some(netns))
        .ok_or_else(|| failed(format!("prevResult has no interface {ifname} in {netns}")))?;
    if let Some(mac) = &previous.interfaces[index].mac {
        if !mac.eq_ignore_ascii_case(&endpoint.mac.to_string()) {
            return Err(failed(format!("interface {ifname} has MAC {}, prevResult says {mac}", endpoint.mac)));
        }
    }
    let addresses = inside.addresses(link.index).await.map_err(from_library)?;
    for ip in previous.ips.iter().filter(|ip| ip.interface == Some(index)) {
        if !addresses.contains(&ip.address) {
            return Err(failed(format!("address {} is missing from {ifname}", ip.address)));
        }
    }
    let routes = inside.routes(link.index).await.map_err(from_library)?;
    let families: Vec<bool> = addresses.iter().map(|a| a.addr().is_ipv4()).collect();
    for route in previous.routes.iter().filter(|r| families.contains(&r.dst.addr().is_ipv4())) {
        if !routes.iter().any(|(dst, _)| *dst == route.dst) {
            return Err(failed(format!("route to {} is missing from {ifname}", route.dst)));
        }
    }
    let findings = ops::doctor::examine(&instance).await.map_err(from_library)?.findings;
    if let Some(finding) = findings.iter().find(|f| concerns(f, &network.name)) {
        return Err(failed(format!("network {}: {finding}", network.name)));
    }
    Ok(())
}

/// Whether a finding of the doctor is about `network` (or about the whole instance).
fn concerns(finding: &Finding, network: &str) -> bool {
    match finding {
        Finding::MapsMissing | Finding::StateUnreadable { .. } => true,
        Finding::NetworkNotInDatapath { network: n }
        | Finding::NetworkConfigDiffers { network: n }
        | Finding::EntriesMissing { network: n, .. }
        | Finding::ParentMissing { network: n, .. }
        | Finding::ParentReplaced { network: n, .. }
        | Finding::ParentProgramsMissing { network: n, .. }
        | Finding::EndpointDeviceMissing { network: n, .. }
        | Finding::EndpointNotInDatapath { network: n, .. } => n == network,
        // Without the spreader every copy is made on the receiving CPU: slower, but everything is delivered.
        Finding::UnknownNetwork { .. } | Finding::UnknownPort { .. } | Finding::SpreaderMissing { .. } => false,
    }
}

/// GC: the network's endpoints whose attachment is not in `cni.dev/valid-attachments` go, with their IPAM
/// allocations; then the IPAM plugin's own GC. Goes on past failures and reports them all.
pub async fn gc(call: &Invocation) -> Result<(), Failure> {
    call.version.require(Version::V1_1_0, "GC")?;
    call.params.require_path()?;
    let name = call.conf.network_name();
    let instance = open_instance()?;
    let state = state(&instance).await?;
    let mut errors = Vec::new();
    if let Ok(network) = state.network(&name) {
        for endpoint in &network.endpoints {
            let Some(container_id) = endpoint.container_id.as_deref() else { continue };
            let valid = call
                .conf
                .valid_attachments
                .iter()
                .any(|a| a.container_id == container_id && a.ifname == endpoint.at.ifname);
            if !valid {
                errors.extend(release(&instance, call, network, endpoint, container_id).await.err());
            }
        }
    }
    if let Some(ipam) = call.ipam() {
        errors.extend(ipam.since_1_1(Command::Gc).err());
    }
    combine(errors)
}

/// Removes a stale attachment's endpoint and releases its addresses.
async fn release(
    instance: &Instance,
    call: &Invocation,
    network: &Network,
    endpoint: &Endpoint,
    container_id: &str,
) -> Result<(), Failure> {
    match ops::endpoint::del(instance, &network.name, &endpoint.at).await {
        Ok(_) | Err(Error::EndpointNotFound { .. }) => {}
        Err(error) => return Err(from_library(error)),
    }
    match call.ipam() {
        Some(ipam) => ipam.del(Some(For { container_id, ifname: &endpoint.at.ifname })),
        None => Ok(()),
    }
}

/// Endpoints of attachments whose namespace went away without a DEL (the kernel took their veths with it): they
/// would make every command refuse the instance as inconsistent, so ADD forgets them first — the configuration's
/// own network's with their IPAM allocations too.
async fn forget_vanished(instance: &Instance, call: &Invocation) -> Result<(), Failure> {
    let findings = ops::doctor::examine(instance).await.map_err(from_library)?.findings;
    let state = state(instance).await?;
    for finding in findings {
        let Finding::EndpointDeviceMissing { network, endpoint, .. } = finding else { continue };
        let Ok(network) = state.network(&network) else { continue };
        let Some(gone) = network.endpoint(&endpoint) else { continue };
        let Some(container_id) = gone.container_id.as_deref() else { continue };
        if network.name == call.conf.network_name() {
            release(instance, call, network, gone, container_id).await?;
        } else {
            ops::endpoint::del(instance, &network.name, &gone.at).await.map_err(from_library)?;
        }
    }
    Ok(())
}

/// STATUS: error 50 when the datapath cannot be loaded here; the IPAM plugin's STATUS when it has one.
pub async fn status(call: &Invocation) -> Result<(), Failure> {
    call.version.require(Version::V1_1_0, "STATUS")?;
    xlan::datapath::loader::probe().map_err(|error| {
        let failure = from_library(error);
        let details = match failure.details {
            Some(details) => format!("{}: {details}", failure.msg),
            None => failure.msg,
        };
        Failure::new(Code::NotAvailable, "the xlan datapath cannot be loaded").details(details)
    })?;
    match call.ipam() {
        Some(ipam) => ipam.since_1_1(Command::Status),
        None => Ok(()),
    }
}

/// Several failures as one: the first one's code and message, all of them in the details.
fn combine(errors: Vec<Failure>) -> Result<(), Failure> {
    let Some(first) = errors.first() else { return Ok(()) };
    let all: Vec<String> = errors.iter().map(|f| f.msg.clone()).collect();
    Err(Failure::new(first.code, first.msg.clone()).details(all.join("; ")))
}
