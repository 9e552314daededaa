//! The kernel's own macvlan driver in the harness topology: checks the harness against well-known macvlan semantics,
//! without needing xlan. If one of these fails, the harness (or the machine) is broken, not xlan.

use std::time::Instant;

use xlan_tests::{ok, test_cases, Backend, Matrix, Mode, Node, Probe, Topology};

/// What the kernel does, pair by pair (every probe alike):
/// - the outside node reaches every endpoint and the host, except in passthru, where the endpoint takes over all the
///   parent's traffic and the host is cut off from everyone;
/// - the host never reaches its own macvlans, except in VEPA, where the switch's hairpin port reflects their traffic;
/// - endpoints reach each other in bridge mode (inside the host) and in VEPA (via the hairpin), never in private or
///   source mode.
fn kernel_reaches(mode: Mode, src: Node, dst: Node) -> bool {
    use Node::*;
    match (mode, src, dst) {
        (Mode::Passthru, Host, _) | (Mode::Passthru, _, Host) => false,
        (_, Outside, _) | (_, _, Outside) => true,
        (Mode::Vepa, _, _) => true,
        (Mode::Bridge, Endpoint(_), Endpoint(_)) => true,
        _ => false,
    }
}

fn check_mode(mode: Mode) {
    let started = Instant::now();
    let topology = ok(Topology::build(mode, Backend::Kernel), "building");
    let built = started.elapsed();
    let matrix = ok(Matrix::measure(&topology), "measuring");
    println!("{topology}{matrix}built in {built:.1?}, measured in {:.1?}", started.elapsed() - built);

    let mut wrong = Vec::new();
    for &src in matrix.nodes() {
        for &dst in matrix.nodes().iter().filter(|&&dst| dst != src) {
            for probe in Probe::ALL {
                let expected = kernel_reaches(mode, src, dst);
                if matrix.get(src, dst, probe) != Some(expected) {
                    wrong.push(format!("  {src} -> {dst} {}: expected reachable={expected}", probe.name()));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "kernel macvlan mode {mode} behaves unexpectedly:\n{}\n{matrix}", wrong.join("\n"));
}

test_cases!(check_mode {
    bridge: Mode::Bridge;
    private: Mode::Private;
    vepa: Mode::Vepa;
    passthru: Mode::Passthru;
    source: Mode::Source;
});
