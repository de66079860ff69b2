//! libtorch's failure to allocate, as it reaches Rust: tch's generated methods unwrap its error,
//! so it arrives as a panic. It is the size the user asked for, not a bug; the front ends (the
//! CLI's panic hook, the Python package's `MemoryError`) read it here.
use std::any::Any;

/// The text of a panic's payload (empty when it is not text).
pub fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or_default()
}

/// What failed to be allocated, from libtorch's CPU or CUDA message; `None` for other errors.
pub fn describe(message: &str) -> Option<String> {
    if let Some(at) = message.find("you tried to allocate ") {
        let digits: String = message[at + "you tried to allocate ".len()..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        let bytes: f64 = digits.parse().ok()?;
        return Some(format!(
            "libtorch could not allocate {:.2} GiB on the CPU",
            bytes / f64::from(1 << 30)
        ));
    }
    let at = message.find("CUDA out of memory")?;
    let detail = &message[at..];
    let end = detail.find(['(', '\\', '\n']).unwrap_or(detail.len());
    Some(detail[..end].trim_end_matches([' ', '.']).to_string())
}

#[cfg(test)]
mod tests {
    use super::describe;

    #[test]
    fn libtorch_allocation_failures_are_recognised() {
        let cpu = r#"called `Result::unwrap()` on an `Err` value: Torch("[enforce fail at alloc_cpu.cpp:127] . DefaultCPUAllocator: can't allocate memory: you tried to allocate 3221225472 bytes. Error code 12 (Cannot allocate memory)\nframe #0: c10::ThrowEnforceNotMet"#;
        assert_eq!(
            describe(cpu).as_deref(),
            Some("libtorch could not allocate 3.00 GiB on the CPU")
        );
        let cuda = r#"called `Result::unwrap()` on an `Err` value: Torch("CUDA out of memory. Tried to allocate 20.00 GiB. GPU 0 has a total capacity of 79.19 GiB (of which 1.2 GiB is free)\nException raised from malloc"#;
        assert_eq!(
            describe(cuda).as_deref(),
            Some("CUDA out of memory. Tried to allocate 20.00 GiB. GPU 0 has a total capacity of 79.19 GiB")
        );
        assert_eq!(describe("index out of bounds: the len is 3"), None);
    }
}
