//! A hermetic Docker host: a namespace of the test's own with a dockerd (Debian's docker.io) and `xlan serve` in it,
//! as ../shared/docs/containers.md describes. dockerd runs with `nsenter --net` (network namespace only: `ip netns
//! exec` would remount /sys and hide the cgroup mounts), without its bridge, iptables or forwarding, with its data,
//! exec root, pidfile and socket in a directory of the test's; `xlan --netns NS serve` serves its drivers under
//! names unique to the run (dockerd 20.10 has no option for another plugin directory, so the sockets are in
//! /run/docker/plugins, named PREFIX-macvlan.sock etc., and removed on drop).
//!
//! Teardown, also on panic: containers, then networks (through xlan serve, which removes what xlan made), then
//! dockerd (SIGTERM by its PID, waited for), then xlan serve, then xlan's leftovers; the namespace itself is the
//! caller's and goes last.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::cmd;
use crate::netns::Netns;
use crate::scratch::ScratchDir;
use crate::xlan;

/// Debian's docker.io: the client and the daemon of one release (a newer client elsewhere on PATH is not used).
pub const DOCKER: &str = "/usr/bin/docker";
pub const DOCKERD: &str = "/usr/sbin/dockerd";
const BUSYBOX: &str = "/bin/busybox";
/// Where dockerd 20.10 looks for legacy plugin sockets.
pub const PLUGIN_DIR: &str = "/run/docker/plugins";
/// The image every test container runs: busybox-static with its applets.
pub const IMAGE: &str = "xlbusybox:1";
const APPLETS: &[&str] = &["sh", "ip", "ping", "ping6", "sleep", "nc", "arping", "cat", "ls", "true"];
const START_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Set by `cargo xtask test`, whose setup installs docker.io: there, a missing docker fails instead of skipping.
pub const REQUIRE_DOCKER: &str = "XLAN_REQUIRE_DOCKER";

/// False (with a message) when Docker is not installed and the tests may skip; panics when they may not.
pub fn available() -> bool {
    let missing: Vec<&str> = [DOCKER, DOCKERD, BUSYBOX].into_iter().filter(|path| !Path::new(path).exists()).collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var_os(REQUIRE_DOCKER).is_some() {
        panic!("{} missing: `cargo xtask setup` installs docker.io and busybox-static", missing.join(", "));
    }
    eprintln!(
        "SKIPPED: {} missing (install docker.io and busybox-static, or run `cargo xtask test`)",
        missing.join(", ")
    );
    false
}

/// Stops a daemon the test started: SIGTERM to its PID, then waits for it, SIGKILL after `STOP_TIMEOUT`. Returns
/// whether it had to be killed.
fn terminate(mut child: Child) -> Result<bool> {
    // SAFETY: kill(2) of our own child, not yet waited for (its PID cannot have been reused).
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let deadline = Instant::now() + STOP_TIMEOUT;
    while child.try_wait()?.is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            child.wait()?;
            return Ok(true);
        }
        thread::sleep(Duration::from_millis(20));
    }
    Ok(false)
}

/// A container's root filesystem at `rootfs`: busybox-static in /bin with the applets the tests run (Docker's image
/// and podman's `--rootfs`).
pub fn busybox_rootfs(rootfs: &Path) -> Result<()> {
    std::fs::create_dir_all(rootfs.join("bin")).with_context(|| format!("creating {}/bin", rootfs.display()))?;
    std::fs::copy(BUSYBOX, rootfs.join("bin/busybox")).context("copying busybox")?;
    for applet in APPLETS {
        symlink("busybox", rootfs.join("bin").join(applet))?;
    }
    Ok(())
}

/// A dockerd in `netns`, with everything of its own under `dir`.
pub struct Dockerd {
    netns: String,
    dir: PathBuf,
    child: Option<Child>,
}

impl Dockerd {
    fn start(netns: &Netns, dir: &Path) -> Result<Dockerd> {
        let mut dockerd = Dockerd { netns: netns.name().to_string(), dir: dir.to_owned(), child: None };
        dockerd.launch()?;
        Ok(dockerd)
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("docker.sock")
    }

