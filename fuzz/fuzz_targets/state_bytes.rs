//! Decoding pickled states (RegState / ClassState bytes): any bytes decode to a state
//! or give an error, and a decoded state can be used (re-encoded to the same bytes,
//! fed values, merged, its passes finished, its results read) without a panic. The
//! bodies are fuzzed directly (a random frame would almost never pass its CRC-32); the
//! framed decoders get the raw bytes too, and every decoded state round-trips framed.
#![no_main]
use headstart::stats::ser::{
    counts_body, counts_from_body, counts_from_bytes, counts_to_bytes, selector_body,
    selector_from_body, selector_from_bytes, selector_to_bytes,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = selector_from_bytes(data);
    let _ = counts_from_bytes(data);
    if let Ok(mut s) = selector_from_body(data) {
        let b = selector_to_bytes(&s);
        let again = selector_from_bytes(&b).expect("re-encoded state decodes");
        assert_eq!(selector_to_bytes(&again), b);
        assert_eq!(selector_body(&again), selector_body(&s));
        let o = s.acc.clone();
        s.acc.merge(&o);
        for _ in 0..20 {
            s.update(&[0.0, 1.5, -2.0, 1e300]);
            match s.finish_pass() {
                Ok(true) => continue,
                _ => break,
            }
        }
        let _ = s.order_stat(0);
        let _ = s.order_stat_bounds(1);
        let _ = s.zero_losses();
        let _ = s.dev_sums(0.5);
        for d in s.deltas.clone() {
            if let Some((Some(c), _, _)) = s.huber(d) {
                let _ = s.huber_sum(d, c);
            }
        }
    }
    if let Ok((mut ints, mut strs, rows)) = counts_from_body(data) {
        let b = counts_to_bytes(&ints, &strs, rows).expect("decoded counts re-encode");
        let (i2, s2, _) = counts_from_bytes(&b).expect("re-encoded counts decode");
        assert_eq!(
            counts_body(&i2, &s2, rows).ok(),
            counts_body(&ints, &strs, rows).ok()
        );
        ints.merge(&i2);
        strs.merge(&s2);
        let _ = ints.sorted();
        let _ = strs.sorted();
        let _ = ints.total();
    }
});
