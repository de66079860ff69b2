//! Embeds libtorch's directory (found by plastic-agents' build script) and, with the Gymnasium
//! bridge, libpython's (found by plastic-envs') as rpaths, and keeps libtorch_cuda linked, so
//! `plastic` runs without LD_LIBRARY_PATH and sees CUDA where it exists.
fn main() {
    let lib = std::env::var("DEP_PLASTIC_TORCH_LIBTORCH_LIB")
        .expect("plastic-agents did not report libtorch's directory");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    if let Ok(python) = std::env::var("DEP_PLASTIC_PYTHON_LIB_DIR") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{python}");
    }
    if std::env::var_os("DEP_PLASTIC_TORCH_CUDA").is_some() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}
