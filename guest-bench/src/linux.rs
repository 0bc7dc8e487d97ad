//! Everything that talks to Linux or the CPU directly: the `_start` entry point, raw
//! `svc #0` system calls, the generic-timer counter registers and the few memory accesses
//! that need raw pointers (the initial stack, anonymous mappings).
//!
//! This is the only module with `unsafe` code. Everything it exports is safe to call
//! because of one invariant of the whole program: it is single-threaded (it never passes
//! `CLONE_VM` or `CLONE_THREAD` to `clone`), so `fork` copies the address space of a
//! process with no other thread, lock or allocator state to corrupt.
//!
//! System calls follow the arm64 Linux convention: the number in x8, arguments in x0..x5,
//! the result in x0 (a value in `-4095..=-1` is `-errno`); the kernel preserves every
//! other register.

use core::arch::{asm, global_asm};
use core::ffi::CStr;

// The ELF entry point. Linux enters with sp pointing at argc (then argv[], NULL, envp[],
// NULL, auxv), x0 undefined and the frame and link registers meaningless. Clear fp/lr so
// backtraces stop here, keep the initial sp in x0 for `main_entry`, and align sp to 16
// bytes (the kernel does already; this is belt and braces).
global_asm!(
    ".section .text._start, \"ax\", %progbits",
    ".global _start",
    ".type _start, %function",
    "_start:",
    "    mov x29, #0",
    "    mov x30, #0",
    "    mov x0, sp",
    "    and x1, x0, #~15",
    "    mov sp, x1",
    "    bl main_entry",
    "    brk #0",
    ".size _start, . - _start",
);

/// Called by `_start` with the stack pointer Linux entered the program with.
#[no_mangle]
extern "C" fn main_entry(sp: *const u64) -> ! {
    // SAFETY: `_start` passes the initial stack pointer unchanged; Linux puts argc there,
    // followed by argc argv pointers to NUL-terminated strings and a NULL pointer, and
    // that memory stays mapped and unmodified for the life of the process.
    let args = unsafe { Args::from_initial_stack(sp) };
    crate::main(args)
}

/// The command-line arguments (without argv[0]), read from the initial stack.
pub struct Args {
    argv: *const *const u8,
    next: usize,
    argc: usize,
}

impl Args {
    /// # Safety
    ///
    /// `sp` must be the stack pointer Linux started the process with.
    unsafe fn from_initial_stack(sp: *const u64) -> Self {
        // SAFETY: per the caller's contract, sp points at argc, a u64 on the stack.
        let argc = unsafe { sp.read() } as usize;
        // SAFETY: argv[] starts right after argc, still inside the initial stack.
        let argv = unsafe { sp.add(1) } as *const *const u8;
        Self {
            argv,
            next: 1,
            argc,
        }
    }
}

impl Iterator for Args {
    type Item = &'static [u8];

    fn next(&mut self) -> Option<&'static [u8]> {
        if self.next >= self.argc {
            return None;
        }
        // SAFETY: next < argc, so argv[next] is one of the argc pointers Linux stored.
        let ptr = unsafe { self.argv.add(self.next).read() };
        self.next += 1;
        if ptr.is_null() {
            return None;
        }
        // SAFETY: Linux stores NUL-terminated strings that live as long as the process
        // and that nothing writes to.
        Some(unsafe { CStr::from_ptr(ptr.cast()) }.to_bytes())
    }
}

/// An error number returned by a system call (positive, e.g. 2 for `ENOENT`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub i64);

/// The result of a system call.
pub type SysResult<T> = Result<T, Errno>;

/// arm64 (asm-generic) system call numbers.
mod nr {
    pub const CLOSE: usize = 57;
    pub const PIPE2: usize = 59;
    pub const READ: usize = 63;
    pub const WRITE: usize = 64;
    pub const EXIT_GROUP: usize = 94;
    pub const GETPPID: usize = 173;
    pub const MUNMAP: usize = 215;
    pub const CLONE: usize = 220;
    pub const EXECVE: usize = 221;
    pub const MMAP: usize = 222;
    pub const WAIT4: usize = 260;
}

