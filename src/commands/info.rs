use crate::output::emit;
use plastic_agents::device::DeviceReport;

pub fn run(json: bool) -> anyhow::Result<()> {
    let report = DeviceReport::probe();
    emit(json, &report, || {
        format!(
            "plastic {}\nCUDA available: {} ({} device(s), cuDNN {})\nCPU threads: {}",
            env!("CARGO_PKG_VERSION"),
            report.cuda_available,
            report.cuda_devices,
            report.cudnn_available,
            report.cpu_threads
        )
    })
}
