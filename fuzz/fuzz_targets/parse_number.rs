//! The number parser of the text readers. Differential: whenever the fast path
//! (Clinger's) answers, the answer is bit-identical to `str::parse::<f64>`; the full
//! field parser never panics, and accepts exactly the finite numbers `str::parse` does
//! (after trimming ASCII whitespace).
#![no_main]
use headstart::fuzzing::{parse_fast, parse_value};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let std_parse = |t: &[u8]| std::str::from_utf8(t).ok().and_then(|s| s.parse::<f64>().ok());
    if let Some(v) = parse_fast(data) {
        let w = std_parse(data).expect("fast path accepted what str::parse rejects");
        assert_eq!(v.to_bits(), w.to_bits(), "fast path differs on {data:?}");
    }
    let trimmed = data.trim_ascii();
    let expect = std_parse(trimmed).filter(|v| v.is_finite());
    match parse_value(data, false) {
        Ok(Some(v)) => {
            let w = expect.expect("accepted a field str::parse rejects");
            assert_eq!(v.to_bits(), w.to_bits(), "field parse differs on {data:?}");
        }
        Ok(None) => panic!("Missing::Raise returned no value"),
        Err(e) => {
            assert!(expect.is_none(), "rejected a finite number {data:?}: {e}");
            assert!(e.to_string().starts_with("fuzz:1: column 1: "), "{e}");
        }
    }
    if let Ok(Some(v)) = parse_value(data, true) {
        assert_eq!(Some(v.to_bits()), expect.map(f64::to_bits));
    }
});