/// `SIGCHLD`: the exit signal `fork` asks `clone` for.
const SIGCHLD: usize = 17;
const PROT_READ: usize = 1;
const PROT_WRITE: usize = 2;
const MAP_PRIVATE: usize = 0x02;
const MAP_ANONYMOUS: usize = 0x20;

/// Makes system call `nr` with six arguments and returns the raw result.
///
/// # Safety
///
/// The arguments must be valid for the call: every pointer must point at memory that the
/// call may read or write, and the call must not break memory the program uses (no
/// `munmap` of live data, no `clone` sharing the address space).
#[inline(always)]
unsafe fn syscall(nr: usize, args: [usize; 6]) -> isize {
    let ret: isize;
    // SAFETY: `svc #0` enters the kernel, which preserves every register but x0; the
    // caller vouches for the arguments. No `nomem`: the kernel may read and write memory.
    unsafe {
        asm!(
            "svc #0",
            inlateout("x0") args[0] => ret,
            in("x1") args[1],
            in("x2") args[2],
            in("x3") args[3],
            in("x4") args[4],
            in("x5") args[5],
            in("x8") nr,
            options(nostack),
        );
    }
    ret
}

fn check(ret: isize) -> SysResult<usize> {
    if (-4095..0).contains(&ret) {
        Err(Errno(-(ret as i64)))
    } else {
        Ok(ret as usize)
    }
}

/// `write(fd, buf)`: returns the number of bytes written.
pub fn write(fd: i32, buf: &[u8]) -> SysResult<usize> {
    // SAFETY: the kernel reads at most buf.len() bytes from buf.
    check(unsafe {
        syscall(
            nr::WRITE,
            [fd as usize, buf.as_ptr() as usize, buf.len(), 0, 0, 0],
        )
    })
}

/// `read(fd, buf)`: returns the number of bytes read (0 at end of file).
pub fn read(fd: i32, buf: &mut [u8]) -> SysResult<usize> {
    // SAFETY: the kernel writes at most buf.len() bytes into buf, which we borrow mutably.
    check(unsafe {
        syscall(
            nr::READ,
            [fd as usize, buf.as_mut_ptr() as usize, buf.len(), 0, 0, 0],
        )
    })
}

/// `close(fd)`.
pub fn close(fd: i32) -> SysResult<()> {
    // SAFETY: closing a descriptor touches no memory of ours.
    check(unsafe { syscall(nr::CLOSE, [fd as usize, 0, 0, 0, 0, 0]) }).map(|_| ())
}

/// `pipe2(fds, 0)`: returns (read end, write end).
pub fn pipe() -> SysResult<(i32, i32)> {
    let mut fds = [0i32; 2];
    // SAFETY: the kernel writes two ints into fds.
    check(unsafe { syscall(nr::PIPE2, [fds.as_mut_ptr() as usize, 0, 0, 0, 0, 0]) })?;
    Ok((fds[0], fds[1]))
}

/// `getppid()`: the cheapest system call there is (it cannot fail).
#[inline(always)]
pub fn getppid() -> isize {
    // SAFETY: getppid takes no arguments and touches no memory of ours.
    unsafe { syscall(nr::GETPPID, [0; 6]) }
}

/// `exit_group(code)`: ends the process.
pub fn exit(code: i32) -> ! {
    // SAFETY: exit_group does not return; the process and its memory go away.
    unsafe {
        asm!(
            "svc #0",
            in("x0") code as usize,
            in("x8") nr::EXIT_GROUP,
            options(noreturn, nostack),
        );
    }
}

/// Which side of a [`fork`] we are on.
pub enum Fork {
    /// The new process.
    Child,
    /// The original process; the child has this pid.
    Parent(i32),
}

