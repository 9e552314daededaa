//! The `xlan` binary: parses the command line, runs it, and turns any error into one line on stderr with
//! exit status 1.
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;
use xlan::{
    cli::{Cli, Command, EndpointCommand, FdbCommand, MacaddrCommand, NetworkCommand, RouteCommand},
    endpoint, fdb,
    instance::Instance,
    ipvlan, macaddr, monitor, network, report,
};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) if !error.use_stderr() => {
            // --help and --version.
            let _ = error.print();
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("xlan: {}", one_line(&error.render().to_string()));
            return ExitCode::from(1);
        }
    };
    match run(cli) {
        Ok(output) => {
            print!("{output}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("xlan: error: {}", one_line(&format!("{error:#}")));
            ExitCode::from(1)
        }
    }
}

/// clap's multi-line usage errors folded into one line, without the "try --help" hint.
fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with("For more information"))
        .collect::<Vec<_>>()
        .join("; ")
}

fn run(cli: Cli) -> anyhow::Result<String> {
    // One thread: namespaces are per thread, and netlink sockets and setns calls must agree on it.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("tokio runtime")?;
    runtime.block_on(async {
        let instance = Instance::open(cli.netns.as_deref(), cli.state_dir.as_deref())?;
        Ok(execute(&instance, cli.command).await?)
    })
}

async fn execute(instance: &Instance, command: Command) -> xlan::Result<String> {
    match command {
        Command::Network(NetworkCommand::Create {
            name,
            driver,
            parent,
            mode,
            flag,
            host_access,
            parent_hook,
            vxlan,
        }) => {
            let vxlan_options = network::VxlanOptions {
                vni: vxlan.vni,
                local: vxlan.local,
                learning: vxlan.learning(),
                remotes: vxlan.remotes,
                group: vxlan.group,
                dstport: vxlan.dstport,
                ageing: vxlan.ageing,
            };
            let request = network::CreateRequest {
                name,
                driver,
                parent,
                mode,
                flag,
                host_access,
                parent_hook,
                vxlan: vxlan_options,
            };
            network::create(instance, request).await?;
            Ok(String::new())
        }
        Command::Network(NetworkCommand::Delete { name }) => {
            network::delete(instance, &name).await?;
            Ok(String::new())
        }
        Command::Network(NetworkCommand::List { json }) => {
            let state = instance.store()?.load()?;
            Ok(with_newline(report::network_list(&state, json)))
        }
        Command::Network(NetworkCommand::Show { name, json }) => {
            let state = instance.store()?.load()?;
            Ok(with_newline(report::network_show(state.network(&name)?, json)))
        }
        Command::Endpoint(EndpointCommand::Add { target, mac, ips }) => {
            let request =
                endpoint::AddRequest { network: target.network, netns: target.netns, ifname: target.ifname, mac, ips };
            endpoint::add(instance, request).await?;
            Ok(String::new())
        }
        Command::Endpoint(EndpointCommand::Del { target }) => {
            endpoint::del(instance, &target.network, &target.netns, &target.ifname).await?;
            Ok(String::new())
        }
        Command::Macaddr(command) => {
            let (network, change, mac) = match command {
                MacaddrCommand::Add { network, mac } => (network, macaddr::Change::Add, Some(mac)),
                MacaddrCommand::Del { network, mac } => (network, macaddr::Change::Del, Some(mac)),
                MacaddrCommand::Flush { network } => (network, macaddr::Change::Flush, None),
            };
            macaddr::change(instance, &network, change, mac.as_deref())?;
            Ok(String::new())
        }
        Command::Fdb(FdbCommand::Add { network, mac, dst }) => {
            fdb::add(instance, &network, &mac, dst).await?;
            Ok(String::new())
        }
        Command::Fdb(FdbCommand::Del { network, mac, dst }) => {
            fdb::del(instance, &network, &mac, dst).await?;
            Ok(String::new())
        }
        Command::Fdb(FdbCommand::Show { network, json }) => {
            let rows = fdb::rows(instance, network.as_deref())?;
            if json {
                Ok(with_newline(serde_json::to_string_pretty(&rows).expect("plain data serialises")))
            } else {
                Ok(fdb::rows_text(&rows))
            }
        }
        Command::Route(RouteCommand::Add { network, cidr, netns, ifname }) => {
            ipvlan::route_add(instance, &network, &cidr, &netns, &ifname)?;
            Ok(String::new())
        }
        Command::Route(RouteCommand::Del { network, cidr }) => {
            ipvlan::route_del(instance, &network, &cidr)?;
            Ok(String::new())
        }
        Command::Route(RouteCommand::Show { network, json }) => ipvlan::route_show(instance, &network, json),
        Command::Monitor { json } => {
            monitor::run(instance, json).await?;
            Ok(String::new())
        }
        Command::Stats { network, json } => {
            let state = instance.store()?.load()?;
            let rows = report::counters(instance, &state, network.as_deref())?;
            if json {
                Ok(with_newline(serde_json::to_string_pretty(&rows).expect("plain data serialises")))
            } else {
                Ok(report::counters_text(&rows))
            }
        }
    }
}

fn with_newline(mut text: String) -> String {
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}
