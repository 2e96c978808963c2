//! Device choice and the libtorch runtime, in one place: which device a run uses and
//! what the linked libtorch can do. Nothing else in pcam asks tch about devices.

use crate::config::DeviceChoice;
use crate::error::{Error, Result};
use serde::Serialize;

/// Picks the tch device for a configured choice; `cuda` without a GPU is an error,
/// `auto` falls back to CPU.
pub fn select(choice: DeviceChoice) -> Result<tch::Device> {
    match choice {
        DeviceChoice::Cpu => Ok(tch::Device::Cpu),
        DeviceChoice::Auto => Ok(tch::Device::cuda_if_available()),
        DeviceChoice::Cuda if tch::Cuda::is_available() => Ok(tch::Device::Cuda(0)),
        DeviceChoice::Cuda => Err(Error::ConfigField {
            field: "train.device".into(),
            msg: "`cuda` requested but no CUDA device is visible to libtorch".into(),
            origin: None,
        }),
    }
}

/// What the linked libtorch offers on this machine.
#[derive(Debug, Clone, Serialize)]
pub struct RuntimeInfo {
    pub pcam_version: &'static str,
    pub cuda_available: bool,
    pub cuda_devices: i64,
    pub cudnn_available: bool,
    pub torch_threads: i32,
    pub hdf5_version: String,
}

impl RuntimeInfo {
    /// What `pcam info` prints.
    pub fn to_text(&self) -> String {
        let yes = |b: bool| if b { "available" } else { "not available" };
        format!(
            "pcam {}\nhdf5 {}\nlibtorch: cuda {} ({} devices), cudnn {}, {} intra-op threads by default\n",
            self.pcam_version,
            self.hdf5_version,
            yes(self.cuda_available),
            self.cuda_devices,
            yes(self.cudnn_available),
            self.torch_threads
        )
    }
}

/// Probes libtorch and HDF5.
pub fn runtime_info() -> RuntimeInfo {
    let (a, b, c) = hdf5::library_version();
    RuntimeInfo {
        pcam_version: env!("CARGO_PKG_VERSION"),
        cuda_available: tch::Cuda::is_available(),
        cuda_devices: tch::Cuda::device_count(),
        cudnn_available: tch::Cuda::cudnn_is_available(),
        torch_threads: tch::get_num_threads(),
        hdf5_version: format!("{a}.{b}.{c}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_is_always_selectable_and_a_tensor_runs_there() {
        let d = select(DeviceChoice::Cpu).unwrap();
        let t = tch::Tensor::from_slice(&[1.0f32, 2.0, 3.0]).to_device(d);
        assert_eq!(t.sum(tch::Kind::Float).double_value(&[]), 6.0);
    }

    #[test]
    fn cuda_without_gpu_names_the_field() {
        if tch::Cuda::is_available() {
            return;
        }
        let e = select(DeviceChoice::Cuda).unwrap_err().to_string();
        assert!(e.contains("train.device"), "{e}");
    }
}