/// `clone(SIGCHLD, 0, 0, 0, 0)`, i.e. `fork()`: the child gets a copy of the address space.
pub fn fork() -> SysResult<Fork> {
    // SAFETY: without CLONE_VM the child runs on its own copy of memory, and since the
    // program is single-threaded (module invariant) that copy is consistent. Both sides
    // return from the same `svc` with the same stack and registers but x0.
    let pid = check(unsafe { syscall(nr::CLONE, [SIGCHLD, 0, 0, 0, 0, 0]) })?;
    Ok(if pid == 0 {
        Fork::Child
    } else {
        Fork::Parent(pid as i32)
    })
}

/// `wait4(pid, &status, 0, NULL)`: returns the raw wait status.
pub fn wait4(pid: i32) -> SysResult<i32> {
    let mut status = 0i32;
    // SAFETY: the kernel writes one int into status; the rusage pointer is NULL.
    check(unsafe {
        syscall(
            nr::WAIT4,
            [pid as usize, &mut status as *mut i32 as usize, 0, 0, 0, 0],
        )
    })?;
    Ok(status)
}

/// `execve(path, argv, [])`. Returns only on failure; at most 7 arguments are passed.
pub fn execve(path: &CStr, argv: &[&CStr]) -> Errno {
    let mut ptrs = [core::ptr::null::<u8>(); 8];
    for (slot, arg) in ptrs.iter_mut().zip(argv.iter().take(7)) {
        *slot = arg.as_ptr().cast();
    }
    let envp = [core::ptr::null::<u8>()];
    // SAFETY: path and every argv entry are NUL-terminated; both pointer arrays end with
    // NULL (ptrs has at most 7 non-null entries). The kernel only reads them.
    let ret = unsafe {
        syscall(
            nr::EXECVE,
            [
                path.as_ptr() as usize,
                ptrs.as_ptr() as usize,
                envp.as_ptr() as usize,
                0,
                0,
                0,
            ],
        )
    };
    match check(ret) {
        Err(errno) => errno,
        Ok(_) => Errno(0),
    }
}

/// An anonymous private read-write mapping owned by the program.
pub struct Mapping {
    addr: usize,
    len: usize,
}

impl Mapping {
    /// `mmap(NULL, len, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)`.
    pub fn anonymous(len: usize) -> SysResult<Self> {
        // SAFETY: a new anonymous mapping at an address the kernel picks cannot overlap
        // memory the program already uses.
        let addr = check(unsafe {
            syscall(
                nr::MMAP,
                [
                    0,
                    len,
                    PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS,
                    usize::MAX, // fd -1
                    0,
                ],
            )
        })?;
        Ok(Self { addr, len })
    }

    /// Writes `value` to the first byte of every `stride` bytes; returns how many.
    pub fn touch(&mut self, stride: usize, value: u8) -> usize {
        let mut count = 0;
        let mut offset = 0;
        while offset < self.len {
            // SAFETY: offset < len, so the byte lies in our read-write mapping, which
            // nothing else references. Volatile, so every page really is written.
            unsafe { ((self.addr + offset) as *mut u8).write_volatile(value) };
            count += 1;
            offset += stride;
        }
        count
    }

    /// `munmap(addr, len)`.
    pub fn unmap(self) -> SysResult<()> {
        // SAFETY: the mapping is ours and `self` is consumed, so nothing refers to it
        // any more.
        check(unsafe { syscall(nr::MUNMAP, [self.addr, self.len, 0, 0, 0, 0]) }).map(|_| ())
    }
}

/// The virtual counter, `CNTVCT_EL0`, after an `isb` (so it is not read early).
#[inline(always)]
pub fn counter() -> u64 {
    let value: u64;
    // SAFETY: Linux lets EL0 read CNTVCT_EL0; reading it has no side effects.
    unsafe {
        // No `nomem`: the read doubles as a compiler barrier for the measured code.
        asm!("isb", "mrs {}, cntvct_el0", out(reg) value, options(nostack));
    }
    value
}

/// The counter frequency in Hz, `CNTFRQ_EL0`.
pub fn counter_frequency() -> u64 {
    let value: u64;
    // SAFETY: CNTFRQ_EL0 is readable at EL0; reading it has no side effects.
    unsafe {
        asm!("mrs {}, cntfrq_el0", out(reg) value, options(nomem, nostack));
    }
    value
}