    fn launch(&mut self) -> Result<()> {
        let d = |name: &str| self.dir.join(name).to_string_lossy().into_owned();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("dockerd.log"))
            .context("opening dockerd's log")?;
        let net = format!("--net=/run/netns/{}", self.netns);
        let host = format!("unix://{}", d("docker.sock"));
        let args = [
            net.as_str(),
            DOCKERD,
            "--bridge=none",
            "--iptables=false",
            "--ip6tables=false",
            "--ip-forward=false",
            // Containers outlive a dockerd restart, as the restart test needs (and as production setups do).
            "--live-restore",
            "--data-root",
            &d("data"),
            "--exec-root",
            &d("exec"),
            "--pidfile",
            &d("docker.pid"),
            "-H",
            &host,
        ];
        let child = cmd::command("nsenter", &args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting dockerd")?;
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if self.docker_output(&["version", "--format", "{{.Server.Version}}"])?.status.success() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "dockerd did not answer within {START_TIMEOUT:?}; see {}",
                    self.dir.join("dockerd.log").display()
                );
            }
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// A command `docker args...` talking to this dockerd.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = cmd::command(DOCKER, args);
        command.env("DOCKER_HOST", format!("unix://{}", self.socket().display()));
        command
    }

    /// Runs `docker args...`, returning stdout; failure is an error with docker's stderr.
    pub fn docker(&self, args: &[&str]) -> Result<String> {
        cmd::run(&mut self.command(args))
    }

    pub fn docker_output(&self, args: &[&str]) -> Result<std::process::Output> {
        cmd::output(&mut self.command(args))
    }

    /// SIGTERM by PID and wait (SIGKILL after a timeout); with --live-restore the containers keep running.
    pub fn stop(&mut self) -> Result<()> {
        let Some(child) = self.child.take() else { return Ok(()) };
        // nsenter execs dockerd: the child's PID is dockerd's.
        let pid = child.id();
        if terminate(child)? {
            eprintln!("xlan-tests: warning: dockerd {pid} ignored SIGTERM; killed it");
        }
        Ok(())
    }

    /// Stops and starts dockerd again (containers keep running: --live-restore).
    pub fn restart(&mut self) -> Result<()> {
        self.stop()?;
        self.launch()
    }

    /// Imports the busybox image from a rootfs of busybox-static and its applets.
    fn import_image(&self) -> Result<()> {
        let rootfs = self.dir.join("rootfs");
        busybox_rootfs(&rootfs)?;
        let tar = cmd::command("tar", &["-C", &rootfs.to_string_lossy(), "-c", "."])
            .stdout(Stdio::piped())
            .spawn()
            .context("running tar")?;
        let stdout = tar.stdout.context("tar's stdout")?;
        let out = self.command(&["import", "-", IMAGE]).stdin(stdout).output().context("docker import")?;
        if !out.status.success() {
            bail!("docker import failed: {}", cmd::one_line(&String::from_utf8_lossy(&out.stderr)));
        }
        Ok(())
    }

    /// Removes every container and every network but Docker's own (host, none).
    fn remove_all(&self) -> Result<()> {
        let containers = self.docker(&["ps", "-aq"])?;
        let containers: Vec<&str> = containers.split_whitespace().collect();
        if !containers.is_empty() {
            self.docker(&[&["rm", "-f"], containers.as_slice()].concat())?;
        }
        let networks = self.docker(&["network", "ls", "--format", "{{.Name}}"])?;
        for network in networks.split_whitespace().filter(|n| !matches!(*n, "host" | "none" | "bridge")) {
            self.docker(&["network", "rm", network])?;
        }
        Ok(())
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        if self.child.is_some() {
            if let Err(err) = self.remove_all() {
                eprintln!("xlan-tests: warning: removing containers and networks: {err:#}");
            }
        }
        if let Err(err) = self.stop() {
            eprintln!("xlan-tests: warning: stopping dockerd: {err:#}");
        }
    }
}

/// `xlan --netns NS serve`, with driver names PREFIX-macvlan etc. and metrics on 127.0.0.1:PORT of NS.
pub struct XlanServe {
    netns: String,
    prefix: String,
    metrics_port: u16,
    log: PathBuf,
    child: Option<Child>,
}

impl XlanServe {
    fn start(netns: &Netns, prefix: &str, metrics_port: u16, log: PathBuf) -> Result<XlanServe> {
        let mut serve =
            XlanServe { netns: netns.name().to_string(), prefix: prefix.to_string(), metrics_port, log, child: None };
        serve.launch()?;
        Ok(serve)
    }

    fn sockets(&self) -> Vec<PathBuf> {
        ["macvlan", "ipvlan", "vxlan"]
            .iter()
            .map(|d| Path::new(PLUGIN_DIR).join(format!("{}{d}.sock", self.prefix)))
            .collect()
    }

