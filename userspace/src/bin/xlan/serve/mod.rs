//! `xlan serve`: a Docker remote network driver (one socket per driver name: xlan-macvlan, xlan-ipvlan, xlan-vxlan)
//! and a Prometheus `/metrics` endpoint, until SIGTERM or SIGINT. Stopping removes the sockets and leaves the
//! datapath forwarding: the networks and endpoints are xlan's state, which the next `xlan serve` (or any xlan
//! command) picks up — Docker never replays CreateNetwork.
mod errors;
mod handlers;
mod http;
mod internal;
mod metrics;
mod options;
mod protocol;

use std::{
    os::unix::fs::FileTypeExt,
    path::{Path, PathBuf},
    rc::Rc,
};

use hyper::{body::Bytes, StatusCode};
use tokio::{
    net::{TcpListener, UnixListener},
    signal::unix::{signal, SignalKind},
    sync::Mutex,
    task::LocalSet,
};
use xlan::{instance::Instance, model::Driver};

use crate::cli::ServeArgs;

use self::{
    handlers::Handler,
    http::Reply,
    protocol::{ErrorResponse, Method, CONTENT_TYPE},
};

/// `xlan serve --internal-parents`: makes the missing parents of the kept configuration's internal networks, so that
/// `xlan restore` can make those networks again after a reboot, and returns.
pub async fn make_internal_parents(instance: &Instance) -> Result<(), ServeError> {
    let made = internal::make_kept_parents(instance).await.map_err(|e| errors::phrase(&e, "xlan serve"))?;
    for network in made {
        eprintln!("xlan serve: made the parent of internal network {network}");
    }
    Ok(())
}

const DRIVERS: [Driver; 3] = [Driver::Macvlan, Driver::Ipvlan, Driver::Vxlan];

/// The daemon's own failures (a socket it cannot make), as one line.
pub type ServeError = String;

/// Serves until SIGTERM or SIGINT.
pub async fn run(instance: Instance, config: ServeArgs) -> Result<(), ServeError> {
    let mut terminate = signal(SignalKind::terminate()).map_err(|e| format!("SIGTERM handler: {e}"))?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(|e| format!("SIGINT handler: {e}"))?;
    std::fs::create_dir_all(&config.plugin_dir).map_err(|e| format!("create {}: {e}", config.plugin_dir.display()))?;
    let mut sockets = Sockets::default();
    let mut listeners = Vec::new();
    for driver in DRIVERS {
        let name = format!("{}{}", config.driver_prefix, driver.word());
        let path = config.plugin_dir.join(format!("{name}.sock"));
        listeners.push((driver, name, sockets.bind(&path)?));
    }
    let metrics = TcpListener::bind(config.metrics).await.map_err(|e| format!("metrics on {}: {e}", config.metrics))?;
    eprintln!(
        "xlan serve: drivers {} in {}, metrics on http://{}/metrics",
        listeners.iter().map(|(_, name, _)| name.as_str()).collect::<Vec<_>>().join(", "),
        config.plugin_dir.display(),
        config.metrics,
    );

    // One request at a time: the library's operations lock the state with flock(2) on this very thread, so two of
    // them interleaved at an await would wait for each other forever.
    let instance = Rc::new(Mutex::new(instance));
    let local = LocalSet::new();
    for (driver, name, listener) in listeners {
        let instance = instance.clone();
        let name: Rc<str> = name.into();
        local.spawn_local(async move {
            let answer = Rc::new(move |path: String, body: Bytes| {
                let instance = instance.clone();
                let name = name.clone();
                async move {
                    let instance = instance.lock().await;
                    let handler = Handler { instance: &instance, driver, name: &name };
                    docker_reply(&name, &path, handler_answer(&handler, &path, &body).await)
                }
            });
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => http::serve_connection(stream, answer.clone()),
                    Err(error) => eprintln!("xlan serve: accepting on a plugin socket: {error}"),
                }
            }
        });
    }
    {
        let instance = instance.clone();
        local.spawn_local(async move {
            let answer = Rc::new(move |path: String, _body: Bytes| {
                let instance = instance.clone();
                async move { metrics_reply(&instance, &path).await }
            });
            loop {
                match metrics.accept().await {
                    Ok((stream, _)) => http::serve_connection(stream, answer.clone()),
                    Err(error) => eprintln!("xlan serve: accepting a metrics connection: {error}"),
                }
            }
        });
    }
    local
        .run_until(async {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
        })
        .await;
    // A request under way finishes first: its mutation must not be cut in half (the next command would finish or
    // undo it, but there is no need).
    let _finished = instance.lock().await;
    drop(sockets);
    eprintln!("xlan serve: stopped; the datapath keeps forwarding");
    Ok(())
}

async fn handler_answer(handler: &Handler<'_>, path: &str, body: &[u8]) -> Result<serde_json::Value, String> {
    match Method::from_path(path) {
        Some(method) => handler.handle(method, body).await,
        None => Err(format!("{path} is no method of Docker's network driver protocol")),
    }
}

/// Docker's answer: 200 with the method's JSON, or with `{"Err": …}` (which `docker` shows as the daemon's error).
fn docker_reply(driver: &str, path: &str, answer: Result<serde_json::Value, String>) -> Reply {
    let body = match answer {
        Ok(value) => serde_json::to_vec(&value),
        Err(err) => {
            eprintln!("xlan serve: {driver} {path}: {err}");
            serde_json::to_vec(&ErrorResponse { err })
        }
    };
    match body {
        Ok(body) => Reply { status: StatusCode::OK, content_type: CONTENT_TYPE, body },
        Err(error) => Reply {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            content_type: "text/plain",
            body: error.to_string().into_bytes(),
        },
    }
}

async fn metrics_reply(instance: &Mutex<Instance>, path: &str) -> Reply {
    if path != "/metrics" {
        return Reply { status: StatusCode::NOT_FOUND, content_type: "text/plain", body: b"try /metrics\n".to_vec() };
    }
    let instance = instance.lock().await;
    match metrics::render(&instance).await {
        Ok(text) => Reply {
            status: StatusCode::OK,
            content_type: "application/openmetrics-text; version=1.0.0; charset=utf-8",
            body: text.into_bytes(),
        },
        Err(error) => Reply {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            content_type: "text/plain",
            body: format!("{error}\n").into_bytes(),
        },
    }
}

/// The sockets this daemon made, removed when it stops (also when it fails to start).
#[derive(Default)]
struct Sockets(Vec<PathBuf>);

impl Sockets {
    /// Binds `path`, removing a socket a killed daemon left there first; anything else of that name is refused.
    fn bind(&mut self, path: &Path) -> Result<UnixListener, ServeError> {
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            let stale = meta.file_type().is_socket() && std::os::unix::net::UnixStream::connect(path).is_err();
            if !stale {
                return Err(format!(
                    "{} exists and is not a stale socket: is another xlan serve running?",
                    path.display()
                ));
            }
            std::fs::remove_file(path).map_err(|e| format!("remove the stale socket {}: {e}", path.display()))?;
        }
        let listener = UnixListener::bind(path).map_err(|e| format!("listen on {}: {e}", path.display()))?;
        self.0.push(path.to_owned());
        Ok(listener)
    }
}

impl Drop for Sockets {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}
