//! xlan against the kernel's macvlan driver: for every mode, the same topology built by each must show the same
//! reachability matrix; and xlan's per-endpoint counters must account for the traffic the probes sent.

use std::time::Instant;

use xlan_tests::counters::assert_account_for;
use xlan_tests::{describe_diff, ok, test_cases, xlan, Backend, CellDiff, Matrix, Mode, Node, Topology};

/// The kernel's matrix for `mode` (the topology is torn down before returning).
fn kernel_matrix(mode: Mode) -> Matrix {
    let topology = ok(Topology::build(mode, Backend::Kernel), format_args!("building kernel topology ({mode})"));
    let started = Instant::now();
    let matrix = ok(Matrix::measure(&topology), "measuring the kernel topology");
    println!("{topology}{matrix}measured in {:.1?}\n", started.elapsed());
    matrix
}

/// xlan's matrix for `mode`, after checking that `xlan stats` saw the probes' traffic.
fn xlan_matrix(mode: Mode, backend: Backend) -> Matrix {
    let topology = ok(Topology::build(mode, backend), format_args!("building {backend} topology ({mode})"));
    let started = Instant::now();
    let matrix = ok(Matrix::measure(&topology), "measuring the xlan topology");
    println!("{topology}{matrix}measured in {:.1?}\n", started.elapsed());
    let stats = ok(topology.endpoint_counters(), "reading `xlan stats`");
    assert_account_for(&matrix, &stats, format_args!("{backend}, mode {mode}"));
    matrix
}

/// Fails at once, with the reason, when there is no xlan binary to test.
fn require_xlan() {
    ok(xlan::binary(), "xlan conformance tests need the xlan binary");
}

/// Both of xlan's parent hooks (tc, the default on this veth parent, and xdp) against the kernel.
fn assert_conforms(mode: Mode) {
    require_xlan();
    let kernel = kernel_matrix(mode);
    for xdp_hook in [false, true] {
        let backend = Backend::Xlan { host_access: false, xdp_hook };
        let xlan = xlan_matrix(mode, backend);
        let diff = kernel.diff(&xlan);
        assert!(
            diff.is_empty(),
            "{backend} differs from kernel macvlan in mode {mode}:\n{}kernel:\n{kernel}xlan:\n{xlan}",
            describe_diff(&diff, "kernel", "xlan")
        );
    }
}

test_cases!(assert_conforms {
    bridge_mode_matches_kernel: Mode::Bridge;
    private_mode_matches_kernel: Mode::Private;
    vepa_mode_matches_kernel: Mode::Vepa;
    passthru_mode_matches_kernel: Mode::Passthru;
    source_mode_matches_kernel: Mode::Source;
});

fn is_host_endpoint_pair(src: Node, dst: Node) -> bool {
    matches!((src, dst), (Node::Host, Node::Endpoint(_)) | (Node::Endpoint(_), Node::Host))
}

/// `--host-access` lifts exactly macvlan's classic limitation: the host and its endpoints reach each other (every
/// probe, both directions); everything else stays as the kernel does it.
#[test]
fn bridge_mode_host_access_reaches_host_and_nothing_else_changes() {
    require_xlan();
    let kernel = kernel_matrix(Mode::Bridge);
    let xlan = xlan_matrix(Mode::Bridge, Backend::Xlan { host_access: true, xdp_hook: false });

    let unreachable_host_cells = xlan.unreachable(is_host_endpoint_pair);
    assert!(
        unreachable_host_cells.is_empty(),
        "with --host-access the host and the endpoints must reach each other:\n{}xlan:\n{xlan}",
        describe_diff(&unreachable_host_cells, "expected", "xlan")
    );

    let other_diff: Vec<CellDiff> =
        kernel.diff(&xlan).into_iter().filter(|cell| !is_host_endpoint_pair(cell.src, cell.dst)).collect();
    assert!(
        other_diff.is_empty(),
        "with --host-access, cells other than host<->endpoint must equal the kernel's:\n{}kernel:\n{kernel}xlan:\n{xlan}",
        describe_diff(&other_diff, "kernel", "xlan")
    );
}
