//! A memory bound for scripts: the process allocator counts the bytes a script allocates.
//!
//! Rhai checks string, array and map sizes only at some points (a map grown by `m[k] = v` in a
//! loop escapes `max_map_size`), and Rust aborts the whole process when an allocation fails. So
//! the binary's global allocator keeps a per-thread net count of bytes allocated while a script
//! runs (native calls such as synthesis pause the count), and the runtime's progress callback,
//! called on every script operation, stops the script once the count passes the limit.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static NET: Cell<i64> = const { Cell::new(0) };
}

/// The global allocator: the system allocator plus the per-thread script count.
pub struct CountingAlloc;

#[inline]
fn track(delta: i64) {
    let _ = COUNTING.try_with(|c| {
        if c.get() {
            let _ = NET.try_with(|n| n.set(n.get() + delta));
        }
    });
}

unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            track(layout.size() as i64);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            track(layout.size() as i64);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        track(-(layout.size() as i64));
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            track(new_size as i64 - layout.size() as i64);
        }
        p
    }
}

/// Start counting on this thread from zero.
pub fn start() {
    NET.with(|n| n.set(0));
    COUNTING.with(|c| c.set(true));
}

/// Stop counting on this thread.
pub fn stop() {
    COUNTING.with(|c| c.set(false));
}

/// Whether this thread is counting now.
pub fn is_counting() -> bool {
    COUNTING.with(|c| c.get())
}

/// Resume counting after [`pause`] (does not reset the count).
pub fn resume() {
    COUNTING.with(|c| c.set(true));
}

/// Pause counting (for native calls); returns whether it was counting.
pub fn pause() -> bool {
    COUNTING.with(|c| c.replace(false))
}

/// Net bytes allocated by script work on this thread since [`start`].
pub fn net_bytes() -> i64 {
    NET.with(|n| n.get())
}
