//! The CSV/TSV/one-value-per-line readers, plain and gzip, for regression values, class
//! labels and label sets. The first two bytes choose the options; the rest is the file
//! (written to a temp file: the readers take paths). Any input must give statistics or
//! an error, never a panic, a hang or unbounded memory (libFuzzer's -timeout and
//! -rss_limit_mb enforce the last two).
#![no_main]
use headstart::io::text::{scan_classes, scan_regression, TextOpts};
use headstart::io::{Column, Missing, NoProgress};
use headstart::stats::select::Selector;
use libfuzzer_sys::fuzz_target;
use std::io::Write;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let (a, b) = (data[0], data[1]);
    let body = &data[2..];
    let delimiter = [None, Some(b','), Some(b'\t'), Some(b';')][(a & 3) as usize];
    let header = a & 4 != 0;
    let column = match (a >> 3) & 7 {
        0 | 1 => Column::Auto,
        2 => Column::Index(0),
        3 => Column::Index(1),
        4 => Column::Index(2),
        5 => Column::Name("y".into()),
        6 => Column::Name("label".into()),
        _ => Column::Name(String::new()),
    };
    let missing = if a & 64 != 0 { Missing::Skip } else { Missing::Raise };
    // gzip: the body compressed (the parser behind the decoder), or the raw body read as
    // gzip (the decoder's own errors).
    let (gz, bytes) = match b & 3 {
        1 => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(body).unwrap();
            (true, e.finish().unwrap())
        }
        2 => (true, body.to_vec()),
        _ => (false, body.to_vec()),
    };
    let path = std::env::temp_dir().join(format!("headstart-fuzz-{}.txt", std::process::id()));
    std::fs::write(&path, &bytes).unwrap();
    let path = path.to_str().unwrap();
    let opts = TextOpts {
        delimiter,
        header,
        column,
        missing,
        gz,
    };
    match (b >> 2) & 3 {
        0 | 1 => {
            let mut sel = Selector::new(&[0.5, 0.1, 1.0], &[1.0]).unwrap();
            if let Ok((info, _)) = scan_regression(path, &opts, &mut sel, &mut NoProgress) {
                let m = sel.moments.expect("a finished scan has moments");
                assert!(sel.done());
                assert_eq!(m.n + info.skipped, info.records);
                if m.n > 0 {
                    let med = sel.order_stat((m.n - 1) / 2).expect("median resolved");
                    assert!(m.min <= med && med <= m.max);
                }
            }
        }
        2 => {
            if let Ok(s) = scan_classes(path, &opts, None, &mut NoProgress) {
                assert_eq!(s.counts.total() + s.info.skipped, s.info.records);
                let _ = s.counts.sorted();
            }
        }
        _ => {
            if let Ok(s) = scan_classes(path, &opts, Some(b'|'), &mut NoProgress) {
                let _ = s.counts.sorted();
            }
        }
    }
});
