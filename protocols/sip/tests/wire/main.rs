//! imfed-sip over the wire: the example exchanges of the SIMPLE RFCs and RFC 4475's
//! torture messages decoded into typed values (`examples`), and property tests of the
//! codec (`codec_props`).

use proptest::prelude::*;

mod codec_props;
mod examples;

/// A few bytes of `bytes` changed, inserted or cut.
pub(crate) fn damage(mut bytes: Vec<u8>, edits: &[(prop::sample::Index, u8, u8)]) -> Vec<u8> {
    for (index, byte, kind) in edits {
        if bytes.is_empty() {
            break;
        }
        let at = index.index(bytes.len());
        match kind {
            0 => bytes[at] = *byte,
            1 => bytes.insert(at, *byte),
            _ => bytes.truncate(at),
        }
    }
    bytes
}

/// Up to three edits for [`damage`].
pub(crate) fn edits() -> impl Strategy<Value = Vec<(prop::sample::Index, u8, u8)>> {
    prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 0..3)
}
