//! `xlan monitor`: the datapath's drop events (`events`), one line each, like `ip monitor`, until Ctrl-C (or until
//! whoever reads the output goes away).
use std::{
    fs::File,
    io::{self, Write},
    os::fd::AsFd,
};

use xlan::{
    datapath::events::{DropEvent, DropEvents},
    error::{Error, Result},
    instance::Instance,
};

/// One event as a line of text: `warning: drop reason=NAME port=P ifindex=I network=N len=L`.
pub fn text_line(event: &DropEvent) -> String {
    format!(
        "warning: drop reason={} port={} ifindex={} network={} len={}",
        event.reason.name(),
        event.port,
        event.ifindex,
        event.network_id,
        event.len
    )
}

/// One event as one JSON object.
pub fn json_line(event: &DropEvent) -> String {
    // Plain data (numbers and a name) always serialises.
    serde_json::to_string(event).unwrap_or_default()
}

/// Writes `line` and its newline in one write (a monitor's reader wants each event whole, as it comes). False when
/// the reader has gone (a closed pipe, as with `xlan monitor | head -1`): there is no one left to print for.
pub fn print_line(out: &mut impl Write, line: &str) -> Result<bool> {
    match out.write_all(format!("{line}\n").as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(false),
        Err(error) => Err(Error::io("write to stdout", error)),
    }
}

/// Prints the instance's drop events until Ctrl-C or until stdout is closed. An instance without a datapath yet
/// has no events: the monitor then just waits.
pub async fn run(instance: &Instance, json: bool) -> Result<()> {
    let Some(mut events) = DropEvents::open(&instance.pins)? else {
        let _ = tokio::signal::ctrl_c().await;
        return Ok(());
    };
    let format = if json { json_line } else { text_line };
    // Unbuffered, on its own descriptor: a line that cannot be written (closed pipe) must not stay behind in std's
    // stdout buffer, where the binary's last print would find it and fail again.
    let mut out =
        io::stdout().as_fd().try_clone_to_owned().map(File::from).map_err(|e| Error::io("duplicate stdout", e))?;
    // One listener for the whole run: a Ctrl-C that comes while a line is printed is not lost.
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = &mut ctrl_c => return Ok(()),
            event = events.next() => {
                if !print_line(&mut out, &format(&event?))? {
                    return Ok(());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use datapath_common::DropReason;

    use super::*;

    fn event() -> DropEvent {
        DropEvent { reason: DropReason::UnknownPort, ifindex: 7, port: 7, network_id: 0, len: 60, monotonic_ns: 5 }
    }

    #[test]
    fn lines_name_the_drop_reason() {
        assert_eq!(text_line(&event()), "warning: drop reason=unknown_port port=7 ifindex=7 network=0 len=60");
        let json: serde_json::Value = serde_json::from_str(&json_line(&event())).unwrap();
        assert_eq!(json["reason"], "unknown_port");
        assert_eq!(json["port"], 7);
        assert!(!json_line(&event()).contains('\n'), "one object per line");
    }

    struct ClosedPipe;

    impl Write for ClosedPipe {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_pipe_ends_the_monitor_quietly() {
        assert!(!print_line(&mut ClosedPipe, "line").unwrap());
        let mut buffer = Vec::new();
        assert!(print_line(&mut buffer, "line").unwrap());
        assert_eq!(buffer, b"line\n");
    }
}
