//! What `std` would give this library, from libc directly, so that the
//! shipped build needs nothing but libc (`no_std`, `panic = "abort"`):
//! the allocator, the panic handler, a once-initialised cell, a per-thread
//! flag, and the few environment and file calls the constructor makes.
//!
//! Why: the library is loaded into every psql run, and every object in
//! psql's symbol scope (this library, and the `libgcc_s` that `std`'s
//! unwinder pulls in) is searched for each of the ~9,000 symbols psql and
//! libpq's dependencies resolve at start-up. Measured with callgrind on
//! `psql -X -c 'select 1'`: the `std` build added 1.06 million
//! instructions to psql's 12.08 million; this one adds 0.41 million, the
//! same as an empty C library (bench/instructions.sh).
//!
//! In `cargo test` (which cannot build with `panic = "abort"`) the crate is
//! built with `std` and only the allocator and panic handler below are left
//! out; everything else is the same code.

use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::ffi::{CStr, c_char, c_void};
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicU8, Ordering};

/// libc's allocator: the one psql and libpq use already.
#[cfg(panic = "abort")]
mod runtime {
    use core::alloc::{GlobalAlloc, Layout};

    struct Malloc;

    /// What glibc's malloc guarantees on every 64-bit platform we build.
    const MALLOC_ALIGN: usize = 16;

    // SAFETY: malloc, realloc and free with their C contracts; larger
    // alignments go through posix_memalign, whose memory free releases.
    unsafe impl GlobalAlloc for Malloc {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            if layout.align() <= MALLOC_ALIGN {
                // SAFETY: see the impl.
                unsafe { libc::malloc(layout.size()).cast() }
            } else {
                let mut p = core::ptr::null_mut();
                // SAFETY: see the impl; the alignment is a power of two
                // and a multiple of the pointer size.
                match unsafe { libc::posix_memalign(&mut p, layout.align(), layout.size()) } {
                    0 => p.cast(),
                    _ => core::ptr::null_mut(),
                }
            }
        }

        unsafe fn dealloc(&self, p: *mut u8, _layout: Layout) {
            // SAFETY: memory from malloc or posix_memalign above.
            unsafe { libc::free(p.cast()) }
        }

        unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            if layout.align() <= MALLOC_ALIGN {
                // SAFETY: memory from malloc above.
                unsafe { libc::realloc(p.cast(), new_size).cast() }
            } else {
                // SAFETY: GlobalAlloc's own fallback: allocate, copy, free.
                unsafe {
                    let new =
                        self.alloc(Layout::from_size_align_unchecked(new_size, layout.align()));
                    if !new.is_null() {
                        core::ptr::copy_nonoverlapping(p, new, layout.size().min(new_size));
                        self.dealloc(p, layout);
                    }
                    new
                }
            }
        }
    }

    #[global_allocator]
    static ALLOCATOR: Malloc = Malloc;

    // `core` and `alloc` come precompiled for unwinding: their code names
    // the unwinder's `_Unwind_Resume` and Rust's personality routine. With
    // `panic = "abort"` nothing unwinds, so neither is ever called, but the
    // loader must resolve them. Defined here as traps, and hidden: exported,
    // they would take the place of libgcc's `_Unwind_Resume` for every
    // library in psql's process.
    #[cfg(target_arch = "x86_64")]
    core::arch::global_asm!(
        ".globl _Unwind_Resume",
        ".hidden _Unwind_Resume",
        "_Unwind_Resume:",
        "ud2",
        ".globl rust_eh_personality",
        ".hidden rust_eh_personality",
        "rust_eh_personality:",
        "ud2",
    );
    #[cfg(target_arch = "aarch64")]
    core::arch::global_asm!(
        ".globl _Unwind_Resume",
        ".hidden _Unwind_Resume",
        "_Unwind_Resume:",
        "brk #1",
        ".globl rust_eh_personality",
        ".hidden rust_eh_personality",
        "rust_eh_personality:",
        "brk #1",
    );

    /// Nothing here is expected to panic (no indexing that can fail, no
    /// unwrap). If something does, psql is stopped rather than left to
    /// send a string that was not checked: failing closed.
    #[panic_handler]
    fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
        const MESSAGE: &[u8] = b"dbguard: internal error in libdbguard_preload.so; psql stopped so that nothing runs unchecked\n";
        // SAFETY: write(2) of a static buffer, then abort.
        unsafe {
            libc::write(2, MESSAGE.as_ptr().cast(), MESSAGE.len());
            libc::abort()
        }
    }
}

/// A value computed once, on first use, by whichever thread gets there
/// first (the others wait): `std::sync::OnceLock` for this library.
pub struct Once<T> {
    state: AtomicU8,
    value: UnsafeCell<MaybeUninit<T>>,
}

const EMPTY: u8 = 0;
const BUSY: u8 = 1;
const READY: u8 = 2;

// SAFETY: the value is written once, by the thread that moved the state
// from EMPTY to BUSY, and only read after the state is READY (Release /
// Acquire), so sharing `&Once<T>` shares `&T` only.
unsafe impl<T: Sync + Send> Sync for Once<T> {}

