//! The runtime's parameters (SPEC.md section 2): CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_ARGS and
//! CNI_PATH. A missing or malformed one is error 4, naming the variable.
use std::path::PathBuf;

use crate::spec::{Code, Failure};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    Add,
    Del,
    Check,
    Gc,
    Status,
    Version,
}

impl Command {
    pub fn word(self) -> &'static str {
        match self {
            Command::Add => "ADD",
            Command::Del => "DEL",
            Command::Check => "CHECK",
            Command::Gc => "GC",
            Command::Status => "STATUS",
            Command::Version => "VERSION",
        }
    }
}

/// The parameters as given; the ones a command needs are asked for with `require_*`.
#[derive(Clone, Debug)]
pub struct Params {
    pub command: Command,
    pub container_id: Option<String>,
    pub netns: Option<String>,
    pub ifname: Option<String>,
    pub args: Args,
    pub path: Vec<PathBuf>,
}

/// The CNI_ARGS this plugin reads. Others are refused unless `IgnoreUnknown=1` (as the reference plugins do).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Args {
    /// MAC=: the container interface's MAC (podman's `--mac-address`).
    pub mac: Option<String>,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

fn invalid(variable: &str, what: impl std::fmt::Display) -> Failure {
    Failure::new(Code::InvalidEnvironment, format!("{variable}: {what}"))
}

impl Params {
    pub fn from_env() -> Result<Params, Failure> {
        let command = match var("CNI_COMMAND").as_deref() {
            Some("ADD") => Command::Add,
            Some("DEL") => Command::Del,
            Some("CHECK") => Command::Check,
            Some("GC") => Command::Gc,
            Some("STATUS") => Command::Status,
            Some("VERSION") => Command::Version,
            Some(other) => return Err(invalid("CNI_COMMAND", format!("unknown command {other:?}"))),
            None => return Err(invalid("CNI_COMMAND", "missing")),
        };
        let path = var("CNI_PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
        Ok(Params {
            command,
            container_id: var("CNI_CONTAINERID"),
            netns: var("CNI_NETNS"),
            ifname: var("CNI_IFNAME"),
            args: parse_args(var("CNI_ARGS").as_deref().unwrap_or(""))?,
            path,
        })
    }

    /// CNI_CONTAINERID: required for ADD, DEL and CHECK; an alphanumeric, then alphanumerics, '_', '.' and '-'.
    pub fn require_container_id(&self) -> Result<&str, Failure> {
        let id = self.container_id.as_deref().ok_or_else(|| invalid("CNI_CONTAINERID", "missing"))?;
        let mut chars = id.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
        if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) {
            return Err(invalid("CNI_CONTAINERID", format!("{id:?} is not a container id")));
        }
        Ok(id)
    }

    pub fn require_ifname(&self) -> Result<&str, Failure> {
        self.ifname.as_deref().ok_or_else(|| invalid("CNI_IFNAME", "missing"))
    }

    pub fn require_netns(&self) -> Result<&str, Failure> {
        self.netns.as_deref().ok_or_else(|| invalid("CNI_NETNS", "missing"))
    }

    pub fn require_path(&self) -> Result<&[PathBuf], Failure> {
        if self.path.is_empty() {
            return Err(invalid("CNI_PATH", "missing"));
        }
        Ok(&self.path)
    }
}

/// `KEY=VALUE;KEY=VALUE` (SPEC.md: alphanumeric key-value pairs separated by semicolons).
pub fn parse_args(text: &str) -> Result<Args, Failure> {
    let mut pairs = Vec::new();
    for pair in text.split(';').filter(|p| !p.is_empty()) {
        let (key, value) =
            pair.split_once('=').ok_or_else(|| invalid("CNI_ARGS", format!("{pair:?} is not KEY=VALUE")))?;
        pairs.push((key, value));
    }
    let ignore_unknown = pairs.iter().any(|(key, value)| *key == "IgnoreUnknown" && is_true(value));
    let mut args = Args::default();
    for (key, value) in pairs {
        match key {
            "IgnoreUnknown" => {}
            "MAC" => args.mac = Some(value.to_string()),
            // The address an IPAM plugin (host-local, static) is asked for: theirs to read.
            "IP" => {}
            _ if ignore_unknown => {}
            _ => {
                return Err(invalid("CNI_ARGS", format!("unknown argument {key}={value} (IgnoreUnknown=1 ignores it)")))
            }
        }
    }
    Ok(args)
}

/// What Go's strconv.ParseBool takes as true, as the reference plugins read IgnoreUnknown.
fn is_true(value: &str) -> bool {
    matches!(value, "1" | "t" | "T" | "true" | "TRUE" | "True")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_are_read_and_unknown_ones_refused_unless_ignored() {
        assert_eq!(parse_args("").unwrap(), Args::default());
        let args = parse_args("IgnoreUnknown=1;K8S_POD_NAME=web;MAC=02:00:00:00:00:07").unwrap();
        assert_eq!(args.mac.as_deref(), Some("02:00:00:00:00:07"));
        let refused = parse_args("K8S_POD_NAME=web").unwrap_err();
        assert_eq!(refused.code, Code::InvalidEnvironment);
        assert!(refused.msg.contains("K8S_POD_NAME=web"), "{}", refused.msg);
        assert!(parse_args("IgnoreUnknown=0;FOO=1").is_err());
        assert!(parse_args("garbage").is_err());
    }
}
