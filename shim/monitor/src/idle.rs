//! Releasing the idle monitor's pages: the one place of the monitor that
//! calls the kernel directly (madvise and ppoll on raw addresses).

use libc::{c_int, c_void};
use zctr_shim_core::sys::{check, SysResult};

/// What the idle monitor can drop from its page tables: the clean (never
/// written) pages of the file-backed, read-only mappings of its own executable
/// (code and constants), and the stack below the current frame. Clean file
/// pages fault back in from the page cache when used; dead stack below the
/// stack pointer comes back zeroed. Mappings with private (relocated or
/// written) pages, such as RELRO, are left alone: dropping those would lose
/// their contents.
pub struct IdlePages {
    ranges: [(usize, usize); 8],
    n: usize,
    stack_low: usize,
}

impl IdlePages {
    /// Reads /proc/self/smaps once (the mappings do not change after start-up).
    pub fn find() -> IdlePages {
        let mut pages = IdlePages {
            ranges: [(0, 0); 8],
            n: 0,
            stack_low: 0,
        };
        let Ok(exe) = std::fs::read_link("/proc/self/exe") else {
            return pages;
        };
        let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
            return pages;
        };
        let mut current: Option<(usize, usize)> = None;
        for line in smaps.lines() {
            let mut f = line.split_whitespace();
            let first = f.next().unwrap_or("");
            if let Some((a, b)) = first.split_once('-') {
                if let (Ok(start), Ok(end)) =
                    (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
                {
                    let perms = f.next().unwrap_or("");
                    let path = f.nth(3).unwrap_or("");
                    current = None;
                    if path == exe.as_os_str() && !perms.contains('w') {
                        current = Some((start, end));
                    } else if path == "[stack]" {
                        pages.stack_low = start;
                    }
                    continue;
                }
            }
            // Private pages (resident or swapped out) would revert to the
            // file's contents: only mappings with neither are released.
            if first == "Anonymous:" && f.next() != Some("0") {
                current = None;
            }
            if first == "Swap:" {
                if let (Some(range), Some("0")) = (current.take(), f.next()) {
                    if pages.n < pages.ranges.len() {
                        pages.ranges[pages.n] = range;
                        pages.n += 1;
                    }
                }
            }
        }
        pages
    }

    /// Drops the pages, then blocks in poll(2) on `fds` (`timeout_ms` < 0:
    /// forever). Nothing runs in between, so what stays resident while the
    /// monitor idles is little more than this function and two syscalls.
    /// Never inlined: its own frame must lie below every caller's, so that
    /// the stack released below it holds nothing live.
    #[inline(never)]
    pub fn release_and_poll(
        &self,
        fds: &mut [libc::pollfd],
        timeout_ms: c_int,
    ) -> SysResult<usize> {
        /// Room kept below this frame for the madvise and poll calls.
        const STACK_MARGIN: usize = 16 * 1024;
        let marker = 0u8;
        let sp = std::hint::black_box(&marker) as *const u8 as usize;
        let low = sp.saturating_sub(STACK_MARGIN) & !(PAGE - 1);
        if self.stack_low != 0 && low > self.stack_low {
            // SAFETY: stack pages well below the current frame hold nothing live.
            unsafe {
                libc::madvise(
                    self.stack_low as *mut c_void,
                    low - self.stack_low,
                    libc::MADV_DONTNEED,
                )
            };
        }
        for &(start, end) in &self.ranges[..self.n] {
            // SAFETY: a clean read-only private file mapping of our own
            // executable: accesses refault the same bytes.
            unsafe { libc::madvise(start as *mut c_void, end - start, libc::MADV_DONTNEED) };
        }
        let ts;
        let timeout = if timeout_ms < 0 {
            std::ptr::null()
        } else {
            ts = libc::timespec {
                tv_sec: (timeout_ms / 1000) as _,
                tv_nsec: (timeout_ms % 1000) as libc::c_long * 1_000_000,
            };
            &ts as *const libc::timespec
        };
        // SAFETY: fds is a valid, exclusively borrowed pollfd array; a null
        // sigmask leaves the mask alone.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_ppoll,
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                timeout,
                std::ptr::null::<libc::sigset_t>(),
                0usize,
            )
        };
        check(ret).map(|n| n as usize)
    }
}

const PAGE: usize = 4096;
