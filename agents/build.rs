//! Makes binaries that use libtorch start without LD_LIBRARY_PATH, and able to see CUDA.
use std::path::Path;

fn main() {
    // torch-sys (links = "tch") publishes the libtorch directory it linked against.
    let lib = std::env::var("DEP_TCH_LIBTORCH_LIB").expect(
        "torch-sys did not report its libtorch directory; build through `make` (see README)",
    );
    // This crate's own test and bench binaries, which link libpython too when plastic-envs has
    // the Gymnasium bridge.
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    if let Ok(python) = std::env::var("DEP_PLASTIC_PYTHON_LIB_DIR") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{python}");
    }
    // Re-published for the CLI package, as DEP_PLASTIC_TORCH_LIBTORCH_LIB.
    println!("cargo:libtorch_lib={lib}");
    if Path::new(&lib).join("libtorch_cuda.so").exists() {
        // Nothing references libtorch_cuda.so directly, so `--as-needed` drops it and
        // tch::Cuda::is_available() is then false even on a GPU machine.
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
        println!("cargo:cuda=1");
    }
}
