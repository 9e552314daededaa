//! The `xlan` binary: parses the command line, turns it into the library's typed requests, runs them, renders the
//! results (`output`) and phrases any error as one line on stderr with exit status 1 (`errors`).
mod cli;
mod errors;
mod monitor;
mod output;
mod serve;

use std::process::ExitCode;

use clap::Parser as _;
use xlan::{
    error::Setting,
    instance::Instance,
    ipam::IpamRequest,
    model::{Driver, Flood, IpvlanMode, MacvlanMode},
    ops::{
        doctor,
        endpoint::{self, AddEndpoint},
        fdb,
        macaddr::{self, MacaddrChange},
        mdb,
        network::{self, CreateNetwork, DriverRequest, VxlanRequest},
        restore, route, stats, upgrade,
    },
};

use crate::{
    cli::{
        Cli, Command, EndpointCommand, FdbCommand, MacaddrCommand, MdbCommand, NetworkCommand, RouteCommand, VxlanArgs,
    },
    errors::CliError,
    output::Output,
};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) if !error.use_stderr() => {
            // --help and --version.
            output::write_stdout(&error.render().to_string());
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("xlan: {}", errors::one_line(&error.render().to_string()));
            return ExitCode::from(1);
        }
    };
    match run(cli) {
        Ok(output) => {
            output::write_stdout(&output.text);
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("xlan: error: {}", errors::phrase(&error));
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> Result<Output, CliError> {
    // One thread: namespaces are per thread, and netlink sockets and setns calls must agree on it.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| xlan::Error::io("start the tokio runtime", e))?;
    runtime.block_on(async {
        let mut instance = Instance::open(cli.netns.as_deref(), cli.state_dir.as_deref())?;
        if let Some(dir) = &cli.config_dir {
            instance = instance.with_config_dir(dir);
        }
        let instance = instance.with_lock_notice(|holder| {
            let holder = holder.map_or("another xlan command".to_string(), |pid| format!("PID {pid}"));
            eprintln!("xlan: waiting for {holder}, which holds this instance's state lock");
        });
        if let Command::Serve(args) = cli.command {
            if args.internal_parents {
                return serve::make_internal_parents(&instance).await.map(|()| Output::none()).map_err(CliError::Usage);
            }
            return serve::run(instance, args).await.map(|()| Output::none()).map_err(CliError::Usage);
        }
        execute(&instance, cli.command).await
    })
}

async fn execute(instance: &Instance, command: Command) -> Result<Output, CliError> {
    match command {
        Command::Network(NetworkCommand::Create {
            name,
            driver,
            parent,
            vlan,
            mode,
            flag,
            host_access,
            parent_hook,
            vxlan,
            ipam,
        }) => {
            let driver = driver_request(driver, mode.as_deref(), flag, host_access, vxlan)?;
            let ipam = IpamRequest {
                subnets: ipam.subnets,
                gateways: ipam.gateways,
                ip_ranges: ipam.ip_ranges,
                aux_addresses: ipam.aux_addresses,
            };
            network::create(instance, CreateNetwork { name, parent, vlan, hook: parent_hook, driver, ipam }).await?;
            Ok(Output::none())
        }
        Command::Network(NetworkCommand::Delete { name }) => {
            network::delete(instance, &name).await?;
            Ok(Output::none())
        }
        Command::Network(NetworkCommand::List { json }) => {
            Ok(output::network_list(&network::list(instance).await?, json))
        }
        Command::Network(NetworkCommand::Show { name, json }) => {
            Ok(output::network_show(&network::show(instance, &name).await?, json))
        }
        Command::Endpoint(EndpointCommand::Add { target, mac, ips }) => {
            let at = target.endpoint_ref();
            endpoint::add(instance, AddEndpoint { network: target.network, at, mac, addresses: ips }).await?;
            Ok(Output::none())
        }
        Command::Endpoint(EndpointCommand::Del { target }) => {
            endpoint::del(instance, &target.network, &target.endpoint_ref()).await?;
            Ok(Output::none())
        }
        Command::Macaddr(command) => {
            let (network, change) = match command {
                MacaddrCommand::Add { network, mac } => (network, MacaddrChange::Add(mac)),
                MacaddrCommand::Del { network, mac } => (network, MacaddrChange::Del(mac)),
                MacaddrCommand::Flush { network } => (network, MacaddrChange::Flush),
            };
            macaddr::change(instance, &network, change).await?;
            Ok(Output::none())
        }
        Command::Fdb(FdbCommand::Add { network, mac, dst }) => {
            let dst = dst.ok_or_else(|| CliError::Usage("fdb add needs --dst".into()))?;
            fdb::add(instance, &network, mac, dst).await?;
            Ok(Output::none())
        }
        Command::Fdb(FdbCommand::Del { network, mac, dst }) => {
            fdb::del(instance, &network, mac, dst).await?;
            Ok(Output::none())
        }
        Command::Mdb(MdbCommand::Show { network, json }) => {
            Ok(output::mdb_show(&mdb::show(instance, network.as_deref()).await?, json))
        }
        Command::Fdb(FdbCommand::Show { network, json }) => {
            Ok(output::fdb_show(&fdb::show(instance, network.as_deref()).await?, json))
        }
        Command::Route(RouteCommand::Add { network, cidr, netns, ifname }) => {
            route::add(instance, &network, cidr, xlan::model::EndpointRef { netns, ifname }).await?;
            Ok(Output::none())
        }
        Command::Route(RouteCommand::Del { network, cidr }) => {
            route::del(instance, &network, cidr).await?;
            Ok(Output::none())
        }
        Command::Route(RouteCommand::Show { network, json }) => {
            Ok(output::route_show(&route::show(instance, &network).await?, json))
        }
        Command::Monitor { json } => {
            monitor::run(instance, json).await?;
            Ok(Output::none())
        }
        Command::Stats { spread: true, json, .. } => Ok(output::spread(&stats::spread(instance).await?, json)),
        Command::Stats { network, json, .. } => {
            Ok(output::stats(&stats::endpoints(instance, network.as_deref()).await?, json))
        }
        Command::Restore { json } => Ok(output::restored(&restore::restore(instance).await?, json)),
        Command::Upgrade { json } => Ok(output::upgraded(&upgrade::upgrade(instance).await?, json)),
        Command::Serve(_) => unreachable!("`run` serves before it executes a command"),
        Command::Doctor { repair, json } => {
            let report = if repair { doctor::repair(instance).await? } else { doctor::examine(instance).await? };
            Ok(output::doctor(&report, repair, json))
        }
    }
}

/// The driver part of `network create`: the options that apply to the driver, each refused where it does not.
fn driver_request(
    driver: Driver,
    mode: Option<&str>,
    flag: Option<xlan::model::IpvlanFlag>,
    host_access: bool,
    vxlan: VxlanArgs,
) -> Result<DriverRequest, CliError> {
    let not_for = |setting| xlan::Error::NotForDriver { setting, driver };
    if driver != Driver::Macvlan && host_access {
        return Err(not_for(Setting::HostAccess).into());
    }
    if driver != Driver::Ipvlan && flag.is_some() {
        return Err(not_for(Setting::IpvlanFlag).into());
    }
    if driver != Driver::Vxlan {
        if let Some(setting) = vxlan.given().first() {
            return Err(not_for(*setting).into());
        }
    }
    Ok(match driver {
        Driver::Macvlan => DriverRequest::Macvlan { mode: parse_or_default::<MacvlanMode>(mode)?, host_access },
        Driver::Ipvlan => {
            DriverRequest::Ipvlan { mode: parse_or_default::<IpvlanMode>(mode)?, flag: flag.unwrap_or_default() }
        }
        Driver::Vxlan => {
            if mode.is_some() {
                return Err(not_for(Setting::Mode).into());
            }
            let vni = vxlan.vni.ok_or(xlan::Error::Missing { setting: Setting::Vni, driver })?;
            let learning = vxlan.learning();
            let flood = Flood::new(vxlan.group, vxlan.remotes)?;
            DriverRequest::Vxlan(VxlanRequest {
                vni,
                local: vxlan.local,
                flood,
                dstport: vxlan.dstport,
                learning,
                ageing: vxlan.ageing,
            })
        }
    })
}

fn parse_or_default<T: std::str::FromStr<Err = xlan::Error> + Default>(text: Option<&str>) -> Result<T, CliError> {
    Ok(text.map(str::parse).transpose()?.unwrap_or_default())
}

impl VxlanArgs {
    /// The VXLAN settings given on the command line.
    fn given(&self) -> Vec<Setting> {
        [
            (Setting::Vni, self.vni.is_some()),
            (Setting::Local, self.local.is_some()),
            (Setting::Remote, !self.remotes.is_empty()),
            (Setting::Group, self.group.is_some()),
            (Setting::Dstport, self.dstport.is_some()),
            (Setting::Learning, self.learning().is_some()),
            (Setting::Ageing, self.ageing.is_some()),
        ]
        .into_iter()
        .filter_map(|(setting, given)| given.then_some(setting))
        .collect()
    }
}
