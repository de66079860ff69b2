//! With the `gym` feature: lets binaries find libpython without LD_LIBRARY_PATH, and records
//! which Python environment the bridge was built against, so that the embedded interpreter
//! finds gymnasium there without the user setting any variable.
fn main() {
    #[cfg(feature = "gym")]
    python::configure();
}

#[cfg(feature = "gym")]
mod python {
    use std::process::Command;

    pub fn configure() {
        let config = pyo3_build_config::get();
        // This crate's own test binaries.
        pyo3_build_config::add_libpython_rpath_link_args();
        // Re-published for the CLI package as DEP_PLASTIC_PYTHON_LIB_DIR.
        if let Some(dir) = config.lib_dir() {
            println!("cargo:lib_dir={dir}");
        }
        // maturin's config for the Python extension names no interpreter; it sets PYO3_PYTHON.
        let exe = config
            .executable()
            .map(str::to_owned)
            .or_else(|| std::env::var("PYO3_PYTHON").ok())
            .expect("pyo3 found no Python interpreter; build through `make` (see README)");
        let exe = exe.as_str();
        let out = Command::new(exe)
            .args(["-c", "import sys; print(sys.prefix)"])
            .output()
            .unwrap_or_else(|e| panic!("running `{exe}`: {e}"));
        assert!(out.status.success(), "`{exe}` could not print sys.prefix");
        let prefix = String::from_utf8(out.stdout).expect("a UTF-8 sys.prefix");
        println!("cargo:rustc-env=PLASTIC_PYTHON_PREFIX={}", prefix.trim());
        println!("cargo:rerun-if-env-changed=VIRTUAL_ENV");
        println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
    }
}
