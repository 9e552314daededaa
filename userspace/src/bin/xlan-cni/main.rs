//! xlan's CNI plugin: the third front end of the library (after the CLI and the Docker driver), run by container
//! runtimes as SPEC.md says — parameters in CNI_* variables, the configuration on stdin, the result or the spec's
//! error object on stdout, a non-zero exit on failure. It is installed as `xlan` in the runtime's plugin directory
//! (the name `"type": "xlan"` looks for); see the README's "CNI plugin".
mod commands;
mod config;
mod env;
mod errors;
mod ipam;
mod master;
mod spec;

use std::{
    io::{Read, Write},
    process::ExitCode,
};

use env::{Command, Params};
use spec::{Code, ErrorObject, Failure, Version, VersionInfo};

/// What a successful command writes: ADD its result, VERSION its versions, the others nothing.
enum Output {
    Result(Version, spec::Success),
    Versions(VersionInfo),
    Nothing,
}

fn main() -> ExitCode {
    let mut stdin = Vec::new();
    let read = std::io::stdin().read_to_end(&mut stdin);
    let outcome = match read {
        Ok(_) => run(&stdin),
        Err(e) => Err(Failure::new(Code::Io, "cannot read the configuration from stdin").details(e.to_string())),
    };
    let written = match &outcome {
        Ok(Output::Result(version, result)) => write_json(&result.versioned(*version)),
        Ok(Output::Versions(info)) => write_json(info),
        Ok(Output::Nothing) => Ok(()),
        Err(failure) => {
            // The error in the version the runtime spoke, else the newest.
            let version = config::version_of(&stdin).unwrap_or_else(|| Version::V1_1_0.as_str().into());
            write_json(&ErrorObject::new(&version, failure))
        }
    };
    if let Err(e) = written {
        eprintln!("xlan (CNI): cannot write the answer: {e}");
        return ExitCode::from(1);
    }
    if outcome.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn write_json(value: &impl serde::Serialize) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer(&mut stdout, value)?;
    stdout.write_all(b"\n")?;
    stdout.flush()
}

fn run(stdin: &[u8]) -> Result<Output, Failure> {
    let params = Params::from_env()?;
    if params.command == Command::Version {
        // The input's version is echoed; an input without one is answered as the newest version would be.
        let asked = config::version_of(stdin).unwrap_or_else(|| Version::V1_1_0.as_str().into());
        let supported = Version::ALL.iter().map(|v| v.as_str()).collect();
        return Ok(Output::Versions(VersionInfo { cni_version: asked, supported_versions: supported }));
    }
    let (conf, version) = config::parse(stdin)?;
    let raw = serde_json::from_slice(stdin)
        .map_err(|e| Failure::new(Code::Decode, "cannot decode the network configuration").details(e.to_string()))?;
    let call = commands::Invocation { params, conf, version, raw };
    // One thread: namespaces are per thread, and the library's netlink sockets and setns calls must agree on it.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new(Code::Internal, "cannot start the runtime").details(e.to_string()))?;
    runtime.block_on(async {
        match call.params.command {
            Command::Add => commands::add(&call).await.map(|result| Output::Result(version, result)),
            Command::Del => commands::del(&call).await.map(|()| Output::Nothing),
            Command::Check => commands::check(&call).await.map(|()| Output::Nothing),
            Command::Gc => commands::gc(&call).await.map(|()| Output::Nothing),
            Command::Status => commands::status(&call).await.map(|()| Output::Nothing),
            Command::Version => Ok(Output::Nothing),
        }
    })
}
