//! The memory-mapped .npy reader: any file gives statistics or an error (a header that
//! lies about the shape or dtype included), never a panic or an out-of-bounds read.
#![no_main]
use headstart::io::npy::Npy;
use headstart::io::{Missing, NoProgress};
use headstart::stats::select::Selector;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("headstart-fuzz-{}.npy", std::process::id()));
    std::fs::write(&path, data).unwrap();
    let Ok(npy) = Npy::open(path.to_str().unwrap()) else {
        return;
    };
    for col in [0, npy.cols.saturating_sub(1), npy.cols] {
        let mut sel = Selector::new(&[0.5, 0.25], &[2.0]).unwrap();
        if npy.scan_regression(col, Missing::Skip, &mut sel, &mut NoProgress).is_ok() {
            assert!(sel.done());
        }
        let mut sel = Selector::new(&[0.5], &[]).unwrap();
        let _ = npy.scan_regression(col, Missing::Raise, &mut sel, &mut NoProgress);
        if npy.kind.is_int() {
            if let Ok(c) = npy.scan_int_classes(col, &mut NoProgress) {
                assert_eq!(c.total(), npy.rows as u64);
            }
        }
    }
});
