//! Feeds arbitrary bytes to the ONNX reader and importer. Any panic or abort is a bug: bad
//! files must come back as `OnnxError`s. Seeds in `fuzz/corpus/onnx_reader` are the small
//! fixture models, so mutations reach the importer's op rules, not only the protobuf parser.
#![no_main]

use featx_onnx::{LoadOptions, load_bytes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let options = LoadOptions {
        input_size: Some([8, 8]),
        batch: Some(1),
    };
    let _ = load_bytes(data, &options);
});
