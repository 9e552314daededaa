//! IPAM delegated to the plugin `ipam.type` names (host-local, static, dhcp), as SPEC.md section 4 says: found in
//! CNI_PATH, run with the same environment (the command, and the attachment when another one's is meant) and the
//! whole configuration on stdin, its stderr passed through, its error object passed on with its code.
//!
//! Debian's reference plugins (1.1.1) speak up to 1.0.0: a 1.1.0 configuration is handed to them as 1.0.0 when they
//! refuse its version (the two versions' results have one shape; a prevResult goes along as 1.0.0 too), so that one
//! conflist works with either.
use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command as Process, Stdio},
};

use serde::Deserialize;
use serde_json::Value;

use crate::{
    env::{Command, Params},
    spec::{Code, Failure, Success, Version},
};

/// One IPAM plugin and the configuration it is given.
pub struct Ipam<'a> {
    pub plugin: &'a str,
    pub config: &'a Value,
    pub params: &'a Params,
}

/// The attachment a delegated call is about, when it is not the runtime's own (GC releases others').
pub struct For<'a> {
    pub container_id: &'a str,
    pub ifname: &'a str,
}

#[derive(Deserialize)]
struct ErrorReply {
    code: u32,
    msg: String,
    details: Option<String>,
}

impl Ipam<'_> {
    pub fn add(&self) -> Result<Success, Failure> {
        let stdout = self.run(Command::Add, None)?;
        serde_json::from_slice(&stdout).map_err(|e| {
            Failure::new(Code::Decode, format!("cannot decode the result of IPAM plugin {}", self.plugin))
                .details(e.to_string())
        })
    }

    pub fn del(&self, attachment: Option<For<'_>>) -> Result<(), Failure> {
        self.run(Command::Del, attachment).map(drop)
    }

    pub fn check(&self) -> Result<(), Failure> {
        self.run(Command::Check, None).map(drop)
    }

    /// GC and STATUS are 1.1.0's: a plugin whose VERSION does not list 1.1.0 predates them and is not asked (Debian's
    /// 1.1.1 plugins would answer with an error about a missing container id).
    pub fn since_1_1(&self, command: Command) -> Result<(), Failure> {
        if !self.supports(Version::V1_1_0)? {
            return Ok(());
        }
        self.run_as(command, None, None).map(drop)
    }

    /// Whether the plugin's VERSION answer lists `version`.
    fn supports(&self, version: Version) -> Result<bool, Failure> {
        #[derive(Deserialize)]
        struct Versions {
            #[serde(rename = "supportedVersions")]
            supported_versions: Vec<String>,
        }
        let stdout = self.run_as(Command::Version, None, None)?;
        let answer: Versions = serde_json::from_slice(&stdout).map_err(|e| {
            Failure::new(Code::Decode, format!("cannot decode the VERSION answer of IPAM plugin {}", self.plugin))
                .details(e.to_string())
        })?;
        Ok(answer.supported_versions.iter().any(|v| v == version.as_str()))
    }

    fn run(&self, command: Command, attachment: Option<For<'_>>) -> Result<Vec<u8>, Failure> {
        match self.run_as(command, attachment.as_ref(), None) {
            Err(failure) if failure.code == Code::IncompatibleVersion && self.version() == Some(Version::V1_1_0) => {
                self.run_as(command, attachment.as_ref(), Some(Version::V1_0_0))
            }
            other => other,
        }
    }

    fn version(&self) -> Option<Version> {
        self.config.get("cniVersion").and_then(Value::as_str).and_then(|v| Version::parse(v).ok())
    }

    fn run_as(
        &self,
        command: Command,
        attachment: Option<&For<'_>>,
        version: Option<Version>,
    ) -> Result<Vec<u8>, Failure> {
        let binary = find(self.plugin, self.params.require_path()?)?;
        let mut config = self.config.clone();
        if let (Some(version), Some(object)) = (version, config.as_object_mut()) {
            object.insert("cniVersion".into(), Value::from(version.as_str()));
            // A prevResult is read in the configuration's version too.
            if let Some(previous) = object.get_mut("prevResult").and_then(Value::as_object_mut) {
                previous.insert("cniVersion".into(), Value::from(version.as_str()));
            }
        }
        let stdin = serde_json::to_vec(&config)
            .map_err(|e| Failure::new(Code::Internal, "cannot encode the IPAM configuration").details(e.to_string()))?;
        let mut process = Process::new(&binary);
        process
            .env("CNI_COMMAND", command.word())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(attachment) = attachment {
            process.env("CNI_CONTAINERID", attachment.container_id).env("CNI_IFNAME", attachment.ifname);
        }
        let io = |e: std::io::Error| {
            Failure::new(Code::Io, format!("cannot run IPAM plugin {}", binary.display())).details(e.to_string())
        };
        let mut child = process.spawn().map_err(io)?;
        if let Some(mut input) = child.stdin.take() {
            match input.write_all(&stdin) {
                // A plugin may answer without reading its stdin (host-local's VERSION does) and be gone already.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                written => written.map_err(io)?,
            }
        }
        let output = child.wait_with_output().map_err(io)?;
        if output.status.success() {
            return Ok(output.stdout);
        }
        let failure = match serde_json::from_slice::<ErrorReply>(&output.stdout) {
            Ok(reply) => Failure {
                code: code_of(reply.code),
                msg: format!("IPAM plugin {}: {}", self.plugin, reply.msg),
                details: reply.details.filter(|d| !d.is_empty()),
            },
            Err(_) => Failure::new(Code::Internal, format!("IPAM plugin {} failed ({})", self.plugin, output.status))
                .details(String::from_utf8_lossy(&output.stdout).into_owned()),
        };
        Err(failure)
    }
}

/// A delegated plugin's code, passed on as the nearest one this plugin speaks.
fn code_of(code: u32) -> Code {
    [
        Code::IncompatibleVersion,
        Code::UnsupportedField,
        Code::UnknownContainer,
        Code::InvalidEnvironment,
        Code::Io,
        Code::Decode,
        Code::InvalidConfig,
        Code::TryAgainLater,
        Code::NotAvailable,
    ]
    .into_iter()
    .find(|known| *known as u32 == code)
    .unwrap_or(Code::Internal)
}

/// The plugin's executable in the first CNI_PATH directory that has it.
fn find(plugin: &str, path: &[PathBuf]) -> Result<PathBuf, Failure> {
    if plugin.contains('/') {
        return Err(Failure::new(Code::InvalidConfig, format!("ipam type {plugin:?} is not a plugin name")));
    }
    path.iter().map(|dir| dir.join(plugin)).find(|candidate| is_executable(candidate)).ok_or_else(|| {
        let dirs: Vec<_> = path.iter().map(|d| d.display().to_string()).collect();
        Failure::new(Code::InvalidConfig, format!("IPAM plugin {plugin:?} not found in CNI_PATH ({})", dirs.join(":")))
    })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
