//! Contexts for BPF_PROG_TEST_RUN, which aya runs (`aya::programs::TestRun`) but whose context layouts it does not
//! have: aya 0.14 (and aya-obj's generated bindings) define neither `struct xdp_md` nor `struct __sk_buff`, and
//! `TestRunOptions::ctx_in` takes their bytes. These build them, as the kernel reads them.

/// `struct xdp_md` (include/uapi/linux/bpf.h) as a test-run context: which device the frame "arrived" on.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct XdpMd {
    pub data: u32,
    pub data_end: u32,
    pub data_meta: u32,
    pub ingress_ifindex: u32,
    pub rx_queue_index: u32,
    pub egress_ifindex: u32,
}

impl XdpMd {
    /// A `frame_len`-byte frame arriving on `ingress_ifindex` (a device of the calling thread's namespace). The
    /// kernel wants `data_end` to be the frame's length and the other offsets zero.
    pub fn arriving(frame_len: usize, ingress_ifindex: u32) -> Self {
        XdpMd { data_end: frame_len as u32, ingress_ifindex, ..Default::default() }
    }

    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: XdpMd is repr(C) plain data without padding; the slice covers exactly it.
        unsafe { std::slice::from_raw_parts((self as *const XdpMd).cast::<u8>(), size_of::<XdpMd>()) }
    }
}

/// Size of `struct __sk_buff`; a test run accepts only a few of its fields set (mark, priority and ifindex among
/// them), the rest zero.
const SK_BUFF_SIZE: usize = 192;
const SK_BUFF_MARK_OFFSET: usize = 8;
const SK_BUFF_PRIORITY_OFFSET: usize = 32;
const SK_BUFF_IFINDEX_OFFSET: usize = 40;

/// `struct __sk_buff` as a test-run context for a TC program: the skb is on device `ifindex` (of the calling
/// thread's namespace).
pub fn sk_buff_on(ifindex: u32) -> [u8; SK_BUFF_SIZE] {
    sk_buff(&[(SK_BUFF_IFINDEX_OFFSET, ifindex)])
}

/// `struct __sk_buff` as a test-run context for a TC program, with `skb->mark` and `skb->priority` set (on no
/// device).
pub fn sk_buff_marked(mark: u32, priority: u32) -> [u8; SK_BUFF_SIZE] {
    sk_buff(&[(SK_BUFF_MARK_OFFSET, mark), (SK_BUFF_PRIORITY_OFFSET, priority)])
}

fn sk_buff(fields: &[(usize, u32)]) -> [u8; SK_BUFF_SIZE] {
    let mut context = [0u8; SK_BUFF_SIZE];
    for &(offset, value) in fields {
        context[offset..offset + 4].copy_from_slice(&value.to_ne_bytes());
    }
    context
}
