//! `xlan monitor`: the datapath's log (aya-log records of the instance's attached programs), like
//! `ip monitor`, until Ctrl-C. Each program load has its own log ring buffer; programs of one load share it,
//! so one reader per ring buffer.
use std::{collections::HashSet, fs, io::Write, sync::Mutex, time::Duration};

use aya::{
    maps::MapInfo,
    programs::{
        links::{FdLink, PinnedLink},
        loaded_programs,
    },
};
use aya_log::EbpfLogger;
use datapath_common::DROP_REASON_NAMES;

use crate::{
    error::{Error, Result},
    instance::Instance,
};

/// The ring buffer aya-log-ebpf writes to.
const LOG_MAP: &str = "AYA_LOGS";
const POLL: Duration = Duration::from_millis(200);

/// Writes each record as one line (or one JSON object per line).
pub struct LinePrinter {
    json: bool,
    out: Mutex<std::io::Stdout>,
}

impl log::Log for LinePrinter {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let message = describe(&record.args().to_string());
        let line = if self.json {
            serde_json::json!({"level": record.level().as_str().to_lowercase(), "message": message}).to_string()
        } else {
            format!("{}: {message}", record.level().as_str().to_lowercase())
        };
        if let Ok(mut out) = self.out.lock() {
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    }

    fn flush(&self) {}
}

/// Names the drop reason in "drop reason=N port=M" records.
pub fn describe(message: &str) -> String {
    let Some(rest) = message.strip_prefix("drop reason=") else { return message.into() };
    let (number, tail) = rest.split_once(' ').unwrap_or((rest, ""));
    match number.parse::<usize>().ok().and_then(|n| DROP_REASON_NAMES.get(n)) {
        Some(name) => format!("drop reason={name} {tail}").trim_end().to_string(),
        None => message.into(),
    }
}

/// Readers for every distinct log ring buffer behind the instance's pinned links.
fn loggers(instance: &Instance, json: bool) -> Result<Vec<EbpfLogger<&'static LinePrinter>>> {
    let printer: &'static LinePrinter = Box::leak(Box::new(LinePrinter { json, out: Mutex::new(std::io::stdout()) }));
    let mut seen_maps = HashSet::new();
    let mut loggers = Vec::new();
    let Ok(entries) = fs::read_dir(instance.pins.links()) else { return Ok(loggers) };
    for entry in entries.flatten() {
        let Ok(pinned) = PinnedLink::from_pin(entry.path()) else { continue };
        let link = FdLink::from(pinned);
        let Ok(info) = link.info() else { continue };
        let program_id = info.program_id();
        let Some(map_id) = log_map_of(program_id) else { continue };
        if seen_maps.insert(map_id) {
            let logger =
                EbpfLogger::init_from_id_with_logger(program_id, printer).map_err(|e| Error::bpf("datapath log", e))?;
            loggers.push(logger);
        }
    }
    Ok(loggers)
}

fn log_map_of(program_id: u32) -> Option<u32> {
    let program = loaded_programs().filter_map(|p| p.ok()).find(|p| p.id() == program_id)?;
    program
        .map_ids()
        .ok()??
        .into_iter()
        .find(|id| MapInfo::from_id(*id).ok().is_some_and(|info| info.name_as_str() == Some(LOG_MAP)))
}

/// Prints the datapath's records until Ctrl-C.
pub async fn run(instance: &Instance, json: bool) -> Result<()> {
    let mut readers = loggers(instance, json)?;
    let mut interval = tokio::time::interval(POLL);
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = interval.tick() => {
                for reader in &mut readers {
                    reader.flush();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_drop_reasons() {
        assert_eq!(super::describe("drop reason=3 port=7"), "drop reason=unknown_port port=7");
        assert_eq!(super::describe("something else"), "something else");
    }
}
