//! The WBXML decoder on arbitrary bytes, as a phone (or anyone reaching
//! the ActiveSync port) could send them: it must never panic or hang, and
//! whatever it accepts must encode and decode back to the same tree.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let limits = pushmail_wbxml::Limits {
        max_depth: 64,
        max_nodes: 10_000,
        max_value: 64 * 1024,
    };
    if let Ok(root) = pushmail_wbxml::decode_with(bytes, limits) {
        let again = pushmail_wbxml::encode(&root).expect("a decoded tree encodes");
        assert_eq!(pushmail_wbxml::decode(&again).expect("and decodes"), root);
    }
});
