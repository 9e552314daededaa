//! The CLI's words for the library's errors: settings are named by their flags (`--vni`, not "VNI"), and each error
//! is one line, its sources joined with ": ".

use xlan::error::{Error, Setting};

/// What makes a command fail: the library's error, or a command line the library never saw.
#[derive(Debug)]
pub enum CliError {
    Xlan(Error),
    Usage(String),
}

impl From<Error> for CliError {
    fn from(error: Error) -> Self {
        CliError::Xlan(error)
    }
}

/// The flag that sets `setting`.
fn flag(setting: Setting) -> &'static str {
    match setting {
        Setting::Mode => "--mode",
        Setting::HostAccess => "--host-access",
        Setting::IpvlanFlag => "--flag",
        Setting::ParentHook => "--parent-hook",
        Setting::Vni => "--vni",
        Setting::Local => "--local",
        Setting::Remote => "--remote",
        Setting::Group => "--group",
        Setting::Dstport => "--dstport",
        Setting::Learning => "--learning/--no-learning",
        Setting::Ageing => "--ageing",
        Setting::Mac => "--mac",
        Setting::Address => "--ip",
        Setting::Vtep => "--dst",
    }
}

/// One line for the user.
pub fn phrase(error: &CliError) -> String {
    let error = match error {
        CliError::Usage(text) => return text.clone(),
        CliError::Xlan(error) => error,
    };
    let line = match error {
        Error::NotForDriver { setting, driver } => format!("{} does not apply to a {driver} network", flag(*setting)),
        Error::Missing { setting: Setting::Address, driver } => {
            format!("{} endpoint needs at least one --ip", article(driver.word()))
        }
        Error::Missing { setting, driver } => format!("{} network needs {}", article(driver.word()), flag(*setting)),
        Error::RemoteWithGroup => "--remote and --group exclude each other".into(),
        Error::GroupNotMulticast(group) => format!("--group {group} is not an IPv4 multicast address"),
        Error::NoLocalAddress(parent) => format!("parent {parent} has no IPv4 address: give --local"),
        Error::HostAccessMode(mode) => format!("--host-access works with modes bridge and private, not {mode}"),
        Error::MacNotForIpvlan => "ipvlan endpoints have the parent's MAC: --mac does not apply".into(),
        Error::HookInUse { parent, in_use } => {
            format!("parent {parent} is handled by {in_use} for the networks already on it: --parent-hook must match")
        }
        Error::NotVxlan { driver, .. } => format!("fdb does not apply to a {driver} network"),
        Error::NotIpvlan { driver, .. } => format!("route does not apply to a {driver} network"),
        Error::FloodEntryNeedsVtep => "fdb del 00:00:00:00:00:00 needs --dst".into(),
        Error::InvalidVlan { vlan } => {
            format!("VLAN {vlan} is not a VLAN ID: --vlan and --parent IFACE.VID take 1-4094")
        }
        Error::VlanMismatch { parent, named, asked } => {
            format!("--parent {parent} names VLAN {named} but --vlan says {asked}: give one of them")
        }
        Error::Inconsistent { .. } | Error::State { .. } => {
            format!("{error}: run `xlan doctor` to see what, `xlan doctor --repair` to fix what can be fixed")
        }
        other => other.to_string(),
    };
    one_line(&with_sources(line, error))
}

/// `line` followed by the error's sources, each after ": ".
pub fn with_sources(mut line: String, error: &dyn std::error::Error) -> String {
    let mut source = error.source();
    while let Some(cause) = source {
        line += &format!(": {cause}");
        source = cause.source();
    }
    line
}

fn article(word: &str) -> String {
    let an = word.starts_with(|c: char| "aeiou".contains(c));
    format!("{} {word}", if an { "an" } else { "a" })
}

/// Multi-line text (clap's usage errors, nested sources) folded into one line, without the "try --help" hint.
pub fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with("For more information"))
        .collect::<Vec<_>>()
        .join("; ")
}
