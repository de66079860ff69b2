//! Choosing where tensors live.
use serde::{Deserialize, Serialize};

/// The device a user asks for; `auto` takes CUDA when libtorch sees a GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    #[default]
    Auto,
    Cpu,
    Cuda,
}

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error(
        "CUDA was requested but libtorch sees no CUDA device (CUDA devices: {count}). \
         Check `nvidia-smi`, or use `--device cpu`"
    )]
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
