//! Hands the memory the allocator holds free back to the operating system.
//!
//! glibc's malloc keeps freed chunks in its per-thread arenas, and a deploy churns them: a new
//! release's counters and analysis windows are made, the old ones freed, among allocations that live
//! on. Measured over 400 deploys (`malloc_stats`, docs/benchmarks.md), the memory in use levelled off
//! at 10 MB while the arenas grew from 8 to 21 MB: free memory they kept. `malloc_trim(0)` returns every
//! free page of every arena; the controller calls this once a rollout has ended, off its own task. (mimalloc as the allocator was measured too, for the proxy:
//! +10 MB RSS, so glibc's stays.)

/// Returns the allocator's free pages to the OS (a no-op where the allocator is not glibc's), and
/// unmaps the code pages the work just done touched (`code_pages.rs`).
pub fn release_free_memory() {
    crate::code_pages::release_unused();
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks and trims glibc's own arenas, under their locks; it takes no
    // pointer and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