impl<T> Once<T> {
    pub const fn new() -> Once<T> {
        Once {
            state: AtomicU8::new(EMPTY),
            value: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }

    pub fn get(&self) -> Option<&T> {
        if self.state.load(Ordering::Acquire) == READY {
            // SAFETY: READY means written and never written again.
            Some(unsafe { (*self.value.get()).assume_init_ref() })
        } else {
            None
        }
    }

    /// `init` must not use this cell itself (it would wait for itself).
    pub fn get_or_init(&self, init: impl FnOnce() -> T) -> &T {
        match self
            .state
            .compare_exchange(EMPTY, BUSY, Ordering::Acquire, Ordering::Acquire)
        {
            Ok(_) => {
                // SAFETY: this thread alone moved the state to BUSY.
                unsafe { (*self.value.get()).write(init()) };
                self.state.store(READY, Ordering::Release);
            }
            Err(_) => {
                // READY, or another thread is initialising: let it finish.
                while self.state.load(Ordering::Acquire) != READY {
                    // SAFETY: sched_yield has no preconditions.
                    unsafe { libc::sched_yield() };
                }
            }
        }
        // SAFETY: READY from here on (set above, or waited for).
        unsafe { (*self.value.get()).assume_init_ref() }
    }
}

/// A per-thread flag (`thread_local!` with a `Cell<bool>`), on a POSIX
/// thread-specific key made on first use.
pub struct ThreadFlag {
    key: Once<Option<libc::pthread_key_t>>,
}

impl ThreadFlag {
    pub const fn new() -> ThreadFlag {
        ThreadFlag { key: Once::new() }
    }

    fn key(&self) -> Option<libc::pthread_key_t> {
        *self.key.get_or_init(|| {
            let mut key = 0;
            // SAFETY: a key with no destructor.
            (unsafe { libc::pthread_key_create(&mut key, None) } == 0).then_some(key)
        })
    }

    pub fn get(&self) -> bool {
        // SAFETY: a key pthread_key_create made.
        self.key()
            .is_some_and(|key| !unsafe { libc::pthread_getspecific(key) }.is_null())
    }

    /// Sets the flag, returning its old value.
    pub fn replace(&self, on: bool) -> bool {
        let Some(key) = self.key() else {
            return false;
        };
        // SAFETY: a key pthread_key_create made.
        let old = !unsafe { libc::pthread_getspecific(key) }.is_null();
        let value: *const c_void = if on {
            core::ptr::dangling()
        } else {
            core::ptr::null()
        };
        // SAFETY: a key pthread_key_create made; the value is a marker,
        // never dereferenced.
        unsafe { libc::pthread_setspecific(key, value) };
        old
    }
}

/// The environment variable `name` (NUL-terminated), as bytes.
pub fn getenv(name: &CStr) -> Option<&'static [u8]> {
    // SAFETY: a NUL-terminated name; the value lives until the variable is
    // changed, which only the constructor does, after its last read.
    let value = unsafe { libc::getenv(name.as_ptr()) };
    (!value.is_null()).then(|| unsafe { CStr::from_ptr(value) }.to_bytes())
}

/// Sets `name` to `value`, or removes it when `value` is `None`.
///
/// # Safety
/// Only while no other thread reads the environment (the constructor).
pub unsafe fn setenv(name: &CStr, value: Option<&[u8]>) {
    match value {
        // SAFETY: NUL-terminated name; the caller's contract.
        None => unsafe {
            libc::unsetenv(name.as_ptr());
        },
        Some(value) => {
            let mut owned = Vec::with_capacity(value.len() + 1);
            owned.extend_from_slice(value);
            owned.push(0);
            // SAFETY: NUL-terminated name and value (setenv copies both);
            // the caller's contract.
            unsafe { libc::setenv(name.as_ptr(), owned.as_ptr().cast::<c_char>(), 1) };
        }
    }
}

/// The whole content of the file at `path` (NUL-terminated), if readable.
pub fn read_file(path: &CStr) -> Option<Vec<u8>> {
    // SAFETY: a NUL-terminated path.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return None;
    }
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 8192];
    let complete = loop {
        // SAFETY: reading into a buffer of that length.
        let n = unsafe { libc::read(fd, chunk.as_mut_ptr().cast(), chunk.len()) };
        match n {
            0 => break true,
            n if n > 0 => bytes.extend_from_slice(&chunk[..n as usize]),
            _ if errno() == libc::EINTR => {}
            _ => break false,
        }
    };
    // SAFETY: a descriptor this function opened.
    unsafe { libc::close(fd) };
    complete.then_some(bytes)
}

/// Removes the file at `path` (NUL-terminated), if it can.
pub fn remove_file(path: &CStr) {
    // SAFETY: a NUL-terminated path.
    unsafe { libc::unlink(path.as_ptr()) };
}

fn errno() -> i32 {
    // SAFETY: glibc's per-thread errno location is always valid.
    unsafe { *libc::__errno_location() }
}
