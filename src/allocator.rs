//! The two glibc allocator calls chatpulse makes, and the only `unsafe`
//! code in the crate (`#![deny(unsafe_code)]` everywhere else): large
//! allocations get their own mappings, and freed heap goes back to the OS.

/// Makes glibc serve allocations of 256 KiB and more with their own
/// mappings, returned to the OS on free: the large, short-lived buffers
/// (a config file read for a reload, the plan's vectors, a history query's
/// rows) would otherwise stay resident as free heap.
pub fn tune() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only changes allocator tuning; called before any
    // thread of ours allocates concurrently.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
}

/// Hands memory freed by a config parse back to the OS. Parsing a config
/// with thousands of probes briefly needs tens of MiB; glibc keeps freed heap
/// pages mapped unless asked, which would leave the monitor's resident size
/// at that peak for its whole life.
pub fn release_freed() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only returns free heap pages to the kernel; it has
    // no preconditions and does not touch live allocations.
    unsafe {
        libc::malloc_trim(0);
    }
}
