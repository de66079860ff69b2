//! Records the torch release whose libtorch this extension links (read from that torch's
//! `version.py`, found through plastic-agents' build script), so the module can say which
//! torch it needs. No rpath is embedded: the module uses the libtorch of the torch package
//! installed next to it, which `import plastic` loads first (`import torch`).
use std::path::Path;

fn main() {
    let lib = std::env::var("DEP_PLASTIC_TORCH_LIBTORCH_LIB")
        .expect("plastic-agents did not report libtorch's directory");
    let version_py = Path::new(&lib).join("..").join("version.py");
    let version = std::fs::read_to_string(&version_py)
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("__version__"))
                .map(|rest| {
                    rest.trim_start_matches([' ', '='])
                        .trim()
                        .trim_matches(['\'', '"'])
                        .to_string()
                })
        })
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=PLASTIC_TORCH_VERSION={version}");
    println!("cargo:rerun-if-changed={}", version_py.display());
}
