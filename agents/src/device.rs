//! Choosing where tensors live.
use serde::Serialize;

config_option! {
    /// The device a user asks for; `auto` takes CUDA when libtorch sees a GPU.
    pub enum DeviceChoice {
        #[default]
        Auto = "auto",
        Cpu = "cpu",
        Cuda = "cuda",
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("CUDA was requested but libtorch sees no CUDA device (CUDA devices: {count})")]
    NoCuda { count: usize },
}

impl DeviceChoice {
    pub fn resolve(self) -> Result<tch::Device, DeviceError> {
        match self {
            Self::Cpu => Ok(tch::Device::Cpu),
            Self::Auto => Ok(tch::Device::cuda_if_available()),
            Self::Cuda if tch::Cuda::is_available() => Ok(tch::Device::Cuda(0)),
            Self::Cuda => Err(DeviceError::NoCuda {
                count: tch::Cuda::device_count() as usize,
            }),
        }
    }
}

/// What libtorch can use on this machine.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceReport {
    pub cuda_available: bool,
    pub cuda_devices: usize,
    pub cudnn_available: bool,
    pub cpu_threads: usize,
}

impl DeviceReport {
    pub fn probe() -> Self {
        Self {
            cuda_available: tch::Cuda::is_available(),
            cuda_devices: tch::Cuda::device_count() as usize,
            cudnn_available: tch::Cuda::cudnn_is_available(),
            cpu_threads: tch::get_num_threads() as usize,
        }
    }
}

/// Makes glibc keep freed memory for reuse instead of handing it back to the kernel.
///
/// Backpropagation through a whole episode frees hundreds of MB of saved tensors at the end
/// of every batch; glibc returns such memory to the kernel (large blocks are `mmap`ed, the
/// heap top is trimmed) and the next batch pays a page fault for every 4 KiB it touches again,
/// which measured 2–3× slower on the plastic RNN benchmark. This turns both off for the whole
/// process: call it once at start-up of a training or benchmark process. The process's
/// resident memory then stays at its peak. Returns false where it has no effect (not glibc).
pub fn keep_freed_memory() -> bool {
    use allocator::{set, M_MMAP_MAX, M_TRIM_THRESHOLD};
    // -1 disables trimming; no mappings serves every allocation from the heap.
    set(M_TRIM_THRESHOLD, -1) && set(M_MMAP_MAX, 0)
}

/// Serves blocks of at least `threshold` bytes from their own mappings (`Some`), which go back
/// to the kernel as soon as they are freed, or every block from the heap again (`None`, as
/// [`keep_freed_memory`] leaves it). With mappings, resident memory follows what is held: a
/// measurement's way to see memory freed and reused within a pass, which the heap would keep
/// resident. Returns false where it has no effect (not glibc).
pub fn map_large_blocks(threshold: Option<usize>) -> bool {
    use allocator::{set, M_MMAP_MAX, M_MMAP_THRESHOLD};
    // glibc's own default count of mappings (mallopt(3)).
    const DEFAULT_MMAP_MAX: i32 = 65_536;
    match threshold {
        Some(t) => {
            set(M_MMAP_THRESHOLD, t.min(i32::MAX as usize) as i32)
                && set(M_MMAP_MAX, DEFAULT_MMAP_MAX)
        }
        None => set(M_MMAP_MAX, 0),
    }
}

/// Hands free heap memory back to the kernel now (glibc), so that the next resident-memory
/// measurement starts from what is really in use. Returns false where it has no effect.
pub fn release_free_memory() -> bool {
    allocator::trim()
}

/// glibc's allocator parameters (mallopt(3)); elsewhere every call does nothing and says so.
mod allocator {
    pub const M_TRIM_THRESHOLD: i32 = -1;
    pub const M_MMAP_THRESHOLD: i32 = -3;
    pub const M_MMAP_MAX: i32 = -4;

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    extern "C" {
        fn mallopt(param: std::os::raw::c_int, value: std::os::raw::c_int) -> std::os::raw::c_int;
        fn malloc_trim(pad: usize) -> std::os::raw::c_int;
    }

    /// Sets one parameter; true if the allocator took it.
    pub fn set(param: i32, value: i32) -> bool {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        {
            // SAFETY: mallopt only adjusts allocator parameters.
            unsafe { mallopt(param, value) == 1 }
        }
        #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
        {
            let _ = (param, value);
            false
        }
    }

    /// Returns the heap's free pages to the kernel; true where that is done.
    pub fn trim() -> bool {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        {
            // SAFETY: malloc_trim only returns free pages of the heap to the kernel.
            unsafe { malloc_trim(0) };
            true
        }
        #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
        {
            false
        }
    }
}