    fn launch(&mut self) -> Result<()> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log)?;
        let metrics = format!("127.0.0.1:{}", self.metrics_port);
        let args = ["--netns", &self.netns, "serve", "--driver-prefix", &self.prefix, "--metrics", &metrics];
        let child = xlan::command(&args)?
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting xlan serve")?;
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        while !self.sockets().iter().all(|s| std::os::unix::net::UnixStream::connect(s).is_ok()) {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                bail!("xlan serve exited ({status}): {}", self.log_text());
            }
            if Instant::now() > deadline {
                bail!("xlan serve did not listen within {START_TIMEOUT:?}: {}", self.log_text());
            }
            thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// What xlan serve wrote so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM by PID and wait: what a service manager does.
    pub fn stop(&mut self) -> Result<()> {
        let Some(child) = self.child.take() else { return Ok(()) };
        if terminate(child)? {
            bail!("xlan serve ignored SIGTERM");
        }
        Ok(())
    }

    /// kill -9 by PID and wait: a crash. The sockets stay behind, stale.
    pub fn kill9(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    pub fn start_again(&mut self) -> Result<()> {
        self.launch()
    }

    /// True while a socket file of this daemon exists.
    pub fn sockets_exist(&self) -> bool {
        self.sockets().iter().any(|s| s.exists())
    }

    /// GET /metrics, from a thread inside the namespace (the address is the namespace's loopback).
    pub fn scrape(&self, netns: &Netns) -> Result<String> {
        let port = self.metrics_port;
        netns.run(move || -> Result<String> {
            let mut stream = TcpStream::connect(("127.0.0.1", port)).context("connecting to /metrics")?;
            stream.set_read_timeout(Some(Duration::from_secs(10)))?;
            stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
            let mut response = String::new();
            stream.read_to_string(&mut response)?;
            let (head, body) = response.split_once("\r\n\r\n").context("no end of headers")?;
            if !head.starts_with("HTTP/1.1 200") {
                bail!("/metrics answered {head}: {body}");
            }
            Ok(body.to_string())
        })?
    }
}

impl Drop for XlanServe {
    fn drop(&mut self) {
        if let Err(err) = self.stop() {
            eprintln!("xlan-tests: warning: stopping xlan serve: {err:#}");
        }
        for socket in self.sockets() {
            let _ = std::fs::remove_file(socket);
        }
    }
}

/// A Docker host: dockerd and xlan serve in `netns`. Fields drop in this order: dockerd (containers and networks
/// first), xlan serve, xlan's leftovers, the scratch directory.
pub struct DockerHost {
    pub dockerd: Dockerd,
    pub serve: XlanServe,
    pub xlan: xlan::XlanHost,
    _dir: ScratchDir,
    /// xlan's driver names are PREFIX + macvlan|ipvlan|vxlan.
    pub prefix: String,
}

impl DockerHost {
    /// Starts both daemons in `netns` (which the caller made and drops after this), with the busybox image.
    /// `metrics_port` must be free in `netns` (a fresh namespace has every port free).
    pub fn start(netns: &Netns, metrics_port: u16) -> Result<DockerHost> {
        let dir = ScratchDir::create(&format!("xlan-docker-{}", netns.name()))?;
        let prefix = format!("{}-", netns.name());
        // xlan serve first: dockerd asks for no plugin until a network uses one, but this order is the unit files'.
        let serve = XlanServe::start(netns, &prefix, metrics_port, dir.path().join("serve.log"))?;
        let xlan = xlan::XlanHost::new(netns)?;
        let dockerd = Dockerd::start(netns, dir.path())?;
        dockerd.import_image()?;
        Ok(DockerHost { dockerd, serve, xlan, _dir: dir, prefix })
    }

    /// xlan's driver name for `kind` (macvlan, ipvlan, vxlan) on this host.
    pub fn driver(&self, kind: &str) -> String {
        format!("{}{kind}", self.prefix)
    }

    pub fn docker(&self, args: &[&str]) -> Result<String> {
        self.dockerd.docker(args)
    }

    /// `docker run -d --name NAME OPTIONS... IMAGE sleep 3600`.
    pub fn run_container(&self, name: &str, options: &[&str]) -> Result<()> {
        let args = [&["run", "-d", "--name", name], options, &[IMAGE, "sleep", "3600"]].concat();
        self.docker(&args).map(|_| ())
    }

    /// `docker exec NAME args...`, returning stdout.
    pub fn exec(&self, name: &str, args: &[&str]) -> Result<String> {
        self.docker(&[&["exec", name], args].concat())
    }

    /// True when `ping -c 2 -W 1 ADDRESS` from the container gets an answer.
    pub fn pings(&self, name: &str, address: &str) -> bool {
        let ping = if address.contains(':') { "ping6" } else { "ping" };
        cmd::succeeds(&mut self.dockerd.command(&["exec", name, ping, "-c", "2", "-W", "1", address]))
    }

    /// The container's address on its network `network` (IPv4).
    pub fn address(&self, name: &str, network: &str) -> Result<String> {
        let format = format!("{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}");
        Ok(self.docker(&["inspect", "-f", &format, name])?.trim().to_string())
    }
}
